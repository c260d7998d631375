//! Interactive sessions: short-lived objects that answer an update with components
//! (buttons, select menus, inline keyboards) whose clicks route back to them.
//!
//! Platform-neutral: the adapters turn a Discord interaction or a Telegram callback
//! query into a [`Context`](crate::Context) whose `custom_id` is set; everything here works on that.
//!
//! - [`Interactive`]: one kind of session (a menu, a poll, a wizard): `start` answers the
//!   opening update, `update` handles each click and says whether to refresh the time
//!   to live or to [finish](Step::Finish) with a result, `end` runs once when the
//!   session ends for any [`EndReason`] (and can disable the message's components).
//! - [`Manager`]: registers kinds by name, starts sessions with random unguessable ids,
//!   [routes](Manager::route) clicks, applies the updates of one session one at a time
//!   (an in-process key lock, then compare-and-set on the stored record, so several
//!   processes on one store never lose or double-apply a click), runs expiry, and hands
//!   the starter a [`SessionHandle`] that resolves with the end and the result.
//! - [`CustomIdCodec`]: builds and reads the custom ids (`namespace:session:component:
//!   tokens…[:signature]`), with escaping, a per-[`Target`] length limit checked at
//!   build time, and optional truncated HMAC-SHA256 signatures with key rotation.
//! - [`Filter`]: who may open a session and whose clicks it accepts; by default only
//!   the user who opened it ([`Filter::opener`]).
//! - Text steps: a session may [ask](StartCx::ask_text) for its opener's next
//!   message in its chat (and forum topic); [`Manager::route_text`] hands it to
//!   [`Interactive::on_text`] instead of the bot's other handlers until the session
//!   [stops asking](UpdateCx::stop_asking) or ends, on any process sharing the store.
//!   A conversation is one kind mixing text steps and components (see the second
//!   example below).
//! - Per-component [filters](Interactive::component_filters), one-call ids
//!   ([`SessionCx::id`]) and session [limits](Interactive::limit) with displacement.
//! - [`RouteOutcome`]: what happened to a click: handled, not ours, unknown, expired,
//!   ended, refused, forged, malformed. Bad input is an outcome, never a panic, and never
//!   touches a session.
//!
//! # Storage and expiry
//!
//! Each session is one record in the manager's [`Store`](crate::Store) under the
//! namespace `interactive` (configurable), key `interactive/custom:<session id>`,
//! holding JSON: the kind's name, the state, the phase (`live`, `ending`, `ended`), the
//! session's own deadline, its [`Origin`] and the id of the manager holding its handle.
//! The record's store-level `expires_at` is the deadline plus a *grace* period (24 h by
//! default), so an expired session is still there for someone to run its `end`, and a
//! store nobody sweeps still forgets it eventually. Ended sessions stay for a *linger*
//! period (10 min) so late clicks get [`RouteOutcome::Ended`] and a handle in another
//! process can collect the result.
//!
//! Due sessions are found two ways:
//!
//! - [`Manager::expire_due`]: an in-process index ordered by deadline of the sessions
//!   this manager started or routed; its cost grows with the number of due entries.
//!   Idle refreshes do not touch it: a popped entry whose session was refreshed is filed
//!   again at the stored deadline.
//! - [`Manager::expire_scan`]: a scan of the whole namespace, for sessions whose
//!   process died. Its cost grows with the number of stored sessions (every record is
//!   read), so the [sweeper](Manager::spawn_sweeper) (which [`Runtime`](crate::Runtime)
//!   runs) does it every n-th tick only.
//!
//! Ending is claimed with compare-and-set (phase `live` → `ending`), so `end` runs once
//! across all managers. If the claimer dies inside `end`, another manager marks the
//! session ended after the claim's lease (60 s) *without* running `end` again: `end`
//! runs at most once.
//!
//! # Ends heard at once
//!
//! A handle resolves at once for an end run in its own process. For an end run in
//! another process, the ending manager announces it on the store's
//! [notices](crate::store::notify) once the ended record is written (Redis `PUBLISH`,
//! PostgreSQL `NOTIFY`, a small table SQLite processes poll through
//! `PRAGMA data_version`, in process for the memory store), and the manager holding
//! the handle reads the session and resolves it: milliseconds, with no sweeper. Notices
//! are a hint; when one is lost (a reconnection, a lagging receiver), the handle still
//! resolves at the next *watch period* (1 s), when every session waited for here is
//! read again.
//!
//! # Running it
//!
//! A bot runs the sweepers, shows ends that no click answered and shuts down with one
//! value, [`Runtime`](crate::Runtime):
//!
//! ```
//! # use bot_sessions::interactive::*;
//! # use bot_sessions::{store::memory::MemoryStore, Runtime};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let manager = Manager::builder(MemoryStore::new(), CustomIdCodec::new("c", Target::Telegram)?).build()?;
//! let runtime = Runtime::builder()
//!     .manager(&manager)
//!     .on_end(|end: EndEvent| async move { /* edit end.origin's message with end.reply */ })
//!     .start()?;
//! // ... serve updates with manager.handle(..) ...
//! runtime.shutdown().await; // ends live sessions (their `end` runs and is shown)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Example
//!
//! ```
//! use bot_sessions::interactive::*;
//! use bot_sessions::{store::memory::MemoryStore, Context, ManualClock, Ttl};
//! use bot_sessions::store::BoxError;
//! use std::time::Duration;
//!
//! /// Counts clicks; "done" finishes with the count.
//! struct Counter;
//!
//! impl Interactive for Counter {
//!     type State = u32;
//!     type Args = ();
//!     type Output = u32;
//!
//!     async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<u32, BoxError> {
//!         let plus = cx.encode(&cx.custom_id("plus"))?;
//!         let done = cx.encode(&cx.custom_id("done"))?;
//!         // Send a message with two buttons carrying `plus` and `done` here.
//!         # let _ = (plus, done);
//!         Ok(0)
//!     }
//!
//!     async fn update(&self, cx: &mut UpdateCx<'_>, n: &mut u32) -> Result<Step<u32>, BoxError> {
//!         match cx.component() {
//!             "plus" => { *n += 1; Ok(Step::refresh()) }
//!             _ => Ok(Step::Finish(*n)),
//!         }
//!     }
//!
//!     fn ttl(&self) -> Ttl {
//!         Ttl::idle(Duration::from_secs(60))
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let codec = CustomIdCodec::new("c", Target::Telegram)?;
//! let manager = Manager::builder(MemoryStore::new(), codec).clock(ManualClock::new(0)).build()?;
//! let counter = manager.register("counter", Counter)?;
//!
//! let opener = Context::new().chat(1).user(42);
//! let started = manager.start(&counter, &opener, ()).await?;
//! let plus = manager.codec().encode(&CustomId::new(started.id, "plus"))?;
//! let done = manager.codec().encode(&CustomId::new(started.id, "done"))?;
//!
//! manager.route(&opener.clone().custom_id(&plus)).await?;
//! let outcome = manager.route(&Context::new().chat(1).user(7).custom_id(&plus)).await?;
//! assert!(matches!(outcome, RouteOutcome::Refused { .. })); // only the opener may click
//! manager.route(&opener.clone().custom_id(&done)).await?;
//!
//! let ended = started.handle.await?;
//! assert_eq!((ended.reason, ended.result), (EndReason::Finished, Some(1)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

//!
//! # A conversation: text steps and a button
//!
//! ```
//! use bot_sessions::interactive::*;
//! use bot_sessions::{store::memory::MemoryStore, Context};
//! use bot_sessions::store::BoxError;
//!
//! /// Asks a name, then an email (again until it has an `@`), then waits for Confirm.
//! struct Signup;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Form { name: Option<String>, email: Option<String> }
//!
//! impl Interactive for Signup {
//!     type State = Form;
//!     type Args = ();
//!     type Output = (String, String);
//!
//!     async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<Form, BoxError> {
//!         cx.ask_text();
//!         cx.reply(Reply::message(View::text("your name?")));
//!         Ok(Form::default())
//!     }
//!
//!     async fn on_text(&self, cx: &mut UpdateCx<'_>, f: &mut Form) -> Result<Step<Self::Output>, BoxError> {
//!         let text = cx.text().unwrap_or_default().trim().to_owned();
//!         if f.name.is_none() {
//!             f.name = Some(text);
//!             cx.reply(Reply::message(View::text("your email?")));
//!         } else if text.contains('@') {
//!             f.email = Some(text);
//!             cx.stop_asking();
//!             let confirm = cx.id("confirm")?;
//!             cx.reply(Reply::message(View::text("ok?").row([Button::new("Confirm", confirm)])));
//!         } else {
//!             cx.reply(Reply::message(View::text("that is no email; your email?")));
//!         }
//!         Ok(Step::refresh())
//!     }
//!
//!     async fn on_button(&self, _: &mut UpdateCx<'_>, f: &mut Form) -> Result<Step<Self::Output>, BoxError> {
//!         match (f.name.take(), f.email.take()) {
//!             (Some(name), Some(email)) => Ok(Step::Finish((name, email))),
//!             _ => Ok(Step::keep()),
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let manager = Manager::builder(MemoryStore::new(), CustomIdCodec::new("s", Target::Telegram)?).build()?;
//! let signup = manager.register("signup", Signup)?;
//! let ada = Context::new().chat(1).user(42);
//! let started = manager.start(&signup, &ada, ()).await?;
//!
//! // The bot's message handler asks the manager first; `NotOurs` goes on as usual.
//! assert_eq!(manager.route_text(&Context::new().chat(1).user(7), "hi").await?, RouteOutcome::NotOurs);
//! manager.route_text(&ada, "Ada").await?;
//! let again = manager.handle_text(&ada, "nope").await?;
//! assert_eq!(again.reply.unwrap().to_string(), "that is no email; your email?");
//! manager.route_text(&ada, "ada@example.com").await?;
//! assert_eq!(manager.route_text(&ada, "more text").await?, RouteOutcome::NotOurs, "no longer asking");
//!
//! let confirm = manager.codec().encode(&CustomId::new(started.id, "confirm"))?;
//! manager.route(&ada.clone().custom_id(&confirm)).await?;
//! let ended = started.handle.await?;
//! assert_eq!(ended.result, Some(("Ada".to_owned(), "ada@example.com".to_owned())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod core;
mod custom_id;
mod cx;
mod engine;
mod envelope;
mod error;
mod events;
mod expiry;
mod filter;
mod frame;
mod handle;
mod inspect;
mod limit;
mod listen;
mod listener;
mod local;
mod manager;
mod outcome;
mod per_thread;
mod registry;
mod reply;
mod rich;
mod sweeper;
mod text;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use core::DEFAULT_NAMESPACE;
pub use custom_id::{
    CustomId, CustomIdCodec, CustomIdError, DecodeError, MAX_NAMESPACE_LEN, SEPARATOR, SessionId, SigningKeys, Target,
    Unit,
};
pub use cx::{EndCx, SessionCx, StartCx, UpdateCx};
pub use error::InteractiveError;
pub use events::EndEvent;
pub use filter::{Filter, Origin, Rejection};
pub use handle::{HandleError, SessionHandle, Started};
pub use inspect::{SessionPhase, StoredSession, StoredSessionError, expire_now, read_stored, stored_id, stored_key};
pub use limit::{Limit, LimitScope};
pub use manager::{Kind, Manager, ManagerBuilder};
pub use outcome::{EndReason, Ended, ExpiryReport, RouteOutcome, Routed, ShutdownReport};
#[allow(deprecated)]
pub use reply::Message;
pub use reply::{Button, ButtonStyle, Modal, Reply, Select, SelectOption, TextField, View, Widget};
pub use rich::{Embed, EmbedField, Emoji, LinkButton, Raw, SelectDefault, SelectKind};
pub use sweeper::Sweeper;
pub use text::Commands;

/// What a bot that writes interactive sessions uses, for a glob import beside another
/// framework's prelude: `use bot_sessions::interactive::prelude::*;` next to
/// `use teloxide::prelude::*;` (or serenity's) leaves `Message` theirs, which
/// `bot_sessions::interactive::*` cannot while the deprecated [`Message`]
/// alias exists.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::prelude::*;
///
/// struct Hello;
///
/// impl Interactive for Hello {
///     type State = ();
///     type Args = ();
///     type Output = ();
///
///     async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<(), bot_sessions::store::BoxError> {
///         cx.reply(Reply::message(View::text("hello").row([Button::new("Bye", cx.id("bye")?)])));
///         Ok(())
///     }
/// }
/// ```
pub mod prelude {
    pub use super::{
        Button, ButtonStyle, Commands, CustomId, CustomIdCodec, EndCx, EndEvent, EndReason, Filter, Interactive, Kind,
        Limit, LimitScope, Manager, Modal, Reply, RouteOutcome, Select, SelectOption, SessionCx, StartCx, Step, Target,
        TextField, UpdateCx, View, Widget,
    };
}

use crate::store::BoxError;
use crate::{ComponentKind, Ttl};

/// The default time to live of a session kind: 15 minutes idle.
pub const DEFAULT_TTL: Ttl = Ttl::Idle { idle: Duration::from_secs(15 * 60), refresh_on_read: false };

/// What an [`update`](Interactive::update) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step<R> {
    /// The session goes on. With `refresh`, an idle time to live starts over from now
    /// (an absolute one never moves).
    Continue {
        /// Whether to push the expiry back.
        refresh: bool,
    },
    /// The session is over, with this result: `end` runs with
    /// [`EndReason::Finished`] and the starter's handle resolves.
    Finish(R),
}

impl<R> Step<R> {
    /// Goes on and refreshes an idle time to live.
    pub fn refresh() -> Self {
        Step::Continue { refresh: true }
    }

    /// Goes on without touching the expiry (a click that should not keep the session
    /// alive, like "show help").
    pub fn keep() -> Self {
        Step::Continue { refresh: false }
    }
}

/// One kind of interactive session (a menu, a poll, a wizard).
///
/// Register it with [`Manager::register`] under a name in every process that may
/// receive its clicks: the stored session names its kind, and any process that has the
/// kind can rebuild it from the stored state.
///
/// The configuration methods ([`ttl`](Self::ttl), [`start_filter`](Self::start_filter),
/// [`update_filter`](Self::update_filter), [`component_filters`](Self::component_filters),
/// [`limit`](Self::limit), [`commands`](Self::commands)) are read once, at registration.
///
/// # Re-runs
///
/// Within one process, updates of one session run one at a time and never twice. When
/// two processes handle clicks of one session at the same moment, the loser's save
/// meets a conflict and its `update` runs again on the winner's state (the click is
/// neither lost nor applied twice to the state). Side effects in `update` (sending a
/// message) can therefore happen twice in that case; `start` and `end` never re-run.
pub trait Interactive: Send + Sync + 'static {
    /// The session's state, stored between clicks.
    type State: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What [`Manager::start`] passes to [`start`](Self::start) (`()` if nothing).
    type Args: Send + 'static;
    /// The result the starter's handle resolves with.
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Answers the update that opened the session (send the message with its
    /// components; build their ids with [`StartCx::id`]) and returns the initial
    /// state. An error starts nothing.
    ///
    /// Implement it as `async fn start(&self, cx: &mut StartCx<'_>, args: Self::Args)
    /// -> Result<Self::State, BoxError>`; the future must be `Send` (hold no `Rc` or
    /// `std::sync::MutexGuard` across an `.await`).
    fn start(
        &self,
        cx: &mut StartCx<'_>,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::State, BoxError>> + Send;

    /// Handles one routed update (answer it with [`UpdateCx::reply`]). An error writes
    /// nothing (the update is dropped and [`Manager::route`] returns it).
    ///
    /// The default dispatches by what came: a text message the session asked for to
    /// [`on_text`](Self::on_text); a select menu to [`on_select`](Self::on_select), a
    /// modal submit to [`on_modal`](Self::on_modal), a button or a Telegram callback
    /// (or an update of unknown kind) to [`on_button`](Self::on_button). Override
    /// either this or those.
    fn update(
        &self,
        cx: &mut UpdateCx<'_>,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Step<Self::Output>, BoxError>> + Send {
        async move {
            if cx.text().is_some() {
                return self.on_text(cx, state).await;
            }
            match cx.context().component_kind() {
                Some(ComponentKind::SelectMenu) => self.on_select(cx, state).await,
                Some(ComponentKind::ModalSubmit) => self.on_modal(cx, state).await,
                _ => self.on_button(cx, state).await,
            }
        }
    }

    /// A button click or a Telegram callback (see [`update`](Self::update)). Default:
    /// nothing changes.
    fn on_button(
        &self,
        cx: &mut UpdateCx<'_>,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Step<Self::Output>, BoxError>> + Send {
        let _ = (cx, state);
        std::future::ready(Ok(Step::keep()))
    }

    /// A select menu choice; the chosen values are [`UpdateCx::values`]. Default:
    /// nothing changes.
    fn on_select(
        &self,
        cx: &mut UpdateCx<'_>,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Step<Self::Output>, BoxError>> + Send {
        let _ = (cx, state);
        std::future::ready(Ok(Step::keep()))
    }

    /// A submitted modal; its fields are [`UpdateCx::field`]. Default: nothing changes.
    fn on_modal(
        &self,
        cx: &mut UpdateCx<'_>,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Step<Self::Output>, BoxError>> + Send {
        let _ = (cx, state);
        std::future::ready(Ok(Step::keep()))
    }

    /// The opener's message, which the session asked for ([`StartCx::ask_text`],
    /// [`UpdateCx::ask_text`]) and [`Manager::route_text`] routed here; the text is
    /// [`UpdateCx::text`]. The session goes on asking until it
    /// [stops](UpdateCx::stop_asking) or ends, so bad input is answered by replying
    /// and returning. Default: nothing changes.
    fn on_text(
        &self,
        cx: &mut UpdateCx<'_>,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Step<Self::Output>, BoxError>> + Send {
        let _ = (cx, state);
        std::future::ready(Ok(Step::keep()))
    }

    /// Runs once when the session ends, for any reason: answer with
    /// [`EndCx::reply`] (typically an edit of the message that removes its
    /// components; [`EndCx::origin`] has its ids). For [`EndReason::Finished`] the
    /// result is the one [`Step::Finish`] carried and the value returned here is
    /// ignored; otherwise it becomes the result. An error is logged; the session ends
    /// all the same.
    fn end(
        &self,
        cx: &mut EndCx<'_>,
        state: Self::State,
    ) -> impl Future<Output = Result<Option<Self::Output>, BoxError>> + Send {
        let _ = (cx, state);
        std::future::ready(Ok(None))
    }

    /// How long a session lives: [`Ttl::Idle`] (refreshed when `update` returns
    /// [`Step::refresh`]), [`Ttl::Absolute`] (from the start) or [`Ttl::None`].
    /// Default: [`DEFAULT_TTL`].
    fn ttl(&self) -> Ttl {
        DEFAULT_TTL
    }

    /// Who may open a session of this kind. Default: anybody.
    fn start_filter(&self) -> Filter {
        Filter::allow_all()
    }

    /// Whose clicks a session accepts. Default: only the user who opened it.
    fn update_filter(&self) -> Filter {
        Filter::opener()
    }

    /// Filters of single components, each in place of
    /// [`update_filter`](Self::update_filter) for clicks of its component: "anyone may
    /// vote, only the opener may close" is an `update_filter` of
    /// [`Filter::allow_all`] and `vec![("close", Filter::opener())]`. Default: none.
    fn component_filters(&self) -> Vec<(&'static str, Filter)> {
        Vec::new()
    }

    /// At most how many sessions of this kind may be open per user, chat or guild
    /// (see [`Limit`]); starting one more ends the oldest with
    /// [`EndReason::Replaced`]. Default: no limit.
    fn limit(&self) -> Option<Limit> {
        None
    }

    /// Whether commands (`/word…`) reach a session of this kind while it waits for
    /// text, or pass through to the bot's other handlers. Default:
    /// [`Commands::PassThrough`].
    fn commands(&self) -> Commands {
        Commands::PassThrough
    }
}
