//! The demo bot's logic, free of any transport: give it the [`Context`] of an update
//! and the message text (or the click), get platform-neutral [`Reply`]s back. The
//! console transport ([`crate::console`]), the Telegram transport
//! ([`crate::telegram`]) and the Discord transport ([`crate::discord`]) run the very
//! same [`Bot`].
//!
//! Onboarding comes in two shapes: question by question in plain messages, as one
//! conversation ([`onboard`]: `/onboard`, the answers, `/confirm` or its Confirm
//! button), or, where a transport has forms, as one [`onboarding_modal`] whose submit
//! ([`Bot::submit_onboarding`]) saves the profile, or asks to confirm before it
//! replaces a different saved one (an [`Onboarding`] data session holds that form;
//! [`Bot::onboarding_button`] takes the answer).
//!
//! Three data session types and two interactive session kinds, each with its own
//! namespace, key and TTL:
//!
//! | session | namespace | key | TTL |
//! | --- | --- | --- | --- |
//! | [`Counter`] | `counter` | [`BotConfig::key`]: user in chat, or in forum topic | none |
//! | [`Onboarding`] (the modal's confirm step) | `onboarding` | [`BotConfig::key`] | idle, `--onboarding-ttl` (30 min) |
//! | [`Profile`] | `profile` | user (across chats) | none |
//! | `/menu` ([`crate::menu`]) | `interactive` | its own id (indexed by its opener) | idle, `--menu-ttl` (60 s) |
//! | `/onboard` ([`onboard`]) | `interactive` | its own id; its opener's next message by chat, topic and user | idle, `--onboarding-ttl` |

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::interactive::{
    CustomIdCodec, EndEvent, InteractiveError, Kind, Manager, Reply, RouteOutcome, SessionId, SigningKeys, Sweeper,
    Target, View,
};
use bot_sessions::session::{Expired, ExpirySweeper};
use bot_sessions::{Clock, Context, DynStore, KeyStrategy, Scope, SessionError, Sessions, StoreError, Ttl};
use tokio::sync::broadcast;

use crate::menu::{KIND, Menu};
use onboard::Onboard;
use secret::{sealed, signing_secret};

mod config;
mod count;
mod modal;
pub mod onboard;
mod profile;
mod secret;

pub use crate::profile::Profile;
pub use config::{BotConfig, DEFAULT_MENU_TTL, DEFAULT_ONBOARDING_TTL};
pub use count::Counter;
pub use modal::{
    EMAIL_FIELD, NAME_FIELD, ONBOARD_CANCEL, ONBOARD_CONFIRM, ONBOARD_MODAL, Onboarding, Step, onboarding_modal,
};

/// The answer to a click on someone else's menu.
pub const NOT_YOURS: &str = "not yours: only who opened this menu can use it";

/// The answer to a click on a menu that ended, expired or is unknown.
pub const EXPIRED: &str = "expired: this menu is over; /menu opens a new one";

/// The answer to a click whose custom id was forged or edited.
pub const REFUSED: &str = "refused: this button was forged or edited";

/// The answer to a click on a button that is none of the bot's menus.
pub const NOT_MINE: &str = "that button is not one of mine";

/// What can go wrong answering an update.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// Loading or saving a session failed (a store outage, a record that does not
    /// decode, an update without a user).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A store operation outside a session failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Starting or routing an interactive session failed.
    #[error(transparent)]
    Interactive(#[from] InteractiveError),
    /// The update has no user, and every command here is per user.
    #[error("this update has no user; the demo only answers users")]
    NoUser,
}

/// The help text, one command per line.
pub const HELP: &[&str] = &[
    "commands:",
    "/count    count up (per user in this chat)",
    "/onboard  fill in your name and email",
    "/confirm  save the onboarding form as your profile",
    "/cancel   drop the onboarding form",
    "/menu     a value with -1, +1, Set and Done buttons",
    "/profile  show your saved profile",
    "/forget   delete everything stored about you",
    "/help     this list",
];

/// The demo bot. Share it between transports behind an `Arc`.
pub struct Bot {
    store: DynStore,
    clock: Arc<dyn Clock>,
    counters: Sessions<Counter>,
    onboarding: Sessions<Onboarding>,
    profiles: Sessions<Profile>,
    menus: Manager,
    menu: Kind<Menu>,
    onboard: Kind<Onboard>,
    notices: broadcast::Sender<Notice>,
    _sweepers: Option<(Sweeper, ExpirySweeper)>,
}

/// Something the bot says by itself (not in answer to an update): to `user` in `chat`
/// (and forum `topic`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notice {
    /// Who it is for.
    pub user: i64,
    /// Where.
    pub chat: i64,
    /// The forum topic, when the session was kept per topic.
    pub topic: Option<i64>,
    /// What.
    pub reply: Reply,
}

/// One reply to a message, and the menu it shows if it opened one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outgoing {
    /// What to send.
    pub reply: Reply,
    /// The menu this reply shows, if the message opened one: once the transport has
    /// sent the reply and learnt its message id, [`Bot::menu_sent`] records it, so that
    /// the menu's expiry can edit that message.
    pub menu: Option<SessionId>,
}

impl Outgoing {
    /// A reply that opens no menu.
    pub fn reply(reply: Reply) -> Self {
        Outgoing { reply, menu: None }
    }
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("counters", &self.counters)
            .field("onboarding", &self.onboarding)
            .field("profiles", &self.profiles)
            .finish_non_exhaustive()
    }
}

impl Bot {
    /// A bot keeping its sessions in `store`. The key that signs the menus' buttons is
    /// kept in the store too (created on first start), so every process sharing the
    /// store accepts the others' buttons, and a restart keeps them valid.
    ///
    /// # Errors
    ///
    /// A [`SessionError::Config`] for a zero TTL; store errors reading the signing key.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Context};
    /// use bot_sessions_demo::bot::{Bot, BotConfig};
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let bot = Bot::new(Arc::new(MemoryStore::new()), BotConfig::default()).await?;
    /// let reply = bot.handle(&Context::new().chat(1).user(1), "/count").await?;
    /// assert_eq!(reply[0].to_string(), "count: 1");
    /// # Ok::<(), bot_sessions_demo::bot::BotError>(())
    /// # }).unwrap();
    /// ```
    pub async fn new(store: DynStore, config: BotConfig) -> Result<Self, BotError> {
        if config.onboarding_ttl.is_zero() || config.menu_ttl.is_zero() {
            return Err(SessionError::Config("the onboarding and menu TTLs must be above zero".into()).into());
        }
        let clock = config.clock;
        let at_rest = config.keys;
        let counters = sealed(Sessions::builder(store.clone()), &at_rest)
            .namespace("counter")
            .key(config.key.clone())
            .clock(clock.clone())
            .build()?;
        let (notices, _) = broadcast::channel(256);
        let tell = notices.clone();
        let expired_text = onboard::expired_text(config.onboarding_ttl);
        let onboarding = sealed(Sessions::builder(store.clone()), &at_rest)
            .namespace("onboarding")
            .key(config.key.clone())
            .ttl(Ttl::idle(config.onboarding_ttl))
            .clock(clock.clone())
            // Runs once per expired form, in whichever process finds it first.
            .on_expire(move |expired: Expired<Onboarding>| {
                let (tell, text) = (tell.clone(), expired_text.clone());
                async move {
                    let (chat, topic, user) = match *expired.key.scope() {
                        Scope::ChatUser { chat, user } => (chat, None, user),
                        Scope::TopicUser { chat, topic, user } => (chat, Some(topic), user),
                        _ => return,
                    };
                    let _ = tell.send(Notice { user, chat, topic, reply: Reply::message(View::text(text)) });
                }
            })
            .build()?;
        let profiles = sealed(Sessions::builder(store.clone()), &at_rest)
            .namespace("profile")
            .key(KeyStrategy::User)
            .clock(clock.clone())
            .build()?;
        let secret = signing_secret(&store, clock.as_ref(), at_rest.as_deref()).await?;
        let keys = SigningKeys::new([secret]).map_err(|e| SessionError::Config(e.to_string()))?;
        // Telegram's 64-byte callback data is the tightest limit: ids that fit it fit
        // every transport.
        let codec =
            CustomIdCodec::new("m", Target::Telegram).map_err(|e| SessionError::Config(e.to_string()))?.signed(keys);
        let mut menus = Manager::builder(store.clone(), codec).clock(clock.clone());
        if let Some(ring) = &at_rest {
            // Sealed: the menus' state, and the Discord message records (interaction
            // tokens) the endpoint keeps with the manager's ring.
            menus = menus.encryption(ring.clone());
        }
        let menus = menus.build()?;
        let menu = menus.register(KIND, Menu { ttl: Ttl::idle(config.menu_ttl), profiles: profiles.clone() })?;
        let onboard = menus.register(
            onboard::KIND,
            Onboard { ttl: config.onboarding_ttl, profiles: profiles.clone(), notices: notices.clone() },
        )?;
        let sweepers = match config.sweep_every {
            Some(period) => Some((menus.spawn_sweeper(period, 10)?, onboarding.spawn_sweeper(period)?)),
            None => None,
        };
        Ok(Bot { store, clock, counters, onboarding, profiles, menus, menu, onboard, notices, _sweepers: sweepers })
    }

    /// What the bot says by itself: an onboarding form that expired while it ran.
    pub fn subscribe_notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// The end of every menu this bot ends (by Done, expiry or shutdown): transports
    /// show [`EndEvent::reply`] for ends that no click answered (an expiry edits the
    /// menu's message to say `expired`).
    pub fn subscribe_ends(&self) -> broadcast::Receiver<EndEvent> {
        self.menus.subscribe()
    }

    /// Ends the menus and onboarding forms that expired by now (what the background
    /// sweepers do); returns how many ended here.
    ///
    /// # Errors
    ///
    /// Store errors scanning for expired sessions.
    pub async fn expire(&self) -> Result<u64, BotError> {
        let now = self.clock.now();
        let mut n = self.menus.expire_due(now).await.expired;
        n += self.menus.expire_scan(now).await?.expired;
        n += self.onboarding.sweep_expired(now).await?.expired;
        Ok(n)
    }

    /// Stops taking clicks; open menus stay in the store for a restart or another
    /// process.
    pub fn detach(&self) {
        self.menus.shutdown_detached();
    }

    /// Starts what runs beside the handlers, for every transport: the sweepers of the
    /// menus and onboarding forms (every second) and `on_end`, which shows each menu's
    /// end. Its shutdown leaves open menus in the store for a restart or another
    /// process.
    ///
    /// # Errors
    ///
    /// Outside a tokio runtime.
    pub fn start_runtime<F, Fut>(&self, on_end: F) -> Result<bot_sessions::Runtime, BotError>
    where
        F: Fn(EndEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let every = Duration::from_secs(1);
        bot_sessions::Runtime::builder()
            .manager(&self.menus)
            .sessions(&self.onboarding)
            .sweep_every(every)
            .scan_every(10)
            .session_sweep_every(every)
            .on_shutdown(bot_sessions::runtime::OnShutdown::Detach)
            .on_end(on_end)
            .start()
            .map_err(|e| BotError::Session(SessionError::Config(e.to_string())))
    }

    /// The interactive manager of the menus, for a transport that routes clicks itself
    /// (Telegram's [`CallbackRouter`](bot_sessions::telegram::CallbackRouter), which also
    /// answers the callback query). [`Bot::click`] is the transport-free way.
    pub fn menus(&self) -> &Manager {
        &self.menus
    }

    /// Records the message that shows `menu` (an [`Outgoing::menu`]), once the
    /// transport sent it: when the menu expires, [`EndEvent::origin`] names that
    /// message, so the transport can edit it. Returns whether the menu is still live.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn menu_sent(&self, menu: SessionId, message_id: i64) -> Result<bool, BotError> {
        Ok(self.menus.set_message(menu, message_id).await?)
    }

    /// Where "now" comes from (what transports keeping their own records use).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Answers a click on a button (the update's custom id): the menu's own reply, or
    /// `not yours` for someone else's menu, `expired` for one that ended or is unknown,
    /// `refused` for a forged or edited id.
    ///
    /// # Errors
    ///
    /// Store errors, and the menu's own failures.
    pub async fn click(&self, ctx: &Context) -> Result<Vec<Reply>, BotError> {
        let routed = self.menus.handle(ctx).await?;
        let answer = routed.answer(|outcome| {
            Some(Reply::notice(match outcome {
                RouteOutcome::Refused { .. } => NOT_YOURS,
                RouteOutcome::Expired { .. } | RouteOutcome::Ended { .. } | RouteOutcome::Unknown { .. } => EXPIRED,
                RouteOutcome::Forged { .. } | RouteOutcome::Malformed { .. } => REFUSED,
                _ => NOT_MINE,
            }))
        });
        Ok(answer.into_iter().collect())
    }

    /// Answers one message: returns the reply lines (none for a blank message).
    ///
    /// # Errors
    ///
    /// [`BotError::NoUser`] for an update without a user; session and store errors.
    pub async fn handle(&self, ctx: &Context, text: &str) -> Result<Vec<Reply>, BotError> {
        Ok(self.respond(ctx, text).await?.into_iter().map(|out| out.reply).collect())
    }

    /// [`handle`](Self::handle), saying which reply shows a menu it opened (`/menu`):
    /// a transport that learns the id of the message it sent records it with
    /// [`Bot::menu_sent`], so the menu's expiry can edit that message.
    ///
    /// # Errors
    ///
    /// As [`handle`](Self::handle).
    pub async fn respond(&self, ctx: &Context, text: &str) -> Result<Vec<Outgoing>, BotError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        if ctx.user_id.is_none() {
            return Err(BotError::NoUser);
        }
        // A message a session asked for (the menu's Set, the onboarding conversation)
        // goes to it, not to the commands. One that expired meanwhile ended just now
        // (its end is shown like any other): the message is the bot's again.
        let routed = self.menus.handle_text(ctx, text).await?;
        match routed.outcome {
            RouteOutcome::NotOurs | RouteOutcome::Expired { .. } => {}
            RouteOutcome::Handled { session, .. } => {
                let replies = routed.reply.into_iter().chain(routed.end_reply);
                return Ok(replies
                    .map(|reply| Outgoing {
                        menu: reply.as_message().filter(|m| !m.rows.is_empty()).map(|_| session),
                        reply,
                    })
                    .collect());
            }
            _ => {
                let said = routed.answer(|_| Some(Reply::notice(EXPIRED)));
                return Ok(said.into_iter().map(Outgoing::reply).collect());
            }
        }
        let reply = match command(text) {
            Some("/count") => self.count(ctx).await?,
            Some("/onboard") => return self.start_onboarding(ctx).await,
            Some("/confirm") => self.confirm(ctx).await?,
            Some("/cancel") => self.cancel(ctx).await?,
            Some("/profile") => self.profile(ctx).await?,
            Some("/forget") => self.forget(ctx).await?,
            Some("/menu") => return self.open_menu(ctx).await,
            Some("/help" | "/start") => HELP.join("\n"),
            Some(other) => format!("unknown command {other}; /help lists what I understand"),
            None => "I only understand commands; /help lists them".to_owned(),
        };
        Ok(vec![Outgoing::reply(Reply::message(View::text(reply)))])
    }

    async fn open_menu(&self, ctx: &Context) -> Result<Vec<Outgoing>, BotError> {
        let started = self.menus.start(&self.menu, ctx, ()).await?;
        // Nobody awaits the result here: the menu's `end` keeps it in the profile.
        Ok(started.reply.into_iter().map(|reply| Outgoing { reply, menu: Some(started.id) }).collect())
    }

    /// Opens the onboarding conversation ([`onboard`]), replacing one left open.
    async fn start_onboarding(&self, ctx: &Context) -> Result<Vec<Outgoing>, BotError> {
        let started = self.menus.start(&self.onboard, ctx, ()).await?;
        Ok(started.reply.into_iter().map(Outgoing::reply).collect())
    }
}

/// The command of a message (`/count@MyBot args` is `/count`), if it is one.
fn command(text: &str) -> Option<&str> {
    if !text.starts_with('/') {
        return None;
    }
    let word = text.split_whitespace().next().unwrap_or(text);
    Some(word.split_once('@').map_or(word, |(cmd, _bot)| cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognised() {
        assert_eq!(command("/count"), Some("/count"));
        assert_eq!(command("/count@DemoBot now"), Some("/count"));
        assert_eq!(command("  hello"), None);
        assert_eq!(command("count"), None);
    }
}
