//! Per-key async locks that exist only while someone holds or waits for them.
//!
//! Updates of one key are applied one at a time inside a process: the lock is taken
//! before the session is loaded and released after it is saved. Entries are removed
//! when their last holder or waiter leaves, so a bot that has seen millions of keys
//! keeps only the locks in use. Keys are hashed to 64 bits; a collision can only make
//! two keys wait for each other, never let two holders of one key in.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

const SHARDS: usize = 64;

type Shard = Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>;

#[derive(Debug)]
struct Table {
    shards: Box<[Shard]>,
    hasher: RandomState,
}

/// A table of per-key locks.
#[derive(Debug, Clone)]
pub(crate) struct KeyLocks(Arc<Table>);

impl Default for KeyLocks {
    fn default() -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
        KeyLocks(Arc::new(Table { shards, hasher: RandomState::new() }))
    }
}

/// Held while a key is being worked on; releasing it may free the table entry.
#[derive(Debug)]
pub(crate) struct KeyLock {
    table: Arc<Table>,
    hash: u64,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    /// Waits for, and takes, the lock of `key`.
    pub(crate) async fn lock(&self, key: &str) -> KeyLock {
        let hash = self.0.hasher.hash_one(key);
        let mutex = {
            let mut shard = self.0.shard(hash);
            shard.entry(hash).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        KeyLock { table: self.0.clone(), hash, guard: Some(guard) }
    }

    /// How many keys have a lock entry now (held or waited for).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.0.shards.iter().map(|s| s.lock().map(|m| m.len()).unwrap_or(0)).sum()
    }
}

impl Table {
    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<tokio::sync::Mutex<()>>>> {
        // `hash % SHARDS` is below SHARDS, so the index is in bounds.
        let shard = &self.shards[(hash % SHARDS as u64) as usize];
        // A panic while holding a shard cannot leave the map inconsistent (each
        // operation is one insert or remove), so a poisoned shard is still usable.
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        // Release first, so our clone of the mutex is gone before we count.
        drop(self.guard.take());
        let mut shard = self.table.shard(self.hash);
        if shard.get(&self.hash).is_some_and(|m| Arc::strong_count(m) == 1) {
            shard.remove(&self.hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_go_away_when_idle() {
        let locks = KeyLocks::default();
        for i in 0..10_000 {
            let _l = locks.lock(&format!("k{i}")).await;
        }
        assert_eq!(locks.live(), 0);
        let a = locks.lock("a").await;
        assert_eq!(locks.live(), 1);
        drop(a);
        assert_eq!(locks.live(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_holder_at_a_time() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let locks = KeyLocks::default();
        let inside = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (locks, inside, total) = (locks.clone(), inside.clone(), total.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..100 {
                    let _l = locks.lock("same").await;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    total.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(total.load(Ordering::SeqCst), 3200);
        assert_eq!(locks.live(), 0);
    }
}
