//! The richer parts of a [`View`](super::View): embeds, emoji, link buttons, the
//! kinds of select menu and their defaults, and a raw per-platform component for what
//! the reply model does not cover.
//!
//! Each platform renders what it has and refuses the rest with a typed error before
//! anything is sent (nothing is dropped silently): Discord renders all of it;
//! Telegram shows link buttons as URL buttons and a Unicode emoji in front of a
//! button's label, and refuses embeds, custom emoji and raw components without a
//! Telegram part.

use serde_json::Value;

/// An emoji shown on a button or a select option.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::Emoji;
///
/// assert_eq!(Emoji::from("👍"), Emoji::Unicode("👍".into()));
/// let custom = Emoji::custom(41771983429993937, "LUL");
/// assert!(matches!(custom, Emoji::Custom { animated: false, .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Emoji {
    /// A Unicode emoji, such as `"👍"`.
    Unicode(String),
    /// A custom emoji of a Discord server (Discord only).
    Custom {
        /// Its id.
        id: u64,
        /// Its name.
        name: String,
        /// Whether it is animated.
        animated: bool,
    },
}

impl Emoji {
    /// A custom (server) emoji.
    pub fn custom(id: u64, name: impl Into<String>) -> Self {
        Emoji::Custom { id, name: name.into(), animated: false }
    }

    /// A custom emoji that is animated.
    pub fn animated(id: u64, name: impl Into<String>) -> Self {
        Emoji::Custom { id, name: name.into(), animated: true }
    }
}

impl From<&str> for Emoji {
    fn from(s: &str) -> Self {
        Emoji::Unicode(s.to_owned())
    }
}

impl From<String> for Emoji {
    fn from(s: String) -> Self {
        Emoji::Unicode(s)
    }
}

impl From<char> for Emoji {
    fn from(c: char) -> Self {
        Emoji::Unicode(c.to_string())
    }
}

/// An embed: a card under the message text, with a title, a description, fields and a
/// colour (Discord; Telegram has none and refuses it).
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Embed, View};
///
/// let message = View::text("").embed(
///     Embed::new().title("Poll").description("Lunch?").colour(0x5865F2).inline_field("yes", "3"),
/// );
/// assert_eq!(message.embeds[0].fields[0].name, "yes");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Embed {
    /// The title.
    pub title: Option<String>,
    /// The text under the title.
    pub description: Option<String>,
    /// Where the title links to.
    pub url: Option<String>,
    /// The colour of the bar on its left, as `0xRRGGBB`.
    pub colour: Option<u32>,
    /// Name and value pairs, top to bottom.
    pub fields: Vec<EmbedField>,
}

impl Embed {
    /// An empty embed.
    pub fn new() -> Self {
        Embed::default()
    }

    /// Sets the title.
    pub fn title(mut self, text: impl Into<String>) -> Self {
        self.title = Some(text.into());
        self
    }

    /// Sets the description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Makes the title a link.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the colour (`0xRRGGBB`).
    pub fn colour(mut self, rgb: u32) -> Self {
        self.colour = Some(rgb);
        self
    }

    /// Adds a field on a line of its own.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push(EmbedField { name: name.into(), value: value.into(), inline: false });
        self
    }

    /// Adds a field that may sit next to other inline fields.
    pub fn inline_field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push(EmbedField { name: name.into(), value: value.into(), inline: true });
        self
    }
}

/// One field of an [`Embed`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmbedField {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Whether it may sit next to other inline fields.
    pub inline: bool,
}

/// A button that opens a URL. Its click reaches no bot: it carries no custom id.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Button, LinkButton, View};
///
/// let message = View::text("docs").row([
///     Button::new("Again", "m:s:again").into(),
///     LinkButton::new("Open", "https://docs.rs/bot-sessions").emoji("📖").into(),
/// ] as [bot_sessions::interactive::Widget; 2]);
/// assert_eq!(message.custom_ids().collect::<Vec<_>>(), ["m:s:again"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkButton {
    /// What the button says.
    pub label: String,
    /// The URL it opens (`https://`, `http://`, or `discord://` on Discord).
    pub url: String,
    /// An emoji before the label.
    pub emoji: Option<Emoji>,
    /// Shown but not clickable (Discord; Telegram leaves the button out).
    pub disabled: bool,
}

impl LinkButton {
    /// A button labelled `label` opening `url`.
    pub fn new(label: impl Into<String>, url: impl Into<String>) -> Self {
        LinkButton { label: label.into(), url: url.into(), emoji: None, disabled: false }
    }

    /// Sets the emoji.
    pub fn emoji(mut self, emoji: impl Into<Emoji>) -> Self {
        self.emoji = Some(emoji.into());
        self
    }

    /// Disables it.
    pub fn disabled(mut self) -> Self {
        self.disabled = true;
        self
    }
}

/// What a [`Select`](super::Select) offers: its own options, or Discord's users,
/// roles, both, or channels (filled in by Discord; the chosen ids come back in
/// [`Context::values`](crate::Context::values)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SelectKind {
    /// The select's own [`options`](super::Select::options).
    #[default]
    Text,
    /// The server's members.
    User,
    /// The server's roles.
    Role,
    /// Members and roles.
    Mentionable,
    /// Channels, of the given Discord channel types only (all when empty; 0 is a
    /// text channel, 2 voice, 5 announcement, 11 a public thread, 15 a forum...).
    Channel {
        /// The channel types offered.
        types: Vec<u8>,
    },
}

/// A value shown as already chosen in a user, role, mentionable or channel select (a
/// text select marks its options instead: [`SelectOption::selected`](super::SelectOption::selected)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectDefault {
    /// A user (user and mentionable selects).
    User(u64),
    /// A role (role and mentionable selects).
    Role(u64),
    /// A channel (channel selects).
    Channel(u64),
}

/// A component given as the platform's own JSON, for what the reply model does not
/// cover: a Discord component object placed in the row as is, a Telegram
/// `InlineKeyboardButton` (a `pay`, `web_app`, `login_url` or `switch_inline_query`
/// button...). A platform without its part refuses the message.
///
/// A custom id in it (Discord's `custom_id`, Telegram's `callback_data`) routes like
/// any other.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{View, Raw};
/// use serde_json::json;
///
/// let premium = Raw::discord(json!({"type": 2, "style": 6, "sku_id": "1180218955160375406"}))
///     .telegram(json!({"text": "Buy", "pay": true}));
/// let message = View::text("support us").row([premium]);
/// assert_eq!(message.custom_ids().count(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Raw {
    /// The Discord component object.
    pub discord: Option<Value>,
    /// The Telegram `InlineKeyboardButton` object.
    pub telegram: Option<Value>,
}

impl Raw {
    /// A component for Discord only.
    pub fn discord(json: Value) -> Self {
        Raw { discord: Some(json), telegram: None }
    }

    /// Sets the Telegram part (a Telegram-only component: `Raw::default().telegram(..)`).
    pub fn telegram(mut self, json: Value) -> Self {
        self.telegram = Some(json);
        self
    }

    /// Sets the Discord part.
    pub fn with_discord(mut self, json: Value) -> Self {
        self.discord = Some(json);
        self
    }

    /// The custom id it carries, if any (Discord's `custom_id`, else Telegram's
    /// `callback_data`).
    pub fn custom_id(&self) -> Option<&str> {
        let discord = self.discord.as_ref().and_then(|v| v.get("custom_id")).and_then(Value::as_str);
        discord.or_else(|| self.telegram.as_ref().and_then(|v| v.get("callback_data")).and_then(Value::as_str))
    }
}
