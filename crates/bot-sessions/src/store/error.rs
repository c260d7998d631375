//! The store layer's error.

/// Any error of the shared [`std::error::Error`] kind, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong talking to a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A write or delete precondition failed: the record changed (or appeared, or
    /// disappeared) since it was read. Nothing was written.
    #[error("conflict on session key `{key}`: the record changed since it was read")]
    Conflict {
        /// The key at fault.
        key: String,
    },
    /// The backend failed. `retryable` is true for faults that may pass (connection
    /// lost, timeout, database busy), false for ones that will not (bad schema, full
    /// disk, permission denied).
    #[error("{backend} backend error{}: {source}", key.as_ref().map(|k| format!(" on key `{k}`")).unwrap_or_default())]
    Backend {
        /// The backend (`sqlite`, `redis`, ...).
        backend: &'static str,
        /// The key being worked on, if any.
        key: Option<String>,
        /// Whether trying again may succeed.
        retryable: bool,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
    /// A write or delete was sent but its outcome is unknown: the reply timed out or
    /// the connection was lost after the command left. It may or may not have been
    /// applied (and a still-queued command may apply later, only while its
    /// precondition holds). Resolve it before retrying anything: load the key and
    /// compare the record's version with the [`Write::version`](crate::Write::version)
    /// that was proposed; [`Sessions::update`](crate::Sessions::update) does this.
    #[error("{backend}: outcome unknown for the write to key `{key}`: {source}")]
    Ambiguous {
        /// The backend (`redis`, `postgres`, ...).
        backend: &'static str,
        /// The key written.
        key: String,
        /// What cut the reply off.
        #[source]
        source: BoxError,
    },
    /// A stored record that the backend cannot read back (corrupt metadata).
    #[error("corrupt record under key `{key}`: {reason}")]
    Corrupt {
        /// The key at fault.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Invalid configuration (a table name, a URL, a cursor).
    #[error("invalid store configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// Whether trying the operation again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Backend { retryable: true, .. })
    }

    /// Whether the outcome of a write or delete is unknown (see
    /// [`StoreError::Ambiguous`]). Never retry such a write blindly.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, StoreError::Ambiguous { .. })
    }

    /// An ambiguous outcome of a write or delete to `key`.
    pub fn ambiguous(backend: &'static str, key: &str, source: impl Into<BoxError>) -> Self {
        StoreError::Ambiguous { backend, key: key.to_owned(), source: source.into() }
    }

    /// Whether this is a failed precondition.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// A backend error.
    pub fn backend(backend: &'static str, key: Option<&str>, retryable: bool, source: impl Into<BoxError>) -> Self {
        StoreError::Backend { backend, key: key.map(str::to_owned), retryable, source: source.into() }
    }
}
