//! Time to live: idle or absolute, computed the same way for every backend.

use std::time::Duration;

use super::SessionError;
use crate::Timestamp;

/// How long a session lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ttl {
    /// Forever.
    #[default]
    None,
    /// Until `idle` has passed since the last write (or, with `refresh_on_read`, since
    /// the last read through [`Sessions`](crate::Sessions)).
    Idle {
        /// The idle period.
        idle: Duration,
        /// Whether a read also pushes the expiry back (costs a write per read).
        refresh_on_read: bool,
    },
    /// Until a fixed time after creation, whatever happens meanwhile (a timed race).
    Absolute(Duration),
}

impl Ttl {
    /// Expires `d` after the last write.
    pub fn idle(d: Duration) -> Self {
        Ttl::Idle { idle: d, refresh_on_read: false }
    }

    /// Expires `d` after the last read or write.
    pub fn idle_refreshed_on_read(d: Duration) -> Self {
        Ttl::Idle { idle: d, refresh_on_read: true }
    }

    /// Expires `d` after creation.
    pub fn absolute(d: Duration) -> Self {
        Ttl::Absolute(d)
    }

    /// The expiry of a record created at `created_at` and written at `now`.
    pub fn expires_at(self, created_at: Timestamp, now: Timestamp) -> Option<Timestamp> {
        match self {
            Ttl::None => None,
            Ttl::Idle { idle, .. } => Some(now.saturating_add(idle)),
            Ttl::Absolute(d) => Some(created_at.saturating_add(d)),
        }
    }

    /// Refuses a zero duration (use [`Ttl::None`] for no expiry).
    pub(super) fn check(self) -> Result<(), SessionError> {
        match self {
            Ttl::Idle { idle: d, .. } | Ttl::Absolute(d) if d.is_zero() => {
                Err(SessionError::Config("a TTL must be above zero (use Ttl::None for no expiry)".into()))
            }
            _ => Ok(()),
        }
    }

    /// Whether loading a session should write it back to refresh its expiry.
    pub fn refreshes_on_read(self) -> bool {
        matches!(self, Ttl::Idle { refresh_on_read: true, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_moves_and_absolute_stays() {
        let created = Timestamp(1_000);
        let now = Timestamp(5_000);
        let d = Duration::from_secs(10);
        assert_eq!(Ttl::None.expires_at(created, now), None);
        assert_eq!(Ttl::idle(d).expires_at(created, now), Some(Timestamp(15_000)));
        assert_eq!(Ttl::absolute(d).expires_at(created, now), Some(Timestamp(11_000)));
        assert!(Ttl::idle_refreshed_on_read(d).refreshes_on_read());
        assert!(!Ttl::idle(d).refreshes_on_read());
    }
}
