//! The platform-neutral [`Reply`] in serenity's builders: the same responses as the
//! HTTP endpoint's [`interaction_response`](crate::discord::interaction_response)
//! (same kinds, same limits checked first, no mentions), so a session answers alike on
//! both transports.
//!
//! Everything the reply model has is rendered here: text, embeds, buttons with emoji,
//! link buttons, every kind of select with its defaults, disabled components, modals,
//! the ephemeral flag. A [`Raw`](crate::interactive::Raw) component must be a button
//! (serenity's builders carry no other raw component); anything else is refused
//! with [`RenderError::Raw`].

use ::serenity::all::{
    Button as SButton, ButtonStyle as SButtonStyle, ChannelId, ChannelType, CreateActionRow, CreateAllowedMentions,
    CreateButton, CreateEmbed, CreateInputText, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, CreateMessage, CreateModal, CreateSelectMenu, CreateSelectMenuKind,
    CreateSelectMenuOption, EditInteractionResponse, EditMessage, EmojiId, InputTextStyle, ReactionType, RoleId,
    UserId,
};

use crate::discord::{MAX_CONTENT, RenderError, check_embeds, components, modal_data};
use crate::interactive::{
    Button, ButtonStyle, Embed, Emoji, Modal, Raw, Reply, Select, SelectDefault, SelectKind, View, Widget,
};

/// A message's rows as serenity action rows (an empty list when there are none, which
/// removes a message's components on an edit).
///
/// # Errors
///
/// [`RenderError`] for rows Discord would refuse (the limits of
/// [`components`](crate::discord::components)).
pub fn action_rows(message: &View) -> Result<Vec<CreateActionRow>, RenderError> {
    components(message)?; // the limits (and non-zero ids), checked once for both transports
    message.rows.iter().map(|row| action_row(row)).collect()
}

/// The message's embeds as serenity's builders, Discord's limits checked first.
///
/// # Errors
///
/// [`RenderError`] for embeds Discord would refuse.
pub fn create_embeds(embeds: &[Embed]) -> Result<Vec<CreateEmbed>, RenderError> {
    check_embeds(embeds)?;
    Ok(embeds
        .iter()
        .map(|e| {
            let mut out = CreateEmbed::new();
            if let Some(t) = &e.title {
                out = out.title(t.clone());
            }
            if let Some(d) = &e.description {
                out = out.description(d.clone());
            }
            if let Some(u) = &e.url {
                out = out.url(u.clone());
            }
            if let Some(c) = e.colour {
                out = out.colour(c);
            }
            out.fields(e.fields.iter().map(|f| (f.name.clone(), f.value.clone(), f.inline)))
        })
        .collect())
}

// Ids are non-zero here: `components` refused zeros before.
fn reaction(emoji: &Emoji) -> ReactionType {
    match emoji {
        Emoji::Custom { id, name, animated } => {
            ReactionType::Custom { animated: *animated, id: EmojiId::new(*id), name: Some(name.clone()) }
        }
        Emoji::Unicode(name) => ReactionType::Unicode(name.clone()),
    }
}

fn some<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn user_default(d: &SelectDefault) -> Option<u64> {
    if let SelectDefault::User(id) = d { Some(*id) } else { None }
}

fn role_default(d: &SelectDefault) -> Option<u64> {
    if let SelectDefault::Role(id) = d { Some(*id) } else { None }
}

fn channel_default(d: &SelectDefault) -> Option<u64> {
    if let SelectDefault::Channel(id) = d { Some(*id) } else { None }
}

fn select_menu(s: &Select) -> CreateSelectMenu {
    let options = || {
        s.options
            .iter()
            .map(|o| {
                let mut option =
                    CreateSelectMenuOption::new(o.label.clone(), o.value.clone()).default_selection(o.selected);
                if let Some(d) = &o.description {
                    option = option.description(d.clone());
                }
                if let Some(e) = &o.emoji {
                    option = option.emoji(reaction(e));
                }
                option
            })
            .collect()
    };
    let users = || some(s.defaults.iter().filter_map(|d| user_default(d).map(UserId::new)).collect());
    let roles = || some(s.defaults.iter().filter_map(|d| role_default(d).map(RoleId::new)).collect());
    let channels = || some(s.defaults.iter().filter_map(|d| channel_default(d).map(ChannelId::new)).collect());
    let kind = match &s.kind {
        SelectKind::User => CreateSelectMenuKind::User { default_users: users() },
        SelectKind::Role => CreateSelectMenuKind::Role { default_roles: roles() },
        SelectKind::Mentionable => CreateSelectMenuKind::Mentionable { default_users: users(), default_roles: roles() },
        SelectKind::Channel { types } => CreateSelectMenuKind::Channel {
            channel_types: (!types.is_empty()).then(|| types.iter().map(|t| ChannelType::from(*t)).collect()),
            default_channels: channels(),
        },
        _ => CreateSelectMenuKind::String { options: options() },
    };
    let mut menu = CreateSelectMenu::new(s.custom_id.clone(), kind)
        .min_values(s.min_values)
        .max_values(s.max_values)
        .disabled(s.disabled);
    if let Some(p) = &s.placeholder {
        menu = menu.placeholder(p.clone());
    }
    menu
}

fn button(b: &Button) -> CreateButton {
    let out = CreateButton::new(b.custom_id.clone()).label(b.label.clone()).disabled(b.disabled).style(match b.style {
        ButtonStyle::Primary => SButtonStyle::Primary,
        ButtonStyle::Success => SButtonStyle::Success,
        ButtonStyle::Danger => SButtonStyle::Danger,
        _ => SButtonStyle::Secondary,
    });
    match &b.emoji {
        Some(e) => out.emoji(reaction(e)),
        None => out,
    }
}

fn raw_button(r: &Raw) -> Result<CreateButton, RenderError> {
    let custom_id = r.custom_id().unwrap_or_default().to_owned();
    let json = r.discord.clone().unwrap_or_default(); // present: `components` checked it
    if json.get("type").and_then(serde_json::Value::as_u64) != Some(2) {
        let reason = "serenity's builders carry raw buttons only".to_owned();
        return Err(RenderError::Raw { custom_id, reason });
    }
    serde_json::from_value::<SButton>(json)
        .map(CreateButton::from)
        .map_err(|e| RenderError::Raw { custom_id, reason: e.to_string() })
}

fn action_row(row: &[Widget]) -> Result<CreateActionRow, RenderError> {
    if let [Widget::Select(s)] = row {
        return Ok(CreateActionRow::SelectMenu(select_menu(s)));
    }
    let mut buttons = Vec::with_capacity(row.len());
    for w in row {
        buttons.push(match w {
            Widget::Button(b) => button(b),
            Widget::Link(l) => {
                let out = CreateButton::new_link(l.url.clone()).label(l.label.clone()).disabled(l.disabled);
                match &l.emoji {
                    Some(e) => out.emoji(reaction(e)),
                    None => out,
                }
            }
            Widget::Raw(r) => raw_button(r)?,
            // `components` refused a select next to anything else.
            _ => continue,
        });
    }
    Ok(CreateActionRow::Buttons(buttons))
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
        .embeds(create_embeds(&message.embeds)?)
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
        .embeds(create_embeds(&message.embeds)?)
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
        .embeds(create_embeds(&message.embeds)?)
        .allowed_mentions(CreateAllowedMentions::new()))
}

/// A message as a new channel message (with the bot token): what a session says
/// after a message event, which has no interaction to answer. Ephemeral is an
/// interaction's; a channel message is seen by everyone in the channel.
///
/// # Errors
///
/// [`RenderError`] for a message Discord would refuse.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::serenity::create_message;
/// use bot_sessions::interactive::{Button, View};
///
/// let message = create_message(&View::text("value: 42").row([Button::new("+1", "m:s:inc")]))?;
/// let json = serde_json::to_value(message).unwrap();
/// assert_eq!(json["content"], "value: 42");
/// assert_eq!(json["components"][0]["components"][0]["custom_id"], "m:s:inc");
/// # Ok::<(), bot_sessions::discord::RenderError>(())
/// ```
pub fn create_message(message: &View) -> Result<CreateMessage, RenderError> {
    check_text(message)?;
    Ok(CreateMessage::new()
        .content(message.text.clone())
        .components(action_rows(message)?)
        .embeds(create_embeds(&message.embeds)?)
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
        .embeds(create_embeds(&message.embeds)?)
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
                    .embeds(create_embeds(&m.embeds)?)
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
