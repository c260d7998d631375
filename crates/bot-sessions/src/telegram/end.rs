//! Showing what an interactive session's `end` answered when no click did (expiry,
//! shutdown, an explicit end): typically an edit of the session's message that says
//! `expired` and removes the buttons.

use teloxide::requests::Requester;
use teloxide::types::{ChatId, MessageId, ThreadId};

use super::render::{Action, MessageTarget, RenderError, execute, keyboard};
use super::router::RouterError;
use crate::interactive::{EndEvent, Reply};

/// The requests that show an [`EndEvent`]'s reply.
///
/// `target` is the session's message; `None` takes it from the event's
/// [`Origin`](crate::interactive::Origin) (its chat and message: the message is known
/// once [`StartCx::set_message`](crate::interactive::StartCx::set_message) or
/// [`Manager::set_message`](crate::interactive::Manager::set_message) recorded it, or
/// from the session's first click; an inline message once
/// [`Manager::set_inline_message`](crate::interactive::Manager::set_inline_message) or
/// the first click recorded it; in a business chat, through the origin's business
/// connection). Pass it for a message whose id the bot kept itself.
///
/// | reply | request |
/// | --- | --- |
/// | [`Reply::Edit`] | `editMessageText` of the message, with its keyboard (none: the buttons go) |
/// | [`Reply::Message`] | `sendMessage` in the origin's chat and forum topic |
/// | [`Reply::Notice`] or none | nothing (no click to answer) |
/// | [`Reply::Modal`] | refused |
///
/// # Errors
///
/// [`RenderError::NoTarget`] when the message (or chat) is unknown,
/// [`RenderError::ModalUnsupported`], and [`keyboard`]'s errors.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{EndEvent, Reply};
/// use bot_sessions::telegram::{Action, MessageTarget, end_actions};
/// use teloxide::types::{ChatId, MessageId};
///
/// fn show(event: &EndEvent) -> Result<(), bot_sessions::telegram::RenderError> {
///     // An expired menu whose origin knows its message: one edit, without buttons.
///     if let [Action::EditText { target: MessageTarget::Chat { chat_id, message_id }, text, keyboard }] =
///         end_actions(event, None)?.as_slice()
///     {
///         println!("edit {chat_id}/{message_id:?} to {text:?}, {} rows", keyboard.inline_keyboard.len());
///     }
///     Ok(())
/// }
/// # let _ = show;
/// ```
pub fn end_actions(event: &EndEvent, target: Option<MessageTarget>) -> Result<Vec<Action>, RenderError> {
    let origin = &event.origin;
    match &event.reply {
        None | Some(Reply::Notice(_)) => Ok(Vec::new()),
        Some(Reply::Edit(m)) => {
            let keyboard = keyboard(m)?;
            let target = match (target, origin.chat, origin.message, &origin.inline_message) {
                (Some(t), ..) => t,
                (None, Some(chat), Some(message), _) => {
                    let message_id = i32::try_from(message).map_err(|_| RenderError::NoTarget { what: "message" })?;
                    let business = origin.business_connection.as_deref();
                    MessageTarget::in_chat(ChatId(chat), MessageId(message_id), business)
                }
                (None, _, _, Some(inline)) => MessageTarget::Inline(inline.clone()),
                (None, ..) => return Err(RenderError::NoTarget { what: "message" }),
            };
            Ok(vec![Action::EditText { target, text: m.text.clone(), keyboard }])
        }
        Some(Reply::Message(m)) => {
            let keyboard = keyboard(m)?;
            let chat_id = match (&target, origin.chat) {
                (Some(MessageTarget::Chat { chat_id, .. } | MessageTarget::Business { chat_id, .. }), _) => *chat_id,
                (_, Some(chat)) => ChatId(chat),
                (_, None) => return Err(RenderError::NoTarget { what: "chat" }),
            };
            let thread_id = origin.topic.and_then(|t| i32::try_from(t).ok()).map(|t| ThreadId(MessageId(t)));
            let business_connection_id = match &target {
                Some(MessageTarget::Business { business_connection_id, .. }) => Some(business_connection_id.clone()),
                _ => origin.business_connection.clone(),
            };
            Ok(vec![Action::Send { chat_id, thread_id, business_connection_id, text: m.text.clone(), keyboard }])
        }
        Some(Reply::Modal(m)) => Err(RenderError::ModalUnsupported { custom_id: m.custom_id.clone() }),
    }
}

/// Sends [`end_actions`]: shows an end event's reply. Returns how many requests were
/// sent (0 when the end gave nothing to show).
///
/// A bot runs it for each event of [`Manager::subscribe`](crate::interactive::Manager::subscribe)
/// whose end no click answered (a click's end is shown by the
/// [`CallbackRouter`](super::CallbackRouter) already): `event.reason` is not
/// [`EndReason::Finished`](crate::interactive::EndReason::Finished).
///
/// # Errors
///
/// [`RouterError::Render`] as [`end_actions`]; [`RouterError::Api`] when a request
/// fails.
pub async fn show_end<B>(bot: &B, event: &EndEvent, target: Option<MessageTarget>) -> Result<usize, RouterError>
where
    B: Requester,
    B::Err: std::error::Error + Send + Sync + 'static,
{
    let actions = end_actions(event, target)?;
    for action in &actions {
        execute(bot, action).await.map_err(RouterError::Api)?;
    }
    Ok(actions.len())
}
