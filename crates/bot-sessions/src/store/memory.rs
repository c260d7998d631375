//! The in-memory store: a concurrent map, an ordered expiry index and a user index.
//!
//! Map choice: `dashmap` (sharded `RwLock<HashMap>`). Measured against `scc::HashMap`,
//! `papaya::HashMap` and a sharded `Mutex<HashMap>` under this store's own workload
//! (load + compare-and-set at 64 tasks on 2 cores, `bench/`); see the README's
//! performance section for the figures. Its entry API gives compare-and-set under one
//! shard lock without cloning the record, and it is the most used of the four.
//!
//! Expiry: every record with an `expires_at` is also in a `BTreeSet<(expires_at, key)>`,
//! so [`purge_expired`](crate::Store::purge_expired) pops only what is due: its cost
//! grows with the number of expired records, not with the size of the store. Loads
//! never return an expired record whether or not a purge has run.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

#[derive(Debug)]
struct Stored {
    key: SessionKey,
    record: Record,
}

type Hasher = foldhash::fast::RandomState;

#[derive(Debug, Default)]
struct Inner {
    records: DashMap<Arc<str>, Stored, Hasher>,
    users: DashMap<i64, HashSet<Arc<str>, Hasher>, Hasher>,
    expiry: Mutex<BTreeSet<(Timestamp, Arc<str>)>>,
}

/// A store that lives in this process's memory: fast, and gone on exit.
///
/// # Examples
///
/// ```
/// use bot_sessions::{store::memory::MemoryStore, Namespace, Precondition, Scope, SessionKey, Store, Timestamp, Write};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let key = SessionKey::new(Namespace::new("demo")?, Scope::Chat(1));
/// let now = Timestamp::now();
/// let w = Write::new(b"{}", 1, None);
/// assert_eq!(store.write(&key, w, Precondition::Absent, now).await?, w.version);
/// assert_eq!(store.load(&key, now).await?.map(|r| r.version), Some(w.version));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// How often [`MemoryStore::new`]'s sweeper purges expired records.
pub const DEFAULT_SWEEP_PERIOD: Duration = Duration::from_secs(60);

impl MemoryStore {
    /// An empty store. Inside a tokio runtime it purges expired records in the
    /// background every [`DEFAULT_SWEEP_PERIOD`] (by the system clock), so expired
    /// sessions do not pile up; outside one, or with
    /// [`without_sweeper`](Self::without_sweeper), expired records stay in memory until
    /// [`purge_expired`](Store::purge_expired) or an overwrite (they are never returned).
    pub fn new() -> Self {
        let store = Self::without_sweeper();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            store.spawn_sweeper(&handle, DEFAULT_SWEEP_PERIOD);
        }
        store
    }

    /// An empty store that never purges by itself: for tests that drive time with a
    /// [`ManualClock`](crate::ManualClock) far from the system clock, and for callers
    /// that purge on their own schedule.
    pub fn without_sweeper() -> Self {
        Self::default()
    }

    /// An empty store with a background task that purges expired records every
    /// `period`. The task stops when the last clone of the store is dropped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] outside a tokio runtime, or for a zero `period`.
    pub fn with_sweeper(period: Duration) -> Result<Self, StoreError> {
        if period.is_zero() {
            return Err(StoreError::Config("sweeper period must be above zero".into()));
        }
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Config("MemoryStore::with_sweeper needs a tokio runtime".into()))?;
        let store = Self::without_sweeper();
        store.spawn_sweeper(&handle, period);
        Ok(store)
    }

    fn spawn_sweeper(&self, handle: &tokio::runtime::Handle, period: Duration) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        handle.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let purged = inner.purge(Timestamp::now());
                if purged > 0 {
                    tracing::debug!(purged, "memory store sweeper purged expired sessions");
                }
            }
        });
    }

    /// How many records are held, including expired ones not yet purged.
    pub fn len(&self) -> usize {
        self.inner.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.inner.records.is_empty()
    }
}

impl Inner {
    fn index_user(&self, user: Option<i64>, text: &Arc<str>) {
        if let Some(u) = user {
            self.users.entry(u).or_default().insert(text.clone());
        }
    }

    fn unindex_user(&self, user: Option<i64>, text: &str) {
        if let Some(u) = user {
            self.users.remove_if_mut(&u, |_, set| {
                set.remove(text);
                set.is_empty()
            });
        }
    }

    fn reindex_expiry(&self, text: &Arc<str>, old: Option<Timestamp>, new: Option<Timestamp>) {
        if old == new {
            return;
        }
        let mut idx = self.expiry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = old {
            idx.remove(&(t, text.clone()));
        }
        if let Some(t) = new {
            idx.insert((t, text.clone()));
        }
    }

    /// Compare-and-set over an existing (possibly expired) record, under its shard lock.
    fn overwrite(
        &self,
        stored: &mut Stored,
        key: &SessionKey,
        write: &Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let rec = &mut stored.record;
        let live = !rec.is_expired(now);
        if !precondition.holds(live.then_some(rec.version)) {
            return Err(conflict(key));
        }
        if !live {
            // An expired leftover: the new incarnation may belong to another owner.
            self.unindex_user(rec.user_id, stored.key.as_str());
            self.index_user(write.indexed_user(key), stored.key.text_arc());
        }
        self.reindex_expiry(stored.key.text_arc(), rec.expires_at, write.expires_at);
        // Reuse the old value's buffer: an update allocates nothing here.
        let value = std::mem::take(&mut rec.value);
        *rec = Record::next_into(live.then_some(&*rec), key, write, now, value);
        Ok(rec.version)
    }

    fn purge(&self, now: Timestamp) -> u64 {
        let due: Vec<(Timestamp, Arc<str>)> = {
            let mut idx = self.expiry.lock().unwrap_or_else(|p| p.into_inner());
            // Everything strictly before (now + 1ms, "") is due: expires_at <= now.
            let keep = idx.split_off(&(Timestamp(now.0.saturating_add(1)), Arc::from("")));
            std::mem::replace(&mut *idx, keep).into_iter().collect()
        };
        let mut purged = 0;
        for (_, text) in due {
            if self.remove_where(&text, |s| s.record.is_expired(now)).is_some() {
                purged += 1;
            }
        }
        purged
    }

    /// Removes the record under `text` if `keep_going` says so, and drops it from the
    /// user and expiry indexes *under the same shard lock*: a write that re-creates
    /// the key right after must find the indexes without the old entry, or it would
    /// be missed by forget-user or purge. (Lock order everywhere: record shard, then
    /// the user index or the expiry index.)
    fn remove_where(&self, text: &str, keep_going: impl FnOnce(&Stored) -> bool) -> Option<Stored> {
        self.records
            .remove_if(text, |text, s| {
                let go = keep_going(s);
                if go {
                    self.unindex_user(s.record.user_id, text);
                    self.reindex_expiry(text, s.record.expires_at, None);
                }
                go
            })
            .map(|(_, s)| s)
    }
}

fn conflict(key: &SessionKey) -> StoreError {
    StoreError::Conflict { key: key.to_string() }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        Ok(self.inner.records.get(key.as_str()).filter(|s| !s.record.is_expired(now)).map(|s| s.record.clone()))
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let inner = &self.inner;
        // The common case, an update, finds the key without cloning it.
        if let Some(mut stored) = inner.records.get_mut(key.as_str()) {
            return inner.overwrite(&mut stored, key, &write, precondition, now);
        }
        match inner.records.entry(key.text_arc().clone()) {
            Entry::Occupied(mut e) => inner.overwrite(e.get_mut(), key, &write, precondition, now),
            Entry::Vacant(e) => {
                if !precondition.holds(None) {
                    return Err(conflict(key));
                }
                let next = Record::next(None, key, &write, now);
                inner.index_user(next.user_id, e.key());
                inner.reindex_expiry(e.key(), None, next.expires_at);
                e.insert(Stored { key: key.clone(), record: next });
                Ok(write.version)
            }
        }
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let current = inner.records.get(key.as_str()).map(|s| (!s.record.is_expired(now)).then_some(s.record.version));
        let live = current.flatten();
        if !precondition.holds(live) {
            return Err(conflict(key));
        }
        match precondition {
            Precondition::Version(v) => {
                // Re-check under the shard lock: the record may have moved on.
                match inner.remove_where(key.as_str(), |s| s.record.version == v && !s.record.is_expired(now)) {
                    Some(_) => Ok(true),
                    None => Err(conflict(key)),
                }
            }
            Precondition::Absent => {
                // Nothing live; drop an expired leftover if there is one.
                if current.is_some() {
                    inner.remove_where(key.as_str(), |s| s.record.is_expired(now));
                }
                Ok(false)
            }
            Precondition::Any => {
                Ok(inner.remove_where(key.as_str(), |_| true).is_some_and(|s| !s.record.is_expired(now)))
            }
        }
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        let Some((_, keys)) = self.inner.users.remove(&user_id) else {
            return Ok(0);
        };
        let mut n = 0;
        for text in keys {
            if let Some(s) = self.inner.remove_where(&text, |s| s.record.user_id == Some(user_id)) {
                n += u64::from(!s.record.is_expired(now));
            }
        }
        Ok(n)
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        // O(records) per page: the memory store keeps no per-namespace order. Scans are
        // for operators and exports, not for the hot path.
        let mut items: Vec<(SessionKey, Record)> = self
            .inner
            .records
            .iter()
            .filter(|s| {
                s.key.namespace() == namespace && !s.record.is_expired(now) && cursor.is_none_or(|c| s.key.as_str() > c)
            })
            .map(|s| (s.key.clone(), s.record.clone()))
            .collect();
        items.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more { items.last().map(|(k, _)| k.to_string()) } else { None };
        Ok(Page { items, next })
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(self.inner.purge(now))
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        let n = self
            .inner
            .records
            .iter()
            .filter(|s| namespace.is_none_or(|ns| s.key.namespace() == ns) && !s.record.is_expired(now))
            .count();
        Ok(n as u64)
    }
}
