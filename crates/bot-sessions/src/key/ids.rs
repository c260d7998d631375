//! The platform ids a [`Scope`] or a [`SessionKey`] holds: chat, topic, guild (and the
//! user, in `scope.rs`), so code that has only a key (an `on_expire` hook, an end
//! event) can tell whom to answer without matching on the non-exhaustive [`Scope`].

use super::{Scope, SessionKey};

impl Scope {
    /// The chat (Telegram chat, Discord channel) this scope is in, if it names one.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::Scope;
    ///
    /// assert_eq!(Scope::TopicUser { chat: -100, topic: 9, user: 42 }.chat_id(), Some(-100));
    /// assert_eq!(Scope::User(42).chat_id(), None);
    /// ```
    pub fn chat_id(&self) -> Option<i64> {
        match self {
            Scope::Chat(chat)
            | Scope::ChatUser { chat, .. }
            | Scope::Topic { chat, .. }
            | Scope::TopicUser { chat, .. } => Some(*chat),
            Scope::User(_)
            | Scope::Business(_)
            | Scope::Guild(_)
            | Scope::GuildUser { .. }
            | Scope::ChatInstance(_)
            | Scope::Custom { .. } => None,
        }
    }

    /// The forum topic (Telegram `message_thread_id` of a topic) this scope is in.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::Scope;
    ///
    /// assert_eq!(Scope::Topic { chat: -100, topic: 9 }.topic_id(), Some(9));
    /// assert_eq!(Scope::Chat(-100).topic_id(), None);
    /// ```
    pub fn topic_id(&self) -> Option<i64> {
        match self {
            Scope::Topic { topic, .. } | Scope::TopicUser { topic, .. } => Some(*topic),
            _ => None,
        }
    }

    /// The Discord guild (server) this scope is in.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::Scope;
    ///
    /// assert_eq!(Scope::GuildUser { guild: 1, user: 42 }.guild_id(), Some(1));
    /// assert_eq!(Scope::Chat(5).guild_id(), None);
    /// ```
    pub fn guild_id(&self) -> Option<i64> {
        match self {
            Scope::Guild(guild) | Scope::GuildUser { guild, .. } => Some(*guild),
            _ => None,
        }
    }
}

impl SessionKey {
    /// The chat of the key's [`Scope`], if it names one ([`Scope::chat_id`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::SessionKey;
    ///
    /// let key: SessionKey = "onboarding/chat:1/user:42".parse()?;
    /// assert_eq!((key.chat_id(), key.user_id(), key.topic_id()), (Some(1), Some(42), None));
    /// # Ok::<(), bot_sessions::KeyError>(())
    /// ```
    pub fn chat_id(&self) -> Option<i64> {
        self.scope().chat_id()
    }

    /// The forum topic of the key's [`Scope`] ([`Scope::topic_id`]).
    pub fn topic_id(&self) -> Option<i64> {
        self.scope().topic_id()
    }

    /// The Discord guild of the key's [`Scope`] ([`Scope::guild_id`]).
    pub fn guild_id(&self) -> Option<i64> {
        self.scope().guild_id()
    }
}
