//! The decoded custom id: [`SessionId`] and [`CustomId`].

use std::fmt;

use super::CustomIdError;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The random, unguessable id of one interactive session: 96 random bits written as 16
/// URL-safe base64 characters.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::SessionId;
///
/// let id = SessionId::random();
/// assert_eq!(id.as_str().len(), 16);
/// assert_eq!(SessionId::parse(id.as_str()), Some(id));
/// assert_eq!(SessionId::parse("too short"), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; SessionId::LEN]);

impl SessionId {
    /// The length of the textual form.
    pub const LEN: usize = 16;

    /// Sorts before every id (not a valid id itself): a bound for range queries.
    pub(crate) const MIN: SessionId = SessionId([0; Self::LEN]);

    /// A fresh id from the thread-local cryptographically secure generator.
    pub fn random() -> Self {
        let raw: [u8; Self::LEN] = rand::random();
        // Each byte keeps its low 6 bits: 16 uniform sextets, 96 bits.
        SessionId(raw.map(|b| ALPHABET[usize::from(b & 63)]))
    }

    /// Parses the textual form; `None` unless it is exactly 16 URL-safe base64
    /// characters.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; Self::LEN] = text.as_bytes().try_into().ok()?;
        // Every byte checked, with no early exit: on a click's path, and a fixed 16.
        let valid = bytes.iter().fold(true, |ok, b| ok & (b.is_ascii_alphanumeric() | (*b == b'-') | (*b == b'_')));
        valid.then_some(SessionId(bytes))
    }

    /// The textual form.
    pub fn as_str(&self) -> &str {
        // Only ever built from ASCII (see `random` and `parse`), so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.as_str())
    }
}

/// One custom id, decoded: the session, the component and the tokens.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{CustomId, SessionId};
///
/// let mut id = CustomId::new(SessionId::random(), "page").push("3").push("sort:asc");
/// assert_eq!(id.get_at(1), Some("sort:asc"));
/// id.set_at(0, "4")?;
/// assert_eq!(id.tokens(), ["4", "sort:asc"]);
/// assert!(id.set_at(5, "x").is_err());
/// # Ok::<(), bot_sessions::interactive::CustomIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomId {
    pub(super) session: SessionId,
    pub(super) component: String,
    pub(super) tokens: Vec<String>,
}

impl CustomId {
    /// An id for `component` of `session`, without tokens.
    pub fn new(session: SessionId, component: impl Into<String>) -> Self {
        CustomId { session, component: component.into(), tokens: Vec::new() }
    }

    /// Appends a token.
    #[must_use]
    pub fn push(mut self, token: impl Into<String>) -> Self {
        self.tokens.push(token.into());
        self
    }

    /// Replaces the token at `index`, or appends when `index` equals the number of
    /// tokens.
    ///
    /// # Errors
    ///
    /// [`CustomIdError::IndexOutOfRange`] past that.
    pub fn set_at(&mut self, index: usize, token: impl Into<String>) -> Result<&mut Self, CustomIdError> {
        let len = self.tokens.len();
        match index.cmp(&len) {
            std::cmp::Ordering::Less => self.tokens[index] = token.into(),
            std::cmp::Ordering::Equal => self.tokens.push(token.into()),
            std::cmp::Ordering::Greater => return Err(CustomIdError::IndexOutOfRange { index, len }),
        }
        Ok(self)
    }

    /// The token at `index`.
    pub fn get_at(&self, index: usize) -> Option<&str> {
        self.tokens.get(index).map(String::as_str)
    }

    /// The session.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The component.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// A copy naming another component of the same session, with the same tokens.
    #[must_use]
    pub fn with_component(&self, component: impl Into<String>) -> Self {
        CustomId { session: self.session, component: component.into(), tokens: self.tokens.clone() }
    }

    /// All tokens.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_differ_and_parse() {
        let a = SessionId::random();
        let b = SessionId::random();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
    }
}
