//! [`CustomIdCodec`]: a custom id to text and back, in the documented layout, under
//! the target's limit, optionally signed.

use std::sync::Arc;

use super::escape::{SEPARATOR, SEPARATOR_BYTE, escape_into, fields, unescape};
use super::{CustomId, CustomIdError, DecodeError, SessionId, SigningKeys, Target};

/// The longest accepted custom-id namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 16;

/// Builds and reads custom ids for one namespace and target, optionally signed.
///
/// A signature covers the whole id (namespace, session, component, tokens) and, though
/// they are not written in the id, the [`Target`] and the [`bot`](Self::bot): an id
/// signed for one bot or platform is [`DecodeError::Forged`] on another, even when
/// both share a store, a namespace and a signing key. Without `bot`, ids are bound to
/// "no bot" (every codec without one accepts them): set it whenever several bots
/// share a signing key.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{CustomId, CustomIdCodec, DecodeError, SessionId, SigningKeys, Target};
///
/// let codec = CustomIdCodec::new("menu", Target::Telegram)?
///     .bot(123456789)
///     .signed(SigningKeys::new([b"0123456789abcdef0123456789abcdef"])?);
/// let id = CustomId::new(SessionId::random(), "pick").push("näme:1");
/// let text = codec.encode(&id)?;
/// assert!(text.len() <= 64);
/// assert_eq!(codec.decode(&text), Ok(id));
///
/// assert_eq!(codec.decode("someone-else:42"), Err(DecodeError::NotOurs));
/// let edited = text.replacen("pick", "drop", 1);
/// assert!(matches!(codec.decode(&edited), Err(DecodeError::Forged { .. })));
///
/// // The same key and namespace, another bot: its ids are not ours.
/// let other_bot = CustomIdCodec::new("menu", Target::Telegram)?
///     .bot(987654321)
///     .signed(SigningKeys::new([b"0123456789abcdef0123456789abcdef"])?);
/// assert!(matches!(other_bot.decode(&text), Err(DecodeError::Forged { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CustomIdCodec {
    namespace: Arc<str>,
    target: Target,
    bot: Option<i64>,
    /// What a signature covers besides the id's text: the target and the bot.
    binding: Arc<[u8]>,
    keys: Option<SigningKeys>,
}

impl std::fmt::Debug for CustomIdCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomIdCodec")
            .field("namespace", &self.namespace)
            .field("target", &self.target)
            .field("bot", &self.bot)
            .field("keys", &self.keys)
            .finish()
    }
}

/// The signed prefix binding an id to its target and bot. The id's text follows it;
/// the fields are separated by NUL, which neither the target's name nor a number holds,
/// so no two (target, bot) pairs share a prefix.
fn binding(target: Target, bot: Option<i64>) -> Arc<[u8]> {
    let target = match target {
        Target::Discord => "discord".to_owned(),
        Target::Telegram => "telegram".to_owned(),
        Target::Custom { limit, unit } => format!("custom/{limit}/{unit}"),
    };
    let bot = bot.map_or_else(String::new, |b| b.to_string());
    format!("bot-sessions custom id v2\0{target}\0{bot}\0").into_bytes().into()
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
        Ok(CustomIdCodec { namespace: namespace.into(), target, bot: None, binding: binding(target, None), keys: None })
    }

    /// Binds signed ids to one bot: the id the bot is known by on its platform
    /// (Telegram: the bot's user id, the number before `:` in its token; Discord: the
    /// application id), as [`Context::bot_id`](crate::Context::bot_id) holds it. It is
    /// covered by the signature, not written in the id, so it costs no length. Every
    /// process of one bot must use the same; bots sharing a store, a namespace and a
    /// signing key must each use their own, or they accept each other's ids. Default:
    /// no bot (ids bound to the target only).
    #[must_use]
    pub fn bot(mut self, id: i64) -> Self {
        self.bot = Some(id);
        self.binding = binding(self.target, self.bot);
        self
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

    /// The bot signed ids are bound to, if any (see [`bot`](Self::bot)).
    pub fn bot_id(&self) -> Option<i64> {
        self.bot
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
            let tag = keys.sign(&self.binding, &text);
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
        self.decode_known(text, |_| false)
    }

    /// [`decode`](Self::decode), except that a signed id is not verified again when
    /// `known`, asked about the session the id names, says that this very text
    /// verified before (under this codec's keys, which never change).
    pub(crate) fn decode_known(
        &self,
        text: &str,
        known: impl FnOnce(SessionId) -> bool,
    ) -> Result<CustomId, DecodeError> {
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
                // The tag is a dozen bytes at the end: a plain backward scan finds its
                // separator sooner than `rsplit_once`'s word-at-a-time search sets up.
                let at = rest.as_bytes().iter().rposition(|&b| b == SEPARATOR_BYTE).ok_or_else(forged)?;
                let (body, tag) = (&rest[..at], &rest[at + 1..]);
                let signed = &text[..text.len() - tag.len() - 1];
                let seen = body.get(..SessionId::LEN).and_then(SessionId::parse).is_some_and(known);
                if !seen && !keys.verify(&self.binding, signed, tag) {
                    return Err(forged());
                }
                body
            }
        };
        let bad_session = || malformed("the session id is not 16 URL-safe base64 characters");
        // The session id has a fixed length: its end is known without a search.
        let (session, after) = match rest.as_bytes().get(SessionId::LEN) {
            Some(&SEPARATOR_BYTE) => (&rest[..SessionId::LEN], Some(&rest[SessionId::LEN + 1..])),
            None => (rest, None),
            // Not 16 characters up to the first separator: not a session id.
            Some(_) => return Err(bad_session()),
        };
        let session = SessionId::parse(session).ok_or_else(bad_session)?;
        // At least one field follows a separator (perhaps empty: an empty component).
        let mut fields = fields(after.ok_or_else(|| malformed("no component"))?);
        let component = unescape(fields.next().unwrap_or_default()).ok_or_else(|| malformed("bad %-escape"))?;
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

    /// `decode_known` skips the signature check only where `known` says the text
    /// verified before, and asks about the session the id names.
    #[test]
    fn a_known_text_is_not_verified_again() {
        let keys = crate::interactive::SigningKeys::new([[7u8; 32]]).unwrap();
        let codec = CustomIdCodec::new("m", Target::Discord).unwrap().signed(keys);
        let good = codec.encode(&CustomId::new(sid(), "go")).unwrap();
        let forged = good.replacen(":go:", ":gone:", 1);
        let mut asked = Vec::new();
        assert!(matches!(
            codec.decode_known(&forged, |s| {
                asked.push(s);
                false
            }),
            Err(DecodeError::Forged { .. })
        ));
        // What a caller that says yes to any text would let through: the caller's
        // part is to say yes only to the very text that verified (see `Local`).
        assert_eq!(
            codec
                .decode_known(&forged, |s| {
                    asked.push(s);
                    true
                })
                .unwrap()
                .component(),
            "gone"
        );
        assert_eq!(asked, [sid(), sid()]);
        // No session id where one belongs: nobody is asked, the signature decides.
        let no_session = format!("m:short:go:{}", good.rsplit_once(':').unwrap().1);
        assert!(matches!(codec.decode_known(&no_session, |_| panic!("asked")), Err(DecodeError::Forged { .. })));
        assert_eq!(codec.decode_known(&good, |_| false).unwrap().component(), "go");
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
        // Around the session id's fixed length: which part is at fault.
        let session = "the session id is not 16 URL-safe base64 characters";
        for (text, reason) in [
            ("m:AAAAbbbbCCCCdd-:go", session),
            ("m:AAAAbbbbCCCCdd-_x:go", session),
            ("m:AAAA:bbbCCCCdd-_:go", session),
            ("m:AAAAbbbbCCCCdd-_é:go", session),
            ("m:AAAAbbbbCCCCdd-é:go", session),
            ("m:AAAAbbbbCCCCdd-", session),
            ("m:AAAAbbbbCCCCdd-_", "no component"),
            ("m:AAAAbbbbCCCCdd-_:%", "bad %-escape"),
        ] {
            assert_eq!(codec.decode(text), Err(DecodeError::Malformed { custom_id: text.into(), reason }), "{text:?}");
        }
        assert_eq!(codec.decode("m:AAAAbbbbCCCCdd-_:").map(|id| id.component().to_owned()), Ok(String::new()));
    }

    /// The signature binds the bot and the target: the same text, key and namespace
    /// are refused by a codec of another bot, of no bot, or of another platform.
    #[test]
    fn signatures_bind_the_bot_and_the_target() {
        let keys = || SigningKeys::new([[9u8; 16]]).unwrap();
        let codec = |target, bot: Option<i64>| {
            let c = CustomIdCodec::new("m", target).unwrap();
            let c = match bot {
                Some(b) => c.bot(b),
                None => c,
            };
            c.signed(keys())
        };
        let custom = Target::Custom { limit: 64, unit: Unit::Bytes };
        let all = [
            codec(Target::Telegram, Some(1)),
            codec(Target::Telegram, Some(2)),
            codec(Target::Telegram, Some(-1)),
            codec(Target::Telegram, None),
            codec(Target::Discord, Some(1)),
            codec(Target::Discord, None),
            codec(custom, Some(1)),
            codec(Target::Custom { limit: 64, unit: Unit::Chars }, Some(1)),
        ];
        let id = CustomId::new(sid(), "go").push("1");
        for (i, a) in all.iter().enumerate() {
            let text = a.encode(&id).unwrap();
            for (j, b) in all.iter().enumerate() {
                let r = b.decode(&text);
                if i == j {
                    assert_eq!(r, Ok(id.clone()));
                } else {
                    assert!(matches!(r, Err(DecodeError::Forged { .. })), "{a:?} -> {b:?}: {r:?}");
                }
            }
        }
        assert_eq!(all[0].bot_id(), Some(1));
        assert!(format!("{:?}", all[0]).contains("bot: Some(1)"));
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

    #[test]
    fn rotation_signs_with_the_last_and_accepts_any() {
        let old = CustomIdCodec::new("m", Target::Discord).unwrap().signed(SigningKeys::new([[1u8; 16]]).unwrap());
        let rotated =
            CustomIdCodec::new("m", Target::Discord).unwrap().signed(SigningKeys::new([[1u8; 16], [2u8; 16]]).unwrap());
        let new_only = CustomIdCodec::new("m", Target::Discord).unwrap().signed(SigningKeys::new([[2u8; 16]]).unwrap());
        let id = CustomId::new(SessionId::parse("AAAAbbbbCCCCdd-_").unwrap(), "x");
        let by_old = old.encode(&id).unwrap();
        let by_rotated = rotated.encode(&id).unwrap();
        assert_eq!(rotated.decode(&by_old), Ok(id.clone()));
        assert_eq!(new_only.decode(&by_rotated), Ok(id.clone()));
        assert!(matches!(new_only.decode(&by_old), Err(DecodeError::Forged { .. })));
        assert!(matches!(old.decode(&by_rotated), Err(DecodeError::Forged { .. })));
    }
}
