//! Saving a session: the one place a typed value becomes a store write, and where a
//! write whose outcome is unknown is resolved before anything is retried.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Base, SessionError, Sessions, Ttl, header};
use crate::store::TypedValue;
use crate::{Precondition, SessionKey, StoreError, Timestamp, Write, new_version};

/// What a save sends to the store.
pub(super) enum Op<'a> {
    Write(Write<'a>),
    Delete,
}

/// What a save comes to, decided before anything is sent.
pub(super) enum Plan {
    /// Delete what the base found (nothing, if it found nothing).
    Delete,
    /// Nothing changed: nothing to send (a cached base is checked). The bytes that are
    /// stored already.
    Unchanged(Vec<u8>),
    /// Write `bytes`, expiring at `expires_at`, if `precondition` holds.
    Write { bytes: Vec<u8>, expires_at: Option<crate::Timestamp>, precondition: Precondition },
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Saves `value` (`None`: delete) with the session's own TTL `own` (`None`: the
    /// session type's) over what `base` found.
    ///
    /// `Ok` means the change landed (or nothing needed writing);
    /// [`StoreError::Conflict`] means it certainly did not; an ambiguous store error
    /// is resolved here (see [`Sessions::resolve`]), so it comes back only when the
    /// outcome stays unknown.
    pub(super) async fn save(
        &self,
        key: &SessionKey,
        value: Option<&T>,
        own: Option<Ttl>,
        base: &Base,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        let plan = self.plan(key, value, own, base, now, Vec::new())?;
        self.carry_out(key, plan, base, now, None).await
    }

    /// Sends what `plan` says. A write goes through the in-process store's typed side
    /// when there is a value to keep there (`typed`) or the base was loaded typed (its
    /// stored bytes were not read, so the store compares).
    pub(super) async fn carry_out(
        &self,
        key: &SessionKey,
        plan: Plan,
        base: &Base,
        now: Timestamp,
        typed: Option<TypedValue>,
    ) -> Result<(), SessionError> {
        match plan {
            Plan::Delete => self.delete_base(key, base, now).await,
            Plan::Unchanged(_) => self.check_cached(key, base, now).await,
            Plan::Write { bytes, expires_at, precondition } => {
                let write = Write::new(&bytes, self.inner.migrations.current(), expires_at);
                if base.typed || typed.is_some() {
                    return self.write_typed(key, write, precondition, base, typed, now);
                }
                self.apply(key, Op::Write(write), precondition, now).await
            }
        }
    }

    /// A write through the in-process store's typed side, keeping `typed`; unchanged
    /// bytes over a typed `base` write nothing.
    pub(super) fn write_typed(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        base: &Base,
        typed: Option<TypedValue>,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        let Some(local) = self.inner.store.in_process() else {
            // Only a base loaded from an in-process store is typed.
            return Err(SessionError::Config("a typed session base without an in-process store".into()));
        };
        let unless_same = base.typed && !base.must_write;
        // The memory store never leaves an outcome unknown, so no resolve step here.
        local.write_typed(key, write, precondition, now, typed, unless_same)?;
        Ok(())
    }

    /// What saving `value` (`None`: delete) with the own TTL `own` over `base` comes to;
    /// the value is encoded into `buffer`.
    pub(super) fn plan(
        &self,
        key: &SessionKey,
        value: Option<&T>,
        own: Option<Ttl>,
        base: &Base,
        now: Timestamp,
        buffer: Vec<u8>,
    ) -> Result<Plan, SessionError> {
        if base.meta.as_ref().is_some_and(|m| now.is_expired(m.expires_at)) {
            // Expired since it was loaded (a guard held past the expiry): what the store
            // says without an expiry hook's grace period, so it means the same with one.
            return Err(StoreError::Conflict { key: key.to_string() }.into());
        }
        let Some(value) = value else {
            return Ok(Plan::Delete);
        };
        if let Some(ttl) = own {
            ttl.check()?;
        }
        let body = self.encode_into(key, value, buffer)?;
        let size = body.len() + if own.is_some() { header::LEN } else { 0 };
        if size > self.inner.max_size {
            return Err(SessionError::TooLarge { key: key.to_string(), size, limit: self.inner.max_size });
        }
        if base.initial.as_ref() == Some(&body) {
            // An untouched initial value is never stored (whatever TTL it was given); a
            // reset record goes away.
            return Ok(Plan::Delete);
        }
        let bytes = header::join(own, body);
        // Compared in plaintext: sealing draws a fresh nonce every time.
        if !base.must_write && base.stored.as_ref() == Some(&bytes) {
            return Ok(Plan::Unchanged(bytes));
        }
        let bytes = self.seal_value(key, bytes)?;
        let created_at = base.created_at.unwrap_or(now);
        let expires_at = self.store_expiry(own, created_at, now);
        let precondition = base.version.map_or(Precondition::Absent, Precondition::Version);
        Ok(Plan::Write { bytes, expires_at, precondition })
    }

    /// The bytes to store for the plaintext `bytes` (sealed when encryption is on).
    pub(super) fn seal_value(&self, key: &SessionKey, bytes: Vec<u8>) -> Result<Vec<u8>, SessionError> {
        self.inner.sealer.seal(key, bytes).map_err(|e| SessionError::Encode {
            key: key.to_string(),
            source: crate::codec::CodecError { codec: "encryption", source: e.into() },
        })
    }

    /// Nothing to write: fine for a loaded base; for a cached one, the caller's result
    /// rests on the copy, so a load checks the version is still the stored one (a
    /// conflict if not, which makes `update` run again on the fresh record).
    pub(super) async fn check_cached(&self, key: &SessionKey, base: &Base, now: Timestamp) -> Result<(), SessionError> {
        if !base.from_cache {
            return Ok(());
        }
        let current = self.inner.store.load(key, now).await?.map(|r| r.version);
        if current == base.version { Ok(()) } else { Err(StoreError::Conflict { key: key.to_string() }.into()) }
    }

    pub(super) async fn delete_base(&self, key: &SessionKey, base: &Base, now: Timestamp) -> Result<(), SessionError> {
        match base.version {
            // Boxed: deletes are rarer than writes, and `save`'s future (held by every
            // `update`) would otherwise hold a second `apply` beside the write's.
            Some(v) => Box::pin(self.apply(key, Op::Delete, Precondition::Version(v), now)).await,
            None => Ok(()),
        }
    }

    pub(super) async fn apply(
        &self,
        key: &SessionKey,
        op: Op<'_>,
        pre: Precondition,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        let store = &self.inner.store;
        let sent = match &op {
            Op::Write(w) => match store.in_process() {
                Some(local) => local.write_now(key, *w, pre, now).map(drop),
                None => store.write(key, *w, pre, now).await.map(drop),
            },
            Op::Delete => store.delete(key, pre, now).await.map(drop),
        };
        match sent {
            // Boxed: a rare path kept out of every save's future.
            Err(e) if e.is_ambiguous() => self.inner.obs.ambiguous(Box::pin(self.resolve(key, op, pre, e)).await),
            other => Ok(other?),
        }
    }

    /// The store's answer `outcome` to `write` under `key` over `pre`, as
    /// [`apply`](Self::apply) takes it: an ambiguous outcome is resolved.
    pub(super) async fn answered(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        pre: Precondition,
        outcome: Result<u64, StoreError>,
    ) -> Result<(), SessionError> {
        match outcome {
            Err(e) if e.is_ambiguous() => {
                self.inner.obs.ambiguous(Box::pin(self.resolve(key, Op::Write(write), pre, e)).await)
            }
            other => Ok(other.map(drop)?),
        }
    }

    /// After an ambiguous outcome, finds out whether the change landed, without ever
    /// applying it twice.
    ///
    /// Versions never repeat, so a load tells: our proposed version is there (it
    /// landed); the state the precondition expects is still there (it did not land
    /// yet, and since every later attempt carries the same precondition, at most one
    /// of them can land: the change is sent again with a new version); anything else
    /// (another writer moved the key on) leaves it unknown, reported as the ambiguous
    /// error. A delete counts as landed once the version it removes is gone.
    async fn resolve(
        &self,
        key: &SessionKey,
        op: Op<'_>,
        pre: Precondition,
        mut error: StoreError,
    ) -> Result<(), SessionError> {
        let store = &self.inner.store;
        let retry = self.inner.retry;
        let mut proposed: Vec<u64> = Vec::new();
        let mut op = op;
        // Store failures while resolving are waited out for `transient_for` in all (each
        // store call being bounded by the store's own timeout), not per attempt: with
        // the server down, the outcome is reported unknown in bounded time.
        let deadline = retry.transient_deadline(tokio::time::Instant::now());
        for attempt in 1..=retry.max_attempts {
            if let Op::Write(w) = &op {
                proposed.push(w.version);
            }
            tokio::time::sleep(retry.delay(attempt)).await;
            let now = self.inner.clock.now();
            let current = match store.load(key, now).await {
                Ok(record) => record.map(|r| r.version),
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => continue,
                Err(e) if e.is_retryable() => break,
                Err(e) => return Err(e.into()),
            };
            if current.is_some_and(|v| proposed.contains(&v)) {
                return Ok(());
            }
            let still_expected = match pre {
                Precondition::Version(v) => current == Some(v),
                Precondition::Absent => current.is_none(),
                Precondition::Any => true,
            };
            if let (Op::Delete, Precondition::Version(_)) = (&op, pre)
                && !still_expected
            {
                return Ok(()); // the version it removes is gone
            }
            if !still_expected {
                // Another writer moved the key on; the record's recent versions may
                // still tell.
                match self.settle_by_history(key, pre, &proposed, now).await {
                    Some(settled) => return settled,
                    None => break,
                }
            }
            let sent = match &mut op {
                Op::Write(w) => {
                    w.version = new_version();
                    store.write(key, *w, pre, now).await.map(drop)
                }
                Op::Delete => store.delete(key, pre, now).await.map(drop),
            };
            match sent {
                Ok(()) => return Ok(()),
                Err(e) if e.is_ambiguous() => error = e,
                // Not sent this time; an earlier attempt may still land, so the
                // outcome stays the ambiguous one.
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {}
                Err(e) if e.is_retryable() => break,
                // Someone moved the key on between our load and this send; whether an
                // earlier attempt of ours landed first is checked once more.
                Err(e) if e.is_conflict() => {
                    let now = self.inner.clock.now();
                    if let Ok(Some(r)) = store.load(key, now).await
                        && proposed.contains(&r.version)
                    {
                        return Ok(());
                    }
                    if let Some(settled) = self.settle_by_history(key, pre, &proposed, now).await {
                        return settled;
                    }
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::warn!(key = %key, error = %error, "outcome of a session write stays unknown");
        Err(error.into())
    }

    /// Whether a compare-and-set over version `b` that proposed `proposed` landed, by
    /// the record's recent versions ([`Store::recent_versions`](crate::Store::recent_versions)):
    /// one of `proposed` among them, it did; `b` followed by another version, it did
    /// not, and cannot any more (versions never repeat, so nothing can expect `b`
    /// again): a [`StoreError::Conflict`], on which `update` runs again. `None`: not
    /// known (no history, or `b` already out of it).
    async fn settle_by_history(
        &self,
        key: &SessionKey,
        pre: Precondition,
        proposed: &[u64],
        now: Timestamp,
    ) -> Option<Result<(), SessionError>> {
        let Precondition::Version(b) = pre else { return None };
        let store = &self.inner.store;
        let history = match self.inner.retry.run_transient(|| store.recent_versions(key, now)).await {
            Ok(Some(history)) => history,
            Ok(None) | Err(_) => return None,
        };
        if history.iter().any(|v| proposed.contains(v)) {
            return Some(Ok(()));
        }
        let at = history.iter().position(|v| *v == b)?;
        (at + 1 < history.len()).then(|| Err(StoreError::Conflict { key: key.to_string() }.into()))
    }
}
