//! [`CustomIdCodec`]: a custom id to text and back, in the documented layout, under
//! the target's limit, optionally signed.

use std::sync::Arc;

use super::escape::{escape_into, unescape};
use super::{CustomId, CustomIdError, DecodeError, SessionId, SigningKeys, Target};

/// The field separator of a custom id.
pub const SEPARATOR: char = ':';

/// The longest accepted custom-id namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 16;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactive::custom_id::Unit;

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
    fn namespaces_are_validated() {
        assert!(CustomIdCodec::new("", Target::Discord).is_err());
        assert!(CustomIdCodec::new("a:b", Target::Discord).is_err());
        assert!(CustomIdCodec::new(&"x".repeat(17), Target::Discord).is_err());
        assert!(CustomIdCodec::new("x", Target::Custom { limit: 0, unit: Unit::Bytes }).is_err());
    }

    #[test]
    fn unique_per_message() {
        assert!(CustomIdCodec::ensure_unique(["a", "b"]).is_ok());
        assert_eq!(
            CustomIdCodec::ensure_unique(["a", "b", "a"]),
            Err(CustomIdError::Duplicate { custom_id: "a".into() })
        );
    }
}
