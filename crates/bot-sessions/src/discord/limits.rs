//! Discord's limits on what a message or modal holds, and [`RenderError`], what a reply
//! breaking them (or otherwise refused by Discord) is.

/// Most action rows in a message (and fields in a modal).
pub const MAX_ROWS: usize = 5;
/// Most buttons in one action row.
pub const MAX_BUTTONS_PER_ROW: usize = 5;
/// Most options in a select menu.
pub const MAX_OPTIONS: usize = 25;
/// Most characters of a message's text.
pub const MAX_CONTENT: usize = 2000;
/// Most characters of a modal's title.
pub const MAX_MODAL_TITLE: usize = 45;

/// A reply Discord would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// More than [`MAX_ROWS`] rows.
    #[error("{rows} rows of components; Discord allows {MAX_ROWS}")]
    TooManyRows {
        /// How many there are.
        rows: usize,
    },
    /// A row with more than [`MAX_BUTTONS_PER_ROW`] buttons, or a select next to
    /// something else.
    #[error("row {row} holds {count} components; a row holds up to 5 buttons or one select menu")]
    RowTooFull {
        /// The row (from 0).
        row: usize,
        /// How many components it holds.
        count: usize,
    },
    /// An empty row.
    #[error("row {row} is empty")]
    EmptyRow {
        /// The row (from 0).
        row: usize,
    },
    /// A select with more than [`MAX_OPTIONS`] options (or none).
    #[error("select menu `{custom_id}` has {count} options; Discord allows 1 to {MAX_OPTIONS}")]
    Options {
        /// The select's custom id.
        custom_id: String,
        /// How many options it has.
        count: usize,
    },
    /// Text over its limit.
    #[error("{what} is {len} characters; Discord allows {max}")]
    TooLong {
        /// Which text.
        what: &'static str,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A modal without fields or with more than [`MAX_ROWS`].
    #[error("modal `{custom_id}` has {count} fields; Discord allows 1 to {MAX_ROWS}")]
    ModalFields {
        /// The modal's custom id.
        custom_id: String,
        /// How many fields it has.
        count: usize,
    },
    /// More than [`MAX_EMBEDS`](crate::discord::MAX_EMBEDS) embeds, or an embed with
    /// more than 25 fields.
    #[error("{what}: {count}; Discord allows {max}")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// How many there are.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An embed Discord would refuse for another reason than a length.
    #[error("embed: {reason}")]
    Embed {
        /// What is wrong.
        reason: &'static str,
    },
    /// A link button whose URL is not `http://`, `https://` or `discord://`.
    #[error("link button `{label}`: `{url}` is not an http, https or discord URL")]
    Url {
        /// The button's label.
        label: String,
        /// The URL.
        url: String,
    },
    /// A select's defaults that its kind does not take (options on a user select,
    /// a role shown in a channel select...) or more of them than it lets be chosen.
    #[error("select menu `{custom_id}`: {reason}")]
    Select {
        /// The select's custom id.
        custom_id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An id of 0 (a custom emoji's, a select default's): Discord ids are never 0.
    #[error("{what} has the id 0")]
    ZeroId {
        /// Whose id.
        what: &'static str,
    },
    /// A raw component without a part for this platform, or whose JSON this platform's
    /// library cannot carry.
    #[error("raw component `{custom_id}`: {reason}")]
    Raw {
        /// Its custom id (empty when it has none).
        custom_id: String,
        /// What is wrong.
        reason: String,
    },
}

pub(crate) fn check_len(what: &'static str, text: &str, max: usize) -> Result<(), RenderError> {
    let len = text.chars().count();
    if len > max { Err(RenderError::TooLong { what, len, max }) } else { Ok(()) }
}
