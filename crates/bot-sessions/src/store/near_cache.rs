//! [`NearCache`]: an in-process copy of recently seen records in front of any store,
//! so that [`Sessions::update`](crate::Sessions::update) on a key this process wrote
//! last goes straight to compare-and-set: one round trip instead of two.
//!
//! The cache is a [`Store`] itself, wrapping another one. Every operation goes to the
//! wrapped store; on the way back the cache keeps what it learned:
//!
//! - a load stores the record it found (or forgets the key when there is none);
//! - a successful compare-and-set or create stores the record the store now holds
//!   (the same [`Record::next`] every backend computes), so the next update of the key
//!   needs no load;
//! - a failed or ambiguous write, any delete, and a write with [`Precondition::Any`]
//!   (whose resulting creation time is unknown) forget the key; a forget-user forgets
//!   every cached record of that user.
//!
//! [`Store::load`] on the cache is still a read of the store: what a session serves
//! from the cache is decided above, by [`Sessions`](crate::Sessions) (only where a
//! compare-and-set checks it afterwards, or where the caller opted into stale reads).
//!
//! Coherence across processes rests on compare-and-set alone: versions never repeat
//! ([`new_version`](crate::new_version)), so a write prepared against a cached version
//! succeeds only if nobody wrote the key since; otherwise it fails as a conflict, the
//! cache forgets the key and the session reloads. No timing is involved.
//!
//! An expired record is never served: each lookup compares the record's `expires_at`
//! with the caller's clock (the same `now` the stores use), so a cache entry cannot
//! outlive its record however long it stays in memory.
//!
//! Bounds: entries and bytes (the cache is `quick_cache`, weight-bounded, with each
//! entry weighing its bytes but at least `max_bytes / max_entries`, which bounds both).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use quick_cache::Weighter;

use crate::store::{Pipeline, Queued};
use crate::{DynStore, Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

/// The default bound on cached records: 100 000.
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;
/// The default bound on the cache's memory: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// What a cached entry costs beside its key text and value bytes: the entry itself,
/// its reference count, the key's and the map slot's share (measured, see the guide's near cache chapter).
const ENTRY_OVERHEAD: u64 = (std::mem::size_of::<Cached>() + 96) as u64;

/// The bounds of a [`NearCache`].
///
/// # Examples
///
/// ```
/// use bot_sessions::store::near_cache::CacheConfig;
///
/// let config = CacheConfig::default().max_entries(10_000).max_bytes(8 << 20);
/// assert_eq!(config.entries(), 10_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    max_entries: usize,
    max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { max_entries: DEFAULT_CACHE_ENTRIES, max_bytes: DEFAULT_CACHE_BYTES }
    }
}

impl CacheConfig {
    /// At most `max_entries` records and about `max_bytes` bytes (both above zero,
    /// checked where the cache is made).
    pub const fn new(max_entries: usize, max_bytes: u64) -> Self {
        CacheConfig { max_entries, max_bytes }
    }

    /// At most this many records (default [`DEFAULT_CACHE_ENTRIES`]).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// At most about this many bytes: key texts, values and per-entry bookkeeping
    /// (default [`DEFAULT_CACHE_BYTES`]).
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    /// The entry bound.
    pub fn entries(&self) -> usize {
        self.max_entries
    }

    /// The byte bound.
    pub fn bytes(&self) -> u64 {
        self.max_bytes
    }

    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.max_entries == 0 || self.max_bytes == 0 {
            return Err(StoreError::Config(format!(
                "near cache bounds must be above zero (max_entries {}, max_bytes {})",
                self.max_entries, self.max_bytes
            )));
        }
        Ok(())
    }
}

/// How long a key that met a conflict is not served to writers: they load first,
/// like without a cache. Without this, a process whose updates of a key take one round
/// trip starves another that must load before each compare-and-set.
const CONTENDED_FOR: Duration = Duration::from_secs(1);

/// One cached record (`None`: only the contention mark), when it was learned, and until
/// when writers must load the key anyway (by the caller's clock).
#[derive(Debug)]
struct Cached {
    record: Option<Record>,
    at: Timestamp,
    contended_until: Timestamp,
}

impl Cached {
    /// The record a write on `precondition` is over, when it is the one cached here: a
    /// compare-and-set on the version of this live record. `None` for anything else
    /// (a create, an unconditional write, another version, an expired copy).
    fn under(&self, precondition: Precondition, now: Timestamp) -> Option<&Record> {
        let Precondition::Version(v) = precondition else { return None };
        self.record.as_ref().filter(|r| r.version == v && !r.is_expired(now))
    }
}

/// Weighs an entry by its bytes, but never below `floor` = max_bytes / max_entries,
/// so a total weight within max_bytes also keeps the count within max_entries.
#[derive(Debug, Clone, Copy)]
struct Weigh {
    floor: u64,
}

impl Weighter<Arc<str>, Arc<Cached>> for Weigh {
    fn weight(&self, key: &Arc<str>, val: &Arc<Cached>) -> u64 {
        let value = val.record.as_ref().map_or(0, |r| r.value.capacity());
        let bytes = ENTRY_OVERHEAD + key.len() as u64 + value as u64;
        bytes.max(self.floor)
    }
}

type Map = quick_cache::sync::Cache<Arc<str>, Arc<Cached>, Weigh>;

struct Inner {
    store: DynStore,
    map: Map,
    config: CacheConfig,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCache").field("config", &self.config).field("entries", &self.map.len()).finish()
    }
}

/// A near cache in front of a store; see the [module documentation](self).
///
/// Cheap to clone (an `Arc` inside). Hand it to [`Sessions::builder`](crate::Sessions::builder)
/// like any store, and the sessions built on it use it (or let the builder wrap a store
/// of its own with [`SessionsBuilder::near_cache`](crate::session::SessionsBuilder::near_cache)).
/// Sessions of several namespaces may share one cache, and with it one memory bound.
///
/// # Examples
///
/// ```
/// use bot_sessions::store::memory::MemoryStore;
/// use bot_sessions::store::near_cache::{CacheConfig, NearCache};
/// use bot_sessions::{Scope, SessionError, SessionKey, Sessions};
/// use std::sync::Arc;
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Counter { n: u64 }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = NearCache::new(Arc::new(MemoryStore::new()), CacheConfig::default())?;
/// let counters = Sessions::<Counter>::builder(cache.clone()).namespace("counter").build()?;
/// let key = SessionKey::new(counters.namespace().clone(), Scope::Chat(1));
/// counters.update(&key, |c| { c.n += 1; Ok::<_, SessionError>(()) }).await?; // load + create
/// counters.update(&key, |c| { c.n += 1; Ok::<_, SessionError>(()) }).await?; // compare-and-set only
/// assert_eq!(cache.stats().hits, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct NearCache {
    inner: Arc<Inner>,
}

/// What a [`NearCache`] holds and how it served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Records held now.
    pub entries: u64,
    /// Their weight, which the byte bound limits: each entry's key, value and
    /// bookkeeping bytes, but at least `max_bytes / max_entries` (so with the defaults a
    /// small session weighs 671 although it takes about 270 bytes of memory).
    pub bytes: u64,
    /// Lookups by sessions that found a live record.
    pub hits: u64,
    /// Lookups by sessions that did not.
    pub misses: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or 0 before any lookup.
    pub fn hit_rate(&self) -> f64 {
        let all = self.hits + self.misses;
        if all == 0 { 0.0 } else { self.hits as f64 / all as f64 }
    }
}

impl NearCache {
    /// A cache in front of `store`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a zero bound.
    pub fn new(store: DynStore, config: CacheConfig) -> Result<Self, StoreError> {
        config.check()?;
        let floor = (config.max_bytes / config.max_entries as u64).max(1);
        let map = Map::with_weighter(config.max_entries, config.max_bytes, Weigh { floor });
        Ok(NearCache {
            inner: Arc::new(Inner { store, map, config, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }),
        })
    }

    /// The store behind the cache.
    pub fn store(&self) -> &DynStore {
        &self.inner.store
    }

    /// The bounds.
    pub fn config(&self) -> CacheConfig {
        self.inner.config
    }

    /// The cached record of `key` if it is live at `now` and, with `max_age`, was
    /// learned at most that long before `now`. Counts a hit or a miss.
    ///
    /// A record may be stale (another process may have written the key since): use it
    /// only where a compare-and-set checks it, or where staleness was asked for.
    /// Without `max_age` (a writer's lookup), a key that met a conflict in the last
    /// second is a miss: contended keys are loaded first, as without a cache.
    pub fn cached(&self, key: &SessionKey, now: Timestamp, max_age: Option<Duration>) -> Option<Record> {
        let found = self.inner.map.get(key.as_str()).and_then(|c| {
            let record = c.record.as_ref()?;
            if record.is_expired(now) {
                self.inner.map.remove(key.as_str());
                return None;
            }
            let usable = match max_age {
                None => now >= c.contended_until,
                Some(age) => c.at.saturating_add(age) >= now,
            };
            usable.then(|| record.clone())
        });
        let counter = if found.is_some() { &self.inner.hits } else { &self.inner.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Forgets `key`.
    pub fn invalidate(&self, key: &SessionKey) {
        self.inner.map.remove(key.as_str());
    }

    /// Forgets every cached record of `user` (what [`Store::forget_user`] through the
    /// cache does; for an erasure that went to the store by another way).
    pub fn invalidate_user(&self, user: i64) {
        self.inner.map.retain(|_, c| c.record.as_ref().is_none_or(|r| r.user_id != Some(user)));
    }

    /// Forgets every cached record of `namespace`.
    pub fn invalidate_namespace(&self, namespace: &Namespace) {
        let prefix = namespace.as_str();
        self.inner.map.retain(|k, _| !is_in_namespace(k, prefix));
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.inner.map.clear();
    }

    /// Entries, bytes, hits and misses.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.inner.map.len() as u64,
            bytes: self.inner.map.weight(),
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
        }
    }

    /// What a write's `outcome` teaches the cache: `next` (the record a successful write
    /// makes, when it can be told) is cached if the key's entry is still `over` (the one
    /// the write was prepared against; `None`: nothing was cached), a conflict marks the
    /// key contended, anything else forgets it.
    fn learn(
        &self,
        key: &SessionKey,
        outcome: &Result<u64, StoreError>,
        next: Option<Record>,
        over: Option<&Arc<Cached>>,
        now: Timestamp,
    ) {
        match outcome {
            Ok(_) => {
                let current = self.inner.map.peek(key.as_str());
                let unchanged = match (&current, over) {
                    (Some(c), Some(o)) => Arc::ptr_eq(c, o),
                    (None, None) => true,
                    _ => false,
                };
                match next {
                    Some(next) if unchanged => self.put(key, Some(next), now, false),
                    _ => self.invalidate(key),
                }
            }
            Err(e) if e.is_conflict() => self.put(key, None, now, true),
            Err(_) => self.invalidate(key),
        }
    }

    /// Caches `record` (`None`: only the contention mark), keeping the key's mark.
    fn put(&self, key: &SessionKey, record: Option<Record>, at: Timestamp, contended: bool) {
        let kept = self.inner.map.peek(key.as_str()).map_or(Timestamp(i64::MIN), |c| c.contended_until);
        let contended_until = if contended { at.saturating_add(CONTENDED_FOR) } else { kept };
        self.inner.map.insert(key.text_arc().clone(), Arc::new(Cached { record, at, contended_until }));
    }
}

/// Whether key text `k` belongs to namespace `ns` (`ns/...` or `ns@bot/...`).
fn is_in_namespace(k: &str, ns: &str) -> bool {
    k.strip_prefix(ns).is_some_and(|rest| rest.starts_with('/') || rest.starts_with('@'))
}

#[async_trait::async_trait]
impl Store for NearCache {
    fn backend(&self) -> &'static str {
        self.inner.store.backend()
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        let loaded = self.inner.store.load(key, now).await;
        match &loaded {
            Ok(Some(record)) => self.put(key, Some(record.clone()), now, false),
            _ => self.invalidate(key),
        }
        loaded
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        // What the store will hold after a successful write, when it can be told from
        // here: over nothing (a create), or over the very record cached (a
        // compare-and-set on its version). `Any` over an unknown record: forget it. The
        // cached entry is shared, not copied: only its metadata is needed.
        let held = match precondition {
            Precondition::Version(_) => self.inner.map.get(key.as_str()),
            Precondition::Absent | Precondition::Any => None,
        };
        let known = held.as_deref().and_then(|c| c.under(precondition, now));
        let written = match known {
            // A compare-and-set over the record held here: the store may take what it
            // needs from it rather than read it (one lean script on Redis).
            Some(known) => self.inner.store.write_over(key, write, known, now).await,
            None => self.inner.store.write(key, write, precondition, now).await,
        };
        match &written {
            Ok(_) if known.is_some() || precondition == Precondition::Absent => {
                self.put(key, Some(Record::next(known, key, &write, now)), now, false);
            }
            Err(e) if e.is_conflict() => self.put(key, None, now, true),
            _ => self.invalidate(key),
        }
        written
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        self.invalidate(key);
        let deleted = self.inner.store.delete(key, precondition, now).await;
        // Again after: a load that raced with the delete may have put the old record back.
        self.invalidate(key);
        deleted
    }

    async fn recent_versions(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Vec<u64>>, StoreError> {
        self.inner.store.recent_versions(key, now).await
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.invalidate_user(user_id);
        let forgotten = self.inner.store.forget_user(user_id, now).await;
        self.invalidate_user(user_id);
        forgotten
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        self.inner.store.scan(namespace, cursor, limit, now).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        // Cached records past their expiry are never served; nothing to do here.
        self.inner.store.purge_expired(now).await
    }

    async fn purge_expired_background(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.store.purge_expired_background(now).await
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.store.count(namespace, now).await
    }

    async fn namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        self.inner.store.namespaces(now).await
    }

    fn notices(&self) -> Option<crate::store::notify::Notices> {
        self.inner.store.notices()
    }

    fn as_near_cache(&self) -> Option<&NearCache> {
        Some(self)
    }

    /// The wrapped store's queue, when it has one, with the cache kept (see the
    /// [`Pipeline`] impl).
    fn pipeline(&self) -> Option<&dyn Pipeline> {
        self.inner.store.pipeline().map(|_| self as &dyn Pipeline)
    }
}

/// The wrapped store's in-order queue. The cache learns what a queued write makes
/// once it settles, as [`Store::write`] does, but only if the key's entry is still the
/// one the write was prepared against: writes of one key queued after it may settle
/// (and be seen) first, and an older record must not replace what they left. A write
/// over a version the cache does not hold (one still queued) forgets the key; the next
/// update after the queue empties loads it.
impl Pipeline for NearCache {
    fn enqueue(&self, key: &SessionKey, write: Write<'_>, precondition: Precondition, now: Timestamp) -> Queued {
        let Some(pipe) = self.inner.store.pipeline() else {
            // `pipeline` offers this queue only over a store that has one.
            return Queued::ready(Err(StoreError::backend(
                self.backend(),
                Some(key.as_str()),
                false,
                "the store behind this near cache has no write queue",
            )));
        };
        let entry = self.inner.map.get(key.as_str());
        let next = match precondition {
            Precondition::Version(_) => entry
                .as_deref()
                .and_then(|c| c.under(precondition, now))
                .map(|known| Record::next(Some(known), key, &write, now)),
            Precondition::Absent => Some(Record::next(None, key, &write, now)),
            Precondition::Any => None,
        };
        let mut queued = pipe.enqueue(key, write, precondition, now);
        if let Some(outcome) = queued.try_outcome() {
            self.learn(key, &outcome, next, entry.as_ref(), now);
            return Queued::ready(outcome);
        }
        let (cache, key) = (self.clone(), key.clone());
        Queued::new(async move {
            let outcome = queued.await;
            cache.learn(&key, &outcome, next, entry.as_ref(), now);
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::{Namespace, Scope};

    fn key(ns: &str, chat: i64) -> SessionKey {
        SessionKey::new(Namespace::new(ns).unwrap(), Scope::Chat(chat))
    }

    #[test]
    fn namespaces_are_told_apart_by_their_separator() {
        assert!(is_in_namespace("a/chat:1", "a"));
        assert!(is_in_namespace("a@7/chat:1", "a"));
        assert!(!is_in_namespace("ab/chat:1", "a"));
    }

    #[test]
    fn zero_bounds_are_config_errors() {
        let store: DynStore = Arc::new(MemoryStore::without_sweeper());
        assert!(NearCache::new(store.clone(), CacheConfig::default().max_entries(0)).is_err());
        assert!(NearCache::new(store, CacheConfig::default().max_bytes(0)).is_err());
    }

    #[tokio::test]
    async fn both_bounds_hold() {
        let store: DynStore = Arc::new(MemoryStore::without_sweeper());
        let config = CacheConfig::default().max_entries(100).max_bytes(1 << 30);
        let cache = NearCache::new(store.clone(), config).unwrap();
        let now = Timestamp::now();
        for i in 0..1_000 {
            cache.write(&key("n", i), Write::new(b"v", 1, None), Precondition::Absent, now).await.unwrap();
        }
        let s = cache.stats();
        assert!(s.entries <= 100 && s.entries > 0, "entries bounded: {s:?}");

        let config = CacheConfig::default().max_entries(1_000_000).max_bytes(64 * 1024);
        let cache = NearCache::new(store, config).unwrap();
        let big = vec![b'x'; 1024];
        for i in 0..1_000 {
            cache.write(&key("m", i), Write::new(&big, 1, None), Precondition::Absent, now).await.unwrap();
        }
        let s = cache.stats();
        assert!(s.bytes <= 64 * 1024 && s.entries < 64, "bytes bounded: {s:?}");
    }
}
