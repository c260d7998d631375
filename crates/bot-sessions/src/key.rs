//! Session keys: which stored session an update belongs to.
//!
//! A [`SessionKey`] is a [`Namespace`] (one per session type), an optional bot id and a
//! [`Scope`] (per chat, per user, per topic, ...). Its textual form is stable and
//! round-trips through [`SessionKey::from_str`](std::str::FromStr), so an operator can
//! name a key on a command line:
//!
//! ```text
//! onboarding/chat:-100123/user:42
//! counter@777/chat:5/topic:9/user:42
//! cart/custom:order%2F17/user:42
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::Context;

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

/// What one session is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// One session per chat.
    Chat(i64),
    /// One session per user, across chats.
    User(i64),
    /// One session per user in a chat.
    ChatUser {
        /// Chat id.
        chat: i64,
        /// User id.
        user: i64,
    },
    /// One session per forum topic.
    Topic {
        /// Chat id.
        chat: i64,
        /// Topic (thread) id.
        topic: i64,
    },
    /// One session per user in a forum topic.
    TopicUser {
        /// Chat id.
        chat: i64,
        /// Topic (thread) id.
        topic: i64,
        /// User id.
        user: i64,
    },
    /// One session per business connection.
    Business(String),
    /// A key of the bot's own; `user` ties it to a user for [`forget_user`].
    ///
    /// [`forget_user`]: crate::Store::forget_user
    Custom {
        /// Free text (escaped in the textual form).
        id: String,
        /// The user it belongs to, if any.
        user: Option<i64>,
    },
}

impl Scope {
    /// The user this scope belongs to, which indexes it for forget-user.
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Scope::User(u) => Some(*u),
            Scope::ChatUser { user, .. } | Scope::TopicUser { user, .. } => Some(*user),
            Scope::Custom { user, .. } => *user,
            Scope::Chat(_) | Scope::Topic { .. } | Scope::Business(_) => None,
        }
    }
}

/// The full address of one stored session.
///
/// # Examples
///
/// ```
/// use bot_sessions::{Namespace, Scope, SessionKey};
///
/// let key = SessionKey::new(Namespace::new("onboarding")?, Scope::ChatUser { chat: -5, user: 42 });
/// assert_eq!(key.to_string(), "onboarding/chat:-5/user:42");
/// assert_eq!(key.to_string().parse::<SessionKey>()?, key);
/// assert_eq!(key.user_id(), Some(42));
/// # Ok::<(), bot_sessions::KeyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    namespace: Namespace,
    bot_id: Option<i64>,
    scope: Scope,
    text: Arc<str>,
}

impl SessionKey {
    /// A key without a bot id.
    pub fn new(namespace: Namespace, scope: Scope) -> Self {
        Self::with_bot(namespace, None, scope)
    }

    /// A key, optionally qualified by the bot id.
    pub fn with_bot(namespace: Namespace, bot_id: Option<i64>, scope: Scope) -> Self {
        let text = render(&namespace, bot_id, &scope).into();
        SessionKey { namespace, bot_id, scope, text }
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The bot id, if the key is qualified by one.
    pub fn bot_id(&self) -> Option<i64> {
        self.bot_id
    }

    /// The scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The user the key belongs to, if any (indexed for forget-user).
    pub fn user_id(&self) -> Option<i64> {
        self.scope.user_id()
    }

    /// The stable textual form (the same as `Display`), which backends use as the
    /// storage key.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The textual form, shared (cheap to clone into a map key).
    pub(crate) fn text_arc(&self) -> &Arc<str> {
        &self.text
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn render(ns: &Namespace, bot: Option<i64>, scope: &Scope) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(48);
    s.push_str(ns.as_str());
    if let Some(b) = bot {
        let _ = write!(s, "@{b}");
    }
    // Writing to a String cannot fail.
    let _ = match scope {
        Scope::Chat(c) => write!(s, "/chat:{c}"),
        Scope::User(u) => write!(s, "/user:{u}"),
        Scope::ChatUser { chat, user } => write!(s, "/chat:{chat}/user:{user}"),
        Scope::Topic { chat, topic } => write!(s, "/chat:{chat}/topic:{topic}"),
        Scope::TopicUser { chat, topic, user } => write!(s, "/chat:{chat}/topic:{topic}/user:{user}"),
        Scope::Business(id) => {
            s.push_str("/biz:");
            escape_into(id, &mut s);
            Ok(())
        }
        Scope::Custom { id, user } => {
            s.push_str("/custom:");
            escape_into(id, &mut s);
            match user {
                Some(u) => write!(s, "/user:{u}"),
                None => Ok(()),
            }
        }
    };
    s
}

/// Percent-escapes `%`, `/`, and control characters so free text fits in one segment.
fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        if c == '%' || c == '/' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
}

fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape `%{hex}`"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escapes do not form UTF-8".to_string())
}

impl FromStr for SessionKey {
    type Err = KeyError;

    fn from_str(input: &str) -> Result<Self, KeyError> {
        let malformed = |reason: String| KeyError::Malformed { input: input.into(), reason };
        let mut parts = input.split('/');
        let head = parts.next().unwrap_or_default();
        let (ns, bot) = match head.split_once('@') {
            Some((ns, bot)) => {
                let bot = bot.parse::<i64>().map_err(|_| malformed(format!("bot id `{bot}` is not an integer")))?;
                (ns, Some(bot))
            }
            None => (head, None),
        };
        let namespace = Namespace::new_unchecked_reserved(ns)?;
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(3);
        for seg in parts {
            let (name, value) =
                seg.split_once(':').ok_or_else(|| malformed(format!("segment `{seg}` is not `name:value`")))?;
            fields.push((name, value));
        }
        let int =
            |name: &str, v: &str| v.parse::<i64>().map_err(|_| malformed(format!("{name} `{v}` is not an integer")));
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        let scope = match (names.as_slice(), fields.as_slice()) {
            (["chat"], [(_, c)]) => Scope::Chat(int("chat", c)?),
            (["user"], [(_, u)]) => Scope::User(int("user", u)?),
            (["chat", "user"], [(_, c), (_, u)]) => Scope::ChatUser { chat: int("chat", c)?, user: int("user", u)? },
            (["chat", "topic"], [(_, c), (_, t)]) => Scope::Topic { chat: int("chat", c)?, topic: int("topic", t)? },
            (["chat", "topic", "user"], [(_, c), (_, t), (_, u)]) => {
                Scope::TopicUser { chat: int("chat", c)?, topic: int("topic", t)?, user: int("user", u)? }
            }
            (["biz"], [(_, b)]) => Scope::Business(unescape(b).map_err(malformed)?),
            (["custom"], [(_, id)]) => Scope::Custom { id: unescape(id).map_err(malformed)?, user: None },
            (["custom", "user"], [(_, id), (_, u)]) => {
                Scope::Custom { id: unescape(id).map_err(malformed)?, user: Some(int("user", u)?) }
            }
            ([], _) => return Err(malformed("no scope after the namespace".into())),
            _ => return Err(malformed(format!("unknown scope layout `{}`", names.join("/")))),
        };
        let key = SessionKey::with_bot(namespace, bot, scope);
        // Reject non-canonical spellings (`chat:+5`, `chat:05`, lower-case escapes) so
        // one session never has two textual names.
        if key.as_str() != input {
            return Err(malformed(format!("not in canonical form (expected `{key}`)")));
        }
        Ok(key)
    }
}

type CustomFn = dyn Fn(&Context) -> Result<Scope, KeyError> + Send + Sync;

/// How a session's [`Scope`] is derived from an update's [`Context`].
///
/// # Examples
///
/// ```
/// use bot_sessions::{Context, KeyError, KeyStrategy, Scope};
///
/// let ctx = Context::new().chat(10).user(42);
/// assert_eq!(KeyStrategy::ChatUser.scope(&ctx)?, Scope::ChatUser { chat: 10, user: 42 });
///
/// // A channel post has no user: the strategy says so instead of guessing.
/// let post = Context::new().chat(-100);
/// assert!(matches!(KeyStrategy::User.scope(&post), Err(KeyError::MissingUser { .. })));
/// # Ok::<(), KeyError>(())
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum KeyStrategy {
    /// Per chat.
    #[default]
    Chat,
    /// Per user, across chats.
    User,
    /// Per user in a chat.
    ChatUser,
    /// Per forum topic (requires a topic).
    ChatTopic,
    /// Per user in a forum topic (requires a topic).
    TopicUser,
    /// Per business connection.
    BusinessConnection,
    /// A closure of the bot's own.
    Custom(Arc<CustomFn>),
}

impl fmt::Debug for KeyStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl KeyStrategy {
    /// A strategy from a closure.
    pub fn custom(f: impl Fn(&Context) -> Result<Scope, KeyError> + Send + Sync + 'static) -> Self {
        KeyStrategy::Custom(Arc::new(f))
    }

    /// The strategy's name, as used in errors.
    pub fn name(&self) -> &'static str {
        match self {
            KeyStrategy::Chat => "chat",
            KeyStrategy::User => "user",
            KeyStrategy::ChatUser => "chat_user",
            KeyStrategy::ChatTopic => "chat_topic",
            KeyStrategy::TopicUser => "topic_user",
            KeyStrategy::BusinessConnection => "business_connection",
            KeyStrategy::Custom(_) => "custom",
        }
    }

    /// Derives the scope of an update.
    ///
    /// # Errors
    ///
    /// A `Missing*` [`KeyError`] naming the id the update lacks.
    pub fn scope(&self, ctx: &Context) -> Result<Scope, KeyError> {
        let strategy = self.name();
        let chat = || ctx.chat_id.ok_or(KeyError::MissingChat { strategy });
        let user = || ctx.user_id.ok_or(KeyError::MissingUser { strategy });
        let topic = || ctx.topic_id.ok_or(KeyError::MissingTopic { strategy });
        Ok(match self {
            KeyStrategy::Chat => Scope::Chat(chat()?),
            KeyStrategy::User => Scope::User(user()?),
            KeyStrategy::ChatUser => Scope::ChatUser { chat: chat()?, user: user()? },
            KeyStrategy::ChatTopic => Scope::Topic { chat: chat()?, topic: topic()? },
            KeyStrategy::TopicUser => Scope::TopicUser { chat: chat()?, topic: topic()?, user: user()? },
            KeyStrategy::BusinessConnection => Scope::Business(
                ctx.business_connection_id.clone().ok_or(KeyError::MissingBusinessConnection { strategy })?,
            ),
            KeyStrategy::Custom(f) => f(ctx)?,
        })
    }

    /// The full key of an update in `namespace` (qualified by the context's bot id).
    ///
    /// # Errors
    ///
    /// As [`KeyStrategy::scope`].
    pub fn key(&self, namespace: &Namespace, ctx: &Context) -> Result<SessionKey, KeyError> {
        Ok(SessionKey::with_bot(namespace.clone(), ctx.bot_id, self.scope(ctx)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::new(s).unwrap()
    }

    #[test]
    fn every_scope_round_trips() {
        let scopes = [
            Scope::Chat(-100123),
            Scope::User(42),
            Scope::ChatUser { chat: 1, user: 2 },
            Scope::Topic { chat: -5, topic: 9 },
            Scope::TopicUser { chat: -5, topic: 9, user: 3 },
            Scope::Business("AbC/%x\n".into()),
            Scope::Custom { id: "a/b:c%d é".into(), user: None },
            Scope::Custom { id: String::new(), user: Some(7) },
        ];
        for scope in scopes {
            for bot in [None, Some(777)] {
                let key = SessionKey::with_bot(ns("n.s-1_x"), bot, scope.clone());
                let parsed: SessionKey = key.as_str().parse().unwrap();
                assert_eq!(parsed, key, "{key}");
            }
        }
    }

    #[test]
    fn malformed_keys_are_typed_errors() {
        for bad in [
            "",
            "ns",
            "ns/",
            "ns/chat",
            "ns/chat:x",
            "ns/chat:1/chat:2",
            "ns/topic:1",
            "ns/chat:+1",
            "ns/chat:01",
            "ns@x/chat:1",
            "n s/chat:1",
            "ns/custom:%zz",
            "ns/custom:%4",
            "ns/custom:%ff",
            "ns/custom:%2f",
            "ns/user:1/extra:2",
        ] {
            let err = bad.parse::<SessionKey>().unwrap_err();
            assert!(
                matches!(err, KeyError::Malformed { .. } | KeyError::InvalidNamespace { .. }),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn namespaces_are_validated() {
        assert!(Namespace::new("onboarding").is_ok());
        for bad in ["", "_quarantine", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(matches!(Namespace::new(bad), Err(KeyError::InvalidNamespace { .. })), "{bad:?}");
        }
    }

    #[test]
    fn strategies_report_the_missing_id() {
        let poll = Context::new();
        let channel_post = Context::new().chat(-1001);
        let no_topic = Context::new().chat(-1001).user(5);
        assert_eq!(KeyStrategy::Chat.scope(&poll), Err(KeyError::MissingChat { strategy: "chat" }));
        assert_eq!(KeyStrategy::User.scope(&channel_post), Err(KeyError::MissingUser { strategy: "user" }));
        assert_eq!(KeyStrategy::ChatUser.scope(&channel_post), Err(KeyError::MissingUser { strategy: "chat_user" }));
        assert_eq!(KeyStrategy::ChatTopic.scope(&no_topic), Err(KeyError::MissingTopic { strategy: "chat_topic" }));
        assert_eq!(
            KeyStrategy::BusinessConnection.scope(&no_topic),
            Err(KeyError::MissingBusinessConnection { strategy: "business_connection" })
        );
        let custom = KeyStrategy::custom(|c| {
            Ok(Scope::Custom {
                id: format!("m{}", c.message_id.ok_or(KeyError::Custom("no message".into()))?),
                user: c.user_id,
            })
        });
        assert_eq!(
            custom.scope(&Context::new().message(3).user(1)).unwrap(),
            Scope::Custom { id: "m3".into(), user: Some(1) }
        );
        assert_eq!(custom.scope(&poll), Err(KeyError::Custom("no message".into())));
    }

    #[test]
    fn bot_id_qualifies_the_key() {
        let k = KeyStrategy::Chat.key(&ns("c"), &Context::new().bot(9).chat(1)).unwrap();
        assert_eq!(k.as_str(), "c@9/chat:1");
    }
}
