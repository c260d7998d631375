//! A contender in the report: this project, a raw baseline or a peer, on one backend,
//! as one operation the harness calls with an action and a key index, plus a way to
//! read back the sum of every key's counter (to count lost updates).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future of a result.
pub type BoxFut<T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send>>;

/// What one operation does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Load, bump the counter, save (the update every subject is measured by).
    Update,
    /// Load and read the value, change nothing.
    Read,
    /// A handler that is handed the session but never reads it.
    LazyUnread,
}

/// The operation: `(action, key index)`.
pub type OpFn = Arc<dyn Fn(Action, usize) -> BoxFut<()> + Send + Sync>;

/// Reads the sum of the counters of every key (for lost-update counting).
pub type TotalFn = Arc<dyn Fn() -> BoxFut<u64> + Send + Sync>;

/// Which side of the comparison a subject is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// bot-sessions.
    Ours,
    /// The hand-written baseline doing the same work with the same client.
    Raw,
    /// Another library doing the same logical operation.
    Peer,
}

/// One contender.
#[derive(Clone)]
pub struct Subject {
    /// `bot-sessions/sqlite`, `raw/rusqlite`, `teloxide/SqliteStorage`, ...
    pub name: String,
    /// `memory`, `sqlite`, `redis`, `postgres`.
    pub backend: &'static str,
    /// Ours, raw or peer.
    pub role: Role,
    /// The operation.
    pub op: OpFn,
    /// The sum of the counters.
    pub total: TotalFn,
}

/// Wraps an async closure `(action, key) -> Result<()>` as an [`OpFn`].
pub fn op<F, Fut>(f: F) -> OpFn
where
    F: Fn(Action, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    Arc::new(move |a, k| Box::pin(f(a, k)))
}

/// A [`TotalFn`] summing `count(key)` over `keys` keys, 16 loads in flight at once.
pub fn total<F, Fut>(keys: usize, count: F) -> TotalFn
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    let count = Arc::new(count);
    Arc::new(move || {
        let count = count.clone();
        Box::pin(async move {
            let mut set = tokio::task::JoinSet::new();
            for lane in 0..16 {
                let count = count.clone();
                set.spawn(async move {
                    let mut sum = 0;
                    for k in (lane..keys).step_by(16) {
                        sum += count(k).await?;
                    }
                    anyhow::Ok(sum)
                });
            }
            let mut sum = 0;
            while let Some(r) = set.join_next().await {
                sum += r??;
            }
            Ok(sum)
        })
    })
}
