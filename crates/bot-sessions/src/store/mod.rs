//! The [`Store`] trait: the only thing a backend implements.
//!
//! Each backend lives in its own module and only translates these operations to its
//! backend; retries, TTL arithmetic, migrations and locking live above, in
//! [`session`](crate::session).

mod error;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod url;

use std::sync::Arc;

pub use error::{BoxError, StoreError};
pub use url::open;

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
/// Implementors: run the conformance suite (`bot_sessions::conformance_tests!`, feature
/// `testing`) against your store.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Loads the live record under `key`.
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError>;

    /// Writes `write` under `key` if `precondition` holds, and returns the new version
    /// (1 on create, previous + 1 otherwise). The store keeps `created_at` of a live
    /// record and indexes the key's user id for [`Store::forget_user`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the precondition fails; nothing is written.
    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Deletes the record under `key` if `precondition` holds. Returns whether a live
    /// record was deleted. Deleting an absent key with [`Precondition::Any`] or
    /// [`Precondition::Absent`] is `Ok(false)`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the precondition fails.
    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError>;

    /// Deletes every record of `user_id` in every namespace (found through a user
    /// index, not a scan). Returns how many live records went.
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

    /// Counts live records, in one namespace or in all.
    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError>;
}

/// A shared, type-erased store: what [`Sessions`](crate::Sessions) and the operator
/// tool hold, so several backends can live in one program.
pub type DynStore = Arc<dyn Store>;
