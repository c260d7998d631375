//! Custom IDs: the text a component (button, select menu, inline keyboard key) carries
//! so that a click can be routed back to its session.
//!
//! Layout, fields separated by `:`:
//!
//! ```text
//! NAMESPACE:SESSION:COMPONENT[:TOKEN]*[:SIGNATURE]
//! poll:Xk3v9QeR1bT0aZ7y:vote:2:q1UZ8R0dWk4
//! ```
//!
//! - `NAMESPACE` tells this bot's ids from any other component's (a foreign id is
//!   [`DecodeError::NotOurs`]);
//! - `SESSION` is a random, unguessable [`SessionId`] (96 bits, 16 URL-safe characters);
//! - `COMPONENT` names the component on its message (`next`, `vote`, ...), which keeps
//!   the ids of one message apart (platforms require them unique per message);
//! - `TOKEN`s are free text of the session's own; `%` and `:` inside a component or a
//!   token are escaped as `%25` and `%3A`, everything else (non-ASCII included) is kept;
//! - `SIGNATURE`, when the codec has [`SigningKeys`], is a truncated HMAC-SHA256 of
//!   everything before it, so an edited or forged id is refused
//!   ([`DecodeError::Forged`]).
//!
//! The limit belongs to the [`Target`]: Discord counts 100 characters, Telegram's
//! callback data 64 bytes. [`CustomIdCodec::encode`] fails over the limit, at build
//! time, with the id and both numbers in the error.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The field separator of a custom id.
pub const SEPARATOR: char = ':';

/// The longest accepted custom-id namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 16;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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
    /// [`CustomId::set_at`] past the end of the tokens.
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

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Unicode scalar values (`str::chars`).
    Chars,
    /// UTF-8 bytes.
    Bytes,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Chars => "characters",
            Unit::Bytes => "bytes",
        })
    }
}

/// Where custom ids go, which decides their length limit.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Target, Unit};
///
/// assert_eq!(Target::Discord.limit(), (100, Unit::Chars));
/// assert_eq!(Target::Telegram.limit(), (64, Unit::Bytes));
/// assert_eq!(Target::Telegram.measure("é"), 2);
/// assert_eq!(Target::Discord.measure("é"), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// Discord component and modal `custom_id`: 1 to 100 characters.
    Discord,
    /// Telegram inline keyboard `callback_data`: 1 to 64 bytes.
    Telegram,
    /// A limit of one's own.
    Custom {
        /// The largest accepted length.
        limit: usize,
        /// What it counts.
        unit: Unit,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Discord => f.write_str("Discord"),
            Target::Telegram => f.write_str("Telegram"),
            Target::Custom { .. } => f.write_str("custom"),
        }
    }
}

impl Target {
    /// The limit and what it counts.
    pub fn limit(self) -> (usize, Unit) {
        match self {
            Target::Discord => (100, Unit::Chars),
            Target::Telegram => (64, Unit::Bytes),
            Target::Custom { limit, unit } => (limit, unit),
        }
    }

    /// The length of `text` as this target counts it.
    pub fn measure(self, text: &str) -> usize {
        match self.limit().1 {
            Unit::Chars => text.chars().count(),
            Unit::Bytes => text.len(),
        }
    }
}

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
        bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_').then_some(SessionId(bytes))
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
    session: SessionId,
    component: String,
    tokens: Vec<String>,
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

/// Keys that sign custom ids: the first signs, every one verifies, so a key can be
/// rotated in (put it first, keep the old one second until old messages are gone).
///
/// The signature is HMAC-SHA256 truncated to [`tag_bytes`](Self::tag_bytes) bytes
/// (8 by default: 11 characters of the id).
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::SigningKeys;
///
/// let keys = SigningKeys::new([b"new key, at least 16 bytes".as_slice(), b"old key, at least 16 bytes"])?
///     .tag_bytes(6)?;
/// # Ok::<(), bot_sessions::interactive::CustomIdError>(())
/// ```
#[derive(Clone)]
pub struct SigningKeys {
    macs: Arc<[Hmac<Sha256>]>,
    tag_bytes: usize,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys").field("keys", &self.macs.len()).field("tag_bytes", &self.tag_bytes).finish()
    }
}

impl SigningKeys {
    /// The shortest accepted key, in bytes.
    pub const MIN_KEY_LEN: usize = 16;
    /// The default signature length, in bytes.
    pub const DEFAULT_TAG_BYTES: usize = 8;

    /// Keys, newest first.
    ///
    /// # Errors
    ///
    /// [`CustomIdError::InvalidKeys`] for an empty list or a key under 16 bytes.
    pub fn new<I, K>(keys: I) -> Result<Self, CustomIdError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let mut macs = Vec::new();
        for key in keys {
            let key = key.as_ref();
            if key.len() < Self::MIN_KEY_LEN {
                return Err(CustomIdError::InvalidKeys { reason: "a key is shorter than 16 bytes" });
            }
            let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                .map_err(|_| CustomIdError::InvalidKeys { reason: "HMAC refused the key" })?;
            macs.push(mac);
        }
        if macs.is_empty() {
            return Err(CustomIdError::InvalidKeys { reason: "no key given" });
        }
        Ok(SigningKeys { macs: macs.into(), tag_bytes: Self::DEFAULT_TAG_BYTES })
    }

    /// Sets the signature length in bytes (4 to 32; default 8).
    ///
    /// # Errors
    ///
    /// [`CustomIdError::InvalidKeys`] outside 4..=32.
    pub fn tag_bytes(mut self, n: usize) -> Result<Self, CustomIdError> {
        if !(4..=32).contains(&n) {
            return Err(CustomIdError::InvalidKeys { reason: "the signature length must be 4 to 32 bytes" });
        }
        self.tag_bytes = n;
        Ok(self)
    }

    fn sign(&self, body: &str) -> String {
        let mut tag = String::new();
        if let Some(mac) = self.macs.first() {
            let mut mac = mac.clone();
            mac.update(body.as_bytes());
            let full = mac.finalize().into_bytes();
            URL_SAFE_NO_PAD.encode_string(&full[..self.tag_bytes.min(full.len())], &mut tag);
        }
        tag
    }

    fn verify(&self, body: &str, tag: &str) -> bool {
        // Only the canonical encoding of exactly `tag_bytes` bytes is accepted.
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else { return false };
        if tag.len() != self.tag_bytes {
            return false;
        }
        self.macs.iter().any(|mac| {
            let mut mac = mac.clone();
            mac.update(body.as_bytes());
            mac.verify_truncated_left(&tag).is_ok()
        })
    }
}

/// Builds and reads custom ids for one namespace and target, optionally signed.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{CustomId, CustomIdCodec, DecodeError, SessionId, SigningKeys, Target};
///
/// let codec = CustomIdCodec::new("menu", Target::Telegram)?
///     .signed(SigningKeys::new([b"0123456789abcdef0123456789abcdef"])?);
/// let id = CustomId::new(SessionId::random(), "pick").push("näme:1");
/// let text = codec.encode(&id)?;
/// assert!(text.len() <= 64);
/// assert_eq!(codec.decode(&text), Ok(id));
///
/// assert_eq!(codec.decode("someone-else:42"), Err(DecodeError::NotOurs));
/// let edited = text.replacen("pick", "drop", 1);
/// assert!(matches!(codec.decode(&edited), Err(DecodeError::Forged { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CustomIdCodec {
    namespace: Arc<str>,
    target: Target,
    keys: Option<SigningKeys>,
}

impl CustomIdCodec {
    /// A codec for ids starting with `namespace` (1 to 16 characters of
    /// `[A-Za-z0-9_.-]`; short is better: it is repeated in every id) under `target`'s
    /// limit. Unsigned until [`signed`](Self::signed).
    ///
    /// # Errors
    ///
    /// [`CustomIdError::InvalidNamespace`], or [`CustomIdError::ZeroLimit`] for a
    /// custom target of limit 0.
    pub fn new(namespace: &str, target: Target) -> Result<Self, CustomIdError> {
        let invalid = |reason| CustomIdError::InvalidNamespace { name: namespace.into(), reason };
        if namespace.is_empty() {
            return Err(invalid("empty"));
        }
        if namespace.len() > MAX_NAMESPACE_LEN {
            return Err(invalid("longer than 16 bytes"));
        }
        if !namespace.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err(invalid("only A-Z, a-z, 0-9, `_`, `.` and `-` are allowed"));
        }
        if target.limit().0 == 0 {
            return Err(CustomIdError::ZeroLimit);
        }
        Ok(CustomIdCodec { namespace: namespace.into(), target, keys: None })
    }

    /// Signs every id built from now on and refuses unsigned or wrongly signed ones.
    #[must_use]
    pub fn signed(mut self, keys: SigningKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The target.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Whether ids are signed.
    pub fn is_signed(&self) -> bool {
        self.keys.is_some()
    }

    /// The id's text.
    ///
    /// # Errors
    ///
    /// [`CustomIdError::TooLong`] when it is over the target's limit.
    pub fn encode(&self, id: &CustomId) -> Result<String, CustomIdError> {
        let mut text = String::with_capacity(48);
        text.push_str(&self.namespace);
        text.push(SEPARATOR);
        text.push_str(id.session.as_str());
        text.push(SEPARATOR);
        escape_into(&id.component, &mut text);
        for token in &id.tokens {
            text.push(SEPARATOR);
            escape_into(token, &mut text);
        }
        if let Some(keys) = &self.keys {
            let tag = keys.sign(&text);
            text.push(SEPARATOR);
            text.push_str(&tag);
        }
        let (limit, unit) = self.target.limit();
        let len = self.target.measure(&text);
        if len > limit {
            return Err(CustomIdError::TooLong { custom_id: text, len, limit, unit, target: self.target });
        }
        Ok(text)
    }

    /// Reads an id.
    ///
    /// # Errors
    ///
    /// [`DecodeError::NotOurs`] for another namespace; [`DecodeError::Forged`] for a
    /// missing or wrong signature (a signed codec); [`DecodeError::Malformed`] for
    /// anything else that does not parse.
    pub fn decode(&self, text: &str) -> Result<CustomId, DecodeError> {
        let Some(rest) = text.strip_prefix(&*self.namespace).and_then(|r| r.strip_prefix(SEPARATOR)) else {
            return Err(DecodeError::NotOurs);
        };
        let malformed = |reason| DecodeError::Malformed { custom_id: text.into(), reason };
        // Longer than we ever build: refuse before hashing or parsing it.
        if self.target.measure(text) > self.target.limit().0 {
            return Err(malformed("longer than the target allows"));
        }
        let rest = match &self.keys {
            None => rest,
            Some(keys) => {
                let forged = || DecodeError::Forged { custom_id: text.into() };
                let (body, tag) = rest.rsplit_once(SEPARATOR).ok_or_else(forged)?;
                let signed = &text[..text.len() - tag.len() - 1];
                if !keys.verify(signed, tag) {
                    return Err(forged());
                }
                body
            }
        };
        let mut fields = rest.split(SEPARATOR);
        let session = fields
            .next()
            .and_then(SessionId::parse)
            .ok_or_else(|| malformed("the session id is not 16 URL-safe base64 characters"))?;
        let component = fields.next().ok_or_else(|| malformed("no component"))?;
        let component = unescape(component).ok_or_else(|| malformed("bad %-escape"))?;
        let tokens = fields.map(unescape).collect::<Option<Vec<_>>>().ok_or_else(|| malformed("bad %-escape"))?;
        Ok(CustomId { session, component, tokens })
    }

    /// Checks that the ids of one message's components are pairwise distinct, as
    /// platforms require.
    ///
    /// # Errors
    ///
    /// [`CustomIdError::Duplicate`] naming the first repeated id.
    pub fn ensure_unique<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<(), CustomIdError> {
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if !seen.insert(id) {
                return Err(CustomIdError::Duplicate { custom_id: id.into() });
            }
        }
        Ok(())
    }
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            SEPARATOR => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

/// Undoes [`escape_into`]; only the two escapes it writes are accepted, so one token
/// has exactly one spelling.
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "%25" => '%',
            "%3A" => SEPARATOR,
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> SessionId {
        SessionId::parse("AAAAbbbbCCCCdd-_").unwrap()
    }

    #[test]
    fn layout_is_as_documented() {
        let codec = CustomIdCodec::new("m", Target::Discord).unwrap();
        let id = CustomId::new(sid(), "go").push("a:b").push("50%").push("");
        assert_eq!(codec.encode(&id).unwrap(), "m:AAAAbbbbCCCCdd-_:go:a%3Ab:50%25:");
        assert_eq!(codec.decode("m:AAAAbbbbCCCCdd-_:go:a%3Ab:50%25:").unwrap(), id);
        assert_eq!(codec.decode("m:AAAAbbbbCCCCdd-_:go").unwrap().tokens().len(), 0);
    }

    #[test]
    fn malformed_and_foreign_ids() {
        let codec = CustomIdCodec::new("m", Target::Discord).unwrap();
        for foreign in ["", "m", "mm:AAAAbbbbCCCCdd-_:go", "x:AAAAbbbbCCCCdd-_:go", "M:AAAAbbbbCCCCdd-_:go"] {
            assert_eq!(codec.decode(foreign), Err(DecodeError::NotOurs), "{foreign:?}");
        }
        for bad in [
            "m:",
            "m:AAAA",
            "m:AAAAbbbbCCCCdd-_",
            "m:AAAAbbbbCCCCdd-!:go",
            "m:AAAAbbbbCCCCdd-_:go:%",
            "m:AAAAbbbbCCCCdd-_:go:%3a",
            "m:AAAAbbbbCCCCdd-_:go:%41",
            "m:AAAAbbbbCCCCdd-_:g%2",
            "m:AAAAbbbbCCCCddé_:go",
        ] {
            assert!(matches!(codec.decode(bad), Err(DecodeError::Malformed { .. })), "{bad:?}");
        }
        let long = format!("m:AAAAbbbbCCCCdd-_:go:{}", "x".repeat(100));
        assert!(matches!(codec.decode(&long), Err(DecodeError::Malformed { .. })));
    }

    #[test]
    fn namespaces_and_keys_are_validated() {
        assert!(CustomIdCodec::new("", Target::Discord).is_err());
        assert!(CustomIdCodec::new("a:b", Target::Discord).is_err());
        assert!(CustomIdCodec::new(&"x".repeat(17), Target::Discord).is_err());
        assert!(CustomIdCodec::new("x", Target::Custom { limit: 0, unit: Unit::Bytes }).is_err());
        assert!(SigningKeys::new(Vec::<Vec<u8>>::new()).is_err());
        assert!(SigningKeys::new([b"short"]).is_err());
        let keys = SigningKeys::new([[7u8; 16]]).unwrap();
        assert!(keys.clone().tag_bytes(3).is_err());
        assert!(keys.tag_bytes(32).is_ok());
    }

    #[test]
    fn rotation_signs_with_the_first_and_accepts_any() {
        let old = CustomIdCodec::new("m", Target::Discord).unwrap().signed(SigningKeys::new([[1u8; 16]]).unwrap());
        let rotated =
            CustomIdCodec::new("m", Target::Discord).unwrap().signed(SigningKeys::new([[2u8; 16], [1u8; 16]]).unwrap());
        let new_only = CustomIdCodec::new("m", Target::Discord).unwrap().signed(SigningKeys::new([[2u8; 16]]).unwrap());
        let id = CustomId::new(sid(), "x");
        let by_old = old.encode(&id).unwrap();
        let by_rotated = rotated.encode(&id).unwrap();
        assert_eq!(rotated.decode(&by_old), Ok(id.clone()));
        assert_eq!(new_only.decode(&by_rotated), Ok(id.clone()));
        assert!(matches!(new_only.decode(&by_old), Err(DecodeError::Forged { .. })));
        assert!(matches!(old.decode(&by_rotated), Err(DecodeError::Forged { .. })));
    }

    #[test]
    fn unique_per_message() {
        assert!(CustomIdCodec::ensure_unique(["a", "b"]).is_ok());
        assert_eq!(
            CustomIdCodec::ensure_unique(["a", "b", "a"]),
            Err(CustomIdError::Duplicate { custom_id: "a".into() })
        );
    }

    #[test]
    fn random_ids_differ_and_parse() {
        let a = SessionId::random();
        let b = SessionId::random();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
    }
}
