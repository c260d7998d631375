//! The typed API bot code calls: [`Sessions<T>`].
//!
//! One `Sessions<T>` per session type. It derives keys from updates, loads and decodes
//! (migrating old schemas), runs the handler's change, and saves with compare-and-set,
//! retrying when another process won the race. Inside one process, updates of a key
//! wait for each other on a per-key lock taken before the load.
//!
//! Besides read-modify-write: [`Sessions::set`] writes a whole value without reading
//! the old one; [`Sessions::meta`] and [`SessionGuard::meta`] give a session's times;
//! a handler may give one session its own TTL ([`SessionGuard::set_ttl`],
//! [`Sessions::update_with_ttl`]); [`Sessions::list`] and [`Sessions::list_page`] list
//! the live sessions of a type; an [`on_expire`](SessionsBuilder::on_expire) hook hears
//! once of every session that expires ([`Sessions::sweep_expired`],
//! [`Sessions::spawn_sweeper`], [`Sessions::purge_expired`]).

mod attempts;
mod builder;
mod error;
mod expiry;
mod guard;
mod header;
mod inspect;
mod list;
mod load;
pub(crate) mod locks;
mod meta;
mod migrate;
mod pending;
mod pipeline;
mod quarantine;
mod retry;
mod save;
pub(crate) mod sealer;
mod set;
mod sweeper;
mod ttl;
pub(crate) mod typed;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use builder::{
    DEFAULT_EXPIRY_GRACE, DEFAULT_MAX_SIZE, IntoDynStore, MAX_EXPIRY_GRACE, MIN_EXPIRY_GRACE, SessionsBuilder,
};
pub use error::SessionError;
#[cfg(feature = "interactive")]
pub(crate) use expiry::lag;
pub use expiry::{Expired, SweepReport};
pub use guard::{LazySession, SessionGuard};
pub use inspect::{Inspected, encode_value, inspect, split_ttl_header};
pub use list::{ListPage, Listed, MAX_LIST_PAGE, SessionList};
pub use meta::Meta;
pub use migrate::Migrations;
pub use quarantine::{QUARANTINE_NAMESPACE, Quarantined, list_quarantined};
pub use retry::RetryPolicy;
pub use sweeper::ExpirySweeper;
pub use ttl::Ttl;

use crate::observe::{Handled, Observer, Op};
use crate::store::near_cache::NearCache;
use crate::{Clock, Codec, Context, DynStore, KeyStrategy, Namespace, Precondition, SessionKey, StoreError, Timestamp};
use attempts::{Attempts, Then};
use locks::{KeyLock, KeyLocks};
use sealer::Sealer;

/// What happens when stored bytes do not decode into the session type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodePolicy {
    /// Return [`SessionError::Decode`] naming the key; the record stays as it is.
    #[default]
    Fail,
    /// Start over from the initial value; the bad record is replaced on the next save.
    Reset,
    /// Keep the bytes aside (see [`Sessions::quarantined`]), then start over as with
    /// `Reset`. Nothing is lost.
    Quarantine,
}

/// Typed sessions of one kind, stored in one [`Store`](crate::Store).
///
/// Cheap to clone (an `Arc` inside); share one per session type.
///
/// # Examples
///
/// ```
/// use bot_sessions::{store::memory::MemoryStore, Context, KeyStrategy, SessionError, Sessions, Ttl};
/// use std::time::Duration;
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Counter { n: u64 }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let sessions = Sessions::<Counter>::builder(MemoryStore::new())
///     .namespace("counter")
///     .key(KeyStrategy::ChatUser)
///     .ttl(Ttl::idle(Duration::from_secs(3600)))
///     .build()?;
///
/// let key = sessions.key(&Context::new().chat(1).user(42))?;
/// let n = sessions.update(&key, |c| { c.n += 1; Ok::<_, SessionError>(c.n) }).await?;
/// assert_eq!(n, 1);
///
/// let mut s = sessions.open(&key).await?;
/// s.n += 10;
/// s.commit().await?;
/// assert_eq!(sessions.get(&key).await?.map(|c| c.n), Some(11));
/// # Ok::<(), SessionError>(())
/// # }).unwrap();
/// ```
pub struct Sessions<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Sessions<T> {
    fn clone(&self) -> Self {
        Sessions { inner: self.inner.clone() }
    }
}

impl<T> std::fmt::Debug for Sessions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("namespace", &self.inner.namespace)
            .field("key", &self.inner.strategy)
            .field("ttl", &self.inner.ttl)
            .field("codec", &self.inner.codec)
            .field("on_expire", &self.inner.on_expire.is_some())
            .field("encryption", &self.inner.sealer)
            .finish_non_exhaustive()
    }
}

struct Inner<T> {
    store: DynStore,
    namespace: Namespace,
    strategy: KeyStrategy,
    ttl: Ttl,
    migrations: Migrations,
    codec: Codec,
    policy: DecodePolicy,
    max_size: usize,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    initial: Arc<dyn Fn() -> T + Send + Sync>,
    on_expire: Option<expiry::Hook<T>>,
    /// How long the store keeps a record after its expiry, for `on_expire`.
    grace: std::time::Duration,
    locks: KeyLocks,
    /// The near cache updates and opens start from, if any.
    near: Option<NearCache>,
    /// How old a cached record `get` and lazy sessions may serve; `None`: always load.
    stale_reads: Option<std::time::Duration>,
    /// Spans and metrics.
    obs: Observer,
    /// Seals stored values (encryption at rest), or does nothing.
    sealer: Sealer,
}

/// Where a load may take its record from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The store only.
    Store,
    /// The near cache when it has the key: the caller's save is a compare-and-set
    /// against the cached version (or, when nothing changed, a check of it), so a
    /// stale copy costs a retry, never a wrong result.
    Write,
    /// The near cache within the opted-in staleness bound, else the store.
    Read,
}

/// An update's result as its caller sees it: the library's errors converted into `E`.
fn handled<R, E: From<SessionError>>(Handled(out): Handled<R, E>) -> Result<R, E> {
    out.unwrap_or_else(|e| Err(e.into()))
}

/// What a load found, which decides how (and whether) the save writes.
#[derive(Debug, Default)]
struct Base {
    /// The live record's version: the compare-and-set base. `None`: absent.
    version: Option<u64>,
    created_at: Option<Timestamp>,
    /// The stored bytes (opened, when sealed: the comparison is of plaintext, as
    /// sealing is randomized) when they are already what this code would write for an
    /// unchanged value (current schema); `None` forces a write when anything is kept.
    stored: Option<Vec<u8>>,
    /// The encoding of the initial value, when the value started from it.
    initial: Option<Vec<u8>>,
    /// Write even if unchanged (migrated, or refresh-on-read).
    must_write: bool,
    /// The loaded record's times, version and own TTL; `None` when none was loaded.
    meta: Option<Meta>,
    /// The record came from the near cache, not from a load of the store.
    from_cache: bool,
    /// The value was kept typed by the store (see `typed.rs`): the stored bytes are its
    /// encoding, unread (`stored` is `None`), so a save lets the store compare.
    typed: bool,
    /// The record is a write queued under the key and not yet known to be committed
    /// (see `pipeline.rs`): a save that writes nothing waits for it and checks it.
    queued: Option<Arc<pending::Pending>>,
}

impl Base {
    /// The session's own TTL as loaded.
    fn own_ttl(&self) -> Option<Ttl> {
        self.meta.as_ref().and_then(|m| m.ttl)
    }
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    /// Starts configuring sessions whose initial value is `T::default()`.
    pub fn builder(store: impl IntoDynStore) -> SessionsBuilder<T> {
        SessionsBuilder::new(store.into_dyn_store(), Arc::new(T::default))
    }
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Starts configuring sessions whose initial value comes from `initial`.
    pub fn builder_with_initial(
        store: impl IntoDynStore,
        initial: impl Fn() -> T + Send + Sync + 'static,
    ) -> SessionsBuilder<T> {
        SessionsBuilder::new(store.into_dyn_store(), Arc::new(initial))
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.namespace
    }

    /// The store (the near cache, when these sessions have one of their own: deletes
    /// and forget-user through it keep the cache coherent).
    pub fn store(&self) -> &DynStore {
        &self.inner.store
    }

    /// The near cache these sessions use, if any.
    pub fn near_cache(&self) -> Option<&NearCache> {
        self.inner.near.as_ref()
    }

    /// The key of an update under this session type's strategy.
    ///
    /// # Errors
    ///
    /// [`KeyError`](crate::KeyError) naming the id the update lacks.
    pub fn key(&self, ctx: &Context) -> Result<SessionKey, SessionError> {
        Ok(self.inner.strategy.key(&self.inner.namespace, ctx)?)
    }

    /// Atomically changes the session under `key`, creating it from the initial value
    /// if absent, and returns what `f` returns.
    ///
    /// `f` may run more than once: after another process wrote the key between load and
    /// save, the session is loaded again and `f` re-runs on the fresh value (bounded by
    /// the [`RetryPolicy`]). An `Err` from `f` writes nothing. Nothing is written when
    /// the encoded value did not change, and an untouched initial value is not stored.
    ///
    /// # Errors
    ///
    /// `f`'s error, or a [`SessionError`] converted into `E` (decode, migration, size,
    /// store, contention).
    pub async fn update<R, E, F>(&self, key: &SessionKey, mut f: F) -> Result<R, E>
    where
        F: FnMut(&mut T) -> Result<R, E> + Send,
        E: From<SessionError>,
    {
        let initial = &self.inner.initial;
        // Straight to `update_inner` (not through `update_option`): one future layer less.
        handled(self.update_inner(key, |slot, _| f(slot.get_or_insert_with(|| initial()))).await)
    }

    /// Like [`update`](Self::update), but `f` sees an `Option`: setting it to `None`
    /// deletes the session.
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update).
    pub async fn update_option<R, E, F>(&self, key: &SessionKey, mut f: F) -> Result<R, E>
    where
        F: FnMut(&mut Option<T>) -> Result<R, E> + Send,
        E: From<SessionError>,
    {
        handled(self.update_inner(key, |slot, _| f(slot)).await)
    }

    /// Like [`update`](Self::update), but `f` also sees the session's own TTL (`None`:
    /// the session type's) and may change it: `Some(ttl)` gives this one session its
    /// own TTL (igniter's per-session `expiresAt`), kept by later saves that do not
    /// mention it, until set back to `None`. An untouched initial value is still not
    /// stored, whatever TTL it was given.
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update); [`SessionError::Config`] for a zero TTL.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Scope, SessionError, SessionKey, Sessions, Ttl};
    /// use std::time::Duration;
    ///
    /// #[derive(Default, serde::Serialize, serde::Deserialize)]
    /// struct Quiz { answered: u32 }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let quizzes = Sessions::<Quiz>::builder(MemoryStore::new())
    ///     .namespace("quiz")
    ///     .ttl(Ttl::idle(Duration::from_secs(3600)))
    ///     .build()?;
    /// let key = SessionKey::new(quizzes.namespace().clone(), Scope::User(7));
    /// // This quiz is a timed race: five minutes from its start, whatever happens.
    /// quizzes.update_with_ttl(&key, |q, ttl| {
    ///     q.answered += 1;
    ///     *ttl = Some(Ttl::absolute(Duration::from_secs(300)));
    ///     Ok::<_, SessionError>(())
    /// }).await?;
    /// quizzes.update(&key, |q| { q.answered += 1; Ok::<_, SessionError>(()) }).await?;
    /// assert_eq!(quizzes.meta(&key).await?.unwrap().ttl, Some(Ttl::absolute(Duration::from_secs(300))));
    /// # Ok::<(), SessionError>(())
    /// # }).unwrap();
    /// ```
    pub async fn update_with_ttl<R, E, F>(&self, key: &SessionKey, mut f: F) -> Result<R, E>
    where
        F: FnMut(&mut T, &mut Option<Ttl>) -> Result<R, E> + Send,
        E: From<SessionError>,
    {
        let initial = &self.inner.initial;
        handled(self.update_inner(key, |slot, ttl| f(slot.get_or_insert_with(|| initial()), ttl)).await)
    }

    /// Not an `async fn`: the observed future is returned as it is, with no layer of
    /// its own around it (every layer keeps its arguments, and `update` is moved whole).
    /// The caller turns the result into its own with [`handled`].
    fn update_inner<R, E, F>(&self, key: &SessionKey, f: F) -> impl Future<Output = Handled<R, E>>
    where
        F: FnMut(&mut Option<T>, &mut Option<Ttl>) -> Result<R, E> + Send,
    {
        self.inner.obs.run(Op::Update, move || self.update_fast(key, f))
    }

    /// The update: `Ok(Err(_))` is the handler's own error (nothing written). `held`:
    /// the key's lock, when the caller took it; `resumed`: the attempts of a first one
    /// made elsewhere (the typed fast path), and what its failure calls for.
    async fn update_attempts<R, E, F>(
        &self,
        key: &SessionKey,
        mut f: F,
        held: Option<KeyLock<'_>>,
        resumed: Option<(Attempts, Then)>,
    ) -> Handled<R, E>
    where
        F: FnMut(&mut Option<T>, &mut Option<Ttl>) -> Result<R, E> + Send,
    {
        let _lock = match held {
            Some(lock) => lock,
            None => self.lock(key).await,
        };
        let retry = &self.inner.retry;
        let (mut attempts, mut then) = match resumed {
            Some((attempts, then)) => (attempts, Some(then)),
            None => (Attempts::new(retry), None),
        };
        let mut via = Via::Write;
        loop {
            // What the last failure calls for (here, or in a first attempt made
            // elsewhere). The key stays held through any pause.
            if let Some(then) = then.take() {
                // After a conflict with another writer the near cache may serve the key
                // again; a stale copy or a failed write is followed by a load.
                if matches!(then, Then::Now | Then::AfterTransient(_)) {
                    via = Via::Store;
                }
                if let Err(e) = attempts.pause(retry, key, then).await {
                    return Handled(Err(e));
                }
            }
            let now = self.inner.clock.now();
            let (value, base) = match self.load_owned(key, now, via).await {
                Ok(loaded) => loaded,
                Err(e) => return Handled(Err(e)),
            };
            let mut slot = Some(value);
            let mut ttl = base.own_ttl();
            let out = match f(&mut slot, &mut ttl) {
                Ok(out) => out,
                Err(e) => return Handled(Ok(Err(e))),
            };
            let e = match self.save_owned(key, slot, ttl, &base, now).await {
                Ok(()) => return Handled(Ok(Ok(out))),
                Err(e) => e,
            };
            then = match attempts.after(retry, &self.inner.obs, key, e, base.from_cache) {
                Ok(then) => Some(then),
                Err(e) => return Handled(Err(e)),
            };
        }
    }

    /// Loads the session under `key` and holds its in-process lock until the guard is
    /// committed or dropped: a handler-scoped session. See [`SessionGuard`].
    ///
    /// # Errors
    ///
    /// Decode, migration or store errors.
    pub async fn open(&self, key: &SessionKey) -> Result<SessionGuard<T>, SessionError> {
        self.open_via(key, Via::Write).await
    }

    async fn open_via(&self, key: &SessionKey, via: Via) -> Result<SessionGuard<T>, SessionError> {
        self.inner.obs.run(Op::Open, || self.open_unobserved(key, via)).await
    }

    async fn open_unobserved(&self, key: &SessionKey, via: Via) -> Result<SessionGuard<T>, SessionError> {
        let lock = self.inner.locks.lock_owned(key.as_str()).await;
        let mut via = via;
        if self.inner.store.pipeline().is_some()
            && let Some(pending) = lock.queued()
        {
            pending.settled().await;
            // The near cache learns a settled chain's last record when its updates'
            // tasks next run, which may be after this one: a handler-scoped session has
            // no retry to absorb a stale copy, so it reads the store.
            via = Via::Store;
        }
        let now = self.inner.clock.now();
        let (value, base) = self.load(key, now, via).await?;
        Ok(SessionGuard::new(self.clone(), key.clone(), lock, value, base))
    }

    /// A session that is loaded only when first used: a handler that never touches it
    /// costs no store round trip and takes no lock. See [`LazySession`].
    pub fn lazy(&self, key: &SessionKey) -> LazySession<T> {
        LazySession::new(self.clone(), key.clone())
    }

    /// The session under `key`, if one is stored (decoded and migrated in memory; with
    /// [`Ttl::idle_refreshed_on_read`] its expiry is pushed back).
    ///
    /// # Errors
    ///
    /// Decode, migration or store errors.
    pub async fn get(&self, key: &SessionKey) -> Result<Option<T>, SessionError> {
        self.inner.obs.run(Op::Get, || self.get_unobserved(key)).await
    }

    async fn get_unobserved(&self, key: &SessionKey) -> Result<Option<T>, SessionError> {
        let _lock = self.lock(key).await;
        let now = self.inner.clock.now();
        let (value, base) = self.load(key, now, Via::Read).await?;
        if base.initial.is_some() {
            return Ok(None);
        }
        let own = base.own_ttl();
        if own.unwrap_or(self.inner.ttl).refreshes_on_read() {
            match self.save(key, Some(&value), own, &base, now).await {
                // Another process wrote the key since our load (which refreshed it too)
                // or deleted it: the value we read was live when read; the refresh is
                // moot, not an error.
                Ok(()) | Err(SessionError::Store(StoreError::Conflict { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(value))
    }

    /// Deletes the session under `key`; returns whether a record was there. A deleted
    /// session is not announced to an [`on_expire`](SessionsBuilder::on_expire) hook
    /// (and an expired one still in its grace period counts as there, and goes
    /// unannounced).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn delete(&self, key: &SessionKey) -> Result<bool, SessionError> {
        self.inner.obs.run(Op::Delete, || self.delete_unobserved(key)).await
    }

    async fn delete_unobserved(&self, key: &SessionKey) -> Result<bool, SessionError> {
        let _lock = self.lock(key).await;
        let now = self.inner.clock.now();
        Ok(self.inner.store.delete(key, Precondition::Any, now).await?)
    }

    /// The records of this namespace that were set aside by
    /// [`DecodePolicy::Quarantine`].
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn quarantined(&self) -> Result<Vec<Quarantined>, SessionError> {
        Ok(list_quarantined(self.inner.store.as_ref(), Some(&self.inner.namespace), self.inner.clock.now()).await?)
    }

    /// Takes the key's lock, and waits until the last write an update queued under it
    /// settled (see `pipeline.rs`): what follows sees every update that held the key.
    async fn lock(&self, key: &SessionKey) -> KeyLock<'_> {
        let lock = self.inner.locks.lock(key.as_str()).await;
        if self.inner.store.pipeline().is_some()
            && let Some(pending) = lock.queued()
        {
            pending.settled().await;
        }
        lock
    }
}
