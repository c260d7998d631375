//! [`Sessions::set`]: writing a whole value without loading the old one.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::save::Op;
use super::{SessionError, Sessions, Ttl};
use crate::{Precondition, SessionKey, StoreError, Write};

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Replaces the session under `key` with `value`, whatever is stored (Nadia's
    /// `put`): the old value is never decoded, so this also works over bytes that do
    /// not decode or a record of another schema, and nothing of the old value is kept.
    ///
    /// - The session's own TTL, if it had one, is dropped (the session type's applies);
    ///   an idle TTL restarts; a live session keeps its creation time (and so an
    ///   absolute deadline).
    /// - `value` is stored even when it equals the initial value (it is an explicit
    ///   write; use [`delete`](Self::delete) to remove a session).
    /// - It takes the key's in-process lock, so it is ordered with this process's
    ///   other updates of the key.
    ///
    /// Cost: one unconditional write (`Precondition::Any`). When the exact expiry
    /// depends on what is stored (an absolute TTL: the creation time; an
    /// [`on_expire`](super::SessionsBuilder::on_expire) hook: an expired session must be
    /// claimed and announced, not silently overwritten), it first reads the record's
    /// metadata (not its value) and writes with compare-and-set, retrying on conflict.
    ///
    /// # Errors
    ///
    /// [`SessionError::TooLarge`] (before anything is sent), encode and store errors,
    /// [`SessionError::Contention`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Scope, SessionKey, Sessions};
    ///
    /// #[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    /// struct Prefs { lang: String }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let prefs = Sessions::<Prefs>::builder(MemoryStore::new()).namespace("prefs").build()?;
    /// let key = SessionKey::new(prefs.namespace().clone(), Scope::User(7));
    /// prefs.set(&key, &Prefs { lang: "de".into() }).await?;
    /// assert_eq!(prefs.get(&key).await?, Some(Prefs { lang: "de".into() }));
    /// # Ok::<(), bot_sessions::SessionError>(())
    /// # }).unwrap();
    /// ```
    pub async fn set(&self, key: &SessionKey, value: &T) -> Result<(), SessionError> {
        self.inner.obs.run(crate::observe::Op::Set, || self.set_unobserved(key, value)).await
    }

    async fn set_unobserved(&self, key: &SessionKey, value: &T) -> Result<(), SessionError> {
        let bytes = self.encode(key, value)?;
        if bytes.len() > self.inner.max_size {
            return Err(SessionError::TooLarge { key: key.to_string(), size: bytes.len(), limit: self.inner.max_size });
        }
        let bytes = self.seal_value(key, bytes)?;
        let schema = self.inner.migrations.current();
        let _lock = self.lock(key).await;
        if self.inner.on_expire.is_none() && !matches!(self.inner.ttl, Ttl::Absolute(_)) {
            // The expiry depends only on `now`, and nothing needs announcing.
            let now = self.inner.clock.now();
            let write = Write::new(&bytes, schema, self.store_expiry(None, now, now));
            return self.apply(key, Op::Write(write), Precondition::Any, now).await;
        }
        let mut attempt = 1;
        loop {
            let now = self.inner.clock.now();
            let (pre, created_at) = match self.inner.store.load(key, now).await? {
                None => (Precondition::Absent, now),
                Some(record) => {
                    let own = self.stored_ttl(key, &record).unwrap_or(None);
                    let meta = self.meta_of(&record, own);
                    if now.is_expired(meta.expires_at) {
                        self.expire_met(key, &record, meta, now).await?;
                        (Precondition::Absent, now)
                    } else {
                        (Precondition::Version(record.version), record.created_at)
                    }
                }
            };
            let write = Write::new(&bytes, schema, self.store_expiry(None, created_at, now));
            match self.apply(key, Op::Write(write), pre, now).await {
                Err(SessionError::Store(StoreError::Conflict { .. })) if attempt < self.inner.retry.max_attempts => {
                    self.inner.obs.conflict(Some(attempt));
                    self.inner.retry.pause_after_conflict(attempt).await;
                    attempt += 1;
                }
                Err(SessionError::Store(StoreError::Conflict { .. })) => {
                    self.inner.obs.conflict(None);
                    return Err(SessionError::Contention { key: key.to_string(), attempts: attempt });
                }
                other => return other,
            }
        }
    }
}
