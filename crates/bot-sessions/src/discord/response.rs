//! The platform-neutral [`Reply`] as a Discord interaction response (and as the body of
//! a REST message edit); the table is on [`interaction_response`].
//!
//! Rows become action rows. Messages never ping: `allowed_mentions` allows none, so a
//! session echoing user text cannot mention `@everyone`. Discord's limits are checked
//! here, before anything is sent: at most 5 rows, 5 buttons or one select per row,
//! 25 options per select, 2000 characters of text, 1 to 5 modal fields, a modal
//! title of at most 45 characters, and the embeds' limits (10 embeds, 25 fields,
//! 6000 characters in all).
//!
//! The rich parts of a message map one to one: an [`Embed`](crate::interactive::Embed)
//! is an embed object, a [`LinkButton`](crate::interactive::LinkButton) a button of
//! style 5 with a `url` and no `custom_id`, an [`Emoji`] the `emoji` object of a button or
//! option, a [`SelectKind`] the select's `type` (3 string, 5 user, 6 role,
//! 7 mentionable, 8 channel), [`SelectDefault`](crate::interactive::SelectDefault)s its
//! `default_values`, a [`Raw`](crate::interactive::Raw) component its Discord JSON.

use twilight_model::channel::message::component::{
    ActionRow, Button as DButton, ButtonStyle as DButtonStyle, Component, SelectDefaultValue, SelectMenu,
    SelectMenuOption, SelectMenuType, TextInput, TextInputStyle,
};
use twilight_model::channel::message::{AllowedMentions, EmojiReactionType, MessageFlags};
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType};

use super::embed::{embeds, nonzero};
use crate::interactive::{ButtonStyle, Emoji, Modal, Reply, SelectDefault, SelectKind, View, Widget};

use super::limits::check_len;
pub use super::limits::{MAX_BUTTONS_PER_ROW, MAX_CONTENT, MAX_MODAL_TITLE, MAX_OPTIONS, MAX_ROWS, RenderError};

/// A message's rows as action rows.
///
/// # Errors
///
/// [`RenderError`] for rows Discord would refuse.
pub fn components(message: &View) -> Result<Vec<Component>, RenderError> {
    if message.rows.len() > MAX_ROWS {
        return Err(RenderError::TooManyRows { rows: message.rows.len() });
    }
    let mut rows = Vec::with_capacity(message.rows.len());
    for (i, row) in message.rows.iter().enumerate() {
        let selects = row.iter().filter(|w| matches!(w, Widget::Select(_)) || is_raw_select(w)).count();
        if row.is_empty() {
            return Err(RenderError::EmptyRow { row: i });
        }
        if row.len() > MAX_BUTTONS_PER_ROW || (selects > 0 && row.len() > 1) {
            return Err(RenderError::RowTooFull { row: i, count: row.len() });
        }
        let mut out = Vec::with_capacity(row.len());
        for widget in row {
            out.push(widget_component(widget)?);
        }
        rows.push(Component::ActionRow(ActionRow { components: out, id: None }));
    }
    Ok(rows)
}

/// Whether a raw component is a select menu (types 3 and 5 to 8), which fills a row.
fn is_raw_select(widget: &Widget) -> bool {
    let kind = match widget {
        Widget::Raw(r) => r.discord.as_ref().and_then(|v| v.get("type")).and_then(serde_json::Value::as_u64),
        _ => None,
    };
    matches!(kind, Some(3 | 5..=8))
}

pub(crate) fn emoji(emoji: &Option<Emoji>) -> Result<Option<EmojiReactionType>, RenderError> {
    Ok(match emoji {
        None => None,
        Some(Emoji::Custom { id, name, animated }) => Some(EmojiReactionType::Custom {
            animated: *animated,
            id: nonzero(*id, "a custom emoji")?,
            name: Some(name.clone()),
        }),
        Some(Emoji::Unicode(name)) => Some(EmojiReactionType::Unicode { name: name.clone() }),
    })
}

fn style(style: ButtonStyle) -> DButtonStyle {
    match style {
        ButtonStyle::Primary => DButtonStyle::Primary,
        ButtonStyle::Success => DButtonStyle::Success,
        ButtonStyle::Danger => DButtonStyle::Danger,
        _ => DButtonStyle::Secondary,
    }
}

/// Whether `url` is one a link button may open.
pub(crate) fn link_url(label: &str, url: &str) -> Result<(), RenderError> {
    let scheme_ok = ["https://", "http://", "discord://"].iter().any(|p| url.len() > p.len() && url.starts_with(p));
    if !scheme_ok || url.len() > 512 || url.chars().any(char::is_whitespace) {
        return Err(RenderError::Url { label: label.to_owned(), url: url.to_owned() });
    }
    Ok(())
}

/// The checks a select's kind, options and defaults pass on Discord.
pub(crate) fn check_select(s: &crate::interactive::Select) -> Result<(), RenderError> {
    let refuse = |reason| Err(RenderError::Select { custom_id: s.custom_id.clone(), reason });
    if s.kind == SelectKind::Text {
        if s.options.is_empty() || s.options.len() > MAX_OPTIONS {
            return Err(RenderError::Options { custom_id: s.custom_id.clone(), count: s.options.len() });
        }
        if !s.defaults.is_empty() {
            return refuse("a text select shows its choice with `SelectOption::selected`, not defaults");
        }
        if s.options.iter().filter(|o| o.selected).count() > usize::from(s.max_values) {
            return refuse("more options selected than max_values lets be chosen");
        }
        return Ok(());
    }
    if !s.options.is_empty() {
        return refuse("only a text select has options");
    }
    let fits = s.defaults.iter().all(|d| {
        matches!(
            (&s.kind, d),
            (SelectKind::User | SelectKind::Mentionable, SelectDefault::User(_))
                | (SelectKind::Role | SelectKind::Mentionable, SelectDefault::Role(_))
                | (SelectKind::Channel { .. }, SelectDefault::Channel(_))
        )
    });
    if !fits {
        return refuse("a default of another kind than the select's");
    }
    if s.defaults.len() > usize::from(s.max_values) {
        return refuse("more defaults than max_values lets be chosen");
    }
    Ok(())
}

fn widget_component(widget: &Widget) -> Result<Component, RenderError> {
    Ok(match widget {
        Widget::Button(b) => Component::Button(DButton {
            custom_id: Some(b.custom_id.clone()),
            disabled: b.disabled,
            emoji: emoji(&b.emoji)?,
            id: None,
            label: Some(b.label.clone()),
            sku_id: None,
            style: style(b.style),
            url: None,
        }),
        Widget::Link(b) => {
            link_url(&b.label, &b.url)?;
            Component::Button(DButton {
                custom_id: None,
                disabled: b.disabled,
                emoji: emoji(&b.emoji)?,
                id: None,
                label: Some(b.label.clone()),
                sku_id: None,
                style: DButtonStyle::Link,
                url: Some(b.url.clone()),
            })
        }
        Widget::Select(s) => {
            check_select(s)?;
            let options = s
                .options
                .iter()
                .map(|o| {
                    Ok(SelectMenuOption {
                        default: o.selected,
                        description: o.description.clone(),
                        emoji: emoji(&o.emoji)?,
                        label: o.label.clone(),
                        value: o.value.clone(),
                    })
                })
                .collect::<Result<Vec<_>, RenderError>>()?;
            let (kind, channel_types) = match &s.kind {
                SelectKind::User => (SelectMenuType::User, None),
                SelectKind::Role => (SelectMenuType::Role, None),
                SelectKind::Mentionable => (SelectMenuType::Mentionable, None),
                SelectKind::Channel { types } => {
                    let types = types.iter().map(|t| (*t).into()).collect::<Vec<_>>();
                    (SelectMenuType::Channel, (!types.is_empty()).then_some(types))
                }
                _ => (SelectMenuType::Text, None),
            };
            let defaults = s
                .defaults
                .iter()
                .map(|d| {
                    Ok(match *d {
                        SelectDefault::User(id) => SelectDefaultValue::User(nonzero(id, "a select default")?),
                        SelectDefault::Role(id) => SelectDefaultValue::Role(nonzero(id, "a select default")?),
                        SelectDefault::Channel(id) => SelectDefaultValue::Channel(nonzero(id, "a select default")?),
                    })
                })
                .collect::<Result<Vec<_>, RenderError>>()?;
            Component::SelectMenu(SelectMenu {
                channel_types,
                custom_id: s.custom_id.clone(),
                default_values: (!defaults.is_empty()).then_some(defaults),
                disabled: s.disabled,
                id: None,
                kind,
                max_values: Some(s.max_values),
                min_values: Some(s.min_values),
                options: (kind == SelectMenuType::Text).then_some(options),
                placeholder: s.placeholder.clone(),
                required: None,
            })
        }
        Widget::Raw(r) => {
            let custom_id = r.custom_id().unwrap_or_default().to_owned();
            let Some(json) = &r.discord else {
                return Err(RenderError::Raw { custom_id, reason: "it has no Discord part".into() });
            };
            match serde_json::from_value::<Component>(json.clone()) {
                Ok(Component::Unknown(kind)) => {
                    return Err(RenderError::Raw { custom_id, reason: format!("unknown component type {kind}") });
                }
                Ok(Component::ActionRow(_)) => {
                    return Err(RenderError::Raw { custom_id, reason: "an action row inside a row".into() });
                }
                Ok(component) => component,
                Err(e) => return Err(RenderError::Raw { custom_id, reason: e.to_string() }),
            }
        }
    })
}

/// A message as interaction response data (also the JSON body of a REST message
/// edit or follow-up): text, components (an empty list when there are no rows, which
/// removes a message's components on an edit), the ephemeral flag, no mentions.
///
/// # Errors
///
/// [`RenderError`] for a message Discord would refuse.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::message_data;
/// use bot_sessions::interactive::{Button, View};
///
/// let data = message_data(&View::text("value: 1").row([Button::new("+1", "m:s:inc")]))?;
/// let json = serde_json::to_value(&data).unwrap();
/// assert_eq!(json["content"], "value: 1");
/// assert_eq!(json["components"][0]["type"], 1);
/// assert_eq!(json["components"][0]["components"][0]["custom_id"], "m:s:inc");
///
/// let closed = serde_json::to_value(message_data(&View::text("final: 1"))?).unwrap();
/// assert_eq!(closed["components"], serde_json::json!([]));
/// # Ok::<(), bot_sessions::discord::RenderError>(())
/// ```
pub fn message_data(message: &View) -> Result<InteractionResponseData, RenderError> {
    check_len("the message text", &message.text, MAX_CONTENT)?;
    Ok(InteractionResponseData {
        allowed_mentions: Some(AllowedMentions::default()),
        components: Some(components(message)?),
        content: Some(message.text.clone()),
        embeds: Some(embeds(&message.embeds)?),
        flags: message.ephemeral.then_some(MessageFlags::EPHEMERAL),
        ..InteractionResponseData::default()
    })
}

/// A modal as interaction response data: each field a text input in its own row.
///
/// # Errors
///
/// [`RenderError`] for a modal Discord would refuse.
pub fn modal_data(modal: &Modal) -> Result<InteractionResponseData, RenderError> {
    check_len("the modal title", &modal.title, MAX_MODAL_TITLE)?;
    if modal.fields.is_empty() || modal.fields.len() > MAX_ROWS {
        return Err(RenderError::ModalFields { custom_id: modal.custom_id.clone(), count: modal.fields.len() });
    }
    let rows = modal
        .fields
        .iter()
        .map(|f| {
            check_len("a modal field label", &f.label, MAX_MODAL_TITLE)?;
            #[allow(deprecated)] // a label on the text input itself: what action rows need
            let input = TextInput {
                custom_id: f.id.clone(),
                id: None,
                label: Some(f.label.clone()),
                max_length: None,
                min_length: None,
                placeholder: f.placeholder.clone(),
                required: Some(f.required),
                style: if f.paragraph { TextInputStyle::Paragraph } else { TextInputStyle::Short },
                value: f.value.clone(),
            };
            Ok(Component::ActionRow(ActionRow { components: vec![Component::TextInput(input)], id: None }))
        })
        .collect::<Result<Vec<_>, RenderError>>()?;
    Ok(InteractionResponseData {
        components: Some(rows),
        custom_id: Some(modal.custom_id.clone()),
        title: Some(modal.title.clone()),
        ..InteractionResponseData::default()
    })
}

/// The interaction response showing `reply`:
///
/// | reply | on a component's message | otherwise (a command, a modal opened by one) |
/// | --- | --- | --- |
/// | [`Reply::Edit`] | `UPDATE_MESSAGE` (7): text and components replaced; no rows removes the components | `CHANNEL_MESSAGE_WITH_SOURCE` (4): there is no message to edit |
/// | [`Reply::Message`] | `CHANNEL_MESSAGE_WITH_SOURCE` (4), flag `EPHEMERAL` (64) when ephemeral | the same |
/// | [`Reply::Notice`] | `CHANNEL_MESSAGE_WITH_SOURCE` (4), ephemeral | the same |
/// | [`Reply::Modal`] | `MODAL` (9), each text field in an action row | the same |
///
/// `on_message`: whether the interaction comes from a component on a message (only
/// then can the response edit that message).
///
/// # Errors
///
/// [`RenderError`] for a reply Discord would refuse.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::interaction_response;
/// use bot_sessions::interactive::{View, Reply};
/// use twilight_model::http::interaction::InteractionResponseType;
///
/// let edit = interaction_response(&Reply::close("final: 3"), true)?;
/// assert_eq!(edit.kind, InteractionResponseType::UpdateMessage);
///
/// let notice = serde_json::to_value(interaction_response(&Reply::notice("not yours"), true)?).unwrap();
/// assert_eq!((notice["type"].as_u64(), notice["data"]["flags"].as_u64()), (Some(4), Some(64)));
/// # Ok::<(), bot_sessions::discord::RenderError>(())
/// ```
pub fn interaction_response(reply: &Reply, on_message: bool) -> Result<InteractionResponse, RenderError> {
    let (kind, data) = match reply {
        Reply::Edit(m) if on_message => {
            let mut data = message_data(m)?;
            data.flags = None; // an edit cannot change who sees the message
            (InteractionResponseType::UpdateMessage, data)
        }
        Reply::Edit(m) | Reply::Message(m) => (InteractionResponseType::ChannelMessageWithSource, message_data(m)?),
        Reply::Notice(text) => {
            (InteractionResponseType::ChannelMessageWithSource, message_data(&View::text(text.clone()).ephemeral())?)
        }
        Reply::Modal(modal) => (InteractionResponseType::Modal, modal_data(modal)?),
    };
    Ok(InteractionResponse { kind, data: Some(data) })
}

/// An ephemeral text message response (what outcomes no session answered get).
pub fn ephemeral(text: &str) -> InteractionResponse {
    let data = InteractionResponseData {
        allowed_mentions: Some(AllowedMentions::default()),
        content: Some(text.chars().take(MAX_CONTENT).collect()),
        flags: Some(MessageFlags::EPHEMERAL),
        ..InteractionResponseData::default()
    };
    InteractionResponse { kind: InteractionResponseType::ChannelMessageWithSource, data: Some(data) }
}

/// A response of `kind` without data (PONG, the deferred responses).
pub fn bare(kind: InteractionResponseType) -> InteractionResponse {
    InteractionResponse { kind, data: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactive::{Button, Select, SelectOption, TextField};

    #[test]
    fn limits_are_checked() {
        let six = (0..6).map(|i| Button::new("b", format!("c{i}"))).collect::<Vec<_>>();
        assert!(matches!(components(&View::text("x").row(six)), Err(RenderError::RowTooFull { row: 0, count: 6 })));
        let select = Select::new("s").option(SelectOption::new("a", "a"));
        let mixed = View::text("x").row([Widget::from(select.clone()), Button::new("b", "c").into()]);
        assert!(matches!(components(&mixed), Err(RenderError::RowTooFull { .. })));
        assert!(matches!(components(&View::text("x").row([Select::new("s")])), Err(RenderError::Options { .. })));
        let rows = (0..6).fold(View::text("x"), |m, i| m.row([Button::new("b", format!("c{i}"))]));
        assert!(matches!(components(&rows), Err(RenderError::TooManyRows { rows: 6 })));
        assert!(matches!(message_data(&View::text("x".repeat(2001))), Err(RenderError::TooLong { .. })));
        assert!(matches!(modal_data(&Modal::new("m", "t")), Err(RenderError::ModalFields { count: 0, .. })));
        let long = Modal::new("m", "t".repeat(46)).field(TextField::new("a", "A"));
        assert!(matches!(modal_data(&long), Err(RenderError::TooLong { .. })));
    }

    #[test]
    fn modal_fields_are_text_inputs_in_rows() {
        let modal = Modal::new("c:s:form", "Sign up")
            .field(TextField::new("name", "Name"))
            .field(TextField::new("about", "About").paragraph().optional().placeholder("…"));
        let json = serde_json::to_value(interaction_response(&Reply::modal(modal), false).unwrap()).unwrap();
        assert_eq!(json["type"], 9);
        assert_eq!(json["data"]["custom_id"], "c:s:form");
        assert_eq!(json["data"]["title"], "Sign up");
        let rows = json["data"]["components"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["type"], 1);
        assert_eq!(rows[0]["components"][0]["type"], 4);
        assert_eq!(rows[0]["components"][0]["custom_id"], "name");
        assert_eq!(rows[0]["components"][0]["style"], 1);
        assert_eq!(rows[1]["components"][0]["style"], 2);
        assert_eq!(rows[1]["components"][0]["required"], false);
    }
}
