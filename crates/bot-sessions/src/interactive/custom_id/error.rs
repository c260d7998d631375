//! The errors of building, configuring and reading custom ids.

use super::{Target, Unit};

/// Errors building custom ids or configuring their codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CustomIdError {
    /// The encoded id is longer than the target allows.
    #[error("custom id `{custom_id}` is {len} {unit} long, over the {target} limit of {limit}")]
    TooLong {
        /// The id that was built.
        custom_id: String,
        /// Its length, in `unit`s.
        len: usize,
        /// The target's limit, in `unit`s.
        limit: usize,
        /// What the limit counts.
        unit: Unit,
        /// The target.
        target: Target,
    },
    /// [`CustomId::set_at`](super::CustomId::set_at) past the end of the tokens.
    #[error("custom id token index {index} is out of range (the id has {len} tokens)")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// How many tokens the id has.
        len: usize,
    },
    /// A namespace that is empty, too long, or not `[A-Za-z0-9_.-]`.
    #[error("invalid custom id namespace {name:?}: {reason}")]
    InvalidNamespace {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Unusable signing keys.
    #[error("invalid custom id signing keys: {reason}")]
    InvalidKeys {
        /// What is wrong with them.
        reason: &'static str,
    },
    /// Two components of one message would carry the same id.
    #[error("custom id `{custom_id}` is used twice on one message")]
    Duplicate {
        /// The repeated id.
        custom_id: String,
    },
    /// A target limit of zero.
    #[error("a custom id limit must be at least 1")]
    ZeroLimit,
}

/// Why a custom id was not accepted. None of these touches a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The id does not start with this codec's namespace: another component's.
    #[error("custom id is not ours")]
    NotOurs,
    /// The id carries our namespace but its signature is missing or wrong: edited,
    /// truncated or made up.
    #[error("custom id `{custom_id}` has a missing or wrong signature")]
    Forged {
        /// The id as received.
        custom_id: String,
    },
    /// The id carries our namespace but does not parse.
    #[error("malformed custom id `{custom_id}`: {reason}")]
    Malformed {
        /// The id as received.
        custom_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
