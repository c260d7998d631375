//! The profile a user keeps across chats: what `/confirm` saves (name, email) and the
//! value of their last finished `/menu`. Apart from [`bot`](crate::bot) so that the
//! session kinds ([`menu`](crate::menu), the onboarding conversation) and the bot that
//! registers them import it from below, not from each other.

use serde::{Deserialize, Serialize};

/// What `/confirm` (name, email) and a finished `/menu` (its value) keep, per user
/// across chats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The user's name (empty until `/confirm`).
    pub name: String,
    /// The user's email (empty until `/confirm`).
    pub email: String,
    /// The value of the user's last finished `/menu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu: Option<i64>,
}
