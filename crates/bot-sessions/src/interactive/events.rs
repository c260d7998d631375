//! End events: any part of a bot can learn that an interactive session ended.

use std::sync::Arc;

use super::reply::Reply;
use super::{EndReason, Origin, SessionId};

/// One interactive session ended. Published once per end, by the manager (in whichever
/// process) that ended it; subscribe with [`Manager::subscribe`](super::Manager::subscribe),
/// or hand it to a platform adapter with [`RuntimeBuilder::on_end`](crate::runtime::RuntimeBuilder::on_end).
///
/// Ends that are not published: a session erased by forget-user (it is deleted, its
/// `end` does not run).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndEvent {
    /// The registered name of the session's kind.
    pub kind: Arc<str>,
    /// The session.
    pub session: SessionId,
    /// Where and by whom it was opened, and the message carrying its components.
    pub origin: Origin,
    /// Why it ended.
    pub reason: EndReason,
    /// The result, as JSON (the kind's `Output`), if there is one.
    pub result: Option<serde_json::Value>,
    /// What `end` answered: for ends that no click answers (expiry, shutdown, an
    /// explicit end), the transport shows it (typically an edit of the session's
    /// message that removes its components). `None` if `end` gave no reply or never ran
    /// (its claimer died).
    pub reply: Option<Reply>,
}
