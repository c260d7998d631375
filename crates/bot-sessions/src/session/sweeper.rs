//! The background task that runs [`Sessions::sweep_expired`] periodically.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{SessionError, Sessions};

/// The running expiry sweeper of a [`Sessions`]; see [`Sessions::spawn_sweeper`].
///
/// It stops when this is dropped, or at its next tick after every clone of the
/// `Sessions` is gone.
#[derive(Debug)]
#[must_use = "the sweeper stops when dropped"]
pub struct ExpirySweeper {
    task: tokio::task::JoinHandle<()>,
}

impl ExpirySweeper {
    /// Whether the task has ended (its `Sessions` is gone).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the task and waits until it has.
    #[cfg(feature = "interactive")]
    pub(crate) async fn stop(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for ExpirySweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Runs [`sweep_expired`](Self::sweep_expired) every `period` (the first right
    /// away) with the session type's clock, so the
    /// [`on_expire`](super::SessionsBuilder::on_expire) hook hears of sessions that
    /// expire while nobody touches them. Several processes may each run one: every
    /// expired session is still announced once. A sweep reads the whole namespace; pick
    /// a period well below the grace period.
    ///
    /// A sweep that fails (the store is down) is logged and tried again at the next
    /// tick. The task holds no strong reference between ticks: it ends once every clone
    /// of this `Sessions` is dropped.
    ///
    /// # Errors
    ///
    /// [`SessionError::Config`] for a zero period or outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Sessions, Ttl};
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let forms = Sessions::<Vec<String>>::builder(MemoryStore::new())
    ///     .namespace("form")
    ///     .ttl(Ttl::idle(Duration::from_secs(1800)))
    ///     .on_expire(|expired| async move { println!("{} expired", expired.key) })
    ///     .build()?;
    /// let _sweeper = forms.spawn_sweeper(Duration::from_secs(60))?; // keep it alive
    /// # Ok::<(), bot_sessions::SessionError>(())
    /// # }).unwrap();
    /// ```
    pub fn spawn_sweeper(&self, period: Duration) -> Result<ExpirySweeper, SessionError> {
        if period.is_zero() {
            return Err(SessionError::Config("sweeper period must be above zero".into()));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| SessionError::Config("Sessions::spawn_sweeper needs a tokio runtime".into()))?;
        let weak = Arc::downgrade(&self.inner);
        let task = runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let sessions = Sessions { inner };
                let now = sessions.inner.clock.now();
                match sessions.sweep_expired(now).await {
                    Ok(report) if report != Default::default() => {
                        tracing::debug!(namespace = %sessions.inner.namespace, ?report, "session sweep");
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(namespace = %sessions.inner.namespace, %error, "session sweep failed");
                    }
                }
            }
        });
        Ok(ExpirySweeper { task })
    }
}
