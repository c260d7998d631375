//! Session keys: which stored session an update belongs to.
//!
//! A [`SessionKey`] is a [`Namespace`] (one per session type), an optional bot id and a
//! [`Scope`] (per chat, per user, per topic, per guild, ...). Its textual form is stable
//! and round-trips through [`SessionKey::from_str`](std::str::FromStr), so an operator
//! can name a key on a command line:
//!
//! ```text
//! onboarding/chat:-100123/user:42
//! counter@777/chat:5/topic:9/user:42
//! cart/custom:order%2F17/user:42
//! roles/guild:81384788765712384/user:42
//! votes/instance:-7284093287465123
//! ```
//!
//! A [`KeyStrategy`] derives the scope from an update's [`Context`](crate::Context);
//! when the update lacks the id the strategy needs, it returns a `Missing*`
//! [`KeyError`] naming the strategy, never a guess.

mod ids;
mod scope;
mod strategy;
mod text;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use scope::{Scope, SessionKey};
pub use strategy::KeyStrategy;

/// Errors building or parsing a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The strategy needs a chat id and the update has none (a poll, an inline query).
    #[error("the update has no chat id, which key strategy `{strategy}` needs")]
    MissingChat {
        /// The strategy that needed it.
        strategy: &'static str,
    },
    /// The strategy needs a user id and the update has none (a channel post, an
    /// anonymous admin, a poll).
    #[error("the update has no user id, which key strategy `{strategy}` needs")]
    MissingUser {
        /// The strategy that needed it.
        strategy: &'static str,
    },
    /// The strategy needs a forum topic and the update is not in one.
    #[error("the update is not in a forum topic, which key strategy `{strategy}` needs")]
    MissingTopic {
        /// The strategy that needed it.
        strategy: &'static str,
    },
    /// The strategy needs a business connection id and the update has none.
    #[error("the update has no business connection id, which key strategy `{strategy}` needs")]
    MissingBusinessConnection {
        /// The strategy that needed it.
        strategy: &'static str,
    },
    /// The strategy needs a Discord guild id and the update has none (a DM, any
    /// Telegram update).
    #[error("the update has no guild id, which key strategy `{strategy}` needs")]
    MissingGuild {
        /// The strategy that needed it.
        strategy: &'static str,
    },
    /// The strategy needs a Telegram `chat_instance` and the update has none (anything
    /// but a callback query), or an empty one.
    #[error("the update has no chat_instance, which key strategy `{strategy}` needs")]
    MissingChatInstance {
        /// The strategy that needed it.
        strategy: &'static str,
    },
    /// A namespace name that is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    #[error("invalid namespace {name:?}: {reason}")]
    InvalidNamespace {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A textual key that does not parse.
    #[error("malformed session key {input:?}: {reason}")]
    Malformed {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A custom strategy refused the update.
    #[error("custom key strategy failed: {0}")]
    Custom(String),
}

/// The name of one kind of session (`onboarding`, `cart`, ...): 1 to 64 characters
/// from `[A-Za-z0-9_.-]`, not starting with `_` (reserved for the library's own
/// namespaces, like quarantine).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace(Arc<str>);

impl Namespace {
    /// Longest accepted namespace, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates and wraps a namespace name.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidNamespace`] when the name is empty, too long, starts with `_`
    /// or holds a character outside `[A-Za-z0-9_.-]`.
    pub fn new(name: &str) -> Result<Self, KeyError> {
        if name.starts_with('_') {
            return Err(KeyError::InvalidNamespace {
                name: name.into(),
                reason: "names starting with `_` are reserved",
            });
        }
        Self::new_unchecked_reserved(name)
    }

    /// The same name in an allocation of its own: clones of the copy count their
    /// references apart from the original's (one copy per thread keeps the cores from
    /// sharing a reference count).
    #[cfg(feature = "interactive")]
    pub(crate) fn own_copy(&self) -> Self {
        Namespace(Arc::from(&*self.0))
    }

    /// Like [`Namespace::new`] but allows the reserved `_` prefix: for the library's
    /// own namespaces.
    pub(crate) fn new_unchecked_reserved(name: &str) -> Result<Self, KeyError> {
        let invalid = |reason| KeyError::InvalidNamespace { name: name.into(), reason };
        if name.is_empty() {
            return Err(invalid("empty"));
        }
        if name.len() > Self::MAX_LEN {
            return Err(invalid("longer than 64 bytes"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err(invalid("only A-Z, a-z, 0-9, `_`, `.` and `-` are allowed"));
        }
        Ok(Namespace(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Namespace {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Namespace::new(s)
    }
}
