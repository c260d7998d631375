//! The bot's settings.

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::encryption::KeyRing;
use bot_sessions::{Clock, KeyStrategy, SystemClock};

/// How long an onboarding form lives without an answer, unless configured.
pub const DEFAULT_ONBOARDING_TTL: Duration = Duration::from_secs(30 * 60);

/// How long a `/menu` lives without a click, unless configured.
pub const DEFAULT_MENU_TTL: Duration = Duration::from_secs(60);

/// Settings of a [`Bot`](crate::bot::Bot).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BotConfig {
    /// How the per-conversation sessions (`/count`, `/onboard`) are keyed:
    /// [`KeyStrategy::ChatUser`] (the default, one per user in a chat) or
    /// [`KeyStrategy::TopicOrChatUser`] (one per user in each forum topic, else in the
    /// chat: what the Telegram transport uses). The profile is always per user.
    pub key: KeyStrategy,
    /// How long an onboarding form lives without an answer.
    pub onboarding_ttl: Duration,
    /// How long a `/menu` lives without a click.
    pub menu_ttl: Duration,
    /// How often to look for expired menus in the background (`None`: only when
    /// [`Bot::expire`](crate::bot::Bot::expire) is called, as tests with a manual clock do).
    pub sweep_every: Option<Duration>,
    /// Where "now" comes from (tests pass a [`ManualClock`](bot_sessions::ManualClock)).
    pub clock: Arc<dyn Clock>,
    /// Seals what the bot stores at rest (`BOT_SESSIONS_KEYS`): the menu signing key,
    /// every session's value, the menus' state and the Discord message records (which
    /// hold 15-minute interaction tokens). Without it they are stored in clear; keys,
    /// versions, times and the user index always are.
    pub keys: Option<Arc<KeyRing>>,
}

impl Default for BotConfig {
    fn default() -> Self {
        BotConfig {
            key: KeyStrategy::ChatUser,
            onboarding_ttl: DEFAULT_ONBOARDING_TTL,
            menu_ttl: DEFAULT_MENU_TTL,
            sweep_every: None,
            clock: Arc::new(SystemClock),
            keys: None,
        }
    }
}

impl BotConfig {
    /// Sets [`BotConfig::key`].
    pub fn key(mut self, key: KeyStrategy) -> Self {
        self.key = key;
        self
    }

    /// Sets [`BotConfig::onboarding_ttl`].
    pub fn onboarding_ttl(mut self, ttl: Duration) -> Self {
        self.onboarding_ttl = ttl;
        self
    }

    /// Sets [`BotConfig::menu_ttl`].
    pub fn menu_ttl(mut self, ttl: Duration) -> Self {
        self.menu_ttl = ttl;
        self
    }

    /// Sets [`BotConfig::sweep_every`].
    pub fn sweep_every(mut self, period: Option<Duration>) -> Self {
        self.sweep_every = period;
        self
    }

    /// Sets [`BotConfig::clock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`BotConfig::keys`].
    pub fn keys(mut self, keys: Option<KeyRing>) -> Self {
        self.keys = keys.map(Arc::new);
        self
    }
}
