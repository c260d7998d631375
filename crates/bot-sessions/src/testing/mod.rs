//! Test support (feature `testing`): the conformance suite every backend runs, and the
//! helpers backends' own tests share (unique names, a counter workload, child
//! processes; with `discord`, a signing test key and a fake REST API; with `telegram`, a
//! fake Bot API).
//!
//! A backend's test file runs the whole suite with one line:
//!
//! ```no_run
//! # struct MyStore;
//! # impl MyStore {
//! #     async fn connect(_: &str) -> Result<bot_sessions::store::memory::MemoryStore, std::convert::Infallible> {
//! #         Ok(bot_sessions::store::memory::MemoryStore::new())
//! #     }
//! # }
//! async fn store() -> bot_sessions::DynStore {
//!     std::sync::Arc::new(MyStore::connect("...").await.unwrap())
//! }
//! bot_sessions::conformance_tests!(store);
//! # fn main() {}
//! ```

pub mod conformance;
pub mod delegate;
#[cfg(feature = "discord")]
pub mod discord;
pub mod fuzz;
pub mod model;
pub mod process;
#[cfg(feature = "telegram")]
pub mod telegram;

use crate::store::near_cache::{CacheConfig, NearCache};
use crate::{DynStore, Namespace, SessionError, SessionKey, Sessions};

/// `store` behind a [`NearCache`] with the default bounds: the conformance suite's
/// cache mode (`conformance_tests!(factory, near_cache)`).
///
/// # Panics
///
/// Never with the default bounds (tests only).
pub fn near_cached(store: DynStore) -> DynStore {
    match NearCache::new(store, CacheConfig::default()) {
        Ok(cache) => std::sync::Arc::new(cache),
        Err(e) => panic!("default near cache bounds refused: {e}"),
    }
}

/// A fresh namespace `prefix-<random>`, so tests on a shared server never collide.
///
/// # Panics
///
/// If `prefix` is not a valid namespace start (tests only).
pub fn unique_namespace(prefix: &str) -> Namespace {
    let name = format!("{prefix}-{:016x}", rand::random::<u64>());
    Namespace::new(&name).unwrap_or_else(|e| panic!("bad test namespace prefix {prefix:?}: {e}"))
}

/// A random user id, so forget-user tests on a shared server never collide.
pub fn unique_user() -> i64 {
    rand::random_range(1_000_000_000_000..i64::MAX / 2)
}

/// The session type of the counting workloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    /// How many updates were applied.
    pub n: u64,
}

/// Runs `tasks` tasks that each apply `updates` increments through
/// [`Sessions::update`], spreading them round-robin over `keys`. Every increment must
/// land: afterwards the counters sum to `tasks * updates` (plus what was there).
///
/// # Errors
///
/// The first update that failed.
pub async fn hammer(
    sessions: &Sessions<Counter>,
    keys: &[SessionKey],
    tasks: usize,
    updates: usize,
) -> Result<(), SessionError> {
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let sessions = sessions.clone();
        let keys = keys.to_vec();
        handles.push(tokio::spawn(async move {
            for i in 0..updates {
                let key = &keys[(t + i) % keys.len()];
                sessions
                    .update(key, |c| {
                        c.n += 1;
                        Ok::<_, SessionError>(())
                    })
                    .await?;
            }
            Ok::<_, SessionError>(())
        }));
    }
    for h in handles {
        h.await.map_err(|e| SessionError::Config(format!("hammer task panicked: {e}")))??;
    }
    Ok(())
}

/// The sum of the counters under `keys`.
///
/// # Errors
///
/// Load errors.
pub async fn total(sessions: &Sessions<Counter>, keys: &[SessionKey]) -> Result<u64, SessionError> {
    let mut sum = 0;
    for k in keys {
        sum += sessions.get(k).await?.map_or(0, |c| c.n);
    }
    Ok(sum)
}
