//! Bounded connection replacement: while connection attempts fail, the store waits
//! between them (a delay that doubles up to a cap, with jitter) and makes one attempt
//! at a time, so an outage does not turn every operation into a new connection (a
//! reconnect storm that would meet the server the moment it comes back).

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::BACKEND;
use crate::StoreError;

/// Connection attempts in flight at once, per store, even when nothing failed yet.
pub(super) const OPENS_AT_ONCE: usize = 4;

/// The failure state shared by a store's connection slots.
pub(super) struct Reconnect {
    first: Duration,
    max: Duration,
    state: Mutex<State>,
    /// Woken when an attempt ends (the store connected, or waits anew), so operations
    /// waiting for a connection look again at once.
    changed: tokio::sync::Notify,
}

/// Why an operation may not connect now, and until when.
#[derive(Debug)]
pub(super) struct Wait {
    /// The error to report if the operation's time runs out meanwhile.
    pub(super) error: StoreError,
    /// When the next attempt may start; `None` while one is under way (its end wakes
    /// [`Reconnect::changed`]).
    pub(super) until: Option<Instant>,
}

#[derive(Default)]
struct State {
    /// Failed rounds in a row; 0 when the last attempt succeeded.
    failures: u32,
    /// No attempt before this (after a failure).
    not_before: Option<Instant>,
    /// An attempt after a failure is under way; others wait for its outcome.
    probing: bool,
    /// What the last failed attempt said, for the errors of operations that wait.
    last_error: String,
    /// Whether the last failure may pass by itself (a refused certificate will not).
    last_retryable: bool,
    /// Bumped by every failed round; an attempt that began in an earlier round and
    /// fails late does not count again.
    round: u64,
}

/// Permission to open one connection; report how it went with
/// [`Attempt::succeeded`] or [`Attempt::failed`]. Dropped without either (the caller
/// gave up), it counts as a failure.
pub(super) struct Attempt<'a> {
    reconnect: &'a Reconnect,
    round: u64,
    done: bool,
}

impl Reconnect {
    pub(super) fn new(first: Duration, max: Duration) -> Self {
        Reconnect { first, max, state: Mutex::new(State::default()), changed: tokio::sync::Notify::new() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why an operation must not connect now, or `None` when it may try.
    pub(super) fn waiting(&self, now: Instant) -> Option<Wait> {
        let state = self.state();
        let until = state.not_before.filter(|_| state.failures > 0)?;
        if now < until || state.probing {
            let next = if state.probing {
                "an attempt is under way".to_owned()
            } else {
                format!("the next attempt in {:?}", until - now)
            };
            let error = StoreError::backend(
                BACKEND,
                None,
                state.last_retryable,
                format!("no connection to the server: {} ({next})", state.last_error),
            );
            Some(Wait { error, until: (!state.probing).then_some(until) })
        } else {
            None
        }
    }

    /// Waits until the wait `wait` describes is over (or an attempt under way ended),
    /// but not past `deadline`. Returns `false` when `deadline` came first.
    pub(super) async fn wait_out(&self, wait: &Wait, deadline: Instant) -> bool {
        let changed = self.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        // Looked at again once registered: an attempt that ended in between is seen.
        match self.waiting(Instant::now()) {
            None => return true,
            Some(now) if now.until != wait.until => return true,
            Some(_) => {}
        }
        let until = wait.until.map_or(deadline, |u| u.min(deadline));
        tokio::select! {
            () = changed => true,
            () = tokio::time::sleep_until(until) => Instant::now() < deadline,
        }
    }

    /// An attempt, unless the store is waiting after failures or another attempt is
    /// probing the server: then why not.
    pub(super) fn begin(&self, now: Instant) -> Result<Attempt<'_>, Wait> {
        if let Some(wait) = self.waiting(now) {
            return Err(wait);
        }
        let mut state = self.state();
        if state.failures > 0 {
            state.probing = true;
        }
        Ok(Attempt { reconnect: self, round: state.round, done: false })
    }

    fn record_failure(&self, round: u64, now: Instant, why: String, retryable: bool) {
        let mut state = self.state();
        state.last_error = why;
        state.last_retryable = retryable;
        // Attempts that started together fail together: one round, one step of the
        // delay.
        if round != state.round {
            return;
        }
        state.probing = false;
        state.round += 1;
        state.failures = state.failures.saturating_add(1);
        let doubled = self.first.saturating_mul(1 << state.failures.saturating_sub(1).min(20));
        let delay = doubled.min(self.max).mul_f64(rand::rng().random_range(0.5..=1.0));
        state.not_before = Some(now + delay);
        tracing::warn!(failures = state.failures, retry_in = ?delay, error = %state.last_error, "postgres connection attempt failed");
        drop(state);
        self.changed.notify_waiters();
    }
}

impl Attempt<'_> {
    pub(super) fn succeeded(mut self) {
        self.done = true;
        let mut state = self.reconnect.state();
        if state.failures > 0 {
            tracing::info!(after_failures = state.failures, "postgres connection restored");
        }
        *state = State { round: state.round, ..State::default() };
        drop(state);
        self.reconnect.changed.notify_waiters();
    }

    pub(super) fn failed(mut self, now: Instant, e: &StoreError) {
        self.done = true;
        self.reconnect.record_failure(self.round, now, e.to_string(), e.is_retryable());
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            let why = "a connection attempt ran out of time".to_owned();
            self.reconnect.record_failure(self.round, Instant::now(), why, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> StoreError {
        StoreError::backend(BACKEND, None, true, "down")
    }

    #[test]
    fn failures_space_attempts_out_and_one_probes_at_a_time() {
        let r = Reconnect::new(Duration::from_secs(60), Duration::from_secs(600));
        let now = Instant::now();
        let a = r.begin(now).expect("nothing failed yet");
        let b = r.begin(now).expect("nothing failed yet: attempts run together");
        a.failed(now, &down());
        b.failed(now, &down());
        assert_eq!(r.state().failures, 1, "attempts that fail together are one round");
        let err = r.begin(now).err().expect("waiting").error;
        assert!(err.is_retryable() && err.to_string().contains("down"), "{err}");
        let wait = r.state().not_before.unwrap() - now;
        assert!((Duration::from_secs(30)..=Duration::from_secs(60)).contains(&wait), "jittered: {wait:?}");

        // Once the wait is over, one attempt probes; the others keep waiting.
        let later = r.state().not_before.unwrap();
        let probe = r.begin(later).expect("the wait is over");
        assert!(r.begin(later).is_err(), "one probe at a time");
        probe.failed(later, &down());
        assert_eq!(r.state().failures, 2);
        let wait = r.state().not_before.unwrap() - later;
        assert!((Duration::from_secs(60)..=Duration::from_secs(120)).contains(&wait), "doubled: {wait:?}");

        // A probe whose caller gave up counts as a failure.
        let later = r.state().not_before.unwrap();
        drop(r.begin(later).unwrap());
        assert_eq!(r.state().failures, 3);

        let after = r.state().not_before.unwrap();
        r.begin(after).unwrap().succeeded();
        assert!(r.begin(after).is_ok() && r.begin(after).is_ok(), "healthy again: no limit");
    }

    #[test]
    fn the_delay_is_capped() {
        let r = Reconnect::new(Duration::from_millis(1), Duration::from_millis(8));
        let mut t = Instant::now();
        for _ in 0..40 {
            r.begin(t).unwrap().failed(t, &down());
            let next = r.state().not_before.unwrap();
            assert!(next - t <= Duration::from_millis(8), "{:?}", next - t);
            t = next;
        }
        assert_eq!(r.state().failures, 40);
    }
}
