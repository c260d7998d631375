//! The typed API's error.

use crate::codec::CodecError;
use crate::store::BoxError;
use crate::{KeyError, StoreError};

/// What can go wrong loading, changing or saving a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The update lacks an id the key strategy needs, or a key is malformed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store failed (see [`StoreError::is_retryable`]), or a handler-scoped
    /// [`commit`](crate::SessionGuard::commit) met a conflicting write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored bytes do not decode into the session type (policy
    /// [`DecodePolicy::Fail`](crate::DecodePolicy::Fail)). The record is untouched.
    #[error("session `{key}` does not decode: {source}")]
    Decode {
        /// The key at fault.
        key: String,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// The value does not encode.
    #[error("session `{key}` does not encode: {source}")]
    Encode {
        /// The key at fault.
        key: String,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// The record was written by newer code (a schema version this code does not know).
    /// It is left untouched.
    #[error("session `{key}` has schema version {found}, newer than the {supported} this code supports")]
    NewerSchema {
        /// The key at fault.
        key: String,
        /// The record's schema version.
        found: u32,
        /// The newest version this code knows.
        supported: u32,
    },
    /// A migration step failed. The record is left untouched.
    #[error("session `{key}`: migration from schema version {from} failed: {source}")]
    Migration {
        /// The key at fault.
        key: String,
        /// The version the failing step migrates from.
        from: u32,
        /// The step's error.
        #[source]
        source: BoxError,
    },
    /// The encoded value is over the configured size limit. Nothing was written.
    #[error("session `{key}` encodes to {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The key at fault.
        key: String,
        /// The encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Compare-and-set kept failing against other processes' writes.
    #[error("session `{key}`: gave up after {attempts} conflicting attempts")]
    Contention {
        /// The key at fault.
        key: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The builder was given an invalid setting.
    #[error("invalid session configuration: {0}")]
    Config(String),
}

impl SessionError {
    /// Whether a write's outcome stayed unknown after `Sessions` tried to resolve it
    /// (see [`StoreError::Ambiguous`]): the change may or may not have landed, and
    /// another process has written the key since, so it cannot be told. Do not
    /// re-apply the change blindly.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, SessionError::Store(e) if e.is_ambiguous())
    }

    /// The encryption error behind a [`Decode`](Self::Decode) or
    /// [`Encode`](Self::Encode) error, when the stored value did not open (or seal)
    /// with the key ring (feature `encryption`).
    #[cfg(feature = "encryption")]
    pub fn seal_error(&self) -> Option<&crate::encryption::SealError> {
        match self {
            SessionError::Decode { source, .. } | SessionError::Encode { source, .. } => source.source.downcast_ref(),
            _ => None,
        }
    }

    /// Whether trying again may succeed (a backend outage, contention, a conflict).
    pub fn is_retryable(&self) -> bool {
        match self {
            SessionError::Store(e) => e.is_retryable() || e.is_conflict(),
            SessionError::Contention { .. } => true,
            _ => false,
        }
    }
}
