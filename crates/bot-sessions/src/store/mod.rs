//! The [`Store`] trait: the only thing a backend implements.
//!
//! Each backend lives in its own module and only translates these operations to its
//! backend; retries, TTL arithmetic, migrations and locking live above, in
//! [`session`](crate::session).

#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) mod batch;
mod error;
pub mod memory;
pub mod near_cache;
pub mod notify;
#[cfg(feature = "postgres")]
pub mod postgres;
mod purger;
pub(crate) mod redact;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) mod ring_provider;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod url;

use std::sync::Arc;

pub use error::{BoxError, StoreError};
pub use purger::{DEFAULT_PURGE_INTERVAL, spawn_purger};
pub use redact::{redact_url, redact_url_in};
#[cfg(feature = "testing")]
pub(crate) use url::check as check_url;
pub use url::{DEFAULT_OPEN_RETRY, open};

use crate::{Namespace, Precondition, Record, SessionKey, Timestamp, Write};

/// One page of a namespace scan.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Live records in ascending key order.
    pub items: Vec<(SessionKey, Record)>,
    /// Pass this to the next call to continue; `None` when the scan is complete.
    pub next: Option<String>,
}

/// A session store: atomic single-key operations plus the few bulk ones an operator
/// needs.
///
/// Every operation takes `now` from the caller's [`Clock`](crate::Clock) so expiry
/// means the same thing on every backend (and tests can move time). A record whose
/// `expires_at <= now` is treated as absent everywhere: never loaded, never scanned or
/// counted, and a write with [`Precondition::Absent`] succeeds over it.
///
/// **Versions never repeat.** A write stores the version its caller proposed
/// ([`Write::version`], random, see [`new_version`](crate::new_version)); the store
/// never derives one from the previous record. So a [`Precondition::Version`] taken on
/// one incarnation of a key can never hold on a later one (after a delete, a
/// forget-user or an expiry), and a writer whose reply was lost can tell whether its
/// write landed ([`StoreError::Ambiguous`]).
///
/// **Bad stored data never blocks other records.** A record whose metadata does not
/// parse is a [`StoreError::Corrupt`] naming its key on `load`, can still be
/// overwritten or deleted with [`Precondition::Any`], and is skipped (and logged) by
/// scan, count, purge and forget-user, which go on with the rest.
///
/// Implementors: run the conformance suite (`bot_sessions::conformance_tests!`, feature
/// `testing`) against your store.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Loads the live record under `key`.
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError>;

    /// Writes `write` under `key` if `precondition` holds, and returns the new version
    /// (always `write.version`). The store keeps `created_at` and `user_id` of a live
    /// record; a create indexes [`Write::indexed_user`] for [`Store::forget_user`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the precondition fails; nothing is written.
    /// [`StoreError::Ambiguous`] when the outcome is unknown.
    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Writes `write` under `key` over `previous`, the record this process last read
    /// from or wrote to this store under `key`: the same compare-and-set as
    /// [`Store::write`] with [`Precondition::Version`]`(previous.version)`, same errors.
    ///
    /// Versions never repeat, so if the stored version is still `previous.version` the
    /// stored record *is* `previous`; a backend may then take its creation time, owner
    /// and expiry from `previous` instead of reading them (Redis does: one lean script).
    /// The caller must pass a record this store returned from [`Store::load`] or the
    /// [`Record::next`] of a write it acknowledged, live at `now`; the near cache does.
    /// The default is the plain compare-and-set.
    async fn write_over(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        previous: &Record,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(key, write, Precondition::Version(previous.version), now).await
    }

    /// The versions the live record under `key` held most recently, oldest first, its
    /// current version last, as far as the backend remembers them (Redis and
    /// PostgreSQL: the last 16 writes of the record's incarnation); `None` when the
    /// backend keeps no such memory (the default) or no live record is there.
    ///
    /// [`Sessions`](crate::Sessions) reads it only to resolve a write whose outcome is
    /// unknown ([`StoreError::Ambiguous`]) after another writer moved the key on: the
    /// proposed version in the list means the write landed; the version it expected
    /// followed by another one means it never did, and never can.
    ///
    /// # Errors
    ///
    /// As [`Store::load`].
    async fn recent_versions(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Vec<u64>>, StoreError> {
        let _ = (key, now);
        Ok(None)
    }

    /// Deletes the record under `key` if `precondition` holds. Returns whether a live
    /// record was deleted. Deleting an absent key with [`Precondition::Any`] or
    /// [`Precondition::Absent`] is `Ok(false)`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the precondition fails.
    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError>;

    /// Deletes every record of `user_id` (the key's user, or the owner its creating
    /// write named) in every namespace, found through a user index, not a scan.
    /// Returns how many live records went.
    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError>;

    /// Lists up to `limit` live records of `namespace` whose key sorts after `cursor`.
    async fn scan(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError>;

    /// Removes records expired at `now`; returns how many.
    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// What the background purger ([`spawn_purger`]) calls each period. A backend
    /// shared by several processes may skip the round (return `Ok(0)`) while another
    /// process is purging, so only one purges at a time; the default purges.
    async fn purge_expired_background(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_expired(now).await
    }

    /// Counts live records, in one namespace or in all.
    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError>;

    /// The namespaces that hold records, in byte order: every namespace with a live
    /// record, possibly also some that no longer have one (count them to tell). Reserved namespaces (`_quarantine`) included. For the
    /// operator tool, exports and copies, which walk every namespace with
    /// [`Store::scan`].
    ///
    /// # Errors
    ///
    /// Backend errors. The default, for stores that cannot enumerate their
    /// namespaces, is a [`StoreError::Config`] saying so.
    async fn namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        let _ = now;
        Err(StoreError::Config("this store cannot list its namespaces; name one".into()))
    }

    /// This store's synchronous side, if it works in the calling thread and never
    /// waits (the memory store): [`Sessions`](crate::Sessions) calls it on its hot path
    /// instead of the boxed futures of [`Store::load`] and [`Store::write`]. A store
    /// that returns `Some` must answer there exactly as its async methods do. Other
    /// stores keep the default, `None`.
    fn in_process(&self) -> Option<&dyn InProcess> {
        None
    }

    /// This store's in-order write queue, if it has one (the SQLite store: one writer
    /// thread per store): [`Sessions`](crate::Sessions) then releases a key's
    /// in-process lock once an update's write is queued, and lets the next update of
    /// the key build on the queued value (see [`Pipeline`]). Other stores keep the
    /// default, `None`, and their updates hold the key until their write is answered.
    fn pipeline(&self) -> Option<&dyn Pipeline> {
        None
    }

    /// The [`NearCache`](near_cache::NearCache) this store is, if it is one: how
    /// [`Sessions`](crate::Sessions) built on a store find the cache to skip loads with.
    /// Backends keep the default, `None`.
    fn as_near_cache(&self) -> Option<&near_cache::NearCache> {
        None
    }

    /// The bounds of the [`NearCache`](near_cache::NearCache) that each
    /// [`Sessions`](crate::Sessions) built on this store puts in front of it unless told
    /// otherwise ([`near_cache`](crate::session::SessionsBuilder::near_cache),
    /// [`without_near_cache`](crate::session::SessionsBuilder::without_near_cache)). The
    /// SQLite store asks for one by default (`SqliteOptions::near_cache`); the default,
    /// `None`, is no cache.
    fn default_near_cache(&self) -> Option<near_cache::CacheConfig> {
        None
    }

    /// The store's [notices](notify): how one process tells the others on this store
    /// that something happened (an interactive session ended), so they need not poll.
    /// Every backend of this crate has them; the default, `None`, leaves the
    /// interactive manager to re-read the store every watch period.
    fn notices(&self) -> Option<notify::Notices> {
        None
    }

    /// The backend's name, the `backend` label of [metrics and spans](crate::observe):
    /// `memory`, `sqlite`, `redis`, `postgres`; a wrapper (the near cache) names what
    /// it wraps. The default is `custom`.
    fn backend(&self) -> &'static str {
        "custom"
    }
}

/// A write handed to a [`Pipeline`]: its outcome, as [`Store::write`] would have
/// returned it, once the write is applied and committed (or failed). Awaiting it is
/// optional: the write stands (or fails) whether anyone waits for it or not.
pub struct Queued(QueuedInner);

enum QueuedInner {
    /// Already answered (applied at once, or refused before it was queued).
    Ready(Option<Result<u64, StoreError>>),
    /// Queued; the answer comes from the store's writer.
    Waiting(std::pin::Pin<Box<dyn Future<Output = Result<u64, StoreError>> + Send>>),
}

impl Queued {
    /// A write whose outcome is known already.
    pub fn ready(outcome: Result<u64, StoreError>) -> Self {
        Queued(QueuedInner::Ready(Some(outcome)))
    }

    /// A queued write whose outcome `answer` gives.
    pub fn new(answer: impl Future<Output = Result<u64, StoreError>> + Send + 'static) -> Self {
        Queued(QueuedInner::Waiting(Box::pin(answer)))
    }

    /// The outcome, if it was known when the write was handed over (it was applied at
    /// once, or refused); `None`: it is queued, await it.
    pub fn try_outcome(&mut self) -> Option<Result<u64, StoreError>> {
        match &mut self.0 {
            QueuedInner::Ready(outcome) => outcome.take(),
            QueuedInner::Waiting(_) => None,
        }
    }
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            QueuedInner::Ready(outcome) => f.debug_tuple("Queued::Ready").field(outcome).finish(),
            QueuedInner::Waiting(_) => f.write_str("Queued::Waiting"),
        }
    }
}

impl Future for Queued {
    type Output = Result<u64, StoreError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match &mut self.0 {
            QueuedInner::Ready(outcome) => std::task::Poll::Ready(outcome.take().unwrap_or_else(|| {
                Err(StoreError::backend("pipeline", None, false, "the outcome of a queued write was taken already"))
            })),
            QueuedInner::Waiting(answer) => answer.as_mut().poll(cx),
        }
    }
}

/// A store's in-order write queue (see [`Store::pipeline`]).
///
/// The contract, on top of [`Store::write`]'s: the writes and deletes this store is
/// handed (through [`Pipeline::enqueue`], [`Store::write`] or [`Store::delete`]) after
/// `enqueue` returned are applied after the enqueued write, each with its own
/// precondition checked against the state the earlier ones left. So a caller may
/// queue a compare-and-set over the version an earlier, still queued write proposes:
/// it holds exactly when that write landed and nothing came in between.
pub trait Pipeline: Send + Sync {
    /// Hands `write` under `key` (if `precondition` holds when it is applied) to the
    /// store's writer and returns without waiting for it to be applied. The outcome
    /// comes through the returned [`Queued`]: the same as [`Store::write`]'s.
    fn enqueue(&self, key: &SessionKey, write: Write<'_>, precondition: Precondition, now: Timestamp) -> Queued;
}

/// A session value an in-process store keeps beside its encoding, as it was handed to
/// [`InProcess::write_typed`]: the next [`InProcess::take_typed`] of the same type can
/// start from it without decoding.
pub type TypedValue = Box<dyn std::any::Any + Send + Sync>;

/// What [`InProcess::take_typed`] found under a key.
#[derive(Debug)]
pub enum Taken {
    /// No live record (`None`), or a live record whose value is only encoded (or kept
    /// as another type): decode `record.value`.
    Encoded(Option<Record>),
    /// A live record whose value was kept typed: the [`TypedValue`], taken out of the
    /// store (which keeps the encoding), and the record's metadata. `record.value` is
    /// empty: the typed value is what it encodes.
    Typed(Record, TypedValue),
}

/// The synchronous load and write of an in-process store (see [`Store::in_process`]):
/// the same contract as [`Store::load`] and [`Store::write`], without a boxed future.
///
/// A store that lives in this process may also keep a writer's value *typed* beside its
/// encoding ([`write_typed`](Self::write_typed)), so that the next read-modify-write of
/// the key in this process starts from it instead of decoding the bytes
/// ([`take_typed`](Self::take_typed)); every other reader still sees the bytes. The
/// defaults keep nothing typed.
pub trait InProcess: Send + Sync {
    /// As [`Store::load`].
    ///
    /// # Errors
    ///
    /// As [`Store::load`].
    fn load_now(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError>;

    /// As [`Store::write`].
    ///
    /// # Errors
    ///
    /// As [`Store::write`].
    fn write_now(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Loads `key` as [`load_now`](Self::load_now) does, except that when the live
    /// record's value is kept typed as `type_id` (a [`TypedValue`] of that type, written
    /// with schema version `schema_version`), that value is taken out of the store and
    /// returned instead of a copy of the bytes; the store keeps the bytes, so every
    /// other reader is unaffected, and the next [`write_typed`](Self::write_typed) (or
    /// nothing) puts a value back.
    ///
    /// # Errors
    ///
    /// As [`Store::load`].
    fn take_typed(
        &self,
        key: &SessionKey,
        now: Timestamp,
        type_id: std::any::TypeId,
        schema_version: u32,
    ) -> Result<Taken, StoreError> {
        let _ = (type_id, schema_version);
        self.load_now(key, now).map(Taken::Encoded)
    }

    /// Writes as [`write_now`](Self::write_now) does, and keeps `typed` (what
    /// `write.value` encodes) beside the bytes for the next
    /// [`take_typed`](Self::take_typed). With `unless_same`, a write over a live record
    /// whose precondition holds and whose bytes and schema version are already those
    /// of `write` changes nothing (no new version, no new times) but keeps `typed`, and
    /// returns `Ok(None)`; `Ok(Some(version))` otherwise. Any other write to the key
    /// drops what was kept.
    ///
    /// The default keeps nothing and compares by loading first: correct, not fast.
    ///
    /// # Errors
    ///
    /// As [`Store::write`].
    fn write_typed(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
        typed: Option<TypedValue>,
        unless_same: bool,
    ) -> Result<Option<u64>, StoreError> {
        drop(typed);
        if unless_same
            && let Some(current) = self.load_now(key, now)?
            && precondition.holds(Some(current.version))
            && current.value == write.value
            && current.schema_version == write.schema_version
        {
            return Ok(None);
        }
        self.write_now(key, write, precondition, now).map(Some)
    }
}

/// The range every network timeout of a server backend must lie in.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) const NETWORK_TIMEOUTS: std::ops::RangeInclusive<std::time::Duration> =
    std::time::Duration::from_millis(1)..=std::time::Duration::from_secs(3600);

/// Refuses a network timeout outside [`NETWORK_TIMEOUTS`], naming the setting.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn check_timeout(backend: &str, what: &str, d: std::time::Duration) -> Result<(), StoreError> {
    if NETWORK_TIMEOUTS.contains(&d) {
        Ok(())
    } else {
        Err(StoreError::Config(format!("{backend} {what} must be from 1 ms to 1 hour, not {d:?}")))
    }
}

/// A version as the SQL backends store it, a positive 64-bit integer; anything else
/// (a writer that did not use [`new_version`](crate::new_version)) is refused naming the
/// key, before anything is sent.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn sql_version(backend: &'static str, key: &str, version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).ok().filter(|v| *v >= 1).ok_or_else(|| {
        StoreError::backend(backend, Some(key), false, format!("proposed version {version} is outside 1..=i64::MAX"))
    })
}

/// A shared, type-erased store: what [`Sessions`](crate::Sessions) and the operator
/// tool hold, so several backends can live in one program.
pub type DynStore = Arc<dyn Store>;
