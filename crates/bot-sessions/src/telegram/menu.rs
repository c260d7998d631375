//! Menus in one call: start an interactive session from an update, send what its
//! `start` answered with its inline keyboard, and record the sent message so that an
//! end no click answers (expiry) can edit it.
//!
//! - [`open_menu`]: from a message, in its chat (its forum topic, its business
//!   connection), replying to it in groups.
//! - [`answer_inline_menu`]: from an inline query, as the one result of
//!   `answerInlineQuery`; [`record_chosen_inline`] records the inline message when
//!   Telegram says which result was sent (inline feedback on), else the first click
//!   does.
//!
//! In a business chat the menu is sent through the message's business connection, and
//! every later edit (a click's, the end's) passes the same `business_connection_id`.

use teloxide::payloads::setters::*;
use teloxide::requests::{Request, Requester};
use teloxide::types::{
    BusinessConnectionId, ChatKind, ChosenInlineResult, InlineKeyboardMarkup, InlineQuery, InlineQueryResult,
    InlineQueryResultArticle, InputMessageContent, InputMessageContentText, Message, MessageKind, ReplyParameters,
};

use super::context::context_of_message;
use super::render::{RenderError, keyboard};
use crate::Context;
use crate::interactive::{EndReason, Interactive, InteractiveError, Kind, Manager, Reply, SessionHandle, SessionId};
use crate::store::BoxError;

/// What went wrong opening a menu. When the session started and the message could not
/// be sent, the session was ended ([`EndReason::Cancelled`]) before this was returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MenuError {
    /// Starting the session failed (refused by its start filter, a store error, ...).
    #[error(transparent)]
    Interactive(#[from] InteractiveError),
    /// The session's `start` gave no reply to send.
    #[error("session kind `{kind}` answered its start with nothing to show")]
    NoReply {
        /// The kind.
        kind: String,
    },
    /// The reply cannot be shown on Telegram.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The Bot API request failed.
    #[error("Bot API request failed: {0}")]
    Api(#[source] BoxError),
}

/// A menu that was opened and sent.
#[derive(Debug)]
#[non_exhaustive]
pub struct OpenedMenu<R> {
    /// The session.
    pub id: SessionId,
    /// Resolves when the session ends, with its result.
    pub handle: SessionHandle<R>,
    /// The message sent (`sendMessage`'s result).
    pub message: Message,
}

/// Starts a session of `kind` for `msg` and sends what its `start` answered, with its
/// inline keyboard, in `msg`'s chat: in its forum topic, through its business
/// connection, and replying to it outside private chats (where several people talk
/// to the bot). The sent message is recorded
/// ([`Manager::set_message`](crate::interactive::Manager::set_message)), so the
/// session's end edits it, and a business message's edits pass its
/// `business_connection_id`.
///
/// This is the four steps of a menu (start, render, send, record) in one call: a
/// forgotten record is the mistake it removes (expiry edits silently do nothing
/// without it).
///
/// # Errors
///
/// [`MenuError`]. If sending fails, the session is ended first
/// ([`EndReason::Cancelled`]): nothing is left waiting on a message nobody sees.
///
/// # Examples
///
/// ```no_run
/// use bot_sessions::interactive::{Kind, Manager};
/// use bot_sessions::telegram::open_menu;
/// use teloxide::prelude::*;
/// # use bot_sessions::interactive::{Interactive, StartCx, UpdateCx, Step};
/// # struct Picker;
/// # impl Interactive for Picker {
/// #     type State = (); type Args = (); type Output = ();
/// #     async fn start(&self, _: &mut StartCx<'_>, _: ()) -> Result<(), bot_sessions::store::BoxError> { Ok(()) }
/// #     async fn on_button(&self, _: &mut UpdateCx<'_>, _: &mut ()) -> Result<Step<()>, bot_sessions::store::BoxError> { Ok(Step::keep()) }
/// # }
///
/// async fn menu(bot: Bot, msg: Message, menus: Manager, kind: Kind<Picker>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     let opened = open_menu(&bot, &menus, &kind, &msg, ()).await?;
///     println!("menu {} sent as message {}", opened.id, opened.message.id);
///     Ok(())
/// }
/// # let _ = menu;
/// ```
pub async fn open_menu<K, B>(
    bot: &B,
    manager: &Manager,
    kind: &Kind<K>,
    msg: &Message,
    args: K::Args,
) -> Result<OpenedMenu<K::Output>, MenuError>
where
    K: Interactive,
    B: Requester,
    B::Err: std::error::Error + Send + Sync + 'static,
{
    let ctx = context_of_message(msg);
    let started = manager.start(kind, &ctx, args).await?;
    let id = started.id;
    let sent = async {
        let (text, buttons) = shown(kind, started.reply)?;
        let fut = {
            let mut req = bot.send_message(msg.chat.id, text);
            if msg.is_topic_message
                && let Some(thread) = msg.thread_id
            {
                req = req.message_thread_id(thread);
            }
            if let Some(business) = business_of(msg) {
                req = req.business_connection_id(BusinessConnectionId(business));
            }
            if !matches!(msg.chat.kind, ChatKind::Private(_)) {
                req = req.reply_parameters(ReplyParameters::new(msg.id).allow_sending_without_reply());
            }
            if !buttons.inline_keyboard.is_empty() {
                req = req.reply_markup(buttons);
            }
            req.send()
        };
        fut.await.map_err(|e| MenuError::Api(Box::new(e)))
    };
    let message = match sent.await {
        Ok(message) => message,
        Err(e) => return Err(cancel(manager, id, e).await),
    };
    manager.set_message(id, i64::from(message.id.0)).await?;
    Ok(OpenedMenu { id, handle: started.handle, message })
}

/// A menu offered as an inline query's result.
#[derive(Debug)]
#[non_exhaustive]
pub struct InlineMenu<R> {
    /// The session (also the result's id).
    pub id: SessionId,
    /// Resolves when the session ends, with its result.
    pub handle: SessionHandle<R>,
}

/// Starts a session of `kind` for the inline query `query` and answers the query with
/// one article titled `title` that sends what `start` answered, with its inline
/// keyboard (`cache_time` 0 and personal: each user gets their own session). The
/// result's id is the session's id.
///
/// The inline message's id comes later: with [`record_chosen_inline`] when the bot
/// gets `chosen_inline_result` updates (inline feedback, @BotFather's `/setinlinefeedback`),
/// else from the first click ([`Origin::inline_message`](crate::interactive::Origin::inline_message)).
/// Until then an end edits nothing. A result the user never picks expires with the
/// session's TTL.
///
/// # Errors
///
/// As [`open_menu`]; the session is ended when the answer fails.
pub async fn answer_inline_menu<K, B>(
    bot: &B,
    manager: &Manager,
    kind: &Kind<K>,
    query: &InlineQuery,
    title: &str,
    args: K::Args,
) -> Result<InlineMenu<K::Output>, MenuError>
where
    K: Interactive,
    B: Requester,
    B::Err: std::error::Error + Send + Sync + 'static,
{
    let mut ctx = Context::new();
    if let Ok(user) = i64::try_from(query.from.id.0) {
        ctx = ctx.user(user);
    }
    let started = manager.start(kind, &ctx, args).await?;
    let id = started.id;
    let answered = async {
        let (text, buttons) = shown(kind, started.reply)?;
        let content = InputMessageContent::Text(InputMessageContentText::new(text));
        let mut article = InlineQueryResultArticle::new(id.to_string(), title, content);
        if !buttons.inline_keyboard.is_empty() {
            article = article.reply_markup(buttons);
        }
        let fut = bot
            .answer_inline_query(query.id.clone(), [InlineQueryResult::Article(article)])
            .cache_time(0)
            .is_personal(true)
            .send();
        fut.await.map(drop).map_err(|e| MenuError::Api(Box::new(e)))
    };
    if let Err(e) = answered.await {
        return Err(cancel(manager, id, e).await);
    }
    Ok(InlineMenu { id, handle: started.handle })
}

/// Records the inline message of a menu sent through [`answer_inline_menu`] from
/// Telegram's `chosen_inline_result`. Returns whether it named a live session of
/// `manager` (a result of another kind, or of a session already ended, is `false`).
///
/// # Errors
///
/// Store errors ([`Manager::set_inline_message`]).
pub async fn record_chosen_inline(manager: &Manager, chosen: &ChosenInlineResult) -> Result<bool, InteractiveError> {
    let (Some(session), Some(inline)) = (SessionId::parse(&chosen.result_id), &chosen.inline_message_id) else {
        return Ok(false);
    };
    manager.set_inline_message(session, inline).await
}

/// The text and keyboard of a start's reply.
fn shown<K>(kind: &Kind<K>, reply: Option<Reply>) -> Result<(String, InlineKeyboardMarkup), MenuError> {
    match reply {
        Some(Reply::Message(m) | Reply::Edit(m)) => Ok((m.text.clone(), keyboard(&m)?)),
        Some(Reply::Notice(text)) => Ok((text, InlineKeyboardMarkup::default())),
        Some(Reply::Modal(m)) => Err(RenderError::ModalUnsupported { custom_id: m.custom_id }.into()),
        None => Err(MenuError::NoReply { kind: kind.name().to_owned() }),
    }
}

/// Ends a session whose message could not be sent, and returns why.
async fn cancel(manager: &Manager, id: SessionId, error: MenuError) -> MenuError {
    if let Err(end) = manager.end(id, EndReason::Cancelled).await {
        tracing::warn!(session = %id, error = %end, "could not end a menu whose message was not sent");
    }
    error
}

/// The business connection a message came through.
fn business_of(msg: &Message) -> Option<String> {
    match &msg.kind {
        MessageKind::Common(common) => common.business_connection_id.as_ref().map(|b| b.0.clone()),
        _ => None,
    }
}
