//! Loading a session: the one place stored bytes become a typed value (decoded,
//! migrated, expired or handed to the decode policy).

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Base, DecodePolicy, Meta, SessionError, Sessions, Ttl, Via, header, quarantine};
use crate::codec::CodecError;
use crate::{Record, SessionKey, Timestamp};

/// What a stored record turned into without the store's help, or the rare step that
/// needs it.
pub(super) enum Loaded<T> {
    Ready(T, Base),
    /// Live for the store but over for this session type: claim its expiry first.
    Expired(Record, Meta),
    /// Does not decode, and the policy keeps it aside.
    Quarantine(Record, SessionError),
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The initial value, and a base that writes it only once it changes.
    pub(super) fn fresh(&self, key: &SessionKey, previous: Option<&Record>) -> Result<(T, Base), SessionError> {
        let value = (self.inner.initial)();
        let initial = self.encode(key, &value)?;
        let base = Base {
            version: previous.map(|r| r.version),
            created_at: None,
            stored: None,
            initial: Some(initial),
            must_write: false,
            meta: None,
            from_cache: false,
            typed: false,
            queued: None,
        };
        Ok((value, base))
    }

    pub(super) fn encode(&self, key: &SessionKey, value: &T) -> Result<Vec<u8>, SessionError> {
        self.inner.codec.encode(value).map_err(|source| SessionError::Encode { key: key.to_string(), source })
    }

    /// [`encode`](Self::encode) into `buffer` (cleared first), whose allocation it reuses.
    pub(super) fn encode_into(
        &self,
        key: &SessionKey,
        value: &T,
        mut buffer: Vec<u8>,
    ) -> Result<Vec<u8>, SessionError> {
        buffer.clear();
        match self.inner.codec.encode_into(value, &mut buffer) {
            Ok(()) => Ok(buffer),
            Err(source) => Err(SessionError::Encode { key: key.to_string(), source }),
        }
    }

    /// The plaintext of a value stored under `key`: opened when values are sealed (a
    /// value that does not open is a [`SessionError::Decode`], for the decode policy),
    /// the stored bytes themselves otherwise.
    pub(super) fn open_value<'a>(&self, key: &SessionKey, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, SessionError> {
        self.inner.sealer.open(key, stored).map_err(|e| SessionError::Decode {
            key: key.to_string(),
            source: CodecError { codec: "encryption", source: e.into() },
        })
    }

    /// The session's own TTL in a stored record.
    ///
    /// # Errors
    ///
    /// [`SessionError::Decode`]: the value does not open, or its header is damaged.
    pub(super) fn stored_ttl(&self, key: &SessionKey, record: &Record) -> Result<Option<Ttl>, SessionError> {
        let plain = self.open_value(key, &record.value)?;
        let (own, _) = header::split(&plain).map_err(|source| SessionError::Decode { key: key.to_string(), source })?;
        Ok(own)
    }

    /// Decodes an opened value `plain` of schema version `schema` (after its header, if
    /// any), migrating it to the current schema.
    pub(super) fn decode(&self, key: &SessionKey, schema: u32, plain: &[u8]) -> Result<T, SessionError> {
        let codec = self.inner.codec;
        let decode_err = |source| SessionError::Decode { key: key.to_string(), source };
        let (_, body) = header::split(plain).map_err(decode_err)?;
        if schema == self.inner.migrations.current() {
            return codec.decode(body).map_err(decode_err);
        }
        let old: serde_json::Value = codec.decode(body).map_err(decode_err)?;
        let new = self.inner.migrations.apply(schema, old).map_err(|(from, source)| SessionError::Migration {
            key: key.to_string(),
            from,
            source,
        })?;
        // The stored bytes decoded and the steps ran: a result that does not fit `T` is a
        // migration bug, not bad bytes, so no decode policy may discard the record.
        serde_json::from_value(new).map_err(|e| SessionError::Migration {
            key: key.to_string(),
            from: schema,
            source: format!("the migrated value does not fit the session type: {e}").into(),
        })
    }

    /// Refuses a record written by newer code.
    pub(super) fn check_schema(&self, key: &SessionKey, record: &Record) -> Result<(), SessionError> {
        let supported = self.inner.migrations.current();
        if record.schema_version > supported {
            return Err(SessionError::NewerSchema { key: key.to_string(), found: record.schema_version, supported });
        }
        Ok(())
    }

    /// Loads and decodes the session under `key`. With `via` [`Via::Write`] or
    /// [`Via::Read`], a record from the near cache may stand in for the load (see
    /// [`Via`]); a cached record that does not decode is loaded again from the store
    /// before any decode policy applies.
    pub(super) async fn load(&self, key: &SessionKey, now: Timestamp, via: Via) -> Result<(T, Base), SessionError> {
        if let Some((record, opened)) = self.cached(key, now, via) {
            match self.load_record(key, Some(record), opened, now, true).await {
                Err(
                    SessionError::Decode { .. } | SessionError::NewerSchema { .. } | SessionError::Migration { .. },
                ) => {
                    // Judge bad data on what the store holds, not on a copy.
                }
                other => return other,
            }
        }
        let record = match self.inner.store.in_process() {
            Some(local) => local.load_now(key, now)?,
            // A read is safe to repeat: a connection reset or a server restarting
            // costs a retry (within the policy's time), not the user an error.
            None => self.inner.retry.run_transient(|| self.inner.store.load(key, now)).await?,
        };
        self.load_record(key, record, None, now, false).await
    }

    /// The near cache's record of `key`, where `via` allows one, with its value opened
    /// when values are sealed (so it is opened once per load).
    fn cached(&self, key: &SessionKey, now: Timestamp, via: Via) -> Option<(Record, Option<Vec<u8>>)> {
        let near = self.inner.near.as_ref()?;
        let record = match via {
            Via::Store => None,
            Via::Write => near.cached(key, now, None),
            Via::Read => near.cached(key, now, Some(self.inner.stale_reads?)),
        }?;
        // Over for this session type (its own TTL, or a hook's grace period): the store
        // decides, and the expiry is claimed on what it holds. A value that does not open
        // is judged by the namespace's TTL here, and reported by the decode (which sends
        // the load on to the store).
        let plain = self.open_value(key, &record.value).ok();
        let own = plain.as_deref().and_then(|p| header::split(p).ok()).and_then(|(own, _)| own);
        if now.is_expired(self.meta_of(&record, own).expires_at) {
            return None;
        }
        let opened = match plain {
            Some(Cow::Owned(opened)) => Some(opened),
            _ => None,
        };
        Some((record, opened))
    }

    pub(super) async fn load_record(
        &self,
        key: &SessionKey,
        record: Option<Record>,
        opened: Option<Vec<u8>>,
        now: Timestamp,
        from_cache: bool,
    ) -> Result<(T, Base), SessionError> {
        let rare = match self.decode_record(key, record, opened, now, from_cache)? {
            Loaded::Ready(value, base) => return Ok((value, base)),
            rare => rare,
        };
        // Boxed: the rare steps stay out of every load's future, which `update` holds
        // (and moves) whole.
        Box::pin(self.load_rare(key, rare, now)).await
    }

    /// The store steps of [`Loaded::Expired`] and [`Loaded::Quarantine`].
    async fn load_rare(&self, key: &SessionKey, rare: Loaded<T>, now: Timestamp) -> Result<(T, Base), SessionError> {
        match rare {
            Loaded::Ready(value, base) => Ok((value, base)),
            Loaded::Expired(record, meta) => {
                self.expire_met(key, &record, meta, now).await?;
                self.fresh(key, None)
            }
            Loaded::Quarantine(record, e) => {
                quarantine::keep(self.inner.store.as_ref(), key, &record, now).await?;
                tracing::warn!(key = %key, error = %e, "session does not decode; quarantined it and starting over");
                self.fresh(key, Some(&record))
            }
        }
    }

    /// [`load_record`](Self::load_record) up to the first step that needs the store.
    pub(super) fn decode_record(
        &self,
        key: &SessionKey,
        record: Option<Record>,
        opened: Option<Vec<u8>>,
        now: Timestamp,
        from_cache: bool,
    ) -> Result<Loaded<T>, SessionError> {
        let Some(record) = record else {
            let (value, base) = self.fresh(key, None)?;
            return Ok(Loaded::Ready(value, base));
        };
        self.check_schema(key, &record)?;
        // Opened once, for the header and the decode. A value that does not open or a
        // damaged header is bad bytes: the decode below reports it and the policy applies.
        let plain = match opened {
            Some(opened) => Ok(Cow::Owned(opened)),
            None => self.open_value(key, &record.value),
        };
        let own = plain.as_ref().ok().and_then(|p| header::split(p).ok()).and_then(|(own, _)| own);
        let meta = self.meta_of(&record, own);
        if now.is_expired(meta.expires_at) {
            // Live for the store (the grace period of an `on_expire` hook, or a TTL
            // shortened since it was written) but over for this session type. Claim it
            // (its hook runs if we win); a lost claim means another process ended or
            // moved it on, and our save's compare-and-set will notice.
            drop(plain);
            return Ok(Loaded::Expired(record, meta));
        }
        let decoded = plain.and_then(|plain| {
            let value = self.decode(key, record.schema_version, &plain)?;
            // A sealed value's plaintext; `None`: the stored bytes are the plaintext.
            let opened = match plain {
                Cow::Owned(opened) => Some(opened),
                Cow::Borrowed(_) => None,
            };
            Ok((value, opened))
        });
        match decoded {
            Ok((value, opened)) => {
                let current = record.schema_version == self.inner.migrations.current();
                let base = Base {
                    version: Some(record.version),
                    created_at: Some(record.created_at),
                    must_write: !current || own.unwrap_or(self.inner.ttl).refreshes_on_read(),
                    stored: current.then(|| opened.unwrap_or(record.value)),
                    initial: None,
                    meta: Some(meta),
                    from_cache,
                    typed: false,
                    queued: None,
                };
                Ok(Loaded::Ready(value, base))
            }
            // A cached copy that does not decode: the caller loads from the store.
            Err(e @ SessionError::Decode { .. }) if from_cache => Err(e),
            Err(e @ SessionError::Decode { .. }) => match self.inner.policy {
                DecodePolicy::Fail => Err(e),
                DecodePolicy::Reset => {
                    tracing::warn!(key = %key, error = %e, "session does not decode; resetting it");
                    let (value, base) = self.fresh(key, Some(&record))?;
                    Ok(Loaded::Ready(value, base))
                }
                DecodePolicy::Quarantine => Ok(Loaded::Quarantine(record, e)),
            },
            Err(e) => Err(e),
        }
    }
}
