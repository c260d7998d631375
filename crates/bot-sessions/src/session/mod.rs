//! The typed API bot code calls: [`Sessions<T>`].
//!
//! One `Sessions<T>` per session type. It derives keys from updates, loads and decodes
//! (migrating old schemas), runs the handler's change, and saves with compare-and-set,
//! retrying when another process won the race. Inside one process, updates of a key
//! wait for each other on a per-key lock taken before the load.

mod builder;
mod error;
mod guard;
pub(crate) mod locks;
mod migrate;
mod quarantine;
mod retry;
mod save;
mod ttl;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use builder::{DEFAULT_MAX_SIZE, IntoDynStore, SessionsBuilder};
pub use error::SessionError;
pub use guard::{LazySession, SessionGuard};
pub use migrate::Migrations;
pub use quarantine::{Quarantined, list_quarantined};
pub use retry::RetryPolicy;
pub use ttl::Ttl;

use crate::{
    Clock, Codec, Context, DynStore, KeyStrategy, Namespace, Precondition, Record, SessionKey, StoreError, Timestamp,
};
use locks::{KeyLock, KeyLocks};

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
    locks: KeyLocks,
}

/// What a load found, which decides how (and whether) the save writes.
#[derive(Debug, Default)]
struct Base {
    /// The live record's version: the compare-and-set base. `None`: absent.
    version: Option<u64>,
    created_at: Option<Timestamp>,
    /// The stored bytes when they are already what this code would write for an
    /// unchanged value (current schema); `None` forces a write when anything is kept.
    stored: Option<Vec<u8>>,
    /// The encoding of the initial value, when the value started from it.
    initial: Option<Vec<u8>>,
    /// Write even if unchanged (migrated, or refresh-on-read).
    must_write: bool,
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

    /// The store.
    pub fn store(&self) -> &DynStore {
        &self.inner.store
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
        self.update_option(key, |slot| f(slot.get_or_insert_with(|| initial()))).await
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
        let _lock = self.lock(key).await;
        let mut attempt = 1;
        loop {
            let now = self.inner.clock.now();
            let (value, base) = self.load(key, now).await?;
            let mut slot = Some(value);
            let out = f(&mut slot)?;
            match self.save(key, slot.as_ref(), &base, now).await {
                Ok(()) => return Ok(out),
                Err(SessionError::Store(StoreError::Conflict { .. })) if attempt < self.inner.retry.max_attempts => {
                    tokio::time::sleep(self.inner.retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err(SessionError::Store(StoreError::Conflict { .. })) => {
                    return Err(SessionError::Contention { key: key.to_string(), attempts: attempt }.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Loads the session under `key` and holds its in-process lock until the guard is
    /// committed or dropped: a handler-scoped session. See [`SessionGuard`].
    ///
    /// # Errors
    ///
    /// Decode, migration or store errors.
    pub async fn open(&self, key: &SessionKey) -> Result<SessionGuard<T>, SessionError> {
        let lock = self.inner.locks.lock_owned(key.as_str()).await;
        let now = self.inner.clock.now();
        let (value, base) = self.load(key, now).await?;
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
        let _lock = self.lock(key).await;
        let now = self.inner.clock.now();
        let (value, base) = self.load(key, now).await?;
        if base.initial.is_some() {
            return Ok(None);
        }
        if self.inner.ttl.refreshes_on_read() {
            match self.save(key, Some(&value), &base, now).await {
                // Another process wrote the key since our load (which refreshed it too)
                // or deleted it: the value we read was live when read; the refresh is
                // moot, not an error.
                Ok(()) | Err(SessionError::Store(StoreError::Conflict { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(value))
    }

    /// Deletes the session under `key`; returns whether one existed.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn delete(&self, key: &SessionKey) -> Result<bool, SessionError> {
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

    async fn lock(&self, key: &SessionKey) -> KeyLock<'_> {
        self.inner.locks.lock(key.as_str()).await
    }

    fn fresh(&self, key: &SessionKey, previous: Option<&Record>) -> Result<(T, Base), SessionError> {
        let value = (self.inner.initial)();
        let initial = self.encode(key, &value)?;
        let base = Base {
            version: previous.map(|r| r.version),
            created_at: None,
            stored: None,
            initial: Some(initial),
            must_write: false,
        };
        Ok((value, base))
    }

    fn encode(&self, key: &SessionKey, value: &T) -> Result<Vec<u8>, SessionError> {
        self.inner.codec.encode(value).map_err(|source| SessionError::Encode { key: key.to_string(), source })
    }

    /// Decodes a record, migrating it to the current schema.
    fn decode(&self, key: &SessionKey, record: &Record) -> Result<T, SessionError> {
        let codec = self.inner.codec;
        let decode_err = |source| SessionError::Decode { key: key.to_string(), source };
        if record.schema_version == self.inner.migrations.current() {
            return codec.decode(&record.value).map_err(decode_err);
        }
        let old: serde_json::Value = codec.decode(&record.value).map_err(decode_err)?;
        let new = self
            .inner
            .migrations
            .apply(record.schema_version, old)
            .map_err(|(from, source)| SessionError::Migration { key: key.to_string(), from, source })?;
        // The stored bytes decoded and the steps ran: a result that does not fit `T` is a
        // migration bug, not bad bytes, so no decode policy may discard the record.
        serde_json::from_value(new).map_err(|e| SessionError::Migration {
            key: key.to_string(),
            from: record.schema_version,
            source: format!("the migrated value does not fit the session type: {e}").into(),
        })
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<(T, Base), SessionError> {
        let Some(record) = self.inner.store.load(key, now).await? else {
            return self.fresh(key, None);
        };
        let supported = self.inner.migrations.current();
        if record.schema_version > supported {
            return Err(SessionError::NewerSchema { key: key.to_string(), found: record.schema_version, supported });
        }
        match self.decode(key, &record) {
            Ok(_) if self.expired_by_ttl(&record, now) => {
                // Live for the store but past this code's absolute TTL (the TTL was
                // shortened since it was written): it is over. Remove it so the new
                // session gets a new creation time; a conflict means another process
                // moved it on, and our save's compare-and-set will notice.
                match self.inner.store.delete(key, Precondition::Version(record.version), now).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => self.fresh(key, None),
                    Err(e) => Err(e.into()),
                }
            }
            Ok(value) => {
                let current = record.schema_version == supported;
                let base = Base {
                    version: Some(record.version),
                    created_at: Some(record.created_at),
                    must_write: !current || self.inner.ttl.refreshes_on_read(),
                    stored: current.then_some(record.value),
                    initial: None,
                };
                Ok((value, base))
            }
            Err(e @ SessionError::Decode { .. }) => match self.inner.policy {
                DecodePolicy::Fail => Err(e),
                DecodePolicy::Reset => {
                    tracing::warn!(key = %key, error = %e, "session does not decode; resetting it");
                    self.fresh(key, Some(&record))
                }
                DecodePolicy::Quarantine => {
                    quarantine::keep(self.inner.store.as_ref(), key, &record, now).await?;
                    tracing::warn!(key = %key, error = %e, "session does not decode; quarantined it and starting over");
                    self.fresh(key, Some(&record))
                }
            },
            Err(e) => Err(e),
        }
    }

    /// Whether `record` is past this code's absolute TTL (which may be shorter than the
    /// one it was written with).
    fn expired_by_ttl(&self, record: &Record, now: Timestamp) -> bool {
        matches!(self.inner.ttl, Ttl::Absolute(_)) && now.is_expired(self.inner.ttl.expires_at(record.created_at, now))
    }
}
