//! A session's times and version ([`Meta`]), and the expiry arithmetic that decides
//! when a stored record is over.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{SessionError, Sessions, Ttl};
use crate::{Record, SessionKey, Timestamp};

/// A stored session's times and version, as seen through its session type.
///
/// # Examples
///
/// ```
/// use bot_sessions::{store::memory::MemoryStore, ManualClock, Scope, SessionKey, Sessions, Ttl};
/// use std::{sync::Arc, time::Duration};
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Form { name: Option<String> }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let clock = ManualClock::new(1_000);
/// let forms = Sessions::<Form>::builder(MemoryStore::new())
///     .namespace("form")
///     .ttl(Ttl::idle(Duration::from_secs(60)))
///     .clock(Arc::new(clock.clone()))
///     .build()?;
/// let key = SessionKey::new(forms.namespace().clone(), Scope::User(7));
/// assert!(forms.meta(&key).await?.is_none());
///
/// forms.update(&key, |f| { f.name = Some("Ada".into()); Ok::<_, bot_sessions::SessionError>(()) }).await?;
/// clock.advance(Duration::from_secs(10));
/// forms.update(&key, |f| { f.name = Some("Ada L.".into()); Ok::<_, bot_sessions::SessionError>(()) }).await?;
///
/// let meta = forms.meta(&key).await?.unwrap();
/// assert_eq!(meta.created_at.as_millis(), 1_000);
/// assert_eq!(meta.updated_at.as_millis(), 11_000);
/// assert_eq!(meta.expires_at.map(|t| t.as_millis()), Some(71_000));
/// assert_eq!(meta.ttl, None); // the session type's TTL applies
/// # Ok::<(), bot_sessions::SessionError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Meta {
    /// When the session was first written.
    pub created_at: Timestamp,
    /// When it was last written.
    pub updated_at: Timestamp,
    /// When it expires (`None`: never). With an
    /// [`on_expire`](super::SessionsBuilder::on_expire) hook the store keeps the record
    /// for the grace period after this, for the hook; to the typed API it is gone.
    pub expires_at: Option<Timestamp>,
    /// The record's version (opaque; changes on every write).
    pub version: u64,
    /// The session's own TTL, when a handler gave it one
    /// ([`SessionGuard::set_ttl`](super::SessionGuard::set_ttl)); `None`: the session
    /// type's.
    pub ttl: Option<Ttl>,
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The times and version of the session under `key`; `None` when there is none
    /// (or it has expired). Reads no value and writes nothing (it does not refresh an
    /// idle TTL, even one refreshed on read).
    ///
    /// # Errors
    ///
    /// Store errors; [`SessionError::Decode`] when the stored value's header is damaged
    /// (or, with encryption, the value does not open).
    pub async fn meta(&self, key: &SessionKey) -> Result<Option<Meta>, SessionError> {
        self.inner.obs.run(crate::observe::Op::Meta, || self.meta_unobserved(key)).await
    }

    async fn meta_unobserved(&self, key: &SessionKey) -> Result<Option<Meta>, SessionError> {
        let now = self.inner.clock.now();
        let Some(record) = self.inner.store.load(key, now).await? else {
            return Ok(None);
        };
        let own = self.stored_ttl(key, &record)?;
        let meta = self.meta_of(&record, own);
        Ok((!now.is_expired(meta.expires_at)).then_some(meta))
    }

    /// The meta of `record`, whose own TTL is `own`.
    ///
    /// The expiry is computed from the record's own times and the TTL that applies to
    /// it (its own, or the session type's), capped by the store-level expiry. So it
    /// does not depend on the grace period the record was written with: turning the
    /// hook on or off, or changing the grace, never moves a session's expiry (the
    /// store-level expiry of a record written without a hook is its logical one).
    pub(super) fn meta_of(&self, record: &Record, own: Option<Ttl>) -> Meta {
        let ttl = own.unwrap_or(self.inner.ttl);
        let computed = ttl.expires_at(record.created_at, record.updated_at);
        let expires_at = match (computed, record.expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Meta {
            created_at: record.created_at,
            updated_at: record.updated_at,
            expires_at,
            version: record.version,
            ttl: own,
        }
    }

    /// The store-level expiry of a session created at `created_at`, written at `now`,
    /// whose own TTL is `own`: its logical expiry, plus the grace period when there is
    /// an `on_expire` hook.
    pub(super) fn store_expiry(&self, own: Option<Ttl>, created_at: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let logical = own.unwrap_or(self.inner.ttl).expires_at(created_at, now);
        match self.inner.on_expire {
            Some(_) => logical.map(|t| t.saturating_add(self.inner.grace)),
            None => logical,
        }
    }
}
