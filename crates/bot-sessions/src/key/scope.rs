//! What a session is attached to ([`Scope`]) and its full address ([`SessionKey`]).

use std::fmt::{self, Write};
use std::sync::Arc;

use super::Namespace;

/// What one session is attached to.
///
/// Each variant has one textual form (see [`SessionKey`]):
///
/// | variant | text after the namespace |
/// | --- | --- |
/// | [`Chat`](Scope::Chat) | `/chat:5` |
/// | [`User`](Scope::User) | `/user:42` |
/// | [`ChatUser`](Scope::ChatUser) | `/chat:5/user:42` |
/// | [`Topic`](Scope::Topic) | `/chat:5/topic:9` |
/// | [`TopicUser`](Scope::TopicUser) | `/chat:5/topic:9/user:42` |
/// | [`Business`](Scope::Business) | `/biz:<escaped>` |
/// | [`Guild`](Scope::Guild) | `/guild:1` |
/// | [`GuildUser`](Scope::GuildUser) | `/guild:1/user:42` |
/// | [`ChatInstance`](Scope::ChatInstance) | `/instance:<escaped>` |
/// | [`Custom`](Scope::Custom) | `/custom:<escaped>` or `/custom:<escaped>/user:42` |
///
/// Escaped text has `%`, `/` and control characters written as upper-case `%XX` bytes.
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
    /// One session per Discord guild (server), across its channels.
    Guild(i64),
    /// One session per user in a Discord guild, across the guild's channels.
    GuildUser {
        /// Guild id.
        guild: i64,
        /// User id.
        user: i64,
    },
    /// One session per Telegram `chat_instance`: the only chat-like id a callback of
    /// an inline message (sent through inline mode, with no chat) carries.
    ChatInstance(String),
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
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::Scope;
    ///
    /// assert_eq!(Scope::GuildUser { guild: 1, user: 42 }.user_id(), Some(42));
    /// assert_eq!(Scope::Guild(1).user_id(), None);
    /// assert_eq!(Scope::ChatInstance("-728".into()).user_id(), None);
    /// ```
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Scope::User(u) => Some(*u),
            Scope::ChatUser { user, .. } | Scope::TopicUser { user, .. } | Scope::GuildUser { user, .. } => Some(*user),
            Scope::Custom { user, .. } => *user,
            Scope::Chat(_) | Scope::Topic { .. } | Scope::Business(_) | Scope::Guild(_) | Scope::ChatInstance(_) => {
                None
            }
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
///
/// let key = SessionKey::with_bot(Namespace::new("roles")?, Some(7), Scope::GuildUser { guild: 1, user: 2 });
/// assert_eq!(key.as_str(), "roles@7/guild:1/user:2");
///
/// let key = SessionKey::new(Namespace::new("votes")?, Scope::ChatInstance("a/b".into()));
/// assert_eq!(key.as_str(), "votes/instance:a%2Fb");
/// assert_eq!(key.as_str().parse::<SessionKey>()?, key);
/// # Ok::<(), bot_sessions::KeyError>(())
/// ```
///
/// Keys are equal when their texts are: the [`owner`](Self::owner) is not part of a
/// key's identity.
#[derive(Debug, Clone)]
pub struct SessionKey {
    namespace: Namespace,
    bot_id: Option<i64>,
    scope: Scope,
    text: Arc<str>,
    /// Who the session belongs to when its scope names no user (a private chat).
    owner: Option<i64>,
}

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SessionKey {}

impl std::hash::Hash for SessionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl SessionKey {
    /// A key without a bot id.
    pub fn new(namespace: Namespace, scope: Scope) -> Self {
        Self::with_bot(namespace, None, scope)
    }

    /// A key, optionally qualified by the bot id.
    pub fn with_bot(namespace: Namespace, bot_id: Option<i64>, scope: Scope) -> Self {
        let text = render(&namespace, bot_id, &scope);
        SessionKey { namespace, bot_id, scope, text, owner: None }
    }

    /// This key, belonging to `user` although its scope names no user: a session of a
    /// private chat (a Telegram private chat's id is its user's id; a Discord DM
    /// channel is its user's). A write that creates the record indexes it under
    /// `user`, so [`forget_user`](crate::Store::forget_user) erases it with the user's
    /// other sessions. Not part of the key's text or identity; ignored when the scope
    /// names a user. [`KeyStrategy::key`](super::KeyStrategy::key) sets it for updates
    /// in private chats.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{Namespace, Scope, SessionKey};
    ///
    /// let key = SessionKey::new(Namespace::new("menu")?, Scope::Chat(42)).owned_by(Some(42));
    /// assert_eq!((key.user_id(), key.owner()), (None, Some(42)));
    /// assert_eq!(key, SessionKey::new(Namespace::new("menu")?, Scope::Chat(42)));
    /// # Ok::<(), bot_sessions::KeyError>(())
    /// ```
    #[must_use]
    pub fn owned_by(mut self, user: Option<i64>) -> Self {
        self.owner = if self.scope.user_id().is_some() { None } else { user };
        self
    }

    /// The user a key without a user of its own belongs to (see
    /// [`owned_by`](Self::owned_by)).
    pub fn owner(&self) -> Option<i64> {
        self.owner
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

/// Renders the canonical text of a key: `namespace[@bot]/segment:value/...`.
/// The key's text, written into this thread's reused buffer and copied once into its
/// `Arc` (an interactive click builds a key per click).
fn render(ns: &Namespace, bot: Option<i64>, scope: &Scope) -> Arc<str> {
    thread_local! {
        static TEXT: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
    }
    let mut s = TEXT.take();
    s.clear();
    s.push_str(ns.as_str());
    if let Some(b) = bot {
        let _ = write!(s, "@{b}");
    }
    // Writing to a String cannot fail.
    let _ = write_scope(scope, &mut s);
    let text = Arc::from(s.as_str());
    // Kept unless an unusually long key grew it.
    if s.capacity() <= 1024 {
        TEXT.set(s);
    }
    text
}

fn write_scope(scope: &Scope, s: &mut String) -> fmt::Result {
    match scope {
        Scope::Chat(c) => write!(s, "/chat:{c}"),
        Scope::User(u) => write!(s, "/user:{u}"),
        Scope::ChatUser { chat, user } => write!(s, "/chat:{chat}/user:{user}"),
        Scope::Topic { chat, topic } => write!(s, "/chat:{chat}/topic:{topic}"),
        Scope::TopicUser { chat, topic, user } => write!(s, "/chat:{chat}/topic:{topic}/user:{user}"),
        Scope::Business(id) => {
            s.push_str("/biz:");
            escape_into(id, s);
            Ok(())
        }
        Scope::Guild(g) => write!(s, "/guild:{g}"),
        Scope::GuildUser { guild, user } => write!(s, "/guild:{guild}/user:{user}"),
        Scope::ChatInstance(id) => {
            s.push_str("/instance:");
            escape_into(id, s);
            Ok(())
        }
        Scope::Custom { id, user } => {
            s.push_str("/custom:");
            escape_into(id, s);
            match user {
                Some(u) => write!(s, "/user:{u}"),
                None => Ok(()),
            }
        }
    }
}

/// Percent-escapes `%`, `/`, and control characters so free text fits in one segment.
fn escape_into(text: &str, out: &mut String) {
    // Most ids need no escape (an interactive session's id never does).
    // Checked without an early exit (`fold`, `|`): the loop vectorizes.
    let plain =
        text.bytes().fold(true, |ok, b| ok & (b.is_ascii() & !b.is_ascii_control() & (b != b'%') & (b != b'/')));
    if plain {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        if c == '%' || c == '/' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}
