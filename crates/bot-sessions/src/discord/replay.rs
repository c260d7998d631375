//! Replay refusal: a signed request is only good once, and only for a while.
//!
//! Discord signs the timestamp header with the body, but a signature never expires: a
//! request captured on the way (a log, a proxy, a leaked capture) verifies for ever.
//! So the endpoint also refuses, with 401, a timestamp that is not a decimal Unix time
//! within [`DEFAULT_REPLAY_WINDOW`] of its clock (either direction), and an interaction
//! id it has seen already, in any process sharing the store: the first sighting of an
//! id is written under [`SEEN_NAMESPACE`] with the *absent* precondition (exactly one
//! writer wins) and expires once its timestamp leaves the window, when the timestamp
//! check refuses the request anyway. A bounded in-process set of recent ids answers a
//! replay to the same process without a round trip, so a fresh request costs one store
//! write and a replayed one none.

use std::sync::Arc;
use std::time::Duration;

use crate::{Clock, DynStore, KeyError, Namespace, Precondition, Scope, SessionKey, StoreError, Timestamp, Write};

/// How far a request's timestamp may be from the endpoint's clock, either way, unless
/// configured ([`EndpointBuilder::replay_window`](super::EndpointBuilder::replay_window)).
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The store namespace of the interaction ids seen.
pub const SEEN_NAMESPACE: &str = "discord_seen";

/// How many recent ids each endpoint remembers in process.
const RECENT_IDS: usize = 16 * 1024;

/// Why a signed request was refused as a replay. Every variant is answered 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The timestamp is not a decimal Unix time (digits only).
    #[error("the X-Signature-Timestamp `{0}` is not a decimal Unix time")]
    Malformed(String),
    /// The timestamp is further from the clock than the window.
    #[error("the X-Signature-Timestamp {timestamp} is {off_by_secs} s away from now (the window is {window_secs} s)")]
    OutOfWindow {
        /// The timestamp, seconds since the Unix epoch.
        timestamp: u64,
        /// How far it is from now, in seconds.
        off_by_secs: u64,
        /// The window, in seconds.
        window_secs: u64,
    },
    /// The interaction id was seen already.
    #[error("interaction {0} was seen already (a replay)")]
    Seen(u64),
}

/// The endpoint's replay guard.
pub(super) struct Replays {
    window: Duration,
    clock: Arc<dyn Clock>,
    store: Option<DynStore>,
    namespace: Namespace,
    recent: Recent,
}

impl std::fmt::Debug for Replays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replays")
            .field("window", &self.window)
            .field("shared", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl Replays {
    /// A guard with this window and clock, the seen ids in `store` (`None`: this
    /// process only).
    pub(super) fn new(window: Duration, clock: Arc<dyn Clock>, store: Option<DynStore>) -> Result<Self, KeyError> {
        Ok(Replays {
            window,
            clock,
            store,
            namespace: Namespace::new(SEEN_NAMESPACE)?,
            recent: Recent::new(RECENT_IDS),
        })
    }

    /// Checks a timestamp header's value: the signed time, in seconds.
    pub(super) fn check_timestamp(&self, timestamp: &str) -> Result<u64, ReplayError> {
        let malformed = || ReplayError::Malformed(timestamp.chars().take(32).collect());
        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let seconds: u64 = timestamp.parse().map_err(|_| malformed())?;
        let now = u64::try_from(self.clock.now().as_millis().max(0) / 1000).unwrap_or(0);
        let off_by_secs = now.abs_diff(seconds);
        let window_secs = self.window.as_secs();
        if off_by_secs > window_secs {
            return Err(ReplayError::OutOfWindow { timestamp: seconds, off_by_secs, window_secs });
        }
        Ok(seconds)
    }

    /// Records the first sighting of interaction `id` (signed at `timestamp`, seconds).
    ///
    /// # Errors
    ///
    /// `Ok(Err(Seen))` for a replay; `Err` for a store error (the request cannot be
    /// told fresh, and is not routed).
    pub(super) async fn first_sighting(&self, id: u64, timestamp: u64) -> Result<Result<(), ReplayError>, StoreError> {
        let Some(store) = &self.store else {
            // This process only: the set decides.
            return Ok(if self.recent.insert(id) { Ok(()) } else { Err(ReplayError::Seen(id)) });
        };
        if self.recent.contains(id) {
            return Ok(Err(ReplayError::Seen(id)));
        }
        let key = SessionKey::new(self.namespace.clone(), Scope::Custom { id: id.to_string(), user: None });
        // Past the window's end the timestamp check refuses the request anyway.
        let until = timestamp.saturating_add(self.window.as_secs()).saturating_add(1);
        let until = Timestamp(i64::try_from(until.saturating_mul(1000)).unwrap_or(i64::MAX));
        let now = self.clock.now();
        let write = Write::new(&[], 1, Some(until.max(now.saturating_add(Duration::from_secs(1)))));
        let fresh = match store.write(&key, write, Precondition::Absent, now).await {
            Ok(_) => true,
            Err(e) if e.is_conflict() => false,
            // Did the write land? Only if the record is the one it proposed.
            Err(e) if e.is_ambiguous() => {
                store.load(&key, now).await?.is_some_and(|record| record.version == write.version)
            }
            Err(e) => return Err(e),
        };
        self.recent.insert(id);
        Ok(if fresh { Ok(()) } else { Err(ReplayError::Seen(id)) })
    }
}

/// The most recent ids seen, bounded: the oldest goes when a new one comes in full.
struct Recent {
    capacity: usize,
    ids: std::sync::Mutex<(std::collections::HashSet<u64>, std::collections::VecDeque<u64>)>,
}

impl Recent {
    fn new(capacity: usize) -> Self {
        Recent { capacity, ids: std::sync::Mutex::new(Default::default()) }
    }

    fn contains(&self, id: u64) -> bool {
        self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).0.contains(&id)
    }

    /// Adds `id`; false if it was there.
    fn insert(&self, id: u64) -> bool {
        let mut ids = self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (set, order) = &mut *ids;
        if !set.insert(id) {
            return false;
        }
        order.push_back(id);
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }
}
