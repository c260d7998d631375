//! The limit a custom id must fit: [`Target`] and the [`Unit`] it counts.

use std::fmt;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Unicode scalar values (`str::chars`).
    Chars,
    /// UTF-8 bytes.
    Bytes,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Chars => "characters",
            Unit::Bytes => "bytes",
        })
    }
}

/// Where custom ids go, which decides their length limit.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Target, Unit};
///
/// assert_eq!(Target::Discord.limit(), (100, Unit::Chars));
/// assert_eq!(Target::Telegram.limit(), (64, Unit::Bytes));
/// assert_eq!(Target::Telegram.measure("é"), 2);
/// assert_eq!(Target::Discord.measure("é"), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// Discord component and modal `custom_id`: 1 to 100 characters.
    Discord,
    /// Telegram inline keyboard `callback_data`: 1 to 64 bytes.
    Telegram,
    /// A limit of one's own.
    Custom {
        /// The largest accepted length.
        limit: usize,
        /// What it counts.
        unit: Unit,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Discord => f.write_str("Discord"),
            Target::Telegram => f.write_str("Telegram"),
            Target::Custom { .. } => f.write_str("custom"),
        }
    }
}

impl Target {
    /// The limit and what it counts.
    pub fn limit(self) -> (usize, Unit) {
        match self {
            Target::Discord => (100, Unit::Chars),
            Target::Telegram => (64, Unit::Bytes),
            Target::Custom { limit, unit } => (limit, unit),
        }
    }

    /// The length of `text` as this target counts it.
    pub fn measure(self, text: &str) -> usize {
        match self.limit().1 {
            Unit::Chars => text.chars().count(),
            Unit::Bytes => text.len(),
        }
    }
}
