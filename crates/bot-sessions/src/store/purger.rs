//! The background purger: expired records (personal data included) do not stay in a
//! store until somebody remembers to call [`Store::purge_expired`](super::Store::purge_expired).

use std::sync::Arc;
use std::time::Duration;

use super::DynStore;
use crate::Timestamp;

/// How often a store opened by URL purges expired records unless told otherwise.
pub const DEFAULT_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Spawns a task that calls [`Store::purge_expired_background`](super::Store::purge_expired_background) with the system time
/// every `interval` (the first round after one interval), logging failures and going
/// on. The task holds only a weak reference: it stops once every other clone of the
/// store is dropped, or when the returned handle is aborted.
///
/// # Panics
///
/// Outside a tokio runtime (as [`tokio::spawn`]).
///
/// # Examples
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use bot_sessions::store::{memory::MemoryStore, spawn_purger, DynStore};
/// use std::{sync::Arc, time::Duration};
///
/// let store: DynStore = Arc::new(MemoryStore::without_sweeper());
/// let purger = spawn_purger(&store, Duration::from_secs(30));
/// drop(store); // the purger ends by itself at its next round
/// # purger.abort();
/// # });
/// ```
pub fn spawn_purger(store: &DynStore, interval: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(store);
    let interval = interval.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(store) = weak.upgrade() else { break };
            match store.purge_expired_background(Timestamp::now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "purged expired sessions"),
                Err(e) => tracing::warn!(error = %e, "background purge failed; trying again next round"),
            }
        }
    })
}
