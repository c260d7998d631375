//! The background expiry task.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::core::Core;
use super::{InteractiveError, Manager};

/// The running sweeper of a [`Manager`]; it stops when this is dropped, when every
/// clone of the manager is gone, or at shutdown.
#[derive(Debug)]
#[must_use = "the sweeper stops when dropped"]
pub struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Sweeper {
    /// Stops the task and waits until it has.
    pub(crate) async fn stop(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Manager {
    /// Runs [`expire_due`](Manager::expire_due) every `period` and
    /// [`expire_scan`](Manager::expire_scan) on the first tick and then every
    /// `scan_every` ticks (`0`: never scan; then sessions of a process that died are
    /// only ended when clicked or by another manager's scan).
    ///
    /// # Errors
    ///
    /// [`InteractiveError::Config`] outside a tokio runtime or for a zero `period`.
    pub fn spawn_sweeper(&self, period: Duration, scan_every: u32) -> Result<Sweeper, InteractiveError> {
        if period.is_zero() {
            return Err(InteractiveError::Config("sweeper period must be above zero".into()));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| InteractiveError::Config("Manager::spawn_sweeper needs a tokio runtime".into()))?;
        let weak: Weak<Core> = Arc::downgrade(&self.core);
        let task = runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                let Some(core) = weak.upgrade() else { break };
                if core.closed.load(Ordering::Acquire) {
                    break;
                }
                let manager = Manager { core };
                let now = manager.core.now();
                let report = manager.expire_due(now).await;
                if report.expired + report.abandoned + report.errors > 0 {
                    tracing::debug!(?report, "interactive sweeper: due pass");
                }
                if scan_every > 0 && n.is_multiple_of(u64::from(scan_every)) {
                    match manager.expire_scan(now).await {
                        Ok(report) if report.expired + report.abandoned + report.errors > 0 => {
                            tracing::debug!(?report, "interactive sweeper: scan pass");
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "interactive sweeper: scan failed"),
                    }
                }
                n = n.wrapping_add(1);
            }
        });
        Ok(Sweeper { task })
    }
}
