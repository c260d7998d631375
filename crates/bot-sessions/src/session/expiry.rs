//! Announcing expiry: the `on_expire` hook, claims, [`Sessions::sweep_expired`] and
//! [`Sessions::purge_expired`].
//!
//! With a hook, a record's store-level expiry is its logical expiry plus a grace
//! period, so an expired session is still in the store for someone to find it. Whoever
//! finds it first (a sweep, a purge, or a handler whose load meets it) claims it by
//! deleting exactly the version it saw (`Precondition::Version`); the store lets one
//! such delete succeed, and only that caller runs the hook. A session written again
//! before its expiry has a new version and a new expiry, so a stale claim fails and
//! the hook does not run.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Meta, SessionError, Sessions};
use crate::observe::Op;
use crate::{Precondition, Record, SessionKey, Timestamp};

/// How long after `expires_at` it is at `now` (zero if not yet).
pub(crate) fn lag(expires_at: Option<Timestamp>, now: Timestamp) -> std::time::Duration {
    let late = expires_at.map_or(0, |t| now.as_millis().saturating_sub(t.as_millis()));
    std::time::Duration::from_millis(u64::try_from(late).unwrap_or(0))
}

/// The boxed future an expiry hook returns.
pub(super) type HookFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
/// An expiry hook, type-erased.
pub(super) type Hook<T> = Arc<dyn Fn(Expired<T>) -> HookFuture + Send + Sync>;

/// How many records a sweep reads per store round trip.
const SWEEP_PAGE: usize = 256;

/// A session that expired, as the [`on_expire`](super::SessionsBuilder::on_expire)
/// hook receives it (once per expired record, across every process sharing the store).
#[derive(Debug)]
#[non_exhaustive]
pub struct Expired<T> {
    /// The session's key (its [`user_id`](SessionKey::user_id) and chat say whom to tell).
    pub key: SessionKey,
    /// The last value, decoded and migrated; the error when it does not decode.
    pub value: Result<T, SessionError>,
    /// Its times and version when it expired.
    pub meta: Meta,
}

/// What a [`Sessions::sweep_expired`] or [`Sessions::purge_expired`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Expired sessions this call claimed (and announced, when there is a hook).
    pub expired: u64,
    /// Expired sessions whose claim another caller won (or that were written again
    /// meanwhile).
    pub lost: u64,
    /// Claims whose outcome stayed unknown (an ambiguous store reply): their hook is
    /// not run here, so it runs at most once.
    pub unknown: u64,
    /// Expired records left alone: written by newer code, or with a damaged header.
    pub skipped: u64,
    /// Claims that failed with a store error, and hooks that panicked.
    pub errors: u64,
    /// Records the store purged afterwards ([`Sessions::purge_expired`] only; every
    /// namespace's).
    pub purged: u64,
}

/// The outcome of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// Our delete removed the record: announce it.
    Won,
    /// Someone else removed or rewrote it.
    Lost,
    /// An ambiguous reply left it unknown.
    Unknown,
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Finds the sessions of this namespace that are expired at `now`, claims each
    /// (compare-and-set delete of the version found) and runs the
    /// [`on_expire`](super::SessionsBuilder::on_expire) hook, awaited, for each claim
    /// won. Without a hook it only deletes them. Every process sharing the store may
    /// sweep at once: each expired record is announced exactly once (at most once when
    /// a store reply is lost; see [`SweepReport::unknown`]).
    ///
    /// Reads the whole namespace (one scan, page by page): call it at a period that
    /// suits its size, or use [`spawn_sweeper`](Self::spawn_sweeper).
    ///
    /// # Errors
    ///
    /// A store error while scanning; per-record failures are counted in the report.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, ManualClock, Scope, SessionKey, Sessions, Ttl};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
    /// struct Form { name: Option<String> }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let told = Arc::new(Mutex::new(Vec::new()));
    /// let clock = ManualClock::new(0);
    /// let forms = Sessions::<Form>::builder(MemoryStore::new())
    ///     .namespace("form")
    ///     .ttl(Ttl::idle(Duration::from_secs(1800)))
    ///     .clock(Arc::new(clock.clone()))
    ///     .on_expire({
    ///         let told = told.clone();
    ///         move |expired| {
    ///             let told = told.clone();
    ///             async move {
    ///                 // Tell the user: "your half-filled form expired".
    ///                 told.lock().unwrap().push(expired.key.user_id());
    ///             }
    ///         }
    ///     })
    ///     .build()?;
    /// let key = SessionKey::new(forms.namespace().clone(), Scope::User(7));
    /// forms.update(&key, |f| { f.name = Some("Ada".into()); Ok::<_, bot_sessions::SessionError>(()) }).await?;
    ///
    /// clock.advance(Duration::from_secs(1800));
    /// assert!(forms.meta(&key).await?.is_none(), "expired for the typed API");
    /// // (A handler's `get` or `update` would claim and announce it too, on a task.)
    /// let report = forms.sweep_expired(clock.now()).await?;
    /// # use bot_sessions::Clock;
    /// assert_eq!((report.expired, told.lock().unwrap().clone()), (1, vec![Some(7)]));
    /// assert_eq!(forms.sweep_expired(clock.now()).await?.expired, 0, "once");
    /// # Ok::<(), bot_sessions::SessionError>(())
    /// # }).unwrap();
    /// ```
    pub async fn sweep_expired(&self, now: Timestamp) -> Result<SweepReport, SessionError> {
        self.inner.obs.run(Op::Sweep, || self.sweep_unobserved(now)).await
    }

    async fn sweep_unobserved(&self, now: Timestamp) -> Result<SweepReport, SessionError> {
        let mut report = SweepReport::default();
        // For the metrics: live sessions seen, and how late each claim came.
        let (mut live, mut lags) = (0, Vec::new());
        let mut cursor: Option<String> = None;
        loop {
            let page = self.inner.store.scan(&self.inner.namespace, cursor.as_deref(), SWEEP_PAGE, now).await?;
            for (key, record) in page.items {
                let Ok(own) = self.stored_ttl(&key, &record) else {
                    report.skipped += 1;
                    continue;
                };
                let meta = self.meta_of(&record, own);
                if !now.is_expired(meta.expires_at) {
                    live += 1;
                    continue;
                }
                if self.check_schema(&key, &record).is_err() {
                    report.skipped += 1; // the newer code's to announce
                    continue;
                }
                match self.claim(&key, record.version, now).await {
                    Ok(Claim::Won) => {
                        report.expired += 1;
                        lags.push(lag(meta.expires_at, now));
                        if let Some(announce) = self.announcement(&key, &record, meta) {
                            // On a task of its own, so a panicking hook cannot take the sweep down.
                            if let Err(e) = tokio::spawn(announce).await {
                                tracing::error!(key = %key, error = %e, "session expiry hook failed");
                                report.errors += 1;
                            }
                        }
                    }
                    Ok(Claim::Lost) => report.lost += 1,
                    Ok(Claim::Unknown) => report.unknown += 1,
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "could not claim an expired session");
                        report.errors += 1;
                    }
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => {
                    self.inner.obs.swept(live, &lags);
                    return Ok(report);
                }
            }
        }
    }

    /// [`sweep_expired`](Self::sweep_expired) (claims and hooks), then the store's own
    /// purge of records expired at `now` (in every namespace: the store purges by
    /// expiry, not by namespace). Sessions in their grace period stay until the sweep
    /// claims them or the grace ends.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<SweepReport, SessionError> {
        self.inner.obs.run(Op::Purge, || self.purge_unobserved(now)).await
    }

    async fn purge_unobserved(&self, now: Timestamp) -> Result<SweepReport, SessionError> {
        let mut report = self.sweep_expired(now).await?;
        report.purged = self.inner.store.purge_expired(now).await?;
        Ok(report)
    }

    /// A handler's load met `record`, expired at `now`: claims it, and on success
    /// announces it on a task of its own (the handler holds the key's lock; a hook that
    /// touches the same session must not wait for it).
    pub(super) async fn expire_met(
        &self,
        key: &SessionKey,
        record: &Record,
        meta: Meta,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        if self.claim(key, record.version, now).await? == Claim::Won
            && let Some(announce) = self.announcement(key, record, meta)
        {
            tokio::spawn(announce);
        }
        Ok(())
    }

    /// The hook's future for an expired record, if there is a hook.
    fn announcement(&self, key: &SessionKey, record: &Record, meta: Meta) -> Option<HookFuture> {
        let hook = self.inner.on_expire.as_ref()?;
        let value =
            self.open_value(key, &record.value).and_then(|plain| self.decode(key, record.schema_version, &plain));
        Some(hook(Expired { key: key.clone(), value, meta }))
    }

    /// Claims an expired record by deleting exactly `version`.
    ///
    /// After an ambiguous reply, the record is loaded: still at `version`, the delete
    /// did not land and is sent again (the precondition lets at most one land); gone,
    /// it cannot be told whether ours or another caller's delete removed it, so the
    /// claim is [`Claim::Unknown`] and the hook is not run (at most once).
    pub(super) async fn claim(&self, key: &SessionKey, version: u64, now: Timestamp) -> Result<Claim, SessionError> {
        let store = &self.inner.store;
        let retry = self.inner.retry;
        let mut unsure = false;
        for attempt in 1..=retry.max_attempts {
            match store.delete(key, Precondition::Version(version), now).await {
                Ok(true) => return Ok(Claim::Won),
                Ok(false) => return Ok(if unsure { Claim::Unknown } else { Claim::Lost }),
                Err(e) if e.is_conflict() => return Ok(if unsure { Claim::Unknown } else { Claim::Lost }),
                Err(e) if e.is_ambiguous() => {
                    unsure = true;
                    tokio::time::sleep(retry.delay(attempt)).await;
                    match store.load(key, now).await {
                        Ok(Some(r)) if r.version == version => {}
                        Ok(_) => break,
                        Err(e) if e.is_retryable() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::warn!(key = %key, "claim of an expired session: outcome unknown; its hook is not run");
        Ok(Claim::Unknown)
    }
}
