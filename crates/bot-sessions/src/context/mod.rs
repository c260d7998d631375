//! The platform-neutral view of an incoming update: what key strategies read and what
//! an interactive session sees of the click it handles.
//!
//! Platform adapters (Telegram, Discord) fill a [`Context`] from a real update; any
//! other code (a console, a test) can build one by hand. Absent ids stay `None`: a key
//! strategy that needs one returns a typed error instead of guessing.

mod extensions;

use std::collections::BTreeMap;

pub use extensions::Extensions;

/// What kind of chat an update comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChatKind {
    /// A one-to-one chat (a Telegram private chat, a Discord DM).
    Private,
    /// A basic group (Telegram) or a group DM (Discord).
    Group,
    /// A supergroup (Telegram; forum topics live here).
    Supergroup,
    /// A broadcast channel (Telegram): posts carry no user.
    Channel,
    /// A channel of a Discord guild (server), a thread included.
    Guild,
}

/// What kind of component an update comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ComponentKind {
    /// A Discord button.
    Button,
    /// A Discord select menu: the chosen values are in [`Component::values`].
    SelectMenu,
    /// A submitted modal: its text fields are in [`Component::fields`].
    ModalSubmit,
    /// A Telegram inline keyboard button (a callback query).
    Callback,
}

/// The component an update comes from: what the user did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Component {
    /// Its kind; `None` only in a hand-built context that set no kind.
    pub kind: Option<ComponentKind>,
    /// The values chosen in a select menu, in the order the platform sent them.
    pub values: Vec<String>,
    /// A modal's text fields, by field custom id.
    pub fields: BTreeMap<String, String>,
}

/// What a platform needs to answer or edit in reply to this update. Which ids are set
/// depends on the platform and the update.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReplyRef {
    /// Telegram: the callback query to answer (`answerCallbackQuery`).
    pub callback_query_id: Option<String>,
    /// Telegram: the inline message a callback came from (no chat, no message id).
    pub inline_message_id: Option<String>,
    /// The message the update is about (Telegram message id, Discord message id).
    pub message_id: Option<i64>,
    /// Discord: the interaction to respond to.
    pub interaction_id: Option<i64>,
    /// Discord: the interaction's token (a secret: never printed by `Debug`).
    pub interaction_token: Option<String>,
}

impl std::fmt::Debug for ReplyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyRef")
            .field("callback_query_id", &self.callback_query_id)
            .field("inline_message_id", &self.inline_message_id)
            .field("message_id", &self.message_id)
            .field("interaction_id", &self.interaction_id)
            .field("interaction_token", &self.interaction_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What the session layer knows about one incoming update.
///
/// # Examples
///
/// ```
/// use bot_sessions::{ChatKind, ComponentKind, Context};
///
/// let ctx = Context::new().chat(-100123).chat_kind(ChatKind::Supergroup).user(42).topic(7);
/// assert_eq!(ctx.chat_id, Some(-100123));
/// assert_eq!((ctx.thread_id, ctx.topic_id), (Some(7), Some(7)));
///
/// // A select menu choice, as an adapter would build it.
/// let pick = Context::new().user(42).select("menu:abc:size", ["large"]);
/// assert_eq!(pick.component_kind(), Some(ComponentKind::SelectMenu));
/// assert_eq!(pick.values(), ["large"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Context {
    /// The bot that received the update, when several bots share one store.
    pub bot_id: Option<i64>,
    /// The chat (Telegram chat, Discord channel or DM) the update belongs to.
    pub chat_id: Option<i64>,
    /// What kind of chat it is, when the platform says.
    pub chat_kind: Option<ChatKind>,
    /// The user who caused the update. Adapters leave it `None` for anonymous senders
    /// (a channel post, an anonymous group admin) rather than inventing one.
    pub user_id: Option<i64>,
    /// The thread the update is in: a Telegram `message_thread_id` (a forum topic or
    /// a reply thread) or a Discord thread channel.
    pub thread_id: Option<i64>,
    /// The forum topic: set only when the thread really is a topic (a Telegram reply
    /// thread outside a forum is not one).
    pub topic_id: Option<i64>,
    /// The Discord guild (server).
    pub guild_id: Option<i64>,
    /// A Telegram business connection id.
    pub business_connection_id: Option<String>,
    /// Telegram's `chat_instance` of a callback query: stable per chat and message
    /// origin, and the only chat-like id an inline message's callback has.
    pub chat_instance: Option<String>,
    /// The custom id (Discord) or callback data (Telegram) of a clicked component.
    pub custom_id: Option<String>,
    /// What the user did with the component, when the update comes from one.
    pub component: Option<Component>,
    /// How to answer and edit in reply to this update.
    pub reply: ReplyRef,
    /// The message the update is about, when there is one (also in
    /// [`ReplyRef::message_id`]).
    pub message_id: Option<i64>,
    /// Anything else a platform adapter or the bot wants to pass along, by type.
    pub extensions: Extensions,
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

    /// Sets the chat kind.
    pub fn chat_kind(mut self, kind: ChatKind) -> Self {
        self.chat_kind = Some(kind);
        self
    }

    /// Sets the user id.
    pub fn user(mut self, id: i64) -> Self {
        self.user_id = Some(id);
        self
    }

    /// Sets the forum topic id (and the thread id: a topic is a thread).
    pub fn topic(mut self, id: i64) -> Self {
        self.topic_id = Some(id);
        self.thread_id = Some(id);
        self
    }

    /// Sets a thread id that is not a forum topic (a reply thread, a Discord thread).
    pub fn thread(mut self, id: i64) -> Self {
        self.thread_id = Some(id);
        self
    }

    /// Sets the guild id.
    pub fn guild(mut self, id: i64) -> Self {
        self.guild_id = Some(id);
        self
    }

    /// Sets the business connection id.
    pub fn business_connection(mut self, id: impl Into<String>) -> Self {
        self.business_connection_id = Some(id.into());
        self
    }

    /// Sets the `chat_instance` of a callback query.
    pub fn chat_instance(mut self, id: impl Into<String>) -> Self {
        self.chat_instance = Some(id.into());
        self
    }

    /// Sets the component custom id (keeping any component kind set before).
    pub fn custom_id(mut self, id: impl Into<String>) -> Self {
        self.custom_id = Some(id.into());
        self
    }

    /// A click on a button with `custom_id`.
    pub fn button(self, custom_id: impl Into<String>) -> Self {
        self.component_of(ComponentKind::Button, custom_id, Vec::new(), BTreeMap::new())
    }

    /// A Telegram callback query with `data`.
    pub fn callback(self, data: impl Into<String>) -> Self {
        self.component_of(ComponentKind::Callback, data, Vec::new(), BTreeMap::new())
    }

    /// A choice in a select menu with `custom_id`.
    pub fn select<V: Into<String>>(self, custom_id: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        let values = values.into_iter().map(Into::into).collect();
        self.component_of(ComponentKind::SelectMenu, custom_id, values, BTreeMap::new())
    }

    /// A submitted modal with `custom_id` and its text fields (field id, text).
    pub fn modal_submit<K: Into<String>, V: Into<String>>(
        self,
        custom_id: impl Into<String>,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let fields = fields.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.component_of(ComponentKind::ModalSubmit, custom_id, Vec::new(), fields)
    }

    fn component_of(
        mut self,
        kind: ComponentKind,
        custom_id: impl Into<String>,
        values: Vec<String>,
        fields: BTreeMap<String, String>,
    ) -> Self {
        self.custom_id = Some(custom_id.into());
        self.component = Some(Component { kind: Some(kind), values, fields });
        self
    }

    /// Sets the message id (also as the message to edit in [`ReplyRef`]).
    pub fn message(mut self, id: i64) -> Self {
        self.message_id = Some(id);
        self.reply.message_id = Some(id);
        self
    }

    /// Sets how to answer this update.
    pub fn reply_ref(mut self, reply: ReplyRef) -> Self {
        if self.message_id.is_none() {
            self.message_id = reply.message_id;
        }
        self.reply = reply;
        self
    }

    /// Adds a value to the extension slot (replacing one of the same type).
    pub fn with_extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// The kind of component the update comes from.
    pub fn component_kind(&self) -> Option<ComponentKind> {
        self.component.as_ref().and_then(|c| c.kind)
    }

    /// The values chosen in a select menu (empty otherwise).
    pub fn values(&self) -> &[String] {
        self.component.as_ref().map_or(&[], |c| c.values.as_slice())
    }

    /// A submitted modal's text field by its custom id.
    pub fn field(&self, id: &str) -> Option<&str> {
        self.component.as_ref().and_then(|c| c.fields.get(id)).map(String::as_str)
    }
}

impl ReplyRef {
    /// A reference to a Telegram callback query.
    pub fn callback_query(id: impl Into<String>) -> Self {
        ReplyRef { callback_query_id: Some(id.into()), ..Self::default() }
    }

    /// A reference to a Discord interaction.
    pub fn interaction(id: i64, token: impl Into<String>) -> Self {
        ReplyRef { interaction_id: Some(id), interaction_token: Some(token.into()), ..Self::default() }
    }

    /// Sets the inline message id.
    pub fn inline_message(mut self, id: impl Into<String>) -> Self {
        self.inline_message_id = Some(id.into());
        self
    }

    /// Sets the message id.
    pub fn message(mut self, id: i64) -> Self {
        self.message_id = Some(id);
        self
    }
}
