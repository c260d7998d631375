//! Platform-neutral replies as Telegram requests: [`keyboard`] turns a
//! [`View`]'s rows into an inline keyboard, [`Action`] is one request to send, and
//! [`execute`] sends it.
//!
//! These are pure conversions plus one send function, so a bot (or a test) can look
//! at exactly what would be sent.

use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::payloads::setters::*;
use teloxide::requests::{Request, Requester};
use teloxide::types::{BusinessConnectionId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ThreadId};

use crate::interactive::{Emoji, View, Widget};
use crate::store::BoxError;

/// The most bytes Telegram accepts in a button's callback data.
pub const MAX_CALLBACK_DATA: usize = 64;

/// The most characters Telegram shows in a callback query answer (longer notices are
/// cut to this).
pub const MAX_NOTICE_CHARS: usize = 200;

/// Why a reply cannot be shown on Telegram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// Telegram has no select menus. Build one button per choice instead, each with
    /// its own custom id (push the choice as a token: `cx.custom_id("size").push("l")`).
    #[error("select menu `{custom_id}` cannot be shown on Telegram (no select menus): use one button per choice")]
    SelectUnsupported {
        /// The select's custom id.
        custom_id: String,
    },
    /// Telegram has no modals.
    #[error("modal `{custom_id}` cannot be shown on Telegram (no modals)")]
    ModalUnsupported {
        /// The modal's custom id.
        custom_id: String,
    },
    /// A button's custom id is empty or over Telegram's 64 bytes of callback data.
    /// Ids built by a [`CustomIdCodec`](crate::interactive::CustomIdCodec) with
    /// [`Target::Telegram`](crate::interactive::Target::Telegram) never are: the codec
    /// refuses them when they are built.
    #[error("button `{label}`: callback data of {len} bytes, Telegram takes 1 to {MAX_CALLBACK_DATA}")]
    CallbackData {
        /// The button's label.
        label: String,
        /// The data's length in bytes.
        len: usize,
    },
    /// Telegram has no embeds: put their text in the message's text.
    #[error("{count} embed(s) cannot be shown on Telegram (no embeds): put their text in the message")]
    EmbedUnsupported {
        /// How many embeds the message has.
        count: usize,
    },
    /// Telegram buttons show no server emoji (a Unicode emoji is put in front of the
    /// label instead).
    #[error("button `{label}`: a custom emoji cannot be shown on Telegram; use a Unicode emoji")]
    CustomEmojiUnsupported {
        /// The button's label.
        label: String,
    },
    /// A link button whose URL Telegram would refuse.
    #[error("link button `{label}`: `{url}` is not a URL")]
    Url {
        /// The button's label.
        label: String,
        /// The URL.
        url: String,
    },
    /// A [`Raw`](crate::interactive::Raw) component without a Telegram part, or whose
    /// Telegram part is no `InlineKeyboardButton`.
    #[error("raw component `{custom_id}`: {reason}")]
    Raw {
        /// Its custom id (empty when it has none).
        custom_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The reply needs a chat (a new message) or a message to edit, and the update
    /// has none (a button on an inline message has no chat; an end event whose session
    /// never learned its message has no message).
    #[error("no {what} to show this reply in")]
    NoTarget {
        /// What is missing (`chat`, `message`).
        what: &'static str,
    },
}

/// A message to edit: in a chat, or sent through inline mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageTarget {
    /// A message in a chat.
    Chat {
        /// The chat.
        chat_id: ChatId,
        /// The message.
        message_id: MessageId,
    },
    /// An inline message (no chat: edited by its inline message id).
    Inline(String),
    /// A message in a business chat, sent on behalf of a business account: edited
    /// through its business connection.
    Business {
        /// The business connection.
        business_connection_id: String,
        /// The chat.
        chat_id: ChatId,
        /// The message.
        message_id: MessageId,
    },
}

impl MessageTarget {
    /// The message `message_id` in `chat_id`, through `business_connection` when the
    /// chat is a business chat.
    pub fn in_chat(chat_id: ChatId, message_id: MessageId, business_connection: Option<&str>) -> Self {
        match business_connection {
            Some(id) => MessageTarget::Business { business_connection_id: id.to_owned(), chat_id, message_id },
            None => MessageTarget::Chat { chat_id, message_id },
        }
    }
}

/// One Telegram request that shows a reply.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// `editMessageText` (or its inline variant) with the keyboard; an empty keyboard
    /// removes the buttons.
    EditText {
        /// The message.
        target: MessageTarget,
        /// The new text.
        text: String,
        /// The new buttons.
        keyboard: InlineKeyboardMarkup,
    },
    /// `editMessageReplyMarkup` (or its inline variant): only the buttons change.
    EditKeyboard {
        /// The message.
        target: MessageTarget,
        /// The new buttons.
        keyboard: InlineKeyboardMarkup,
    },
    /// `sendMessage`, in a forum topic when `thread_id` is set, through a business
    /// connection when `business_connection_id` is.
    Send {
        /// The chat.
        chat_id: ChatId,
        /// The forum topic.
        thread_id: Option<ThreadId>,
        /// The business connection (a business chat).
        business_connection_id: Option<String>,
        /// The text.
        text: String,
        /// The buttons.
        keyboard: InlineKeyboardMarkup,
    },
}

/// The inline keyboard of a message: one keyboard row per row, one callback button per
/// [`Button`](crate::interactive::Button) carrying its custom id as callback data.
///
/// Telegram buttons have no style and cannot be disabled: styles are dropped and
/// disabled buttons are left out (a row left empty is dropped). A link button is a
/// URL button; a Unicode emoji goes in front of the label. A raw component is its
/// Telegram part, an `InlineKeyboardButton` as Telegram's JSON.
///
/// Refused, never dropped: select menus ([`RenderError::SelectUnsupported`]: there are
/// none on Telegram, and turning the options into buttons would need a custom id per
/// option, which only the session can build), embeds, custom emoji, raw components
/// without a Telegram part.
///
/// # Errors
///
/// [`RenderError::SelectUnsupported`], [`RenderError::CallbackData`],
/// [`RenderError::EmbedUnsupported`], [`RenderError::CustomEmojiUnsupported`],
/// [`RenderError::Url`], [`RenderError::Raw`].
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Button, View, Select};
/// use bot_sessions::telegram::{RenderError, keyboard};
///
/// let menu = View::text("value: 0").row([Button::new("-1", "m:s:dec"), Button::new("+1", "m:s:inc")]);
/// let markup = keyboard(&menu)?;
/// assert_eq!(markup.inline_keyboard.len(), 1);
/// assert_eq!(markup.inline_keyboard[0][1].text, "+1");
///
/// let pick = View::text("size?").row([Select::new("m:s:size")]);
/// assert!(matches!(keyboard(&pick), Err(RenderError::SelectUnsupported { .. })));
/// # Ok::<(), RenderError>(())
/// ```
pub fn keyboard(message: &View) -> Result<InlineKeyboardMarkup, RenderError> {
    if !message.embeds.is_empty() {
        return Err(RenderError::EmbedUnsupported { count: message.embeds.len() });
    }
    let mut rows = Vec::with_capacity(message.rows.len());
    for row in &message.rows {
        let mut buttons = Vec::with_capacity(row.len());
        for widget in row {
            match widget {
                Widget::Button(b) if b.disabled => {}
                Widget::Link(l) if l.disabled => {}
                Widget::Button(b) => {
                    let len = b.custom_id.len();
                    if len == 0 || len > MAX_CALLBACK_DATA {
                        return Err(RenderError::CallbackData { label: b.label.clone(), len });
                    }
                    buttons.push(InlineKeyboardButton::callback(labelled(&b.label, &b.emoji)?, b.custom_id.clone()));
                }
                Widget::Link(l) => {
                    let json = serde_json::json!({ "text": labelled(&l.label, &l.emoji)?, "url": l.url });
                    let button = serde_json::from_value::<InlineKeyboardButton>(json)
                        .map_err(|_| RenderError::Url { label: l.label.clone(), url: l.url.clone() })?;
                    buttons.push(button);
                }
                Widget::Raw(r) => {
                    let custom_id = r.custom_id().unwrap_or_default().to_owned();
                    let Some(json) = &r.telegram else {
                        return Err(RenderError::Raw { custom_id, reason: "it has no Telegram part".into() });
                    };
                    let button = serde_json::from_value::<InlineKeyboardButton>(json.clone())
                        .map_err(|e| RenderError::Raw { custom_id, reason: e.to_string() })?;
                    buttons.push(button);
                }
                Widget::Select(s) => return Err(RenderError::SelectUnsupported { custom_id: s.custom_id.clone() }),
            }
        }
        if !buttons.is_empty() {
            rows.push(buttons);
        }
    }
    Ok(InlineKeyboardMarkup::new(rows))
}

/// A button's label with its Unicode emoji in front.
fn labelled(label: &str, emoji: &Option<Emoji>) -> Result<String, RenderError> {
    match emoji {
        None => Ok(label.to_owned()),
        Some(Emoji::Unicode(e)) => Ok(format!("{e} {label}")),
        Some(_) => Err(RenderError::CustomEmojiUnsupported { label: label.to_owned() }),
    }
}

/// A notice cut to what Telegram shows in a callback answer ([`MAX_NOTICE_CHARS`]).
pub fn notice_text(text: &str) -> String {
    text.chars().take(MAX_NOTICE_CHARS).collect()
}

/// Sends one action. An edit that Telegram refuses because nothing changed ("message
/// is not modified") counts as done.
///
/// # Errors
///
/// The request's error, boxed.
pub async fn execute<B>(bot: &B, action: &Action) -> Result<(), BoxError>
where
    B: Requester,
    B::Err: std::error::Error + Send + Sync + 'static,
{
    // Each request is turned into its (`Send`) future before the await, so that the
    // request builder, which need not be `Send`, is not held across it.
    let sent = match action.clone() {
        Action::EditText { target: MessageTarget::Chat { chat_id, message_id }, text, keyboard } => {
            let req = bot.edit_message_text(chat_id, message_id, text);
            let fut = if keyboard.inline_keyboard.is_empty() { req.send() } else { req.reply_markup(keyboard).send() };
            fut.await.map(drop)
        }
        Action::EditText { target: MessageTarget::Inline(id), text, keyboard } => {
            let req = bot.edit_message_text_inline(id, text);
            let fut = if keyboard.inline_keyboard.is_empty() { req.send() } else { req.reply_markup(keyboard).send() };
            fut.await.map(drop)
        }
        Action::EditText {
            target: MessageTarget::Business { business_connection_id, chat_id, message_id },
            text,
            keyboard,
        } => {
            let req = bot
                .edit_message_text(chat_id, message_id, text)
                .business_connection_id(BusinessConnectionId(business_connection_id));
            let fut = if keyboard.inline_keyboard.is_empty() { req.send() } else { req.reply_markup(keyboard).send() };
            fut.await.map(drop)
        }
        Action::EditKeyboard {
            target: MessageTarget::Business { business_connection_id, chat_id, message_id },
            keyboard,
        } => {
            let fut = bot
                .edit_message_reply_markup(chat_id, message_id)
                .business_connection_id(BusinessConnectionId(business_connection_id))
                .reply_markup(keyboard)
                .send();
            fut.await.map(drop)
        }
        Action::EditKeyboard { target: MessageTarget::Chat { chat_id, message_id }, keyboard } => {
            let fut = bot.edit_message_reply_markup(chat_id, message_id).reply_markup(keyboard).send();
            fut.await.map(drop)
        }
        Action::EditKeyboard { target: MessageTarget::Inline(id), keyboard } => {
            let fut = bot.edit_message_reply_markup_inline(id).reply_markup(keyboard).send();
            fut.await.map(drop)
        }
        Action::Send { chat_id, thread_id, business_connection_id, text, keyboard } => {
            let fut = {
                let mut req = bot.send_message(chat_id, text);
                if let Some(thread) = thread_id {
                    req = req.message_thread_id(thread);
                }
                if let Some(id) = business_connection_id {
                    req = req.business_connection_id(BusinessConnectionId(id));
                }
                if keyboard.inline_keyboard.is_empty() { req.send() } else { req.reply_markup(keyboard).send() }
            };
            fut.await.map(drop)
        }
    };
    match sent {
        Ok(()) => Ok(()),
        Err(e) if not_modified(&e) => Ok(()),
        Err(e) => Err(Box::new(e)),
    }
}

/// Whether `e` is Telegram's "message is not modified" (teloxide knows one wording of
/// it; any other wording of the same error is recognized by its start).
fn not_modified(e: &(dyn std::error::Error + 'static)) -> bool {
    match e.downcast_ref::<RequestError>() {
        Some(RequestError::Api(ApiError::MessageNotModified)) => true,
        Some(RequestError::Api(ApiError::Unknown(text))) => text.starts_with("Bad Request: message is not modified"),
        _ => false,
    }
}
