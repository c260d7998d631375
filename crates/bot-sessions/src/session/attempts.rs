//! What a failed attempt of an update leads to: another one at once, another one after
//! a pause, or the error. One place for the update loops: `update_attempts` in
//! `mod.rs` (which the typed fast path in `typed.rs` hands its first conflict to) and
//! `update_pipelined` in `pipeline.rs`. They differ in what they do around the pause:
//! the pipelined loop lets the key go and always loads from the store next; the other
//! keeps the key and lets the near cache serve the attempt after a conflict.

use tokio::time::Instant;

use super::{RetryPolicy, SessionError};
use crate::observe::Observer;
use crate::{SessionKey, StoreError};

/// An update's attempts so far: conflicts and transient failures.
#[derive(Debug)]
pub(super) struct Attempts {
    /// The attempt under way (the first is 1).
    attempt: u32,
    /// Conflicts met so far, stale cached copies included: what each conflict after
    /// which another attempt follows reports to the metrics as its retry number.
    retries: u32,
    /// Transient failures met so far.
    transient: u32,
    /// When transient failures stop being tried again ([`RetryPolicy::transient_for`]
    /// from the start).
    transient_until: Instant,
}

/// What comes after a failed attempt.
#[derive(Debug)]
pub(super) enum Then {
    /// Again at once, loading from the store: the attempt built on a stale cached copy
    /// (which the cache has forgotten). Not contention.
    Now,
    /// Again after the pause for a conflict with another writer.
    AfterConflict,
    /// Again after the pause for a store failure that certainly wrote nothing, unless
    /// the time for those is up: then this is the error.
    AfterTransient(StoreError),
}

impl Attempts {
    /// A first attempt, starting now, under `retry`.
    pub(super) fn new(retry: &RetryPolicy) -> Self {
        Attempts { attempt: 1, retries: 0, transient: 0, transient_until: retry.transient_deadline(Instant::now()) }
    }

    /// What the failure `e` of the attempt under way on `key` leads to (`from_cache`:
    /// the attempt built on the near cache's copy); `Err`: report it, or the
    /// contention it amounts to. Conflicts are counted in `obs`.
    pub(super) fn after(
        &mut self,
        retry: &RetryPolicy,
        obs: &Observer,
        key: &SessionKey,
        e: SessionError,
        from_cache: bool,
    ) -> Result<Then, SessionError> {
        match e {
            SessionError::Store(StoreError::Conflict { .. }) => {
                self.retries += 1;
                let more = from_cache || self.attempt < retry.max_attempts;
                obs.conflict(more.then_some(self.retries));
                match (from_cache, more) {
                    (true, _) => Ok(Then::Now),
                    (false, true) => Ok(Then::AfterConflict),
                    (false, false) => Err(SessionError::Contention { key: key.to_string(), attempts: self.attempt }),
                }
            }
            // Certainly not written (an unknown outcome was resolved, or is reported
            // as ambiguous, which is not retryable): load and run again.
            SessionError::Store(e) if e.is_retryable() => Ok(Then::AfterTransient(e)),
            e => Err(e),
        }
    }

    /// Waits the pause `then` calls for; `Err`: the time for transient failures is
    /// up, and this is the last one.
    pub(super) async fn pause(
        &mut self,
        retry: &RetryPolicy,
        key: &SessionKey,
        then: Then,
    ) -> Result<(), SessionError> {
        match then {
            Then::Now => {}
            Then::AfterConflict => {
                retry.pause_after_conflict(self.attempt).await;
                self.attempt += 1;
            }
            Then::AfterTransient(e) => {
                self.transient += 1;
                if !retry.pause_transient(self.transient, self.transient_until).await {
                    return Err(SessionError::Store(e));
                }
                tracing::debug!(key = %key, error = %e, "session write failed before it was applied; trying again");
            }
        }
        Ok(())
    }
}
