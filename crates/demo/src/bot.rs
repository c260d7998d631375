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

use bot_sessions::encryption::KeyRing;
use bot_sessions::interactive::{
    Button, ButtonStyle, CustomIdCodec, EndEvent, InteractiveError, Kind, Manager, View, Modal, Reply, RouteOutcome,
    SessionId, SigningKeys, Sweeper, Target, TextField,
};
use bot_sessions::session::{Expired, ExpirySweeper, RetryPolicy, SessionsBuilder};
use bot_sessions::{
    Clock, Context, DynStore, KeyStrategy, Namespace, Precondition, Scope, SessionError, SessionKey, Sessions,
    StoreError, SystemClock, Ttl, Write,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use crate::profile::Profile;
use crate::menu::{KIND, Menu};
use onboard::Onboard;

pub mod onboard;

/// How long an onboarding form lives without an answer, unless configured.
pub const DEFAULT_ONBOARDING_TTL: Duration = Duration::from_secs(30 * 60);

/// How long a `/menu` lives without a click, unless configured.
pub const DEFAULT_MENU_TTL: Duration = Duration::from_secs(60);

/// The answer to a click on someone else's menu.
pub const NOT_YOURS: &str = "not yours: only who opened this menu can use it";

/// The answer to a click on a menu that ended, expired or is unknown.
pub const EXPIRED: &str = "expired: this menu is over; /menu opens a new one";

/// The answer to a click whose custom id was forged or edited.
pub const REFUSED: &str = "refused: this button was forged or edited";

/// The answer to a click on a button that is none of the bot's menus.
pub const NOT_MINE: &str = "that button is not one of mine";

/// The custom id of the onboarding modal's submit ([`onboarding_modal`]).
pub const ONBOARD_MODAL: &str = "onboard";
/// The id of the onboarding modal's name field.
pub const NAME_FIELD: &str = "name";
/// The id of the onboarding modal's email field.
pub const EMAIL_FIELD: &str = "email";
/// The custom id of the button that confirms replacing a saved profile.
pub const ONBOARD_CONFIRM: &str = "onboard:confirm";
/// The custom id of the button that keeps the saved profile.
pub const ONBOARD_CANCEL: &str = "onboard:cancel";

/// The onboarding form as one modal (for transports with forms): a name and an email.
/// Its submit carries [`ONBOARD_MODAL`] and the fields [`NAME_FIELD`] and
/// [`EMAIL_FIELD`]; answer it with [`Bot::submit_onboarding`].
pub fn onboarding_modal() -> Modal {
    Modal::new(ONBOARD_MODAL, "Onboarding")
        .field(TextField::new(NAME_FIELD, "Your name").placeholder("Ada Lovelace"))
        .field(TextField::new(EMAIL_FIELD, "Your email").placeholder("ada@example.com"))
}

/// The `/count` session: how often this user counted in this chat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// The count.
    pub n: u64,
}

/// Where an onboarding form stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// No form open (the initial value: never stored).
    #[default]
    Idle,
    /// Waiting for the name.
    Name,
    /// Waiting for the email.
    Email,
    /// Waiting for `/confirm` or `/cancel`.
    Confirm,
}

/// The `/onboard` form. Its default (no form open) is never stored, and going back to
/// it deletes the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Onboarding {
    /// The step.
    pub step: Step,
    /// The name, once given.
    pub name: Option<String>,
    /// The email, once given.
    pub email: Option<String>,
}

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

/// Settings of a [`Bot`].
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
    /// [`Bot::expire`] is called, as tests with a manual clock do).
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

    /// Answers a submitted [`onboarding_modal`]: with a valid name and email, saves
    /// them as the user's profile (`saved: NAME <EMAIL>`), unless a different name and
    /// email are saved already: then the form waits at the confirm step and the reply
    /// asks whether to replace them, with [`ONBOARD_CONFIRM`] and [`ONBOARD_CANCEL`]
    /// buttons (or `/confirm` and `/cancel`). An invalid field is answered with a
    /// notice saying why. Every reply is ephemeral: it shows an email address.
    ///
    /// # Errors
    ///
    /// [`BotError::NoUser`] without a user; session and store errors.
    pub async fn submit_onboarding(&self, ctx: &Context, name: &str, email: &str) -> Result<Reply, BotError> {
        if ctx.user_id.is_none() {
            return Err(BotError::NoUser);
        }
        let again = |why: String| Ok(Reply::notice(format!("{why}; /onboard opens the form again")));
        let name = match valid_name(name) {
            Ok(name) if name.is_empty() => return again("a name cannot be empty".into()),
            Ok(name) => name,
            Err(why) => return again(why),
        };
        let email = match valid_email(email) {
            Ok(email) => email,
            Err(why) => return again(why),
        };
        let key = self.profiles.key(ctx)?;
        let (n, e) = (name.clone(), email.clone());
        // One compare-and-set: two submits at once never both think nothing was saved.
        let replaced = self
            .profiles
            .update(&key, |p| {
                if !p.name.is_empty() && (p.name != n || p.email != e) {
                    return Ok::<_, SessionError>(Some((p.name.clone(), p.email.clone())));
                }
                p.name.clone_from(&n);
                p.email.clone_from(&e);
                Ok(None)
            })
            .await?;
        let form_key = self.onboarding.key(ctx)?;
        let Some((old_name, old_email)) = replaced else {
            // A question-by-question form left open is answered by this one.
            self.onboarding
                .update_option(&form_key, |form| {
                    *form = None;
                    Ok::<_, SessionError>(())
                })
                .await?;
            return Ok(Reply::message(View::text(format!("saved: {name} <{email}>")).ephemeral()));
        };
        let form = Onboarding { step: Step::Confirm, name: Some(name.clone()), email: Some(email.clone()) };
        self.onboarding
            .update(&form_key, |f| {
                *f = form.clone();
                Ok::<_, SessionError>(())
            })
            .await?;
        let text = format!("your profile says {old_name} <{old_email}>. Replace it with {name} <{email}>?");
        Ok(Reply::message(View::text(text).ephemeral().row([
            Button::new("Replace", ONBOARD_CONFIRM).style(ButtonStyle::Success),
            Button::new("Keep mine", ONBOARD_CANCEL),
        ])))
    }

    /// Answers a click on [`ONBOARD_CONFIRM`] or [`ONBOARD_CANCEL`]: the confirm
    /// message edited to what `/confirm` or `/cancel` says, without its buttons.
    /// `None` for any other custom id.
    ///
    /// # Errors
    ///
    /// [`BotError::NoUser`] without a user; session and store errors.
    pub async fn onboarding_button(&self, ctx: &Context, custom_id: &str) -> Result<Option<Reply>, BotError> {
        if ctx.user_id.is_none() {
            return Err(BotError::NoUser);
        }
        let text = match custom_id {
            ONBOARD_CONFIRM => self.confirm(ctx).await?,
            ONBOARD_CANCEL => self.cancel(ctx).await?,
            _ => return Ok(None),
        };
        Ok(Some(Reply::close(text)))
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

    async fn count(&self, ctx: &Context) -> Result<String, BotError> {
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

    /// Opens the onboarding conversation ([`onboard`]), replacing one left open.
    async fn start_onboarding(&self, ctx: &Context) -> Result<Vec<Outgoing>, BotError> {
        let started = self.menus.start(&self.onboard, ctx, ()).await?;
        Ok(started.reply.into_iter().map(Outgoing::reply).collect())
    }

    async fn confirm(&self, ctx: &Context) -> Result<String, BotError> {
        let form = self.onboarding.open(&self.onboarding.key(ctx)?).await?;
        let (Step::Confirm, Some(name), Some(email)) = (form.step, form.name.clone(), form.email.clone()) else {
            return Ok("nothing to confirm (an unanswered form expires); /onboard starts one".into());
        };
        let key = self.profiles.key(ctx)?;
        let (n, e) = (name.clone(), email.clone());
        self.profiles
            .update(&key, |p| {
                p.name.clone_from(&n);
                p.email.clone_from(&e);
                Ok::<_, SessionError>(())
            })
            .await?;
        // After the profile: a crash in between leaves the form, and /confirm again
        // saves the same profile.
        form.delete().await?;
        Ok(format!("saved: {name} <{email}>"))
    }

    async fn cancel(&self, ctx: &Context) -> Result<String, BotError> {
        let key = self.onboarding.key(ctx)?;
        let open = self
            .onboarding
            .update_option(&key, |form| {
                let open = form.as_ref().is_some_and(|f| f.step != Step::Idle);
                // None deletes the stored form.
                *form = None;
                Ok::<_, SessionError>(open)
            })
            .await?;
        Ok(if open { "cancelled".into() } else { "nothing to cancel; /onboard starts a form".into() })
    }

    async fn profile(&self, ctx: &Context) -> Result<String, BotError> {
        let key = self.profiles.key(ctx)?;
        Ok(match self.profiles.get(&key).await? {
            Some(p) => {
                let menu = p.menu.map(|n| format!("menu: {n}"));
                match (p.name.is_empty(), menu) {
                    (false, Some(menu)) => format!("profile: {} <{}>, {menu}", p.name, p.email),
                    (false, None) => format!("profile: {} <{}>", p.name, p.email),
                    (true, Some(menu)) => format!("profile: {menu} (no name yet; /onboard)"),
                    (true, None) => "no profile saved; /onboard creates one".into(),
                }
            }
            None => "no profile saved; /onboard creates one".into(),
        })
    }

    async fn forget(&self, ctx: &Context) -> Result<String, BotError> {
        let user = ctx.user_id.ok_or(BotError::NoUser)?;
        let n = self.store.forget_user(user, self.clock.now()).await?;
        let s = if n == 1 { "" } else { "s" };
        Ok(format!("forgotten: deleted {n} session{s} of user {user}"))
    }
}

/// The key that signs the menus' custom ids: read from the store, created by the
/// first process that finds none (compare-and-set: every process ends up with the same
/// key). A start-up read: failures that may pass (a database restarting, a connection
/// reset) are tried again for as long as opening the store is.
/// `builder` sealing its values with `keys`, if any.
fn sealed<T>(builder: SessionsBuilder<T>, keys: &Option<Arc<KeyRing>>) -> SessionsBuilder<T>
where
    T: Serialize + for<'de> Deserialize<'de> + Send + Sync + 'static,
{
    match keys {
        Some(ring) => builder.encryption(ring.clone()),
        None => builder,
    }
}

async fn signing_secret(store: &DynStore, clock: &dyn Clock, keys: Option<&KeyRing>) -> Result<Vec<u8>, BotError> {
    let namespace = Namespace::new("demo-secret").map_err(SessionError::from)?;
    let key = SessionKey::new(namespace, Scope::Custom { id: "menu-signing".into(), user: None });
    let retry = RetryPolicy { transient_for: bot_sessions::store::DEFAULT_OPEN_RETRY, ..RetryPolicy::default() };
    let seal_err = |e: bot_sessions::encryption::SealError| SessionError::Config(format!("the menu signing key: {e}"));
    for _ in 0..3 {
        let now = clock.now();
        if let Some(record) = retry.run_transient(|| store.load(&key, now)).await? {
            let sealed = KeyRing::sealed_with(&record.value).is_some();
            let secret = match (keys, sealed) {
                (Some(ring), true) => ring.open(&key, &record.value).map_err(seal_err)?.into_owned(),
                (None, true) => {
                    return Err(SessionError::Config(
                        "the menu signing key in the store is sealed: give the key ring (BOT_SESSIONS_KEYS)".into(),
                    )
                    .into());
                }
                (_, false) => record.value.clone(),
            };
            if secret.len() >= 32 {
                if let (Some(ring), false) = (keys, sealed) {
                    // Stored in clear before a ring was given: seal it in place (a
                    // conflict means another process did).
                    let bytes = ring.seal(&key, &secret).map_err(seal_err)?;
                    let write = Write::new(&bytes, 1, None);
                    match store.write(&key, write, Precondition::Version(record.version), now).await {
                        Ok(_) => {}
                        Err(e) if e.is_conflict() || e.is_ambiguous() => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                return Ok(secret);
            }
        }
        let secret: [u8; 32] = rand_bytes();
        let stored = match keys {
            Some(ring) => ring.seal(&key, &secret).map_err(seal_err)?,
            None => secret.to_vec(),
        };
        let write = Write::new(&stored, 1, None);
        match retry.run_transient(|| store.write(&key, write, Precondition::Absent, now)).await {
            Ok(_) => return Ok(secret.to_vec()),
            // Another process created it first, or ours may have landed: read it.
            Err(e) if e.is_conflict() || e.is_ambiguous() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(SessionError::Config("the menu signing key keeps changing in the store".into()).into())
}

fn rand_bytes() -> [u8; 32] {
    rand::random()
}

/// The command of a message (`/count@MyBot args` is `/count`), if it is one.
fn command(text: &str) -> Option<&str> {
    if !text.starts_with('/') {
        return None;
    }
    let word = text.split_whitespace().next().unwrap_or(text);
    Some(word.split_once('@').map_or(word, |(cmd, _bot)| cmd))
}

/// Longest name accepted, in characters.
const MAX_NAME: usize = 64;

fn valid_name(text: &str) -> Result<String, String> {
    let name = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.chars().count() > MAX_NAME {
        return Err(format!("that name is longer than {MAX_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("a name cannot contain control characters".into());
    }
    Ok(name)
}

/// A deliberately plain check: one `@`, something before it, a dotted domain after
/// it, no spaces. Real validation is sending a mail.
fn valid_email(text: &str) -> Result<String, String> {
    let bad = || Err(format!("`{text}` does not look like an email address (like ada@example.com)"));
    let email = text.trim();
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    let Some((local, domain)) = email.split_once('@') else { return bad() };
    if local.is_empty() || domain.contains('@') || !domain.contains('.') {
        return bad();
    }
    if domain.split('.').any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-')) {
        return bad();
    }
    Ok(email.to_owned())
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

    #[test]
    fn emails_are_checked() {
        for good in ["ada@example.com", "a.b+c@mail.example.org", "x@y.io"] {
            assert_eq!(valid_email(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a@b@c.com",
            "ada lovelace@example.com",
            "a@.com",
            "a@b..com",
            "a@-b.com",
        ] {
            assert!(valid_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(valid_name("  Ada   Lovelace ").as_deref(), Ok("Ada Lovelace"));
        assert!(valid_name(&"x".repeat(65)).is_err());
    }
}
