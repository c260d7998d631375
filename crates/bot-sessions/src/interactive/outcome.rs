//! What routing a click, ending a session and an expiry pass report.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::SessionId;
use super::reply::Reply;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    /// [`update`](super::Interactive::update) finished it.
    Finished,
    /// Its time to live ran out.
    Expired,
    /// The manager that started it shut down ([`Manager::shutdown`](super::Manager::shutdown)).
    Shutdown,
    /// A newer session took its place ([`Manager::replace`](super::Manager::replace)).
    Replaced,
    /// Ended from outside by the bot ([`Manager::end`](super::Manager::end)).
    Cancelled,
}

impl EndReason {
    /// The reason in snake case, as stored and as the `reason` metric label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            EndReason::Finished => "finished",
            EndReason::Expired => "expired",
            EndReason::Shutdown => "shutdown",
            EndReason::Replaced => "replaced",
            EndReason::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a session ended, as its [`SessionHandle`](super::SessionHandle) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended<R> {
    /// Why it ended.
    pub reason: EndReason,
    /// The result: the value [`Step::Finish`](super::Step::Finish) carried, or else what
    /// [`end`](super::Interactive::end) returned.
    pub result: Option<R>,
}

/// What [`Manager::route`](super::Manager::route) did with an update.
///
/// Only `Handled` means the session's [`update`](super::Interactive::update) ran; every
/// other outcome left all sessions untouched (an `Expired` session was ended, once).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteOutcome {
    /// The session's `update` ran and its new state is saved.
    Handled {
        /// The session.
        session: SessionId,
        /// `Some(Finished)` when this update finished the session.
        ended: Option<EndReason>,
    },
    /// The update carries no custom id, or one of another namespace: not ours to
    /// handle.
    NotOurs,
    /// No such session: it never existed, or ended long ago.
    Unknown {
        /// The session the id names.
        session: SessionId,
    },
    /// The session's time to live had run out: it was ended now (its `end` ran, once,
    /// and can disable the message's components). Tell the user it is over.
    Expired {
        /// The session.
        session: SessionId,
    },
    /// The session had already ended (recently enough that its record remains).
    Ended {
        /// The session.
        session: SessionId,
        /// Why it ended.
        reason: EndReason,
    },
    /// The session's update filter refused this user or chat.
    Refused {
        /// The session.
        session: SessionId,
        /// The name of the filter that said no.
        filter: Arc<str>,
    },
    /// The id carries our namespace but a missing or wrong signature.
    Forged {
        /// The id as received.
        custom_id: String,
    },
    /// The id carries our namespace but does not parse.
    Malformed {
        /// The id as received.
        custom_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl RouteOutcome {
    /// The outcome in snake case: the `outcome` label of route metrics.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            RouteOutcome::Handled { .. } => crate::observe::HANDLED,
            RouteOutcome::NotOurs => "not_ours",
            RouteOutcome::Unknown { .. } => "unknown",
            RouteOutcome::Expired { .. } => "expired",
            RouteOutcome::Ended { .. } => "ended",
            RouteOutcome::Refused { .. } => "refused",
            RouteOutcome::Forged { .. } => "forged",
            RouteOutcome::Malformed { .. } => "malformed",
        }
    }
}

/// What [`Manager::handle`](super::Manager::handle) did with an update, and what the
/// session answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Routed {
    /// What happened.
    pub outcome: RouteOutcome,
    /// The session's answer to this update: what `update` replied, or for an expired
    /// session what its `end` replied. `None`: the session gave none (the transport
    /// still acknowledges the update, see [`Routed::answer`]).
    pub reply: Option<Reply>,
    /// When this update finished the session: what `end` replied (the update's own
    /// reply, if any, comes first).
    pub end_reply: Option<Reply>,
}

impl Routed {
    /// An outcome without any reply.
    pub fn of(outcome: RouteOutcome) -> Self {
        Routed { outcome, reply: None, end_reply: None }
    }

    /// The reply to show for this update: the session's (the update's reply, else the
    /// end's); otherwise, for outcomes no session answered, a notice built by
    /// `default_for` (e.g. "expired", "not yours"), or nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::interactive::{Reply, RouteOutcome, Routed};
    ///
    /// let routed = Routed::of(RouteOutcome::NotOurs);
    /// assert_eq!(routed.answer(|_| None), None);
    /// ```
    pub fn answer(&self, default_for: impl FnOnce(&RouteOutcome) -> Option<Reply>) -> Option<Reply> {
        self.reply.clone().or_else(|| self.end_reply.clone()).or_else(|| default_for(&self.outcome))
    }
}

/// What one expiry pass ([`Manager::expire_due`](super::Manager::expire_due),
/// [`Manager::expire_scan`](super::Manager::expire_scan)) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpiryReport {
    /// Sessions looked at.
    pub checked: u64,
    /// Sessions this pass ended as expired (their `end` ran here).
    pub expired: u64,
    /// Sessions whose end another manager claimed and never completed (it died), which
    /// this pass marked ended without running `end` again.
    pub abandoned: u64,
    /// Handles of this manager resolved with an end that happened elsewhere.
    pub delivered: u64,
    /// Sessions that failed (store errors, unknown kinds); they are retried later.
    pub errors: u64,
}

impl ExpiryReport {
    pub(crate) fn add(&mut self, other: ExpiryReport) {
        self.checked += other.checked;
        self.expired += other.expired;
        self.abandoned += other.abandoned;
        self.delivered += other.delivered;
        self.errors += other.errors;
    }
}

/// What [`Manager::shutdown`](super::Manager::shutdown) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Sessions ended with [`EndReason::Shutdown`].
    pub ended: u64,
    /// Sessions that had already ended elsewhere; their handles got that end.
    pub already_ended: u64,
    /// Sessions left as they are because of an error (see the log); their handles
    /// resolve with [`HandleError::Lost`](super::HandleError::Lost).
    pub errors: u64,
}
