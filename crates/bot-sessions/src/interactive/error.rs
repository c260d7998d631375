//! The interactive layer's error.

use std::sync::Arc;

use super::{CustomIdError, SessionId};
use crate::StoreError;
use crate::store::BoxError;

/// What can go wrong starting, routing or ending interactive sessions.
///
/// Bad custom ids are not errors: they are [`RouteOutcome`](super::RouteOutcome)s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InteractiveError {
    /// The store failed while working on `session`.
    #[error("store error on interactive session {}: {source}", display(session))]
    Store {
        /// The session, when one was being worked on.
        session: Option<SessionId>,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The session kind's `start`, `update` or `end` returned an error. Nothing was
    /// written for the update that failed.
    #[error("interactive session {session} (kind `{kind}`) failed in `{stage}`: {source}")]
    Session {
        /// The session.
        session: SessionId,
        /// Its kind.
        kind: Arc<str>,
        /// `start`, `update` or `end`.
        stage: &'static str,
        /// The kind's error.
        #[source]
        source: BoxError,
    },
    /// A stored session names a kind this manager has not registered.
    #[error("interactive session {session} is of kind `{kind}`, which this process has not registered")]
    UnknownKind {
        /// The session.
        session: SessionId,
        /// The stored kind name.
        kind: String,
    },
    /// [`Manager::start`](super::Manager::start) with a [`Kind`](super::Kind) that this
    /// manager did not register.
    #[error("kind `{kind}` is not registered with this manager")]
    NotRegistered {
        /// The kind's name.
        kind: Arc<str>,
    },
    /// A kind name registered twice.
    #[error("kind `{kind}` is already registered")]
    DuplicateKind {
        /// The name.
        kind: String,
    },
    /// A kind or namespace name that is not valid.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The stored session does not decode (or its new state does not encode).
    #[error("interactive session {session} does not {op}: {source}")]
    Codec {
        /// The session.
        session: SessionId,
        /// `decode` or `encode`.
        op: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The stored session does not open with the manager's key ring (a key the ring
    /// lacks, altered bytes, a record copied from another session, or plaintext the
    /// ring does not accept), or cannot be sealed (feature `encryption`).
    #[cfg(feature = "encryption")]
    #[error("interactive session {session}: {source}")]
    Sealed {
        /// The session.
        session: SessionId,
        /// What did not open, naming the record's key.
        #[source]
        source: crate::encryption::SealError,
    },
    /// The start filter refused the update.
    #[error("starting a session of kind `{kind}` was refused by filter `{filter}`")]
    StartRefused {
        /// The kind.
        kind: Arc<str>,
        /// The filter that said no.
        filter: Arc<str>,
    },
    /// The session (its state, or its result) encodes to more than the manager's
    /// [`max_size`](super::ManagerBuilder::max_size). Nothing was written: a click
    /// whose update grew the state over the limit leaves the session as it was.
    #[error("interactive session {session} encodes to {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The session.
        session: SessionId,
        /// The encoded size (JSON, before sealing).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A session asked for text ([`UpdateCx::ask_text`](super::UpdateCx::ask_text))
    /// but cannot: it was opened without a chat or a user, or the manager's namespace
    /// leaves no room for `<namespace>.text`. Nothing was written.
    #[error("interactive session {session} cannot ask for text: {reason}")]
    CannotAsk {
        /// The session.
        session: SessionId,
        /// Why.
        reason: &'static str,
    },
    /// Other processes kept writing the session; the update gave up after `attempts`.
    #[error("interactive session {session} stayed contended after {attempts} attempts")]
    Contention {
        /// The session.
        session: SessionId,
        /// Attempts made.
        attempts: u32,
    },
    /// A custom id could not be built.
    #[error(transparent)]
    CustomId(#[from] CustomIdError),
    /// The manager has shut down.
    #[error("the interactive session manager has shut down")]
    ShutDown,
    /// Configuration that cannot work (a zero period, no tokio runtime).
    #[error("invalid interactive configuration: {0}")]
    Config(String),
}

fn display(session: &Option<SessionId>) -> String {
    session.map_or_else(|| "-".to_string(), |s| s.to_string())
}

impl InteractiveError {
    #[cfg(feature = "encryption")]
    pub(crate) fn sealed(session: SessionId) -> impl FnOnce(crate::session::sealer::SealError) -> InteractiveError {
        move |source| InteractiveError::Sealed { session, source }
    }

    #[cfg(not(feature = "encryption"))]
    pub(crate) fn sealed(_session: SessionId) -> impl FnOnce(crate::session::sealer::SealError) -> InteractiveError {
        |never| match never {}
    }

    pub(crate) fn store(session: SessionId) -> impl FnOnce(StoreError) -> InteractiveError {
        move |source| InteractiveError::Store { session: Some(session), source }
    }
}
