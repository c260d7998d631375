//! How a handle hears of an end that another process ran: the ending manager publishes
//! an end notice on the store's [notices](crate::store::notify) (after the ended
//! record is written), and every manager with handles waiting listens; a notice about
//! a session waited for here makes it read the session and hand the handle its end.
//!
//! Notices are a hint: the record decides. When notices may have been lost (a
//! reconnection, a lagging receiver, a store without notices), every session waited
//! for here is re-read each watch period, so a handle still resolves, later. No
//! sweeper is needed for either.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::broadcast::{self, error::RecvError};

use super::SessionId;
use super::core::Core;
use super::envelope::{Header, Phase};
use crate::store::notify::Heard;

impl Core {
    /// Tells the managers of other processes (and this one's) that `sid` ended.
    pub(crate) fn notify_end(&self, sid: SessionId) {
        if let Some(notices) = &self.notices {
            notices.publish(self.namespace.as_str(), sid.as_str());
        }
    }

    /// Starts this manager's listening task, once (inside a tokio runtime; outside
    /// one, handles learn of ends elsewhere only through the sweeper's watch).
    pub(crate) fn listen(self: &Arc<Self>) {
        self.listener.started.get_or_init(|| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
            let heard = self.notices.as_ref().map(|n| n.subscribe());
            let weak = Arc::downgrade(self);
            let task = runtime.spawn(run(weak, heard, self.cfg.watch));
            *self.listener.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        });
    }

    /// Stops the listening task (at shutdown) and waits until it has.
    pub(crate) async fn stop_listening(&self) {
        let task = self.listener.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

/// What woke the listening task.
enum Event {
    Heard(Heard),
    /// The receiver lagged: notices were lost.
    Lagged,
    /// The store's notices are gone: only the re-check is left.
    Closed,
    /// A watch period passed.
    Tick,
}

async fn next(heard: &mut Option<broadcast::Receiver<Heard>>) -> Event {
    let Some(receiver) = heard else { return std::future::pending().await };
    match receiver.recv().await {
        Ok(h) => Event::Heard(h),
        Err(RecvError::Lagged(_)) => Event::Lagged,
        Err(RecvError::Closed) => Event::Closed,
    }
}

/// The listening task: notices about sessions waited for here, and a re-check of all of
/// them every watch period (the fallback). Ends with the manager or at its shutdown.
async fn run(weak: Weak<Core>, mut heard: Option<broadcast::Receiver<Heard>>, watch: std::time::Duration) {
    let mut tick = tokio::time::interval(watch.max(std::time::Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let event = tokio::select! {
            event = next(&mut heard) => event,
            _ = tick.tick() => Event::Tick,
        };
        let Some(core) = weak.upgrade() else { return };
        if core.closed.load(Ordering::Acquire) {
            return;
        }
        match event {
            Event::Heard(Heard::Notice(notice)) => {
                if &*notice.topic != core.namespace.as_str() {
                    continue;
                }
                let Some(sid) = SessionId::parse(&notice.body) else { continue };
                if !core.local.waits(sid) {
                    continue;
                }
                if core.listener.dropping.load(Ordering::Acquire) {
                    core.listener.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                core.listener.heard.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move { collect(&core, sid).await });
            }
            Event::Closed => {
                heard = None;
                recheck(core);
            }
            Event::Heard(_) | Event::Lagged | Event::Tick => recheck(core),
        }
    }
}

/// Re-reads every session waited for here (one pass at a time, on a task of its own).
fn recheck(core: Arc<Core>) {
    if core.listener.rechecking.swap(true, Ordering::AcqRel) {
        return;
    }
    let flag = core.listener.rechecking.clone();
    tokio::spawn(async move {
        for sid in core.local.waiting() {
            collect(&core, sid).await;
        }
        flag.store(false, Ordering::Release);
    });
}

/// Reads `sid` and, if it ended (or is gone), hands the handle waiting here its end.
/// A live session is left alone (ending it when due is the sweeper's work).
async fn collect(core: &Core, sid: SessionId) {
    let key = core.key(sid);
    let now = core.now();
    let ended = match core.load(sid, &key, now).await {
        Ok(Some(record)) => serde_json::from_slice::<Header<'_>>(&record.value).is_ok_and(|h| h.phase == Phase::Ended),
        Ok(None) => true,
        Err(error) => {
            tracing::debug!(session = %sid, %error, "could not read an interactive session after an end notice");
            false
        }
    };
    if ended && let Err(error) = core.tend(sid, now, None).await {
        tracing::debug!(session = %sid, %error, "could not collect the end of an interactive session");
    }
}

#[cfg(feature = "testing")]
impl super::Manager {
    /// Test hook (feature `testing`): drop every end notice this manager hears, so its
    /// handles resolve only through the fallback re-check.
    #[doc(hidden)]
    pub fn drop_end_notices(&self, on: bool) {
        self.core.listener.set_dropping(on);
    }

    /// Test hook (feature `testing`): end notices heard about sessions waited for here,
    /// and those dropped by [`drop_end_notices`](Self::drop_end_notices).
    #[doc(hidden)]
    pub fn end_notice_counts(&self) -> (u64, u64) {
        let l = &self.core.listener;
        (l.heard.load(Ordering::Relaxed), l.dropped.load(Ordering::Relaxed))
    }
}
