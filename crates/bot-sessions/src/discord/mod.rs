//! Discord over HTTP interactions (feature `discord`), on
//! [twilight-model](https://docs.rs/twilight-model) types and [axum](https://docs.rs/axum).
//!
//! - [`context_of`]: the [`Context`](crate::Context) of an interaction: guild member or
//!   DM user, guild, channel (a thread is its own channel: see
//!   [`context`](mod@context) for what keys mean there), the command
//!   ([`Command`] in the extensions), the clicked button, a select menu's values, a
//!   modal's fields, and the interaction id and token to answer with.
//!   [`parse_interaction`] reads a request body, older payload shapes included.
//! - [`Endpoint`]: the interactions endpoint as an axum `Router`, to mount in an app or
//!   [`serve`](Endpoint::serve) alone. It verifies the Ed25519 signature of every
//!   request ([`PublicKey`]; 401 and nothing else otherwise), refuses replays (a
//!   timestamp out of the window, an interaction id seen already, in any process
//!   sharing the store: [`replay`](mod@replay)), answers PINGs, routes
//!   component clicks and modal submits to the interactive
//!   [`Manager`](crate::interactive::Manager) and everything else to the bot's
//!   [`Handler`], renders the answer as the interaction response
//!   ([`interaction_response`]), and defers when the answer takes too long, sending it
//!   over REST when ready.
//! - [`Rest`]: the REST calls: edit the original response (interaction token) or a
//!   channel message (bot token), follow-ups; timeouts; 429 `retry_after` honoured.
//! - [`Ends`]: shows what a session's `end` answered when no click did (an expiry
//!   edits its message to remove the components), finding the message in
//!   [`Messages`], which the endpoint keeps up to date.
//! - `serenity` (features `serenity`, `poise`): the same for gateway bots on serenity
//!   and poise, in their own types and response flow.
//!
//! # A bot in a few lines
//!
//! ```no_run
//! use bot_sessions::discord::{Command, Endpoint, PublicKey, Rest};
//! use bot_sessions::interactive::{CustomIdCodec, Manager, View, Reply, SigningKeys, Target};
//! use bot_sessions::store;
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = store::open("sqlite://sessions.db").await?;
//! let keys = SigningKeys::new([b"a secret of 32 bytes or more....".to_vec()])?;
//! let manager = Manager::builder(store, CustomIdCodec::new("m", Target::Discord)?.signed(keys)).build()?;
//! // manager.register("menu", Menu)? ... (an Interactive kind)
//! let rest = Rest::builder().bot_token(std::env::var("DISCORD_TOKEN")?).build()?;
//! let endpoint = Endpoint::builder(PublicKey::from_hex(&std::env::var("DISCORD_PUBLIC_KEY")?)?)
//!     .manager(manager.clone())
//!     .rest(rest)
//!     .handler(|ctx: bot_sessions::Context, _interaction| async move {
//!         let name = ctx.extensions.get::<Command>().map(|c| c.name.clone());
//!         Ok(Some(Reply::message(View::text(format!("hello from /{}", name.unwrap_or_default())))))
//!     })
//!     .build()?;
//! let _ends = endpoint.ends().spawn(&manager);
//! endpoint.serve("0.0.0.0:8080".parse()?).await?;
//! # Ok(()) }
//! ```

mod commands;
pub mod context;
mod dispatch;
mod embed;
mod endpoint;
mod ends;
mod handler;
mod limits;
mod messages;
mod parse;
pub mod replay;
mod response;
mod rest;
#[cfg(feature = "serenity")]
pub mod serenity;
mod shared;
mod signature;

pub use commands::{CommandDef, CommandDefError, CommandRouter};
pub use context::{ChannelInfo, Command, InteractionInfo, context_of};
pub use embed::{MAX_EMBED_FIELDS, MAX_EMBED_TOTAL, MAX_EMBEDS, check_embeds, embeds};
pub use endpoint::{Endpoint, EndpointBuilder, EndpointError, Stats};
pub use ends::{EndError, EndShown, Ends};
pub use handler::{Handler, HandlerFuture, Texts};
pub use messages::{DEFAULT_NAMESPACE, INDEX_LIMIT, MessageRef, Messages, Shown, TOKEN_VALIDITY};
pub use parse::{ParseError, interaction_type, parse_interaction};
pub use replay::{DEFAULT_REPLAY_WINDOW, ReplayError, SEEN_NAMESPACE};
pub use response::{
    MAX_BUTTONS_PER_ROW, MAX_CONTENT, MAX_MODAL_TITLE, MAX_OPTIONS, MAX_ROWS, RenderError, bare, components, ephemeral,
    interaction_response, message_data, modal_data,
};
pub use rest::{DEFAULT_BASE_URL, Rest, RestBuilder, RestError};
pub use signature::{PublicKey, PublicKeyError, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER};

/// Re-exported so that bot code names the same versions as this crate.
pub use axum;
/// Re-exported so that bot code names the same versions as this crate.
pub use twilight_model;
