//! A [`Context`] from a teloxide [`Update`], [`Message`] or [`CallbackQuery`].
//!
//! The rules, one per trap of real updates:
//!
//! - **Threads and topics.** `message_thread_id` always sets [`Context::thread_id`]; it
//!   is a forum topic ([`Context::topic_id`]) only when the message says
//!   `is_topic_message`. A reply in a supergroup that is no forum, or in a forum's
//!   General topic, carries the id of the replied-to message, which is no topic.
//! - **Senders that are chats.** A message with a `sender_chat` was sent on behalf of
//!   a chat: an anonymous group admin (`from` is `GroupAnonymousBot`, id
//!   [`GROUP_ANONYMOUS_BOT`]), a channel posting in its discussion group (`from` is
//!   `Channel_Bot`, [`CHANNEL_BOT`]) or an automatic forward. Such a message has **no
//!   user**: the placeholder account is no person, and every anonymous admin of every
//!   group would otherwise share one per-user session. A per-user key strategy
//!   ([`KeyStrategy::User`](crate::KeyStrategy::User),
//!   [`ChatUser`](crate::KeyStrategy::ChatUser),
//!   [`TopicOrChatUser`](crate::KeyStrategy::TopicOrChatUser), ...) then returns
//!   [`KeyError::MissingUser`](crate::KeyError::MissingUser), never a guess; per-chat
//!   and per-topic strategies still work.
//! - **Channel posts** (and edits of them) have no user: the poster is the channel.
//!   A `from` in a channel post (real ones have none) is ignored.
//! - **No chat.** Polls have neither chat nor user; inline queries, chosen inline
//!   results, shipping and pre-checkout queries, poll answers and business connections
//!   have a user and no chat.
//! - **Callback queries** always have a user. Their chat and message come from the
//!   message the button was on (also when Telegram only says it is inaccessible); a
//!   button on an inline message (sent through inline mode) has no message and no
//!   chat, only [`Context::chat_instance`] and the inline message id in
//!   [`ReplyRef::inline_message_id`](crate::ReplyRef::inline_message_id). The callback data is [`Context::custom_id`], and
//!   the [`Component`] kind is [`ComponentKind::Callback`].
//! - **Updates teloxide cannot read** (`UpdateKind::Error`: kinds newer than
//!   teloxide, and two real ones teloxide 0.17 rejects: `deleted_business_messages`,
//!   whose `message_ids` it takes for objects, and a `pre_checkout_query` with
//!   `"order_info": null`) carry nothing: their context is empty.
//! - **The bot id** is not in updates and is never guessed (a callback's message
//!   is the bot's, but setting the bot id there only would give a button other keys
//!   than the messages of the same chat). Set it yourself on every context, with
//!   `context_of(&update).bot(me.id.0 as i64)`, when several bots share one store.
//!
//! Parse updates from text (`serde_json::from_str`), as teloxide does with the Bot
//! API's replies: teloxide's `Update` does not deserialize from a `serde_json::Value`
//! (its kind comes out as `UpdateKind::Error`, a context with nothing in it).
//!
//! Each context carries the teloxide value it was built from in its
//! [`extensions`](Context::extensions) (the [`Update`], [`Message`] or
//! [`CallbackQuery`]), so an interactive session's `update` can look at the callback
//! query it handles.

use teloxide::types::{
    CallbackQuery, Chat, ChatType, MaybeAnonymousUser, MaybeInaccessibleMessage, Message, MessageKind, Update,
    UpdateKind, User,
};

use crate::{ChatKind, Component, ComponentKind, Context};

/// The user id of `GroupAnonymousBot`, the placeholder sender of an anonymous group
/// admin's messages.
pub const GROUP_ANONYMOUS_BOT: u64 = 1_087_968_824;

/// The user id of `Channel_Bot`, the placeholder sender of messages a channel posts in
/// a group on its own behalf.
pub const CHANNEL_BOT: u64 = 136_817_688;

/// The [`Context`] of any update.
///
/// See the [module documentation](self) for what each kind of update yields.
///
/// # Examples
///
/// ```
/// use bot_sessions::telegram::context_of;
/// use bot_sessions::{ChatKind, KeyError, KeyStrategy, Scope};
/// use teloxide::types::Update;
///
/// // A reply in a forum's General topic: a thread, and no topic.
/// let update: Update = serde_json::from_str(&serde_json::json!({
///     "update_id": 1,
///     "message": {
///         "message_id": 68, "date": 1714837880, "text": "hi",
///         "message_thread_id": 66,
///         "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
///         "chat": {"id": -1001234567489i64, "title": "T", "is_forum": true, "type": "supergroup"}
///     }
/// }).to_string())?;
/// let ctx = context_of(&update);
/// assert_eq!((ctx.chat_id, ctx.user_id), (Some(-1001234567489), Some(42)));
/// assert_eq!((ctx.thread_id, ctx.topic_id), (Some(66), None));
/// assert_eq!(ctx.chat_kind, Some(ChatKind::Supergroup));
/// assert_eq!(KeyStrategy::TopicOrChat.scope(&ctx), Ok(Scope::Chat(-1001234567489)));
///
/// // A poll has neither chat nor user.
/// let poll: Update = serde_json::from_str(&serde_json::json!({
///     "update_id": 2,
///     "poll": {"id": "1", "question": "?", "options": [], "total_voter_count": 0,
///              "is_closed": false, "is_anonymous": true, "type": "regular",
///              "allows_multiple_answers": false}
/// }).to_string())?;
/// let ctx = context_of(&poll);
/// assert_eq!((ctx.chat_id, ctx.user_id), (None, None));
/// assert_eq!(KeyStrategy::Chat.scope(&ctx), Err(KeyError::MissingChat { strategy: "chat" }));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn context_of(update: &Update) -> Context {
    of_update(update).with_extension(update.clone())
}

/// [`context_of`] without the update in the extensions (what keys need).
pub(crate) fn of_update(update: &Update) -> Context {
    match &update.kind {
        UpdateKind::Message(m)
        | UpdateKind::EditedMessage(m)
        | UpdateKind::ChannelPost(m)
        | UpdateKind::EditedChannelPost(m)
        | UpdateKind::BusinessMessage(m)
        | UpdateKind::EditedBusinessMessage(m) => of_message(m),
        UpdateKind::CallbackQuery(q) => of_callback(q),
        UpdateKind::BusinessConnection(c) => {
            // `user_chat_id` is the private chat with the account's owner, not a chat
            // the update happened in: no chat, as teloxide's `Update::chat` says.
            with_user(Context::new(), Some(&c.user)).business_connection(c.id.0.clone())
        }
        UpdateKind::DeletedBusinessMessages(d) => {
            in_chat(&d.chat).business_connection(d.business_connection_id.0.clone())
        }
        UpdateKind::MessageReaction(r) => {
            // An anonymous reaction's `actor_chat` is who reacted, not where: no user.
            let ctx = in_chat(&r.chat).message(i64::from(r.message_id.0));
            with_user(ctx, r.user())
        }
        UpdateKind::MessageReactionCount(r) => in_chat(&r.chat).message(i64::from(r.message_id.0)),
        UpdateKind::InlineQuery(q) => {
            let mut ctx = with_user(Context::new(), Some(&q.from));
            ctx.chat_kind = q.chat_type.as_ref().map(kind_of_type);
            ctx
        }
        UpdateKind::ChosenInlineResult(r) => {
            let mut ctx = with_user(Context::new(), Some(&r.from));
            ctx.reply.inline_message_id = r.inline_message_id.clone();
            ctx
        }
        UpdateKind::ShippingQuery(q) => with_user(Context::new(), Some(&q.from)),
        UpdateKind::PreCheckoutQuery(q) => with_user(Context::new(), Some(&q.from)),
        UpdateKind::PurchasedPaidMedia(p) => with_user(Context::new(), Some(&p.from)),
        UpdateKind::PollAnswer(a) => match &a.voter {
            MaybeAnonymousUser::User(u) => with_user(Context::new(), Some(u)),
            // Voted on behalf of a chat: the chat is who voted, not where.
            MaybeAnonymousUser::Chat(_) => Context::new(),
        },
        UpdateKind::MyChatMember(m) | UpdateKind::ChatMember(m) => with_user(in_chat(&m.chat), Some(&m.from)),
        UpdateKind::ChatJoinRequest(r) => with_user(in_chat(&r.chat), Some(&r.from)),
        UpdateKind::ChatBoost(b) => with_user(in_chat(&b.chat), b.boost.source.user()),
        UpdateKind::RemovedChatBoost(b) => with_user(in_chat(&b.chat), b.source.user()),
        UpdateKind::Poll(_) | UpdateKind::Error(_) => Context::new(),
    }
}

/// The [`Context`] of a message (new, edited, channel post or business message).
///
/// # Examples
///
/// ```
/// use bot_sessions::telegram::{GROUP_ANONYMOUS_BOT, context_of_message};
/// use bot_sessions::{KeyError, KeyStrategy, Scope};
/// use teloxide::types::Message;
///
/// // An anonymous admin: no user, so a per-user key is an error, never a guess.
/// let message: Message = serde_json::from_str(&serde_json::json!({
///     "message_id": 1, "date": 1640359576, "text": "text",
///     "from": {"id": GROUP_ANONYMOUS_BOT, "is_bot": true, "first_name": "Group",
///              "username": "GroupAnonymousBot"},
///     "sender_chat": {"id": -1001160242915i64, "title": "a", "type": "supergroup"},
///     "chat": {"id": -1001160242915i64, "title": "a", "type": "supergroup"}
/// }).to_string())?;
/// let ctx = context_of_message(&message);
/// assert_eq!((ctx.chat_id, ctx.user_id), (Some(-1001160242915), None));
/// assert_eq!(KeyStrategy::ChatUser.scope(&ctx), Err(KeyError::MissingUser { strategy: "chat_user" }));
/// assert_eq!(KeyStrategy::Chat.scope(&ctx), Ok(Scope::Chat(-1001160242915)));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn context_of_message(message: &Message) -> Context {
    of_message(message).with_extension(message.clone())
}

/// The [`Context`] of a callback query (a click on an inline keyboard button).
///
/// # Examples
///
/// ```
/// use bot_sessions::telegram::context_of_callback;
/// use bot_sessions::{ComponentKind, KeyStrategy, Scope};
/// use teloxide::types::CallbackQuery;
///
/// // A button on an inline message: no chat, no message; a chat_instance.
/// let query: CallbackQuery = serde_json::from_str(&serde_json::json!({
///     "id": "q1", "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
///     "inline_message_id": "AAQ", "chat_instance": "-7284", "data": "vote:yes"
/// }).to_string())?;
/// let ctx = context_of_callback(&query);
/// assert_eq!((ctx.chat_id, ctx.user_id), (None, Some(42)));
/// assert_eq!(ctx.custom_id.as_deref(), Some("vote:yes"));
/// assert_eq!(ctx.component_kind(), Some(ComponentKind::Callback));
/// assert_eq!(ctx.reply.callback_query_id.as_deref(), Some("q1"));
/// assert_eq!(ctx.reply.inline_message_id.as_deref(), Some("AAQ"));
/// assert_eq!(KeyStrategy::ChatInstance.scope(&ctx), Ok(Scope::ChatInstance("-7284".into())));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn context_of_callback(query: &CallbackQuery) -> Context {
    of_callback(query).with_extension(query.clone())
}

/// The kind of a Telegram chat.
pub fn chat_kind(chat: &Chat) -> ChatKind {
    if chat.is_channel() {
        ChatKind::Channel
    } else if chat.is_supergroup() {
        ChatKind::Supergroup
    } else if chat.is_group() {
        ChatKind::Group
    } else {
        ChatKind::Private
    }
}

fn kind_of_type(kind: &ChatType) -> ChatKind {
    match kind {
        ChatType::Sender | ChatType::Private => ChatKind::Private,
        ChatType::Group => ChatKind::Group,
        ChatType::Supergroup => ChatKind::Supergroup,
        ChatType::Channel => ChatKind::Channel,
    }
}

fn in_chat(chat: &Chat) -> Context {
    Context::new().chat(chat.id.0).chat_kind(chat_kind(chat))
}

/// `ctx` with the user's id. Telegram user ids fit in 52 bits; an id that did not fit
/// an `i64` would be no real user, and is left out rather than mangled.
fn with_user(ctx: Context, user: Option<&User>) -> Context {
    match user.and_then(|u| i64::try_from(u.id.0).ok()) {
        Some(id) => ctx.user(id),
        None => ctx,
    }
}

/// The person who sent `message`, if it was one (see the module documentation).
fn sender(message: &Message) -> Option<&User> {
    if message.sender_chat.is_some() || message.chat.is_channel() {
        return None;
    }
    message.from.as_ref().filter(|u| u.id.0 != GROUP_ANONYMOUS_BOT && u.id.0 != CHANNEL_BOT)
}

/// Where `message` is: its chat, id, thread or topic, and business connection.
fn place_of(message: &Message) -> Context {
    let mut ctx = in_chat(&message.chat).message(i64::from(message.id.0));
    if let Some(thread) = message.thread_id {
        let id = i64::from(thread.0.0);
        ctx = if message.is_topic_message { ctx.topic(id) } else { ctx.thread(id) };
    }
    if let MessageKind::Common(common) = &message.kind {
        ctx.business_connection_id = common.business_connection_id.as_ref().map(|b| b.0.clone());
    }
    ctx
}

fn of_message(message: &Message) -> Context {
    with_user(place_of(message), sender(message))
}

fn of_callback(query: &CallbackQuery) -> Context {
    let mut ctx = match &query.message {
        // The message is the bot's: its sender says nothing about who clicked.
        Some(MaybeInaccessibleMessage::Regular(m)) => place_of(m),
        Some(MaybeInaccessibleMessage::Inaccessible(m)) => in_chat(&m.chat).message(i64::from(m.message_id.0)),
        None => Context::new(),
    };
    ctx = with_user(ctx, Some(&query.from)).chat_instance(query.chat_instance.clone());
    ctx.custom_id = query.data.clone();
    ctx.component = Some(Component { kind: Some(ComponentKind::Callback), ..Component::default() });
    ctx.reply.callback_query_id = Some(query.id.0.clone());
    ctx.reply.inline_message_id = query.inline_message_id.clone();
    ctx
}
