//! The platform-neutral view of an incoming update that key strategies read.

/// What the session layer needs to know about one incoming update.
///
/// Platform adapters (Telegram, Discord) fill it from a real update; any other code can
/// build one by hand. Absent ids stay `None`: a key strategy that needs one returns a
/// typed error instead of guessing.
///
/// # Examples
///
/// ```
/// use bot_sessions::Context;
///
/// let ctx = Context::new().chat(-100123).user(42).topic(7);
/// assert_eq!(ctx.chat_id, Some(-100123));
/// assert_eq!(ctx.topic_id, Some(7));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Context {
    /// The bot that received the update, when several bots share one store.
    pub bot_id: Option<i64>,
    /// The chat (Telegram chat, Discord channel or DM) the update belongs to.
    pub chat_id: Option<i64>,
    /// The user who caused the update. Adapters leave it `None` for anonymous senders
    /// (a channel post, an anonymous group admin) rather than inventing one.
    pub user_id: Option<i64>,
    /// A forum topic (Telegram) or thread (Discord). Only set when it really is a topic:
    /// a Telegram reply thread id outside a forum topic is not one.
    pub topic_id: Option<i64>,
    /// A Telegram business connection id.
    pub business_connection_id: Option<String>,
    /// The custom id (Discord) or callback data (Telegram) of a clicked component.
    pub custom_id: Option<String>,
    /// The message the update is about, when there is one.
    pub message_id: Option<i64>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the bot id.
    pub fn bot(mut self, id: i64) -> Self {
        self.bot_id = Some(id);
        self
    }

    /// Sets the chat id.
    pub fn chat(mut self, id: i64) -> Self {
        self.chat_id = Some(id);
        self
    }

    /// Sets the user id.
    pub fn user(mut self, id: i64) -> Self {
        self.user_id = Some(id);
        self
    }

    /// Sets the forum topic id.
    pub fn topic(mut self, id: i64) -> Self {
        self.topic_id = Some(id);
        self
    }

    /// Sets the business connection id.
    pub fn business_connection(mut self, id: impl Into<String>) -> Self {
        self.business_connection_id = Some(id.into());
        self
    }

    /// Sets the component custom id.
    pub fn custom_id(mut self, id: impl Into<String>) -> Self {
        self.custom_id = Some(id.into());
        self
    }

    /// Sets the message id.
    pub fn message(mut self, id: i64) -> Self {
        self.message_id = Some(id);
        self
    }
}
