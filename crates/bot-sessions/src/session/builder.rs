//! Configuring a [`Sessions`] value.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::expiry::Hook;
use super::sealer::Sealer;
use super::{DecodePolicy, Expired, Inner, Migrations, RetryPolicy, SessionError, Sessions, Ttl, locks::KeyLocks};
use crate::observe::Observer;
use crate::store::near_cache::{CacheConfig, NearCache};
use crate::{Clock, Codec, DynStore, KeyStrategy, Namespace, Store, SystemClock};

/// The default size limit of an encoded session: 1 MiB.
pub const DEFAULT_MAX_SIZE: usize = 1 << 20;

/// How long an expired session stays in the store for the
/// [`on_expire`](SessionsBuilder::on_expire) hook unless configured otherwise: 24 h.
pub const DEFAULT_EXPIRY_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The shortest grace period accepted: 1 s.
pub const MIN_EXPIRY_GRACE: Duration = Duration::from_secs(1);
/// The longest grace period accepted: 366 days.
pub const MAX_EXPIRY_GRACE: Duration = Duration::from_secs(366 * 24 * 3600);

/// Builds a [`Sessions`]; see [`Sessions::builder`].
#[must_use]
pub struct SessionsBuilder<T> {
    store: DynStore,
    namespace: Option<String>,
    strategy: KeyStrategy,
    ttl: Ttl,
    migrations: Migrations,
    codec: Codec,
    policy: DecodePolicy,
    max_size: usize,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    initial: Arc<dyn Fn() -> T + Send + Sync>,
    on_expire: Option<Hook<T>>,
    grace: Duration,
    near: Near,
    stale_reads: Option<Duration>,
    sealer: Sealer,
}

/// Which near cache a [`Sessions`] uses.
#[derive(Debug, Clone, Copy)]
enum Near {
    /// The store's, if the store is a [`NearCache`].
    FromStore,
    /// One of its own, in front of the store.
    Own(CacheConfig),
    /// None.
    Off,
}

impl<T> SessionsBuilder<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(super) fn new(store: DynStore, initial: Arc<dyn Fn() -> T + Send + Sync>) -> Self {
        SessionsBuilder {
            store,
            namespace: None,
            strategy: KeyStrategy::default(),
            ttl: Ttl::None,
            migrations: Migrations::new(),
            codec: Codec::default(),
            policy: DecodePolicy::default(),
            max_size: DEFAULT_MAX_SIZE,
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
            initial,
            on_expire: None,
            grace: DEFAULT_EXPIRY_GRACE,
            near: Near::FromStore,
            stale_reads: None,
            sealer: Sealer::default(),
        }
    }

    /// The namespace of this session type (required; see [`Namespace`] for the rules).
    pub fn namespace(mut self, name: &str) -> Self {
        self.namespace = Some(name.to_owned());
        self
    }

    /// How keys are derived from updates (default: per chat).
    pub fn key(mut self, strategy: KeyStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Time to live (default: forever).
    pub fn ttl(mut self, ttl: Ttl) -> Self {
        self.ttl = ttl;
        self
    }

    /// The schema history (default: none; the schema is version 1).
    pub fn migrations(mut self, migrations: Migrations) -> Self {
        self.migrations = migrations;
        self
    }

    /// The codec (default: JSON).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// What happens to stored bytes that do not decode (default: fail).
    pub fn on_decode_error(mut self, policy: DecodePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The largest encoded value accepted, in bytes (default: 1 MiB).
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Compare-and-set retry (default: 32 attempts, 1 ms to 100 ms jittered backoff),
    /// and how long retryable store failures are tried again (default: 5 s).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The clock (default: the system clock). Tests pass a [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The value of a session that does not exist yet (default: `T::default()` with
    /// [`Sessions::builder`]).
    pub fn initial(mut self, f: impl Fn() -> T + Send + Sync + 'static) -> Self {
        self.initial = Arc::new(f);
        self
    }

    /// Runs `hook` once for every session of this type that expires, so the bot can
    /// tell the user (their half-filled form expired, say). See
    /// [`Sessions::sweep_expired`] for an example.
    ///
    /// The hook runs when a sweep ([`Sessions::sweep_expired`],
    /// [`Sessions::spawn_sweeper`], [`Sessions::purge_expired`]) or a handler's load
    /// finds the expired session, whichever comes first; that caller claims it with a
    /// compare-and-set delete, so across all processes sharing the store the hook runs
    /// once per expired record. A session written again before it expired does not
    /// fire; one deleted ([`Sessions::delete`], forget-user) does not fire either.
    /// A hook found by a handler runs on a task of its own; a sweep awaits each hook in
    /// turn (each on a task, so a panic is contained), so keep it short or spawn.
    ///
    /// To leave the expired session in the store for its hook, records are written to
    /// expire at the store [`expiry_grace`](Self::expiry_grace) after the session does;
    /// the typed API treats them as gone from their own expiry on. A session that nobody
    /// sweeps within the grace period is forgotten without its hook.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Sessions, Ttl};
    /// use std::time::Duration;
    ///
    /// #[derive(Default, serde::Serialize, serde::Deserialize)]
    /// struct Onboarding { name: Option<String> }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (tell, mut told) = tokio::sync::mpsc::unbounded_channel();
    /// let onboarding = Sessions::<Onboarding>::builder(MemoryStore::new())
    ///     .namespace("onboarding")
    ///     .ttl(Ttl::idle(Duration::from_secs(30 * 60)))
    ///     .on_expire(move |expired| {
    ///         let tell = tell.clone();
    ///         async move {
    ///             // The bot's sender: "your form expired, /onboard to start again".
    ///             let _ = tell.send(expired.key);
    ///         }
    ///     })
    ///     .expiry_grace(Duration::from_secs(6 * 3600))
    ///     .build()?;
    /// let _sweeper = onboarding.spawn_sweeper(Duration::from_secs(60))?;
    /// # drop(told.try_recv());
    /// # Ok::<(), bot_sessions::SessionError>(())
    /// # }).unwrap();
    /// ```
    pub fn on_expire<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Expired<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_expire = Some(Arc::new(move |expired| Box::pin(hook(expired))));
        self
    }

    /// How long an expired session stays in the store for the
    /// [`on_expire`](Self::on_expire) hook (default [`DEFAULT_EXPIRY_GRACE`]; between
    /// [`MIN_EXPIRY_GRACE`] and [`MAX_EXPIRY_GRACE`]). Only used with a hook. Sweep well
    /// within it. Processes sharing a namespace should use the same grace (a session's
    /// expiry never depends on it, but how long it waits for its hook does).
    pub fn expiry_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Puts a [near cache](crate::store::near_cache) of its own in front of the store
    /// for these sessions: an update or open of a key this cache holds skips the load
    /// and goes straight to compare-and-set (one round trip instead of two); a stale
    /// copy costs a failed compare-and-set, a load and a retry. See the guide's
    /// [near cache](crate::guide::near_cache) chapter for when it pays.
    ///
    /// Without this, sessions built on a store that *is* a
    /// [`NearCache`] (shared by several namespaces) use that one, and sessions built on
    /// a store that asks for one ([`Store::default_near_cache`](crate::Store::default_near_cache):
    /// the SQLite store, by default) get one of their own with the store's bounds.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::store::{memory::MemoryStore, near_cache::CacheConfig};
    /// use bot_sessions::Sessions;
    ///
    /// #[derive(Default, serde::Serialize, serde::Deserialize)]
    /// struct Cart { items: Vec<String> }
    ///
    /// let carts = Sessions::<Cart>::builder(MemoryStore::without_sweeper())
    ///     .namespace("cart")
    ///     .near_cache(CacheConfig::default().max_entries(50_000))
    ///     .build()?;
    /// assert!(carts.near_cache().is_some());
    /// # Ok::<(), bot_sessions::SessionError>(())
    /// ```
    pub fn near_cache(mut self, config: CacheConfig) -> Self {
        self.near = Near::Own(config);
        self
    }

    /// Uses no near cache, even when the store is a shared [`NearCache`] (writes
    /// still go through it, so it stays coherent) or asks for one by default (SQLite):
    /// every update loads the key first.
    pub fn without_near_cache(mut self) -> Self {
        self.near = Near::Off;
        self
    }

    /// Lets [`Sessions::get`] and [`LazySession`](super::LazySession)s serve a cached
    /// record learned at most `max_age` ago, without a load (default: never; a read is
    /// a read of the store). Within that bound a read may miss another process's
    /// writes, and a delete or forget-user made through another handle than this
    /// store. Needs a near cache.
    pub fn stale_reads(mut self, max_age: Duration) -> Self {
        self.stale_reads = Some(max_age);
        self
    }

    /// Seals every stored value with `ring` (feature `encryption`): authenticated
    /// encryption at rest with the session's key as associated data, new values under
    /// the ring's newest key, values under any key of the ring readable. See
    /// [`encryption`](crate::encryption) and the guide's [production](crate::guide::production) chapter.
    ///
    /// A stored value that does not open (a key the ring lacks, altered bytes, a value
    /// copied from another key, plaintext the ring does not
    /// [accept](crate::encryption::KeyRing::accept_plaintext)) is a
    /// [`SessionError::Decode`] naming the key (its source a
    /// [`SealError`](crate::encryption::SealError), see [`SessionError::seal_error`]),
    /// handled by the [decode policy](Self::on_decode_error) like any bytes that do not
    /// decode. Keys, versions, timestamps, the schema version and the owner stay in
    /// plaintext.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::encryption::KeyRing;
    /// use bot_sessions::{store::memory::MemoryStore, Scope, SessionKey, Sessions};
    ///
    /// #[derive(Default, serde::Serialize, serde::Deserialize)]
    /// struct Profile { email: String }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// // In production: KeyRing::parse(&std::env::var("BOT_SESSIONS_KEYS")?)
    /// let ring = KeyRing::parse(&format!("1={}", "11".repeat(32)))?;
    /// let profiles = Sessions::<Profile>::builder(MemoryStore::new())
    ///     .namespace("profile")
    ///     .encryption(ring)
    ///     .build()?;
    /// let key = SessionKey::new(profiles.namespace().clone(), Scope::User(7));
    /// profiles.update(&key, |p| { p.email = "ada@example.com".into(); Ok::<_, bot_sessions::SessionError>(()) }).await?;
    /// # use bot_sessions::Clock;
    /// let stored = profiles.store().load(&key, bot_sessions::SystemClock.now()).await?.unwrap();
    /// assert_eq!(KeyRing::sealed_with(&stored.value), Some(1));
    /// assert_eq!(profiles.get(&key).await?.unwrap().email, "ada@example.com");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    #[cfg(feature = "encryption")]
    pub fn encryption(mut self, ring: impl Into<Arc<crate::encryption::KeyRing>>) -> Self {
        self.sealer = Sealer::new(ring.into());
        self
    }

    /// Checks the settings and builds.
    ///
    /// # Errors
    ///
    /// [`SessionError::Key`] for a missing or invalid namespace,
    /// [`SessionError::Config`] for a zero retry count, a `transient_for` over 10
    /// minutes, a zero size limit or TTL, an expiry
    /// grace period out of range, a zero near cache bound, or stale reads without a
    /// near cache.
    pub fn build(self) -> Result<Sessions<T>, SessionError> {
        let name = self
            .namespace
            .ok_or_else(|| SessionError::Config("a namespace is required: call .namespace(..)".into()))?;
        let namespace = Namespace::new(&name)?;
        if self.retry.max_attempts == 0 {
            return Err(SessionError::Config("retry.max_attempts must be at least 1".into()));
        }
        if self.retry.transient_for > super::retry::MAX_TRANSIENT_FOR {
            return Err(SessionError::Config(format!(
                "retry.transient_for must be at most {:?}, not {:?}",
                super::retry::MAX_TRANSIENT_FOR,
                self.retry.transient_for
            )));
        }
        self.ttl.check()?;
        if !(MIN_EXPIRY_GRACE..=MAX_EXPIRY_GRACE).contains(&self.grace) {
            return Err(SessionError::Config(format!(
                "expiry_grace must be between {MIN_EXPIRY_GRACE:?} and {MAX_EXPIRY_GRACE:?}, not {:?}",
                self.grace
            )));
        }
        if self.max_size == 0 {
            return Err(SessionError::Config("max_size must be above zero".into()));
        }
        let (store, near) = match self.near {
            Near::FromStore => match (self.store.as_near_cache().cloned(), self.store.default_near_cache()) {
                (None, Some(config)) => own_cache(self.store, config)?,
                (near, _) => (self.store, near),
            },
            Near::Own(config) => own_cache(self.store, config)?,
            Near::Off => (self.store, None),
        };
        if self.stale_reads.is_some() && near.is_none() {
            return Err(SessionError::Config("stale_reads needs a near cache: call .near_cache(..)".into()));
        }
        let obs = Observer::new(store.backend(), namespace.as_str());
        Ok(Sessions {
            inner: Arc::new(Inner {
                store,
                namespace,
                strategy: self.strategy,
                ttl: self.ttl,
                migrations: self.migrations,
                codec: self.codec,
                policy: self.policy,
                max_size: self.max_size,
                retry: self.retry,
                clock: self.clock,
                initial: self.initial,
                on_expire: self.on_expire,
                grace: self.grace,
                locks: KeyLocks::default(),
                near,
                stale_reads: self.stale_reads,
                obs,
                sealer: self.sealer,
            }),
        })
    }
}

/// Turns a store into the shared [`DynStore`] a [`Sessions`] holds.
pub trait IntoDynStore {
    /// The conversion.
    fn into_dyn_store(self) -> DynStore;
}

impl<S: Store> IntoDynStore for S {
    fn into_dyn_store(self) -> DynStore {
        Arc::new(self)
    }
}

impl<S: Store> IntoDynStore for Arc<S> {
    fn into_dyn_store(self) -> DynStore {
        self
    }
}

impl IntoDynStore for DynStore {
    fn into_dyn_store(self) -> DynStore {
        self
    }
}

/// A near cache of its own, bounded by `config`, in front of `store`.
fn own_cache(store: DynStore, config: CacheConfig) -> Result<(DynStore, Option<NearCache>), SessionError> {
    let cache = NearCache::new(store, config).map_err(|e| SessionError::Config(e.to_string()))?;
    Ok((Arc::new(cache.clone()) as DynStore, Some(cache)))
}
