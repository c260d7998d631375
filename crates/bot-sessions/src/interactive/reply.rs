//! The platform-neutral reply an interactive session gives: what to show the user, as
//! a new message, an edit of the session's message, an ephemeral message, a notice, or
//! a modal. Platform adapters turn it into API calls (Telegram `sendMessage`,
//! `editMessageText`, `answerCallbackQuery`; Discord interaction responses); the
//! [`Display`](std::fmt::Display) form is a plain-text rendering for consoles and logs.

use std::fmt;

use super::rich::{Embed, Emoji, LinkButton, Raw, SelectDefault, SelectKind};

/// What a session answers an update with.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Button, Reply, Select, SelectOption, View};
///
/// let reply = Reply::edit(
///     View::text("value: 3")
///         .row([Button::new("-1", "m:abc:dec"), Button::new("+1", "m:abc:inc")])
///         .row([Select::new("m:abc:size").option(SelectOption::new("Large", "l"))]),
/// );
/// assert_eq!(reply.to_string(), "value: 3\n[-1] m:abc:dec\n[+1] m:abc:inc\n{select} m:abc:size: Large=l");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// Send a new message (in the chat or channel of the update).
    Message(View),
    /// Replace the text and components of the session's message. A message without
    /// rows removes the components.
    Edit(View),
    /// A short text only the user who clicked sees (Telegram: the callback answer's
    /// text; Discord: an ephemeral message).
    Notice(String),
    /// Open a modal (Discord) asking for text fields; its submit routes back to the
    /// session with [`ComponentKind::ModalSubmit`](crate::ComponentKind::ModalSubmit).
    Modal(Modal),
}

impl Reply {
    /// A new message.
    pub fn message(message: View) -> Self {
        Reply::Message(message)
    }

    /// An edit of the session's message.
    pub fn edit(message: View) -> Self {
        Reply::Edit(message)
    }

    /// An edit of the session's message to `text`, without components.
    pub fn close(text: impl Into<String>) -> Self {
        Reply::Edit(View::text(text))
    }

    /// A notice to the clicking user.
    pub fn notice(text: impl Into<String>) -> Self {
        Reply::Notice(text.into())
    }

    /// A modal.
    pub fn modal(modal: Modal) -> Self {
        Reply::Modal(modal)
    }

    /// The message this reply shows, if it shows one.
    pub fn as_message(&self) -> Option<&View> {
        match self {
            Reply::Message(m) | Reply::Edit(m) => Some(m),
            Reply::Notice(_) | Reply::Modal(_) => None,
        }
    }
}

/// What a message shows: text, embeds and rows of components (formerly `Message`,
/// renamed so that it does not clash with teloxide's and serenity's `Message` under a
/// glob import).
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Button, View};
///
/// let view = View::text("value: 0").row([Button::new("+1", "m:abc:inc")]);
/// assert_eq!(view.to_string(), "value: 0\n[+1] m:abc:inc");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct View {
    /// The text.
    pub text: String,
    /// Rows of components, top to bottom (Discord: action rows, at most 5; Telegram:
    /// inline keyboard rows).
    pub rows: Vec<Vec<Widget>>,
    /// Only the user who caused the update sees it (Discord's ephemeral flag; Telegram
    /// has none and sends it normally).
    pub ephemeral: bool,
    /// Embeds under the text (Discord, at most 10; Telegram refuses them). An edit
    /// replaces the message's embeds with these.
    pub embeds: Vec<Embed>,
}

impl View {
    /// A message with `text` and no components.
    pub fn text(text: impl Into<String>) -> Self {
        View { text: text.into(), rows: Vec::new(), ephemeral: false, embeds: Vec::new() }
    }

    /// Adds a row of components.
    pub fn row<W: Into<Widget>>(mut self, row: impl IntoIterator<Item = W>) -> Self {
        self.rows.push(row.into_iter().map(Into::into).collect());
        self
    }

    /// Makes it ephemeral.
    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }

    /// Adds an embed.
    pub fn embed(mut self, embed: Embed) -> Self {
        self.embeds.push(embed);
        self
    }

    /// Every custom id the message carries, row by row (link buttons and raw
    /// components without one carry none).
    pub fn custom_ids(&self) -> impl Iterator<Item = &str> {
        self.rows.iter().flatten().filter_map(Widget::id)
    }
}

/// The old name of [`View`], kept for one release.
#[deprecated(note = "renamed to `View` (no clash with teloxide's or serenity's `Message`)")]
pub type Message = View;

/// One component in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Widget {
    /// A button.
    Button(Button),
    /// A select menu.
    Select(Select),
    /// A button opening a URL.
    Link(LinkButton),
    /// A platform's own component.
    Raw(Raw),
}

impl Widget {
    /// The component's custom id (empty for a link button, or a raw component
    /// without one: see [`id`](Self::id)).
    pub fn custom_id(&self) -> &str {
        self.id().unwrap_or_default()
    }

    /// The component's custom id, if it carries one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Widget::Button(b) => Some(&b.custom_id),
            Widget::Select(s) => Some(&s.custom_id),
            Widget::Link(_) => None,
            Widget::Raw(r) => r.custom_id(),
        }
    }
}

impl From<LinkButton> for Widget {
    fn from(b: LinkButton) -> Self {
        Widget::Link(b)
    }
}

impl From<Raw> for Widget {
    fn from(r: Raw) -> Self {
        Widget::Raw(r)
    }
}

impl From<Button> for Widget {
    fn from(b: Button) -> Self {
        Widget::Button(b)
    }
}

impl From<Select> for Widget {
    fn from(s: Select) -> Self {
        Widget::Select(s)
    }
}

/// How a button looks (Discord's styles; Telegram has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ButtonStyle {
    /// The main action.
    Primary,
    /// A neutral action.
    #[default]
    Secondary,
    /// A confirming action.
    Success,
    /// A destructive action.
    Danger,
}

/// A button whose click routes back with its custom id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Button {
    /// What the button says.
    pub label: String,
    /// The custom id (Discord) or callback data (Telegram) it carries.
    pub custom_id: String,
    /// Its style.
    pub style: ButtonStyle,
    /// Shown but not clickable (Discord; Telegram leaves the button out).
    pub disabled: bool,
    /// An emoji before the label.
    pub emoji: Option<Emoji>,
}

impl Button {
    /// A button labelled `label` carrying `custom_id`.
    pub fn new(label: impl Into<String>, custom_id: impl Into<String>) -> Self {
        Button {
            label: label.into(),
            custom_id: custom_id.into(),
            style: ButtonStyle::default(),
            disabled: false,
            emoji: None,
        }
    }

    /// Sets the emoji (a `&str` or `char` is a Unicode emoji).
    pub fn emoji(mut self, emoji: impl Into<Emoji>) -> Self {
        self.emoji = Some(emoji.into());
        self
    }

    /// Sets the style.
    pub fn style(mut self, style: ButtonStyle) -> Self {
        self.style = style;
        self
    }

    /// Disables it.
    pub fn disabled(mut self) -> Self {
        self.disabled = true;
        self
    }
}

/// A select menu: the chosen values come back in
/// [`Context::values`](crate::Context::values).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Select {
    /// The custom id it carries.
    pub custom_id: String,
    /// Shown while nothing is chosen.
    pub placeholder: Option<String>,
    /// The choices.
    pub options: Vec<SelectOption>,
    /// Fewest choices (default 1).
    pub min_values: u8,
    /// Most choices (default 1).
    pub max_values: u8,
    /// What it offers: its options (the default), or users, roles, channels.
    pub kind: SelectKind,
    /// What a user, role, mentionable or channel select shows as already chosen.
    pub defaults: Vec<SelectDefault>,
    /// Shown but not usable.
    pub disabled: bool,
}

impl Select {
    /// An empty menu carrying `custom_id`.
    pub fn new(custom_id: impl Into<String>) -> Self {
        Select {
            custom_id: custom_id.into(),
            placeholder: None,
            options: Vec::new(),
            min_values: 1,
            max_values: 1,
            kind: SelectKind::Text,
            defaults: Vec::new(),
            disabled: false,
        }
    }

    /// A menu of the server's members (Discord); the chosen user ids come back.
    pub fn users(custom_id: impl Into<String>) -> Self {
        Select { kind: SelectKind::User, ..Select::new(custom_id) }
    }

    /// A menu of the server's roles (Discord).
    pub fn roles(custom_id: impl Into<String>) -> Self {
        Select { kind: SelectKind::Role, ..Select::new(custom_id) }
    }

    /// A menu of members and roles (Discord).
    pub fn mentionables(custom_id: impl Into<String>) -> Self {
        Select { kind: SelectKind::Mentionable, ..Select::new(custom_id) }
    }

    /// A menu of channels of the given Discord channel types (all when empty).
    pub fn channels(custom_id: impl Into<String>, types: impl IntoIterator<Item = u8>) -> Self {
        Select { kind: SelectKind::Channel { types: types.into_iter().collect() }, ..Select::new(custom_id) }
    }

    /// Shows `value` as already chosen (user, role, mentionable and channel selects).
    pub fn default_value(mut self, value: SelectDefault) -> Self {
        self.defaults.push(value);
        self
    }

    /// Disables it.
    pub fn disabled(mut self) -> Self {
        self.disabled = true;
        self
    }

    /// Adds a choice.
    pub fn option(mut self, option: SelectOption) -> Self {
        self.options.push(option);
        self
    }

    /// Sets the placeholder.
    pub fn placeholder(mut self, text: impl Into<String>) -> Self {
        self.placeholder = Some(text.into());
        self
    }

    /// Sets how many choices may be made.
    pub fn choices(mut self, min: u8, max: u8) -> Self {
        self.min_values = min;
        self.max_values = max.max(min);
        self
    }
}

/// One choice of a [`Select`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SelectOption {
    /// What the user sees.
    pub label: String,
    /// What comes back when chosen.
    pub value: String,
    /// A second line of text.
    pub description: Option<String>,
    /// An emoji before the label.
    pub emoji: Option<Emoji>,
    /// Shown as already chosen (Discord's `default`: the user's current choice).
    pub selected: bool,
}

impl SelectOption {
    /// A choice showing `label` and returning `value`.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        SelectOption { label: label.into(), value: value.into(), description: None, emoji: None, selected: false }
    }

    /// Sets the emoji.
    pub fn emoji(mut self, emoji: impl Into<Emoji>) -> Self {
        self.emoji = Some(emoji.into());
        self
    }

    /// Shows it as already chosen.
    pub fn selected(mut self) -> Self {
        self.selected = true;
        self
    }

    /// Sets the description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }
}

/// A modal: a form of text fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Modal {
    /// The custom id its submit carries.
    pub custom_id: String,
    /// The title.
    pub title: String,
    /// The fields, top to bottom (Discord: at most 5).
    pub fields: Vec<TextField>,
}

impl Modal {
    /// A modal titled `title` whose submit carries `custom_id`.
    pub fn new(custom_id: impl Into<String>, title: impl Into<String>) -> Self {
        Modal { custom_id: custom_id.into(), title: title.into(), fields: Vec::new() }
    }

    /// Adds a field.
    pub fn field(mut self, field: TextField) -> Self {
        self.fields.push(field);
        self
    }
}

/// One text field of a [`Modal`]; its text comes back under `id` in
/// [`Context::field`](crate::Context::field).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TextField {
    /// The field's id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Several lines instead of one.
    pub paragraph: bool,
    /// Whether it must be filled.
    pub required: bool,
    /// Shown while empty.
    pub placeholder: Option<String>,
    /// Pre-filled text.
    pub value: Option<String>,
}

impl TextField {
    /// A required one-line field.
    pub fn new(id: impl Into<String>, label: impl Into<String>) -> Self {
        TextField {
            id: id.into(),
            label: label.into(),
            paragraph: false,
            required: true,
            placeholder: None,
            value: None,
        }
    }

    /// Makes it several lines.
    pub fn paragraph(mut self) -> Self {
        self.paragraph = true;
        self
    }

    /// Makes it optional.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Sets the placeholder.
    pub fn placeholder(mut self, text: impl Into<String>) -> Self {
        self.placeholder = Some(text.into());
        self
    }

    /// Pre-fills it.
    pub fn value(mut self, text: impl Into<String>) -> Self {
        self.value = Some(text.into());
        self
    }
}

/// Plain text: the message text, then one line per embed (`{embed} title: description`,
/// then `  name: value` per field), then one line per component, row by row: a button as
/// `[label] <custom id>`, a link button as `[label](url)`, a select as
/// `{select} <custom id>: label=value, ...` (`{select users} <custom id>` and so on for
/// the other kinds), a raw component as `{raw} <custom id>`;
/// a notice as `(notice) text`; a modal as its title and one `<field id>: label` line
/// per field.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Message(m) | Reply::Edit(m) => write!(f, "{m}"),
            Reply::Notice(text) => write!(f, "(notice) {text}"),
            Reply::Modal(modal) => {
                write!(f, "{{modal}} {} <{}>", modal.title, modal.custom_id)?;
                for field in &modal.fields {
                    write!(f, "\n  {}: {}", field.id, field.label)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        for embed in &self.embeds {
            let title = embed.title.as_deref().unwrap_or_default();
            write!(f, "\n{{embed}} {title}: {}", embed.description.as_deref().unwrap_or_default())?;
            for field in &embed.fields {
                write!(f, "\n  {}: {}", field.name, field.value)?;
            }
        }
        for widget in self.rows.iter().flatten() {
            f.write_str("\n")?;
            match widget {
                Widget::Button(b) => write!(f, "[{}] {}", b.label, b.custom_id)?,
                Widget::Link(b) => write!(f, "[{}]({})", b.label, b.url)?,
                Widget::Raw(r) => write!(f, "{{raw}} {}", r.custom_id().unwrap_or_default())?,
                Widget::Select(s) if s.kind != SelectKind::Text => {
                    let kind = match s.kind {
                        SelectKind::User => "users",
                        SelectKind::Role => "roles",
                        SelectKind::Mentionable => "mentionables",
                        _ => "channels",
                    };
                    write!(f, "{{select {kind}}} {}", s.custom_id)?;
                }
                Widget::Select(s) => {
                    write!(f, "{{select}} {}:", s.custom_id)?;
                    for (j, o) in s.options.iter().enumerate() {
                        write!(f, "{} {}={}", if j > 0 { "," } else { "" }, o.label, o.value)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_buttons_selects_and_modals() {
        let menu = View::text("value: 0").row([
            Button::new("-1", "c:s:dec").style(ButtonStyle::Danger),
            Button::new("+1", "c:s:inc"),
            Button::new("Done", "c:s:done").style(ButtonStyle::Success),
        ]);
        assert_eq!(Reply::edit(menu.clone()).to_string(), "value: 0\n[-1] c:s:dec\n[+1] c:s:inc\n[Done] c:s:done");
        assert_eq!(menu.custom_ids().collect::<Vec<_>>(), ["c:s:dec", "c:s:inc", "c:s:done"]);

        let pick = View::text("size?").row([Select::new("c:s:size")
            .placeholder("choose")
            .choices(1, 2)
            .option(SelectOption::new("Small", "s"))
            .option(SelectOption::new("Large", "l").description("for two"))]);
        assert_eq!(Reply::message(pick).to_string(), "size?\n{select} c:s:size: Small=s, Large=l");

        let form = Modal::new("c:s:form", "Sign up")
            .field(TextField::new("name", "Name"))
            .field(TextField::new("about", "About you").paragraph().optional());
        assert_eq!(Reply::modal(form).to_string(), "{modal} Sign up <c:s:form>\n  name: Name\n  about: About you");
        assert_eq!(Reply::notice("not yours").to_string(), "(notice) not yours");
        assert_eq!(Reply::close("final: 3").to_string(), "final: 3");
    }
}
