//! The platform-neutral [`Reply`] in serenity's builders: the same responses as the
//! HTTP endpoint's [`interaction_response`](crate::discord::interaction_response)
//! (same kinds, same limits checked first, no mentions), so a session answers alike on
//! both transports.
//!
//! The reply model has text, buttons, string selects, modals with text fields and the
//! ephemeral flag; that is what is rendered here.

use ::serenity::all::{
    ButtonStyle as SButtonStyle, CreateActionRow, CreateAllowedMentions, CreateButton, CreateInputText,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateModal,
    CreateSelectMenu, CreateSelectMenuKind, CreateSelectMenuOption, EditInteractionResponse, EditMessage,
    InputTextStyle,
};

use crate::discord::{MAX_CONTENT, RenderError, components, modal_data};
use crate::interactive::{ButtonStyle, Modal, Reply, View, Widget};

/// A message's rows as serenity action rows (an empty list when there are none, which
/// removes a message's components on an edit).
///
/// # Errors
///
/// [`RenderError`] for rows Discord would refuse (the limits of
/// [`components`](crate::discord::components)).
pub fn action_rows(message: &View) -> Result<Vec<CreateActionRow>, RenderError> {
    components(message)?; // the limits, checked once for both transports
    Ok(message.rows.iter().map(|row| action_row(row)).collect())
}

fn action_row(row: &[Widget]) -> CreateActionRow {
    if let [Widget::Select(s)] = row {
        let options = s
            .options
            .iter()
            .map(|o| {
                let option = CreateSelectMenuOption::new(o.label.clone(), o.value.clone());
                match &o.description {
                    Some(d) => option.description(d.clone()),
                    None => option,
                }
            })
            .collect();
        let mut menu = CreateSelectMenu::new(s.custom_id.clone(), CreateSelectMenuKind::String { options })
            .min_values(s.min_values)
            .max_values(s.max_values);
        if let Some(p) = &s.placeholder {
            menu = menu.placeholder(p.clone());
        }
        return CreateActionRow::SelectMenu(menu);
    }
    let buttons = row
        .iter()
        .filter_map(|w| match w {
            Widget::Button(b) => {
                Some(CreateButton::new(b.custom_id.clone()).label(b.label.clone()).disabled(b.disabled).style(
                    match b.style {
                        ButtonStyle::Primary => SButtonStyle::Primary,
                        ButtonStyle::Success => SButtonStyle::Success,
                        ButtonStyle::Danger => SButtonStyle::Danger,
                        _ => SButtonStyle::Secondary,
                    },
                ))
            }
            // `components` refused a select next to anything else.
            _ => None,
        })
        .collect();
    CreateActionRow::Buttons(buttons)
}

fn check_text(message: &View) -> Result<(), RenderError> {
    let len = message.text.chars().count();
    if len > MAX_CONTENT {
        return Err(RenderError::TooLong { what: "the message text", len, max: MAX_CONTENT });
    }
    Ok(())
}

/// A message as the data of a response (`CHANNEL_MESSAGE_WITH_SOURCE` or
/// `UPDATE_MESSAGE`): text, components, the ephemeral flag, no mentions.
///
/// # Errors
///
/// [`RenderError`] for a message Discord would refuse.
pub fn response_message(message: &View) -> Result<CreateInteractionResponseMessage, RenderError> {
    check_text(message)?;
    Ok(CreateInteractionResponseMessage::new()
        .content(message.text.clone())
        .components(action_rows(message)?)
        .allowed_mentions(CreateAllowedMentions::new())
        .ephemeral(message.ephemeral))
}

/// A message as an edit of the original response (a deferred response's answer, or a
/// session's message shown by it).
///
/// # Errors
///
/// [`RenderError`] for a message Discord would refuse.
pub fn edit_response(message: &View) -> Result<EditInteractionResponse, RenderError> {
    check_text(message)?;
    Ok(EditInteractionResponse::new()
        .content(message.text.clone())
        .components(action_rows(message)?)
        .allowed_mentions(CreateAllowedMentions::new()))
}

/// A message as an edit of a channel message (with the bot token).
///
/// # Errors
///
/// [`RenderError`] for a message Discord would refuse.
pub fn edit_message(message: &View) -> Result<EditMessage, RenderError> {
    check_text(message)?;
    Ok(EditMessage::new()
        .content(message.text.clone())
        .components(action_rows(message)?)
        .allowed_mentions(CreateAllowedMentions::new()))
}

/// A message as a follow-up message.
///
/// # Errors
///
/// [`RenderError`] for a message Discord would refuse.
pub fn followup(message: &View) -> Result<CreateInteractionResponseFollowup, RenderError> {
    check_text(message)?;
    Ok(CreateInteractionResponseFollowup::new()
        .content(message.text.clone())
        .components(action_rows(message)?)
        .allowed_mentions(CreateAllowedMentions::new())
        .ephemeral(message.ephemeral))
}

/// A modal: each field a text input in its own row.
///
/// # Errors
///
/// [`RenderError`] for a modal Discord would refuse.
pub fn modal(modal: &Modal) -> Result<CreateModal, RenderError> {
    modal_data(modal)?; // the limits
    let rows = modal
        .fields
        .iter()
        .map(|f| {
            let style = if f.paragraph { InputTextStyle::Paragraph } else { InputTextStyle::Short };
            let mut input = CreateInputText::new(style, f.label.clone(), f.id.clone()).required(f.required);
            if let Some(p) = &f.placeholder {
                input = input.placeholder(p.clone());
            }
            if let Some(v) = &f.value {
                input = input.value(v.clone());
            }
            CreateActionRow::InputText(input)
        })
        .collect();
    Ok(CreateModal::new(modal.custom_id.clone(), modal.title.clone()).components(rows))
}

/// The response showing `reply`, as [`interaction_response`](crate::discord::interaction_response)
/// gives it on the HTTP endpoint: an edit is `UPDATE_MESSAGE` on a component's message
/// (`on_message`), else a new message; a notice is an ephemeral message; a modal is a
/// modal.
///
/// # Errors
///
/// [`RenderError`] for a reply Discord would refuse.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::serenity::create_response;
/// use bot_sessions::interactive::{Button, View, Reply};
///
/// let reply = Reply::edit(View::text("votes: 1").row([Button::new("Yes", "poll:s:yes")]));
/// let json = serde_json::to_value(create_response(&reply, true)?).unwrap();
/// assert_eq!(json["type"], 7); // UPDATE_MESSAGE
/// assert_eq!(json["data"]["components"][0]["components"][0]["custom_id"], "poll:s:yes");
/// assert_eq!(json["data"]["allowed_mentions"]["parse"], serde_json::json!([]));
/// # Ok::<(), bot_sessions::discord::RenderError>(())
/// ```
pub fn create_response(reply: &Reply, on_message: bool) -> Result<CreateInteractionResponse, RenderError> {
    Ok(match reply {
        // An edit cannot change who sees the message: no flags.
        Reply::Edit(m) if on_message => {
            check_text(m)?;
            CreateInteractionResponse::UpdateMessage(
                CreateInteractionResponseMessage::new()
                    .content(m.text.clone())
                    .components(action_rows(m)?)
                    .allowed_mentions(CreateAllowedMentions::new()),
            )
        }
        Reply::Edit(m) | Reply::Message(m) => CreateInteractionResponse::Message(response_message(m)?),
        Reply::Notice(text) => notice(text),
        Reply::Modal(m) => CreateInteractionResponse::Modal(modal(m)?),
    })
}

/// An ephemeral text message response (cut to Discord's limit).
pub fn notice(text: &str) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(text.chars().take(MAX_CONTENT).collect::<String>())
            .allowed_mentions(CreateAllowedMentions::new())
            .ephemeral(true),
    )
}
