//! Bounded compare-and-set retry with jittered exponential backoff.

use std::time::Duration;

/// How [`Sessions::update`](crate::Sessions::update) retries after another process
/// wrote the same key between its load and its save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled after each further conflict.
    pub base_delay: Duration,
    /// Ceiling of the backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 32, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(100) }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (full jitter: uniform in 0..=cap).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let cap = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=nanos))
    }
}
