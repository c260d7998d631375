//! `/count`: a data session per user in a chat (or forum topic).

use bot_sessions::{Context, SessionError};
use serde::{Deserialize, Serialize};

use super::{Bot, BotError};

/// The `/count` session: how often this user counted in this chat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// The count.
    pub n: u64,
}

impl Bot {
    pub(super) async fn count(&self, ctx: &Context) -> Result<String, BotError> {
        let key = self.counters.key(ctx)?;
        let n = self
            .counters
            .update(&key, |c| {
                c.n += 1;
                Ok::<_, SessionError>(c.n)
            })
            .await?;
        Ok(format!("count: {n}"))
    }
}
