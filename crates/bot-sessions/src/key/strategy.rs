//! How a session's [`Scope`] is derived from an update: [`KeyStrategy`].

use std::fmt;
use std::sync::Arc;

use super::{KeyError, Namespace, Scope, SessionKey};
use crate::Context;

type CustomFn = dyn Fn(&Context) -> Result<Scope, KeyError> + Send + Sync;

/// How a session's [`Scope`] is derived from an update's [`Context`].
///
/// A strategy reads only the ids it needs; when the update lacks one it returns the
/// matching `Missing*` [`KeyError`] naming the strategy, never a guess. Forum topics
/// are read from [`Context::topic_id`] only: a Telegram reply thread or a Discord thread
/// ([`Context::thread_id`] without a topic) is not a topic.
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
    /// Per forum topic (requires a topic; a reply thread that is not a topic is
    /// [`KeyError::MissingTopic`]).
    ChatTopic,
    /// Per user in a forum topic (requires a topic, as [`KeyStrategy::ChatTopic`]).
    TopicUser,
    /// Per business connection.
    BusinessConnection,
    /// Per forum topic inside a topic, per chat outside topics: [`Scope::Topic`] when
    /// the update has a [`Context::topic_id`], [`Scope::Chat`] otherwise. A reply
    /// thread that is not a forum topic (`thread_id` set, `topic_id` not) is the chat.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{ChatKind, Context, KeyError, KeyStrategy, Scope};
    ///
    /// let s = KeyStrategy::TopicOrChat;
    /// // A message in forum topic 9.
    /// let in_topic = Context::new().chat(-100).chat_kind(ChatKind::Supergroup).user(42).topic(9);
    /// assert_eq!(s.scope(&in_topic)?, Scope::Topic { chat: -100, topic: 9 });
    /// // A reply thread outside a forum is not a topic: the chat's session.
    /// let reply_thread = Context::new().chat(-100).chat_kind(ChatKind::Supergroup).user(42).thread(77);
    /// assert_eq!(s.scope(&reply_thread)?, Scope::Chat(-100));
    /// // An anonymous admin (no user) in a topic still has the topic's session.
    /// let anonymous_admin = Context::new().chat(-100).chat_kind(ChatKind::Supergroup).topic(9);
    /// assert_eq!(s.scope(&anonymous_admin)?, Scope::Topic { chat: -100, topic: 9 });
    /// // A channel post has the channel's session.
    /// let channel_post = Context::new().chat(-200).chat_kind(ChatKind::Channel);
    /// assert_eq!(s.scope(&channel_post)?, Scope::Chat(-200));
    /// // A callback of an inline message has no chat.
    /// let inline = Context::new().user(42).chat_instance("-728").callback("x");
    /// assert_eq!(s.scope(&inline), Err(KeyError::MissingChat { strategy: "topic_or_chat" }));
    /// # Ok::<(), KeyError>(())
    /// ```
    TopicOrChat,
    /// Per user in a forum topic inside a topic, per user in the chat outside topics:
    /// [`Scope::TopicUser`] when the update has a [`Context::topic_id`],
    /// [`Scope::ChatUser`] otherwise (a reply thread that is not a topic is the chat).
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{ChatKind, Context, KeyError, KeyStrategy, Scope};
    ///
    /// let s = KeyStrategy::TopicOrChatUser;
    /// let in_topic = Context::new().chat(-100).user(42).topic(9);
    /// assert_eq!(s.scope(&in_topic)?, Scope::TopicUser { chat: -100, topic: 9, user: 42 });
    /// // A reply thread outside a forum: the user's session in the chat.
    /// let reply_thread = Context::new().chat(-100).user(42).thread(77);
    /// assert_eq!(s.scope(&reply_thread)?, Scope::ChatUser { chat: -100, user: 42 });
    /// // An anonymous admin and a channel post have no user.
    /// let anonymous_admin = Context::new().chat(-100).chat_kind(ChatKind::Supergroup).topic(9);
    /// assert_eq!(s.scope(&anonymous_admin), Err(KeyError::MissingUser { strategy: "topic_or_chat_user" }));
    /// let channel_post = Context::new().chat(-200).chat_kind(ChatKind::Channel);
    /// assert_eq!(s.scope(&channel_post), Err(KeyError::MissingUser { strategy: "topic_or_chat_user" }));
    /// # Ok::<(), KeyError>(())
    /// ```
    TopicOrChatUser,
    /// Per Discord guild (server), across its channels and threads: [`Scope::Guild`].
    /// A DM or any Telegram update has no guild: [`KeyError::MissingGuild`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{ChatKind, Context, KeyError, KeyStrategy, Scope};
    ///
    /// let s = KeyStrategy::Guild;
    /// // A click in a thread of guild 1: the guild's session, whatever the channel.
    /// let in_thread = Context::new().guild(1).chat(555).chat_kind(ChatKind::Guild).user(42).thread(555);
    /// assert_eq!(s.scope(&in_thread)?, Scope::Guild(1));
    /// // A DM has no guild.
    /// let dm = Context::new().chat(9).chat_kind(ChatKind::Private).user(42);
    /// assert_eq!(s.scope(&dm), Err(KeyError::MissingGuild { strategy: "guild" }));
    /// // Neither has a Telegram channel post or an anonymous admin.
    /// let channel_post = Context::new().chat(-200).chat_kind(ChatKind::Channel);
    /// assert_eq!(s.scope(&channel_post), Err(KeyError::MissingGuild { strategy: "guild" }));
    /// # Ok::<(), KeyError>(())
    /// ```
    Guild,
    /// Per user in a Discord guild, across its channels and threads:
    /// [`Scope::GuildUser`], which forget-user finds.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{ChatKind, Context, KeyError, KeyStrategy, Scope};
    ///
    /// let s = KeyStrategy::GuildUser;
    /// let click = Context::new().guild(1).chat(555).chat_kind(ChatKind::Guild).user(42).button("x");
    /// assert_eq!(s.scope(&click)?, Scope::GuildUser { guild: 1, user: 42 });
    /// // A DM has no guild; a guild update without a user is refused, not shared.
    /// let dm = Context::new().chat(9).chat_kind(ChatKind::Private).user(42);
    /// assert_eq!(s.scope(&dm), Err(KeyError::MissingGuild { strategy: "guild_user" }));
    /// let no_user = Context::new().guild(1).chat(555);
    /// assert_eq!(s.scope(&no_user), Err(KeyError::MissingUser { strategy: "guild_user" }));
    /// # Ok::<(), KeyError>(())
    /// ```
    GuildUser,
    /// Per Telegram `chat_instance` ([`Scope::ChatInstance`]): for callbacks of inline
    /// messages (sent through inline mode), which carry no chat and no message, only a
    /// `chat_instance` and an inline message id. Anything but a callback query has no
    /// `chat_instance`; an empty one counts as none (every such update would share
    /// one session).
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{ChatKind, Context, KeyError, KeyStrategy, ReplyRef, Scope};
    ///
    /// let s = KeyStrategy::ChatInstance;
    /// let inline_click = Context::new()
    ///     .user(42)
    ///     .chat_instance("-7284093287465123")
    ///     .callback("vote:yes")
    ///     .reply_ref(ReplyRef::callback_query("q1").inline_message("AAQ"));
    /// assert_eq!(s.scope(&inline_click)?, Scope::ChatInstance("-7284093287465123".into()));
    /// // A channel post or an anonymous admin's message is no callback: no chat_instance.
    /// let channel_post = Context::new().chat(-200).chat_kind(ChatKind::Channel);
    /// assert_eq!(s.scope(&channel_post), Err(KeyError::MissingChatInstance { strategy: "chat_instance" }));
    /// # Ok::<(), KeyError>(())
    /// ```
    ChatInstance,
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
            KeyStrategy::TopicOrChat => "topic_or_chat",
            KeyStrategy::TopicOrChatUser => "topic_or_chat_user",
            KeyStrategy::Guild => "guild",
            KeyStrategy::GuildUser => "guild_user",
            KeyStrategy::ChatInstance => "chat_instance",
            KeyStrategy::Custom(_) => "custom",
        }
    }

    /// Derives the scope of an update.
    ///
    /// # Errors
    ///
    /// A `Missing*` [`KeyError`] naming the id the update lacks, or the error of a
    /// custom strategy.
    pub fn scope(&self, ctx: &Context) -> Result<Scope, KeyError> {
        let strategy = self.name();
        let chat = || ctx.chat_id.ok_or(KeyError::MissingChat { strategy });
        let user = || ctx.user_id.ok_or(KeyError::MissingUser { strategy });
        // Topics come from `topic_id` only: a `thread_id` alone is a reply thread or a
        // Discord thread, not a forum topic.
        let topic = || ctx.topic_id.ok_or(KeyError::MissingTopic { strategy });
        let guild = || ctx.guild_id.ok_or(KeyError::MissingGuild { strategy });
        Ok(match self {
            KeyStrategy::Chat => Scope::Chat(chat()?),
            KeyStrategy::User => Scope::User(user()?),
            KeyStrategy::ChatUser => Scope::ChatUser { chat: chat()?, user: user()? },
            KeyStrategy::ChatTopic => Scope::Topic { chat: chat()?, topic: topic()? },
            KeyStrategy::TopicUser => Scope::TopicUser { chat: chat()?, topic: topic()?, user: user()? },
            KeyStrategy::BusinessConnection => Scope::Business(
                ctx.business_connection_id.clone().ok_or(KeyError::MissingBusinessConnection { strategy })?,
            ),
            KeyStrategy::TopicOrChat => match ctx.topic_id {
                Some(topic) => Scope::Topic { chat: chat()?, topic },
                None => Scope::Chat(chat()?),
            },
            KeyStrategy::TopicOrChatUser => match ctx.topic_id {
                Some(topic) => Scope::TopicUser { chat: chat()?, topic, user: user()? },
                None => Scope::ChatUser { chat: chat()?, user: user()? },
            },
            KeyStrategy::Guild => Scope::Guild(guild()?),
            KeyStrategy::GuildUser => Scope::GuildUser { guild: guild()?, user: user()? },
            KeyStrategy::ChatInstance => Scope::ChatInstance(
                ctx.chat_instance
                    .as_deref()
                    .filter(|id| !id.is_empty())
                    .ok_or(KeyError::MissingChatInstance { strategy })?
                    .to_owned(),
            ),
            KeyStrategy::Custom(f) => f(ctx)?,
        })
    }

    /// The full key of an update in `namespace` (qualified by the context's bot id).
    ///
    /// A key of the update's chat (or of a topic in it) that names no user, in a
    /// private chat ([`ChatKind::Private`](crate::ChatKind::Private): a Telegram
    /// private chat, a Discord DM), belongs to the update's user: it is
    /// [owned by](SessionKey::owned_by) them, so forget-user erases it.
    ///
    /// # Errors
    ///
    /// As [`KeyStrategy::scope`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{ChatKind, Context, KeyStrategy, Namespace};
    ///
    /// let ns = Namespace::new("menu")?;
    /// let private = Context::new().chat(42).chat_kind(ChatKind::Private).user(42);
    /// assert_eq!(KeyStrategy::Chat.key(&ns, &private)?.owner(), Some(42));
    /// let group = Context::new().chat(-100).chat_kind(ChatKind::Supergroup).user(42);
    /// assert_eq!(KeyStrategy::Chat.key(&ns, &group)?.owner(), None);
    /// # Ok::<(), bot_sessions::KeyError>(())
    /// ```
    pub fn key(&self, namespace: &Namespace, ctx: &Context) -> Result<SessionKey, KeyError> {
        let scope = self.scope(ctx)?;
        let owner = match scope {
            Scope::Chat(chat) | Scope::Topic { chat, .. }
                if ctx.chat_kind == Some(crate::ChatKind::Private) && ctx.chat_id == Some(chat) =>
            {
                ctx.user_id
            }
            _ => None,
        };
        Ok(SessionKey::with_bot(namespace.clone(), ctx.bot_id, scope).owned_by(owner))
    }
}
