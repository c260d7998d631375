//! Discord through [serenity](https://docs.rs/serenity) (feature `serenity`) and
//! [poise](https://docs.rs/poise) (feature `poise`): gateway bots meet interactive
//! and data sessions in their own types and response flow.
//!
//! It lives under [`discord`](crate::discord) because it shares that module's
//! Discord-wide parts: the [`Context`](crate::Context) fields and extensions
//! ([`Command`](super::Command), [`InteractionInfo`](super::InteractionInfo),
//! [`ChannelInfo`](super::ChannelInfo)), the limits and texts of answers, and the
//! records of sessions' messages ([`Messages`](super::Messages)) that
//! [`Ends`](super::Ends) edits when a session ends unclicked. Only the transport
//! differs: serenity's model and [`Http`](serenity::all::Http) instead of
//! twilight-model and the HTTP endpoint.
//!
//! - [`context_of`] (and [`command_context`], [`component_context`],
//!   [`modal_context`], [`autocomplete_context`]): the [`Context`](crate::Context) of
//!   serenity's interactions, the same as the twilight one (thread, guild, locale, every
//!   select kind).
//! - [`create_response`], [`edit_response`], [`followup`], [`create_message`],
//!   [`action_rows`], [`modal`]:
//!   a [`Reply`](crate::interactive::Reply) in serenity's builders.
//! - [`Router`]: routes clicks and modal submits to sessions (falling through for
//!   foreign ids), starts a session from a command and records its message in one
//!   call, answers with the deferral after 2.5 s.
//! - [`Session`]: a data session bound to an interaction's key.
//! - with `poise`: [`SessionContext`], `ctx.session::<T>()` on a `poise::Context`
//!   whose user data holds a [`Sessions<T>`](crate::Sessions) ([`SessionsOf`]), and
//!   answers through `ctx.send` so poise's response state stays right.
//!
//! # A serenity bot
//!
//! ```no_run
//! use bot_sessions::discord::serenity::{Router, Session, context_of};
//! use bot_sessions::interactive::{CustomIdCodec, Manager, RouteOutcome, Target};
//! use bot_sessions::{store, KeyStrategy, Sessions};
//! use serenity::all::{Context, EventHandler, Interaction};
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! struct Visits { n: u64 }
//!
//! struct Bot { router: Router, visits: Sessions<Visits> }
//!
//! #[serenity::async_trait]
//! impl EventHandler for Bot {
//!     async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
//!         // Clicks and modal submits of our sessions; everything else falls through.
//!         if !matches!(self.router.route(&ctx.http, &interaction).await, Ok(RouteOutcome::NotOurs)) {
//!             return;
//!         }
//!         let Some(context) = context_of(&interaction) else { return };
//!         let Ok(visits) = Session::new(&self.visits, &context) else { return };
//!         let _ = visits.update(|v| { v.n += 1; Ok::<_, bot_sessions::SessionError>(v.n) }).await;
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = store::open("sqlite://sessions.db").await?;
//! let manager = Manager::builder(store.clone(), CustomIdCodec::new("m", Target::Discord)?).build()?;
//! let visits = Sessions::builder(store).namespace("visits").key(KeyStrategy::GuildUser).build()?;
//! let _bot = Bot { router: Router::new(manager)?, visits };
//! # Ok(()) }
//! ```

mod context;
#[cfg(feature = "poise")]
mod poise;
mod render;
mod router;
mod session;

pub use context::{
    autocomplete_context, command_context, component_context, context_of, message_context, modal_context,
};
#[cfg(feature = "poise")]
pub use poise::{SessionContext, SessionsOf, create_reply};
pub use render::{
    action_rows, create_embeds, create_message, create_response, edit_message, edit_response, followup, modal, notice,
    response_message,
};
pub use router::{DEFER_AFTER, Router};
pub use session::Session;

/// Re-exported so that bot code names the same versions as this crate.
pub use ::serenity;

use crate::discord::RenderError;
use crate::interactive::InteractiveError;
use crate::store::BoxError;

/// What went wrong answering an interaction through serenity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerenityError {
    /// A call to Discord's API failed.
    #[error("Discord API call to {call} failed: {source}")]
    Http {
        /// What the call was for.
        call: &'static str,
        /// Serenity's error.
        source: Box<::serenity::Error>,
    },
    /// A reply Discord would refuse.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The session's start or update failed, or the store did (the user was told).
    #[error(transparent)]
    Interactive(#[from] InteractiveError),
    /// The bot's own answer failed (the user was told).
    #[error("the answer failed: {0}")]
    Handler(BoxError),
    /// A modal as a second reply, or after a deferral or a first response: Discord
    /// shows a modal only as the first response.
    #[error("modal `{custom_id}` can only be the first response to an interaction")]
    LateModal {
        /// The modal's custom id.
        custom_id: String,
    },
    /// The end's edit of a component's message, with neither the channel nor the
    /// message known.
    #[error("no route to edit the component's message")]
    NoRoute,
    /// A PING (or an interaction kind serenity does not know) cannot be answered here.
    #[error("this interaction cannot be answered with a reply")]
    NotAnswerable,
    /// Building the router failed.
    #[error("setting up: {0}")]
    Setup(String),
}
