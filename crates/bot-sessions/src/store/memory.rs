//! The in-memory store: a concurrent map, an ordered expiry index and a user index.
//!
//! Map choice: `dashmap` (sharded `RwLock<HashMap>`). Measured against `scc::HashMap`,
//! `papaya::HashMap` and a sharded `Mutex<HashMap>` under this store's own workload
//! (load + compare-and-set at 64 tasks on 2 cores, `bench/`); see the guide's
//! performance chapter for the figures. Its entry API gives compare-and-set under one
//! shard lock without cloning the record, and it is the most used of the four.
//!
//! Typed values: a write through [`InProcess::write_typed`] (what
//! [`Sessions`](crate::Sessions) does) also keeps the value it encodes, typed, in the
//! record's slot; the next update of the key by the same session type takes it out
//! ([`InProcess::take_typed`]) instead of decoding the bytes, as teloxide's
//! `InMemStorage` keeps its dialogues. The bytes stay, so every other reader (a load,
//! a scan, another session type) sees exactly what a store of bytes holds; any other
//! write drops the typed value.
//!
//! Expiry: a record with an `expires_at` has one entry in a `BTreeSet<(time, key)>` no
//! later than its expiry, so [`purge_expired`](crate::Store::purge_expired) pops only
//! what may be due. A write that pushes the expiry back (an idle TTL) leaves the entry;
//! the purge that reaches it files it again: one move per purge period, not per write.
//! Loads never return an expired record whether or not a purge has run.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::store::{InProcess, Taken, TypedValue};
use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

/// One stored record, packed: the map's key is the key text, and the parsed key is
/// rebuilt from it only where a [`SessionKey`] is handed out (a scan). 88 bytes where a
/// `SessionKey` and a [`Record`] side by side take 184 (see the guide's performance chapter).
#[derive(Debug)]
struct Slot {
    value: Box<[u8]>,
    /// What `value` encodes, as the writer left it (see the module documentation).
    typed: Kept,
    version: u64,
    created_at: i64,
    updated_at: i64,
    /// Meaningful when `has_expiry`.
    expires_at: i64,
    /// Where the expiry index files this record (at or before `expires_at`);
    /// meaningful when `has_expiry`.
    indexed_at: i64,
    /// Meaningful when `has_user`.
    user_id: i64,
    schema_version: u32,
    has_expiry: bool,
    has_user: bool,
}

/// A slot's typed value, if any.
#[derive(Default)]
struct Kept(Option<TypedValue>);

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Kept(typed)" } else { "Kept(none)" })
    }
}

impl Slot {
    fn expires_at(&self) -> Option<Timestamp> {
        self.has_expiry.then_some(Timestamp(self.expires_at))
    }

    /// The time of this record's entry in the expiry index, if it has one.
    fn indexed_at(&self) -> Option<i64> {
        self.has_expiry.then_some(self.indexed_at)
    }

    fn user_id(&self) -> Option<i64> {
        self.has_user.then_some(self.user_id)
    }

    fn is_expired(&self, now: Timestamp) -> bool {
        now.is_expired(self.expires_at())
    }

    fn record(&self) -> Record {
        self.record_with(self.value.to_vec())
    }

    /// The record, with `value` for its value.
    fn record_with(&self, value: Vec<u8>) -> Record {
        Record {
            value,
            version: self.version,
            schema_version: self.schema_version,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            expires_at: self.expires_at(),
            user_id: self.user_id(),
        }
    }

    /// The slot a create by `write` at `now` makes (see [`Record::next`]).
    fn created(key: &SessionKey, write: &Write<'_>, now: Timestamp) -> Slot {
        let user = write.indexed_user(key);
        Slot {
            value: write.value.into(),
            typed: Kept::default(),
            version: write.version,
            created_at: now.0,
            updated_at: now.0,
            expires_at: write.expires_at.map_or(0, |t| t.0),
            indexed_at: write.expires_at.map_or(0, |t| t.0),
            user_id: user.unwrap_or(0),
            schema_version: write.schema_version,
            has_expiry: write.expires_at.is_some(),
            has_user: user.is_some(),
        }
    }

    /// Applies `write` over this live slot: what [`Record::next`] keeps and changes.
    /// Whatever was kept typed goes: it no longer is what the bytes encode.
    fn overwrite(&mut self, write: &Write<'_>, now: Timestamp) {
        self.typed = Kept::default();
        if self.value.len() == write.value.len() {
            // Same length (a counter, a flag): no allocation.
            self.value.copy_from_slice(write.value);
        } else {
            self.value = write.value.into();
        }
        self.version = write.version;
        self.schema_version = write.schema_version;
        self.updated_at = now.0;
        self.has_expiry = write.expires_at.is_some();
        self.expires_at = write.expires_at.map_or(0, |t| t.0);
    }
}

type Hasher = foldhash::fast::RandomState;

/// An ordered index of `(field, key text)` pairs under one mutex: the user index
/// (user id first) and the expiry index (expiry first). About 40 bytes an entry, where
/// a map of per-user hash sets took over 150 for a user with one session.
type Index = Mutex<BTreeSet<(i64, Arc<str>)>>;

fn locked(index: &Index) -> MutexGuard<'_, BTreeSet<(i64, Arc<str>)>> {
    // Each critical section is one insert, remove or split: a poisoned lock still
    // guards a consistent set.
    index.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct Inner {
    records: DashMap<Arc<str>, Slot, Hasher>,
    users: Index,
    expiry: Index,
    /// End notices, within this process (the only one that sees the store).
    notices: crate::store::notify::Notices,
}

/// A store that lives in this process's memory: fast, and gone on exit.
///
/// [`Sessions::update`](crate::Sessions::update) keeps the value it leaves here typed,
/// beside its bytes, and the next update of the key by the same session type starts from
/// it without decoding. One difference from the stores of bytes follows, as with
/// teloxide's `InMemStorage`: a field the codec skips (`#[serde(skip)]`) keeps its value
/// from one update to the next here, where SQLite, Redis and PostgreSQL reset it on each
/// load. Test such a field on the store you deploy on. Interactive sessions keep their
/// state here the same way from one click to the next.
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
            locked(&self.users).insert((u, text.clone()));
        }
    }

    fn unindex_user(&self, user: Option<i64>, text: &Arc<str>) {
        if let Some(u) = user {
            locked(&self.users).remove(&(u, text.clone()));
        }
    }

    /// Files a record whose entry in the expiry index is at `filed` (if it has one)
    /// for its new expiry `expires`, and returns where its entry is now. An entry at or
    /// before the new expiry stays: the purge that reaches it early files it again.
    fn refile_expiry(&self, text: &Arc<str>, filed: Option<i64>, expires: Option<Timestamp>) -> Option<i64> {
        let new = expires.map(|t| t.0);
        match (filed, new) {
            (Some(at), Some(expiry)) if at <= expiry => return Some(at),
            (None, None) => return None,
            _ => {}
        }
        let mut idx = locked(&self.expiry);
        if let Some(at) = filed {
            idx.remove(&(at, text.clone()));
        }
        if let Some(expiry) = new {
            idx.insert((expiry, text.clone()));
        }
        new
    }

    /// Compare-and-set over an existing (possibly expired) record, under its shard lock;
    /// `typed` is kept beside the new bytes. `Ok(None)`: `unless_same`, and the live
    /// record already holds these bytes: only `typed` was kept.
    #[allow(clippy::too_many_arguments)]
    fn overwrite(
        &self,
        text: &Arc<str>,
        slot: &mut Slot,
        key: &SessionKey,
        write: &Write<'_>,
        precondition: Precondition,
        now: Timestamp,
        typed: Kept,
        unless_same: bool,
    ) -> Result<Option<u64>, StoreError> {
        let live = !slot.is_expired(now);
        if !precondition.holds(live.then_some(slot.version)) {
            return Err(conflict(key));
        }
        if unless_same && live && *slot.value == *write.value && slot.schema_version == write.schema_version {
            slot.typed = typed;
            return Ok(None);
        }
        let filed = self.refile_expiry(text, slot.indexed_at(), write.expires_at);
        if live {
            slot.overwrite(write, now);
        } else {
            // An expired leftover: the new incarnation may belong to another owner.
            self.unindex_user(slot.user_id(), text);
            *slot = Slot::created(key, write, now);
            self.index_user(slot.user_id(), text);
        }
        slot.indexed_at = filed.unwrap_or(0);
        slot.typed = typed;
        Ok(Some(slot.version))
    }

    /// A write (see [`InProcess::write_typed`]).
    fn write(
        &self,
        key: &SessionKey,
        write: &Write<'_>,
        precondition: Precondition,
        now: Timestamp,
        typed: Kept,
        unless_same: bool,
    ) -> Result<Option<u64>, StoreError> {
        // The common case, an update, finds the key without cloning it.
        if let Some(mut entry) = self.records.get_mut(key.as_str()) {
            let (text, slot) = entry.pair_mut();
            return self.overwrite(text, slot, key, write, precondition, now, typed, unless_same);
        }
        match self.records.entry(key.text_arc().clone()) {
            Entry::Occupied(mut e) => {
                let text = e.key().clone();
                self.overwrite(&text, e.get_mut(), key, write, precondition, now, typed, unless_same)
            }
            Entry::Vacant(e) => {
                if !precondition.holds(None) {
                    return Err(conflict(key));
                }
                let mut slot = Slot::created(key, write, now);
                slot.typed = typed;
                self.index_user(slot.user_id(), e.key());
                self.refile_expiry(e.key(), None, slot.expires_at());
                e.insert(slot);
                Ok(Some(write.version))
            }
        }
    }

    fn purge(&self, now: Timestamp) -> u64 {
        let due: Vec<(i64, Arc<str>)> = {
            let mut idx = locked(&self.expiry);
            // Everything strictly before (now + 1ms, "") is due: expires_at <= now.
            let keep = idx.split_off(&(now.0.saturating_add(1), Arc::from("")));
            std::mem::replace(&mut *idx, keep).into_iter().collect()
        };
        let mut purged = 0;
        for (at, text) in due {
            let Some(mut entry) = self.records.get_mut(&*text) else { continue };
            let slot = entry.value_mut();
            if !slot.is_expired(now) {
                // Filed early by a write that pushed its expiry back: its entry went with
                // the due ones, so file it at its expiry (unless a write since moved it).
                if slot.indexed_at() == Some(at) {
                    locked(&self.expiry).insert((slot.expires_at, text.clone()));
                    slot.indexed_at = slot.expires_at;
                }
                continue;
            }
            // `remove_where` takes the shard lock again.
            drop(entry);
            if self.remove_where(&text, |s| s.is_expired(now)).is_some() {
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
    fn remove_where(&self, text: &str, keep_going: impl FnOnce(&Slot) -> bool) -> Option<Slot> {
        self.records
            .remove_if(text, |text, s| {
                let go = keep_going(s);
                if go {
                    self.unindex_user(s.user_id(), text);
                    self.refile_expiry(text, s.indexed_at(), None);
                }
                go
            })
            .map(|(_, s)| s)
    }
}

/// The key whose text is `text`; `None` (logged) for a text that does not parse, which
/// this store never writes.
fn parse_key(text: &str) -> Option<SessionKey> {
    match SessionKey::from_str(text) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::warn!(key = text, error = %e, "memory store: skipping a key that does not parse");
            None
        }
    }
}

/// Whether key text `k` belongs to namespace `ns` (`ns/...` or `ns@bot/...`).
fn in_namespace(k: &str, ns: &Namespace) -> bool {
    k.strip_prefix(ns.as_str()).is_some_and(|rest| rest.starts_with('/') || rest.starts_with('@'))
}

fn conflict(key: &SessionKey) -> StoreError {
    StoreError::Conflict { key: key.to_string() }
}

/// The memory store's operations run in the calling thread and never wait.
impl InProcess for MemoryStore {
    fn load_now(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        Ok(self.inner.records.get(key.as_str()).filter(|s| !s.is_expired(now)).map(|s| s.record()))
    }

    fn write_now(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let written = self.inner.write(key, &write, precondition, now, Kept::default(), false)?;
        Ok(written.unwrap_or(write.version))
    }

    fn take_typed(
        &self,
        key: &SessionKey,
        now: Timestamp,
        type_id: std::any::TypeId,
        schema_version: u32,
    ) -> Result<Taken, StoreError> {
        let Some(mut slot) = self.inner.records.get_mut(key.as_str()) else { return Ok(Taken::Encoded(None)) };
        if slot.is_expired(now) {
            return Ok(Taken::Encoded(None));
        }
        let fits = |t: &TypedValue| std::any::Any::type_id(&**t) == type_id;
        if slot.schema_version == schema_version
            && slot.typed.0.as_ref().is_some_and(fits)
            && let Some(typed) = slot.typed.0.take()
        {
            return Ok(Taken::Typed(slot.record_with(Vec::new()), typed));
        }
        Ok(Taken::Encoded(Some(slot.record())))
    }

    fn write_typed(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
        typed: Option<TypedValue>,
        unless_same: bool,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.write(key, &write, precondition, now, Kept(typed), unless_same)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn notices(&self) -> Option<crate::store::notify::Notices> {
        Some(self.inner.notices.clone())
    }

    fn in_process(&self) -> Option<&dyn InProcess> {
        Some(self)
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.load_now(key, now)
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write_now(key, write, precondition, now)
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let current = inner.records.get(key.as_str()).map(|s| (!s.is_expired(now)).then_some(s.version));
        let live = current.flatten();
        if !precondition.holds(live) {
            return Err(conflict(key));
        }
        match precondition {
            Precondition::Version(v) => {
                // Re-check under the shard lock: the record may have moved on.
                match inner.remove_where(key.as_str(), |s| s.version == v && !s.is_expired(now)) {
                    Some(_) => Ok(true),
                    None => Err(conflict(key)),
                }
            }
            Precondition::Absent => {
                // Nothing live; drop an expired leftover if there is one.
                if current.is_some() {
                    inner.remove_where(key.as_str(), |s| s.is_expired(now));
                }
                Ok(false)
            }
            Precondition::Any => Ok(inner.remove_where(key.as_str(), |_| true).is_some_and(|s| !s.is_expired(now))),
        }
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        let texts: Vec<Arc<str>> = {
            let idx = locked(&self.inner.users);
            idx.range((user_id, Arc::from(""))..).take_while(|(u, _)| *u == user_id).map(|(_, t)| t.clone()).collect()
        };
        let mut n = 0;
        for text in texts {
            if let Some(s) = self.inner.remove_where(&text, |s| s.user_id() == Some(user_id)) {
                n += u64::from(!s.is_expired(now));
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
        let mut items: Vec<(Arc<str>, Record)> = self
            .inner
            .records
            .iter()
            .filter(|e| in_namespace(e.key(), namespace) && !e.is_expired(now) && cursor.is_none_or(|c| &**e.key() > c))
            .map(|e| (e.key().clone(), e.record()))
            .collect();
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more { items.last().map(|(k, _)| k.to_string()) } else { None };
        let items = items.into_iter().filter_map(|(text, r)| parse_key(&text).map(|k| (k, r))).collect();
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
            .filter(|e| namespace.is_none_or(|ns| in_namespace(e.key(), ns)) && !e.is_expired(now))
            .count();
        Ok(n as u64)
    }

    async fn namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        // The namespace is the key text up to its bot id (`@`) or first segment (`/`).
        let names: BTreeSet<String> = self
            .inner
            .records
            .iter()
            .filter(|e| !e.is_expired(now))
            .filter_map(|e| e.key().split(['/', '@']).next().map(str::to_owned))
            .collect();
        Ok(names.iter().filter_map(|n| Namespace::new_unchecked_reserved(n).ok()).collect())
    }
}
