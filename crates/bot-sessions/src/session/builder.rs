//! Configuring a [`Sessions`] value.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DecodePolicy, Inner, Migrations, RetryPolicy, SessionError, Sessions, Ttl, locks::KeyLocks};
use crate::{Clock, Codec, DynStore, KeyStrategy, Namespace, Store, SystemClock};

/// The default size limit of an encoded session: 1 MiB.
pub const DEFAULT_MAX_SIZE: usize = 1 << 20;

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

    /// Compare-and-set retry (default: 32 attempts, 1 ms to 100 ms jittered backoff).
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

    /// Checks the settings and builds.
    ///
    /// # Errors
    ///
    /// [`SessionError::Key`] for a missing or invalid namespace,
    /// [`SessionError::Config`] for a zero retry count, size limit or TTL.
    pub fn build(self) -> Result<Sessions<T>, SessionError> {
        let name = self
            .namespace
            .ok_or_else(|| SessionError::Config("a namespace is required: call .namespace(..)".into()))?;
        let namespace = Namespace::new(&name)?;
        if self.retry.max_attempts == 0 {
            return Err(SessionError::Config("retry.max_attempts must be at least 1".into()));
        }
        if matches!(self.ttl, Ttl::Idle { idle: d, .. } | Ttl::Absolute(d) if d.is_zero()) {
            return Err(SessionError::Config("a TTL must be above zero (use Ttl::None for no expiry)".into()));
        }
        if self.max_size == 0 {
            return Err(SessionError::Config("max_size must be above zero".into()));
        }
        Ok(Sessions {
            inner: Arc::new(Inner {
                store: self.store,
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
                locks: KeyLocks::default(),
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
