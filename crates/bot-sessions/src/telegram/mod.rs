//! Telegram through [teloxide](https://docs.rs/teloxide) 0.17 (feature `telegram`).
//!
//! - [`context_of`], [`context_of_message`], [`context_of_callback`]: the [`Context`]
//!   of an update, with the traps of real updates handled (a thread id is not always a
//!   forum topic, anonymous admins and channel posts have no user, polls have neither
//!   chat nor user, a callback may come from an inline message without a chat). See
//!   [`context`](mod@context) for the rules.
//! - [`enter`] and [`Session<T>`]: one dptree call injects the update's typed session
//!   into handlers, the way teloxide's `dialogue::enter` injects a `Dialogue`; several
//!   session types side by side. [`inject_context`] injects the [`Context`].
//! - [`enter_state`] and [`Transition<T>`]: route handlers on the state held in a
//!   typed session with `dptree::case!`, as for a `Dialogue`; the transition is a
//!   compare-and-set (see [`state`](mod@state)).
//! - [`DialogueStorage`]: a teloxide `Storage<D>` over any store, so `Dialogue` code
//!   gets this crate's backends, TTL and migrations unchanged (see
//!   [`storage`](mod@storage) for what it adds and what a blind `update_dialogue`
//!   cannot give).
//! - [`CallbackRouter`]: routes callback queries to interactive sessions, shows their
//!   replies (`editMessageText`, `editMessageReplyMarkup`, `sendMessage`), answers
//!   every callback query of its namespace exactly once, and lets other callbacks fall
//!   through to the bot's own handlers. [`show_end`] shows what an expired session's
//!   `end` answered (its menu edited to say so, without buttons).
//! - [`open_menu`]: a menu in one call: the session started from a message, sent with
//!   its keyboard (in the message's topic and business chat), its message recorded for
//!   the end's edit; [`answer_inline_menu`] the same as an inline query's result.
//! - [`migrate_chat`]: a group that became a supergroup keeps its sessions.
//! - `Webhook` (feature `telegram-webhook`): the same handlers under a webhook, served
//!   on the bounded [`http::Listener`](crate::http::Listener), the secret token
//!   checked; several processes behind one URL share every session (see the
//!   `webhook` module).
//!
//! [`Context`]: crate::Context
//!
//! # A bot in a few lines
//!
//! ```no_run
//! use bot_sessions::interactive::{CustomIdCodec, Manager, SigningKeys, Target};
//! use bot_sessions::telegram::{self, CallbackRouter, Session};
//! use bot_sessions::{store, KeyStrategy, SessionError, Sessions};
//! use teloxide::prelude::*;
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! struct Counter { n: u64 }
//!
//! type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
//!
//! async fn count(bot: Bot, msg: Message, counter: Session<Counter>) -> HandlerResult {
//!     let n = counter.update(|c| { c.n += 1; Ok::<_, SessionError>(c.n) }).await?;
//!     bot.send_message(msg.chat.id, format!("count: {n}")).await?;
//!     Ok(())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = store::open("sqlite://sessions.db").await?;
//! let counters = Sessions::<Counter>::builder(store.clone())
//!     .namespace("counter")
//!     .key(KeyStrategy::TopicOrChatUser)
//!     .build()?;
//! // Every process of the bot signs its buttons with the same secret (16 bytes or more).
//! let keys = SigningKeys::new([std::env::var("MENU_SIGNING_KEY")?])?;
//! let codec = CustomIdCodec::new("m", Target::Telegram)?.signed(keys);
//! let menus = Manager::builder(store, codec).build()?;
//!
//! let tree = dptree::entry()
//!     .branch(CallbackRouter::new(menus).handler::<Bot, _>())
//!     .branch(Update::filter_message().chain(telegram::enter::<Counter, _>()).endpoint(count));
//! Dispatcher::builder(Bot::from_env(), tree)
//!     .dependencies(dptree::deps![counters])
//!     .build()
//!     .dispatch()
//!     .await;
//! # Ok(()) }
//! ```

pub mod context;
mod end;
mod inject;
mod menu;
mod migrate;
mod render;
mod router;
pub mod state;
pub mod storage;
#[cfg(feature = "telegram-webhook")]
pub mod webhook;

pub use context::{CHANNEL_BOT, GROUP_ANONYMOUS_BOT, chat_kind, context_of, context_of_callback, context_of_message};
pub use end::{end_actions, show_end};
pub use inject::{Session, enter, inject_context};
pub use menu::{InlineMenu, MenuError, OpenedMenu, answer_inline_menu, open_menu, record_chosen_inline};
#[cfg(feature = "encryption")]
pub use migrate::migrate_chat_sealed;
pub use migrate::{ChatMigration, MigrationReport, migrate_chat, migrate_chat_at};
pub use render::{
    Action, MAX_CALLBACK_DATA, MAX_NOTICE_CHARS, MessageTarget, RenderError, execute, keyboard, notice_text,
};
pub use router::{CallbackOutcome, CallbackPlan, CallbackRouter, CallbackTexts, RouterError};
pub use state::{Transition, TransitionError, enter_state};
pub use storage::{DEFAULT_DIALOGUE_NAMESPACE, DialogueStorage, DialogueStorageBuilder, DialogueStorageError};
#[cfg(feature = "telegram-webhook")]
pub use webhook::{SECRET_HEADER, UpdateDispatch, Webhook, WebhookError};
