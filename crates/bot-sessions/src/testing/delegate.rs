//! A store for tests that forwards every operation to another store, except the ones the
//! test overrides: [`Delegate`] and [`Overrides`].
//!
//! A test that needs one odd operation (a write whose reply is lost, a load that counts
//! itself, a backend that is down) writes only that operation, instead of re-delegating
//! the whole [`Store`] trait by hand.
//!
//! # Examples
//!
//! ```
//! use bot_sessions::store::memory::MemoryStore;
//! use bot_sessions::testing::delegate::{Delegate, Overrides};
//! use bot_sessions::{Precondition, SessionKey, Store, StoreError, Timestamp, Write};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! /// Counts writes; every other operation goes straight to the inner store.
//! #[derive(Default)]
//! struct CountWrites(AtomicUsize);
//!
//! #[async_trait::async_trait]
//! impl Overrides for CountWrites {
//!     async fn write(
//!         &self, inner: &dyn Store, key: &SessionKey, w: Write<'_>, p: Precondition, now: Timestamp,
//!     ) -> Result<u64, StoreError> {
//!         self.0.fetch_add(1, Ordering::SeqCst);
//!         inner.write(key, w, p, now).await
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = Delegate::new(MemoryStore::without_sweeper(), CountWrites::default());
//! let key: SessionKey = "counter/chat:1".parse()?;
//! store.write(&key, Write::new(b"1", 1, None), Precondition::Absent, Timestamp(0)).await?;
//! assert_eq!(store.0.load(Ordering::SeqCst), 1); // the overrides, through Deref
//! assert!(store.load(&key, Timestamp(0)).await?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::ops::Deref;

use crate::session::IntoDynStore;
use crate::{DynStore, Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

/// The operations a [`Delegate`] lets a test replace. Every method has a default that
/// forwards to `inner`, the wrapped store; override the ones the test is about.
#[async_trait::async_trait]
pub trait Overrides: Send + Sync + 'static {
    /// [`Store::load`].
    async fn load(&self, inner: &dyn Store, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        inner.load(key, now).await
    }

    /// [`Store::write`].
    async fn write(
        &self,
        inner: &dyn Store,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        inner.write(key, write, precondition, now).await
    }

    /// [`Store::write_over`]. The default goes through [`Overrides::write`] (the plain
    /// compare-and-set), so a test that overrides `write` sees every write.
    async fn write_over(
        &self,
        inner: &dyn Store,
        key: &SessionKey,
        write: Write<'_>,
        previous: &Record,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(inner, key, write, Precondition::Version(previous.version), now).await
    }

    /// [`Store::recent_versions`].
    async fn recent_versions(
        &self,
        inner: &dyn Store,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<Vec<u64>>, StoreError> {
        inner.recent_versions(key, now).await
    }

    /// [`Store::delete`].
    async fn delete(
        &self,
        inner: &dyn Store,
        key: &SessionKey,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        inner.delete(key, precondition, now).await
    }

    /// [`Store::forget_user`].
    async fn forget_user(&self, inner: &dyn Store, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        inner.forget_user(user_id, now).await
    }

    /// [`Store::scan`].
    async fn scan(
        &self,
        inner: &dyn Store,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        inner.scan(namespace, cursor, limit, now).await
    }

    /// [`Store::purge_expired`].
    async fn purge_expired(&self, inner: &dyn Store, now: Timestamp) -> Result<u64, StoreError> {
        inner.purge_expired(now).await
    }

    /// [`Store::count`].
    async fn count(&self, inner: &dyn Store, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        inner.count(namespace, now).await
    }

    /// [`Store::namespaces`].
    async fn namespaces(&self, inner: &dyn Store, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        inner.namespaces(now).await
    }

    /// [`Store::backend`]: the inner store's name by default.
    fn backend(&self, inner: &dyn Store) -> &'static str {
        inner.backend()
    }
}

/// No overrides: a plain forwarding store (a store that is not the memory store's
/// in-process fast path, for instance).
impl Overrides for () {}

/// A [`Store`] that forwards to `inner` through `O`'s [`Overrides`]. It derefs to `O`,
/// so a test reads its counters and switches as fields of the store.
///
/// It never offers the inner store's in-process fast path
/// ([`Store::in_process`]): every operation goes through the overrides.
pub struct Delegate<O> {
    inner: DynStore,
    overrides: O,
}

impl<O: Overrides> Delegate<O> {
    /// `inner` with `overrides` in front of it.
    pub fn new(inner: impl IntoDynStore, overrides: O) -> Self {
        Delegate { inner: inner.into_dyn_store(), overrides }
    }

    /// The wrapped store (to write behind the overrides' back, as another process would).
    pub fn inner(&self) -> &DynStore {
        &self.inner
    }
}

impl<O> Deref for Delegate<O> {
    type Target = O;

    fn deref(&self) -> &O {
        &self.overrides
    }
}

#[async_trait::async_trait]
impl<O: Overrides> Store for Delegate<O> {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.overrides.load(&*self.inner, key, now).await
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.overrides.write(&*self.inner, key, write, precondition, now).await
    }

    async fn write_over(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        previous: &Record,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.overrides.write_over(&*self.inner, key, write, previous, now).await
    }

    async fn recent_versions(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Vec<u64>>, StoreError> {
        self.overrides.recent_versions(&*self.inner, key, now).await
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        self.overrides.delete(&*self.inner, key, precondition, now).await
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.overrides.forget_user(&*self.inner, user_id, now).await
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        self.overrides.scan(&*self.inner, namespace, cursor, limit, now).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.overrides.purge_expired(&*self.inner, now).await
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.overrides.count(&*self.inner, namespace, now).await
    }

    async fn namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        self.overrides.namespaces(&*self.inner, now).await
    }

    fn backend(&self) -> &'static str {
        self.overrides.backend(&*self.inner)
    }
}
