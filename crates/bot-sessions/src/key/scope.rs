//! What a session is attached to ([`Scope`]) and its full address ([`SessionKey`]).

use std::fmt;
use std::sync::Arc;

use super::Namespace;
use super::text::render;

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
