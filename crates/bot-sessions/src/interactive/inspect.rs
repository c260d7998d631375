//! Reading and ending stored interactive sessions from outside the bot: for operator
//! tools, which cannot run a kind's code.
//!
//! A tool that wants a session over does not end it itself (its `end` callback lives
//! in the bot): [`expire_now`] moves the session's own deadline to now, and the
//! running bot's expiry sweeper ([`Manager::spawn_sweeper`](super::Manager::spawn_sweeper),
//! or a click on the session) then ends it with [`EndReason::Expired`], running `end`
//! once, claimed by compare-and-set like any expiry. A sweeper finds it on its next
//! scan pass ([`Manager::expire_scan`](super::Manager::expire_scan)) at the latest.
//!
//! # Examples
//!
//! ```
//! use bot_sessions::interactive::{SessionPhase, expire_now, read_stored};
//! use bot_sessions::Timestamp;
//!
//! let stored = br#"{"kind":"menu","phase":"live","state":3,"deadline":90000,"origin":{"chat":1,"user":42,"at":1000}}"#;
//! let seen = read_stored(stored)?;
//! assert_eq!((seen.kind.as_str(), seen.phase, seen.origin.user), ("menu", SessionPhase::Live, Some(42)));
//!
//! let ended = expire_now(stored, Timestamp(5000))?;
//! assert_eq!(read_stored(&ended)?.deadline, Some(Timestamp(5000)));
//! # Ok::<(), bot_sessions::interactive::StoredSessionError>(())
//! ```
use super::envelope::{Header, Phase};
use super::{EndReason, Origin, SessionId};
use crate::{Namespace, Scope, SessionKey, Timestamp};

/// Where a stored session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionPhase {
    /// Takes clicks.
    Live,
    /// A manager claimed its end and is running `end`.
    Ending,
    /// Over; kept a while for late clicks.
    Ended,
}

impl SessionPhase {
    /// `live`, `ending` or `ended`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionPhase::Live => "live",
            SessionPhase::Ending => "ending",
            SessionPhase::Ended => "ended",
        }
    }
}

impl From<Phase> for SessionPhase {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Live => SessionPhase::Live,
            Phase::Ending => SessionPhase::Ending,
            Phase::Ended => SessionPhase::Ended,
        }
    }
}

/// What a stored interactive session says about itself (its state left out).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredSession {
    /// The registered name of its kind.
    pub kind: String,
    /// Live, ending or ended.
    pub phase: SessionPhase,
    /// Why it ended, once it has.
    pub reason: Option<EndReason>,
    /// Who opened it, where and when ([`Origin::at`] is its start).
    pub origin: Origin,
    /// When it expires (its own deadline, not the record's); `None` while it never
    /// does, and once it is over.
    pub deadline: Option<Timestamp>,
}

/// A stored value that is not an interactive session, or one that cannot be ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoredSessionError {
    /// The bytes are not an interactive session's record.
    #[error("not an interactive session record: {0}")]
    Decode(#[from] serde_json::Error),
    /// The session is already ending or over.
    #[error("the session is already {}", .0.as_str())]
    NotLive(SessionPhase),
}

/// The parts of a session an operator looks at.
#[derive(serde::Deserialize)]
struct Parts {
    #[serde(default)]
    reason: Option<EndReason>,
    origin: Origin,
}

/// Reads a stored interactive session's kind, phase, origin and deadline.
///
/// # Errors
///
/// [`StoredSessionError::Decode`] when `value` is not such a record.
pub fn read_stored(value: &[u8]) -> Result<StoredSession, StoredSessionError> {
    let header: Header<'_> = serde_json::from_slice(value)?;
    let parts: Parts = serde_json::from_slice(value)?;
    Ok(StoredSession {
        kind: header.kind.into_owned(),
        phase: header.phase.into(),
        reason: parts.reason,
        origin: parts.origin,
        deadline: header.deadline,
    })
}

/// The key a session is stored under in the manager's `namespace` (by default
/// [`DEFAULT_NAMESPACE`](super::DEFAULT_NAMESPACE)).
pub fn stored_key(namespace: &Namespace, id: SessionId) -> SessionKey {
    SessionKey::new(namespace.clone(), Scope::Custom { id: id.as_str().into(), user: None })
}

/// The session id a stored key names, if it is one of an interactive session.
pub fn stored_id(key: &SessionKey) -> Option<SessionId> {
    match key.scope() {
        Scope::Custom { id, user: None } => SessionId::parse(id),
        _ => None,
    }
}

/// `value` with the live session's deadline moved to `now`, everything else kept: write
/// it back with compare-and-set on the version it was read at, and the bot's expiry
/// sweeper ends the session (see the module docs).
///
/// # Errors
///
/// [`StoredSessionError::Decode`] when `value` is not such a record,
/// [`StoredSessionError::NotLive`] when the session is already ending or ended.
pub fn expire_now(value: &[u8], now: Timestamp) -> Result<Vec<u8>, StoredSessionError> {
    let header: Header<'_> = serde_json::from_slice(value)?;
    if header.phase != Phase::Live {
        return Err(StoredSessionError::NotLive(header.phase.into()));
    }
    let mut whole: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(value)?;
    whole.insert("deadline".into(), now.as_millis().into());
    Ok(serde_json::to_vec(&whole)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_session_can_be_expired() {
        let ended = br#"{"kind":"menu","phase":"ended","reason":"finished","origin":{"at":1}}"#;
        let seen = read_stored(ended).unwrap();
        assert_eq!((seen.phase, seen.reason), (SessionPhase::Ended, Some(EndReason::Finished)));
        assert!(matches!(expire_now(ended, Timestamp(5)), Err(StoredSessionError::NotLive(SessionPhase::Ended))));
        assert!(matches!(read_stored(b"{\"n\":1}"), Err(StoredSessionError::Decode(_))));
    }

    #[test]
    fn keys_round_trip() {
        let ns = Namespace::new("interactive").unwrap();
        let id = SessionId::random();
        assert_eq!(stored_id(&stored_key(&ns, id)), Some(id));
    }
}
