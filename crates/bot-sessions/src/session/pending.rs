//! A write queued under a key and not settled yet ([`Pending`]): what the key's lock
//! table keeps for the next holders (see `locks.rs`) and what a pipelined update
//! builds on (see `pipeline.rs`). Below both, so neither imports the other.

use tokio::sync::watch;

use crate::{Record, SessionKey};

/// Where a queued write stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Queued,
    Written,
    Failed,
}

/// A write queued under a key and not yet known to have settled: what the next
/// holder of the key builds on.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The key written (two keys whose hashes collide share a lock entry; a holder
    /// builds only on a write of its own key).
    pub(super) key: SessionKey,
    /// The record as the store holds it once the write lands (`user_id` unset).
    pub(super) record: Record,
    /// Published by the update that queued it; closed without a value if that update
    /// went away (cancelled) before it learnt the outcome.
    pub(super) state: watch::Receiver<State>,
}

impl Pending {
    /// Whether the write is known not to have landed, or its outcome will never be
    /// published here.
    pub(super) fn failed(&self) -> bool {
        match *self.state.borrow() {
            State::Failed => true,
            State::Written => false,
            State::Queued => self.state.has_changed().is_err(),
        }
    }

    /// Waits until the write settled (written, failed, or its outcome will never be
    /// published here: the store answers in queue order, so then it is settled too
    /// or soon will be, and a compare-and-set over it tells).
    pub(crate) async fn settled(&self) {
        let mut state = self.state.clone();
        // An error: the publisher is gone; nothing more will come.
        let _ = state.wait_for(|s| *s != State::Queued).await;
    }
}
