//! Bounded retry with jittered exponential backoff: of a compare-and-set that met
//! another writer, and of a store operation that failed in a way that certainly changed
//! nothing (a connection reset before the request reached the server, a read whose
//! connection broke, a server restarting).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::StoreError;

/// How [`Sessions`](crate::Sessions) retries: after another process wrote the same key
/// between its load and its save (`max_attempts`), and after a store failure that is
/// [retryable](StoreError::is_retryable) (for up to `transient_for`).
///
/// # Examples
///
/// ```
/// use bot_sessions::session::RetryPolicy;
/// use std::time::Duration;
///
/// // Fail fast when the store is unreachable (a health check, say).
/// let policy = RetryPolicy { transient_for: Duration::ZERO, ..RetryPolicy::default() };
/// assert_eq!(policy.max_attempts, 32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the third attempt after conflicts, doubled after each further
    /// one. The second attempt, right after a first conflict, goes at once: the other
    /// writer has just committed, so a fresh load sees its value.
    pub base_delay: Duration,
    /// Ceiling of the backoff.
    pub max_delay: Duration,
    /// How long an operation keeps trying again after retryable store failures (a
    /// connection reset, a server restarting) before it reports the last one; zero:
    /// never. A write whose outcome is unknown is never simply sent again: it is
    /// resolved first (see [`StoreError::Ambiguous`]), and store failures while it is
    /// resolved are waited out for `transient_for` too, after which the outcome is
    /// reported unknown. Default: 5 s, the default operation timeout of the network
    /// stores; at most 10 minutes.
    pub transient_for: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 32,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(100),
            transient_for: Duration::from_secs(5),
        }
    }
}

/// The longest [`RetryPolicy::transient_for`] accepted.
pub(crate) const MAX_TRANSIENT_FOR: Duration = Duration::from_secs(600);

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (full jitter: uniform in 0..=cap).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let cap = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=nanos))
    }

    /// Waits before the next attempt after the `attempt`-th conflict of a
    /// compare-and-set: not at all after the first, then a jittered backoff from
    /// `base_delay` (see [`RetryPolicy::delay`]).
    pub(crate) async fn pause_after_conflict(&self, attempt: u32) {
        if attempt > 1 {
            tokio::time::sleep(self.delay(attempt - 1)).await;
        }
    }

    /// The pause after the `attempt`-th transient failure: at least 1 ms (a server
    /// that refuses connections answers at once), otherwise as [`RetryPolicy::delay`].
    fn transient_delay(&self, attempt: u32) -> Duration {
        self.delay(attempt).max(Duration::from_millis(1))
    }

    /// The time by which an operation started at `start` stops retrying transient
    /// failures.
    pub(crate) fn transient_deadline(&self, start: Instant) -> Instant {
        start.checked_add(self.transient_for).unwrap_or(start)
    }

    /// Waits before the next try after the `attempt`-th transient failure, if
    /// `deadline` leaves time for it; `false` when it does not (report the failure).
    pub(crate) async fn pause_transient(&self, attempt: u32, deadline: Instant) -> bool {
        let pause = self.transient_delay(attempt);
        if Instant::now() + pause >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        true
    }

    /// Runs `op` until it succeeds, fails in a way that is not
    /// [retryable](StoreError::is_retryable), or [`RetryPolicy::transient_for`] has
    /// passed (then its last error). For operations that are safe to repeat after a
    /// retryable failure: reads, and writes whose retryable failure means they were
    /// not applied (a store reports a write whose outcome is unknown as
    /// [`StoreError::Ambiguous`], which is returned at once).
    ///
    /// # Errors
    ///
    /// `op`'s last error.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::session::RetryPolicy;
    /// use bot_sessions::{Scope, SessionKey, Store, SystemClock, Clock, Namespace};
    /// use bot_sessions::store::memory::MemoryStore;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let key = SessionKey::new(Namespace::new("settings")?, Scope::Chat(1));
    /// // A start-up read that rides out a database restart.
    /// let record = RetryPolicy::default().run_transient(|| store.load(&key, SystemClock.now())).await?;
    /// assert!(record.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_transient<T, F, Fut>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let deadline = self.transient_deadline(Instant::now());
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if e.is_retryable() => {
                    attempt += 1;
                    if !self.pause_transient(attempt, deadline).await {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, attempt, "store operation failed; trying again");
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn down() -> StoreError {
        StoreError::backend("test", None, true, "connection reset")
    }

    #[tokio::test]
    async fn transient_failures_are_tried_again_and_others_are_not() {
        let policy = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let r = policy
            .run_transient(|| async { if calls.fetch_add(1, Ordering::SeqCst) < 3 { Err(down()) } else { Ok(7) } })
            .await;
        assert_eq!((r.unwrap(), calls.load(Ordering::SeqCst)), (7, 4));

        let calls = AtomicU32::new(0);
        let r: Result<(), _> = policy
            .run_transient(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::ambiguous("test", "k", "reply lost"))
            })
            .await;
        assert!(r.unwrap_err().is_ambiguous());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "an unknown outcome is never simply sent again");
    }

    #[tokio::test]
    async fn transient_failures_are_reported_once_the_time_is_up() {
        let policy = RetryPolicy { transient_for: Duration::from_millis(50), ..RetryPolicy::default() };
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = policy
            .run_transient(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(down())
            })
            .await;
        assert!(r.unwrap_err().is_retryable());
        assert!(calls.load(Ordering::SeqCst) > 1, "tried again within the time");
        let never = RetryPolicy { transient_for: Duration::ZERO, ..RetryPolicy::default() };
        let calls = AtomicU32::new(0);
        let _ = never
            .run_transient(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(down())
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
