//! Per-key async locks that exist only while someone holds or waits for them.
//!
//! Updates of one key are applied one at a time inside a process: the lock is taken
//! before the session is loaded and released after it is saved. A key's entry is
//! removed when its last holder leaves with nobody waiting, so a bot that has seen
//! millions of keys keeps only the locks in use.
//!
//! The uncontended path is one shard-mutex round trip to take and one to release, with
//! no allocation: an entry is a small struct in a sharded `HashMap`. Waiters queue in
//! FIFO order and the lock is handed to the first one directly (no thundering herd, no
//! barging). A waiter that is cancelled after being handed the lock passes it on.
//!
//! Keys are hashed to 64 bits; a collision can only make two keys wait for each other,
//! never let two holders of one key in.
//!
//! An entry also carries the last write its holders queued in a store that applies
//! them in order and has not settled yet ([`Pending`], see `pending.rs`): a holder
//! that queued a write releases the key with it ([`KeyLock::release_queued`]), so the
//! next holder can build on it instead of waiting for its commit. Such an entry stays
//! (unheld) until the write settles ([`KeyLocks::settle`]), and is then removed.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::pending::Pending;

const SHARDS: usize = 64;

/// The waiters of one held key; an entry exists exactly while the key is held, or a
/// write queued by its last holder has not settled.
#[derive(Debug)]
struct Held {
    waiters: VecDeque<oneshot::Sender<()>>,
    /// Whether someone holds the key (false only while `queued` is there).
    held: bool,
    /// The last write queued under the key and not known to have settled.
    queued: Option<Arc<Pending>>,
}

impl Held {
    /// A fresh entry, held by its creator.
    fn taken() -> Held {
        Held { waiters: VecDeque::new(), held: true, queued: None }
    }
}

/// Keys of the shard maps are already hashes: hash them no further.
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key type is u64); fold anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = HashMap<u64, Held, std::hash::BuildHasherDefault<PassThrough>>;

/// One shard, alone on its cache lines so the two cores do not falsely share them.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Map>);

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
        let shards = (0..SHARDS).map(|_| Shard::default()).collect();
        KeyLocks(Arc::new(Table { shards, hasher: RandomState::default() }))
    }
}

/// Held while a key is being worked on; dropping it releases the key.
///
/// Borrows the table: taking and releasing a key touches no reference count, so
/// tasks on different cores do not fight over one shared counter.
#[derive(Debug)]
pub(crate) struct KeyLock<'a> {
    table: &'a Table,
    hash: u64,
}

/// A [`KeyLock`] that owns a handle to its table, for guards that outlive the borrow.
#[derive(Debug)]
pub(crate) struct OwnedKeyLock {
    table: Arc<Table>,
    hash: u64,
}

impl KeyLocks {
    /// Waits for, and takes, the lock of `key`.
    pub(crate) async fn lock(&self, key: &str) -> KeyLock<'_> {
        let hash = self.0.hasher.hash_one(key);
        self.0.acquire(hash).await;
        KeyLock { table: &self.0, hash }
    }

    /// Takes the lock of `key` if nobody holds it, without waiting.
    pub(crate) fn try_lock(&self, key: &str) -> Option<KeyLock<'_>> {
        let hash = self.0.hasher.hash_one(key);
        self.0.try_acquire(hash).then_some(KeyLock { table: &self.0, hash })
    }

    /// Forgets `pending` as the key's last queued write, if it still is (it settled):
    /// an entry that nobody holds then goes away.
    pub(crate) fn settle(&self, key_hash: u64, pending: &Arc<Pending>) {
        let mut shard = self.0.shard(key_hash);
        let Entry::Occupied(mut held) = shard.entry(key_hash) else { return };
        let entry = held.get_mut();
        if entry.queued.as_ref().is_some_and(|q| Arc::ptr_eq(q, pending)) {
            entry.queued = None;
            if !entry.held {
                held.remove();
            }
        }
    }

    /// Like [`lock`](Self::lock), but the lock keeps the table alive itself.
    pub(crate) async fn lock_owned(&self, key: &str) -> OwnedKeyLock {
        let hash = self.0.hasher.hash_one(key);
        self.0.acquire(hash).await;
        OwnedKeyLock { table: self.0.clone(), hash }
    }

    /// How many keys have a lock entry now (held).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.0.shards.iter().map(|s| s.0.lock().map(|m| m.len()).unwrap_or(0)).sum()
    }
}

impl Table {
    fn shard(&self, hash: u64) -> MutexGuard<'_, Map> {
        // Middle bits pick the shard: the map inside uses the low bits for buckets and
        // the top ones for tags. `% SHARDS` keeps the index in bounds.
        let shard = &self.shards[((hash >> 32) % SHARDS as u64) as usize];
        // Each critical section is a single insert, push or remove, so a panic inside
        // one cannot leave the map inconsistent: a poisoned shard is still usable.
        shard.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the key if it is free.
    fn try_acquire(&self, hash: u64) -> bool {
        match self.shard(hash).entry(hash) {
            Entry::Vacant(free) => {
                free.insert(Held::taken());
                true
            }
            Entry::Occupied(mut idle) if !idle.get().held => {
                idle.get_mut().held = true;
                true
            }
            Entry::Occupied(_) => false,
        }
    }

    /// The write last queued under the key (held by the caller), if not yet settled.
    fn queued(&self, hash: u64) -> Option<Arc<Pending>> {
        self.shard(hash).get(&hash).and_then(|held| held.queued.clone())
    }

    /// Takes the key: at once if free, else after the holders before us.
    async fn acquire(&self, hash: u64) {
        let rx = {
            let mut shard = self.shard(hash);
            // One probe of the map either way (the entry API), not a lookup then an insert.
            match shard.entry(hash) {
                Entry::Vacant(free) => {
                    free.insert(Held::taken());
                    None
                }
                Entry::Occupied(mut idle) if !idle.get().held => {
                    idle.get_mut().held = true;
                    None
                }
                Entry::Occupied(mut held) => {
                    let (tx, rx) = oneshot::channel();
                    held.get_mut().waiters.push_back(tx);
                    Some(rx)
                }
            }
        };
        if let Some(rx) = rx {
            Wait { table: self, hash, rx: Some(rx) }.await;
        }
    }

    /// Hands the key to the next live waiter, or removes its entry (or, while a write
    /// queued under it has not settled, leaves it unheld). With `queued`, that write
    /// becomes the key's last queued one first.
    fn release(&self, hash: u64, queued: Option<Arc<Pending>>) {
        let mut shard = self.shard(hash);
        let Entry::Occupied(mut held) = shard.entry(hash) else { return };
        let entry = held.get_mut();
        if queued.is_some() {
            entry.queued = queued;
        }
        while let Some(next) = entry.waiters.pop_front() {
            if next.send(()).is_ok() {
                return;
            }
            // That waiter was cancelled; try the next one.
        }
        if entry.queued.is_some() {
            entry.held = false;
        } else {
            held.remove();
        }
    }
}

impl<'a> KeyLock<'a> {
    /// The hash [`KeyLocks::settle`] takes.
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The write last queued under this key by an earlier holder, if it has not
    /// settled (see `pipeline.rs`).
    pub(crate) fn queued(&self) -> Option<Arc<Pending>> {
        self.table.queued(self.hash)
    }

    /// Releases the key, leaving `pending` (a write this holder queued) for the next
    /// holders to build on until it settles.
    pub(crate) fn release_queued(self, pending: Arc<Pending>) {
        let this = std::mem::ManuallyDrop::new(self);
        this.table.release(this.hash, Some(pending));
    }
}

impl Drop for KeyLock<'_> {
    fn drop(&mut self) {
        self.table.release(self.hash, None);
    }
}

impl OwnedKeyLock {
    /// As [`KeyLock::queued`].
    pub(crate) fn queued(&self) -> Option<Arc<Pending>> {
        self.table.queued(self.hash)
    }
}

impl Drop for OwnedKeyLock {
    fn drop(&mut self) {
        self.table.release(self.hash, None);
    }
}

/// Waits for the hand-off; releases the key if cancelled after receiving it.
struct Wait<'a> {
    table: &'a Table,
    hash: u64,
    rx: Option<oneshot::Receiver<()>>,
}

impl Future for Wait<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(rx) = self.rx.as_mut() else { return Poll::Ready(()) };
        match Pin::new(rx).poll(cx) {
            Poll::Ready(_) => {
                // Ok: we own the key now. Err cannot happen while the entry exists (the
                // sender is only dropped by `release` after a failed send to *us*, which
                // needs our receiver gone); treat it as ownership too, which is safe
                // because the caller then releases it.
                self.rx = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                // Handed the lock, then cancelled before using it: pass it on.
                self.table.release(self.hash, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    #[tokio::test]
    async fn cancelled_waiters_do_not_strand_the_key() {
        let locks = KeyLocks::default();
        let held = locks.lock("k").await;
        // Two waiters queue up; the first is cancelled while waiting, the second after
        // it has been handed the lock but before it ran.
        let mut first = Box::pin(locks.lock("k"));
        let mut second = Box::pin(locks.lock("k"));
        let waker = futures_noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        drop(first);
        drop(held); // hands the key to `second`
        drop(second); // cancelled holding it: must pass it on / free it
        let again = tokio::time::timeout(std::time::Duration::from_secs(5), locks.lock("k")).await;
        assert!(again.is_ok(), "the key was stranded");
        drop(again);
        assert_eq!(locks.live(), 0);
    }

    fn futures_noop_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }
}
