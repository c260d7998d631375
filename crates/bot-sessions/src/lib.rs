//! Persistent, concurrency-safe conversational state for chat bots.
//!
//! See the crate README for the tour; the layers, bottom up:
//!
//! - [`store`]: the [`Store`] trait every backend implements ([`store::memory`] always;
//!   SQLite, Redis and PostgreSQL behind features);
//! - [`session`]: [`Sessions<T>`], the typed API bot code calls (keys, TTL, codec,
//!   migrations, in-process key locks, compare-and-set retry);
//! - `interactive` (feature `interactive`): components that route back to a live
//!   session;
//! - `telegram` (feature `telegram`): teloxide integration: [`Context`] from updates,
//!   sessions injected into dptree handlers, a dialogue `Storage`, callback-query
//!   routing for interactive sessions, group-to-supergroup migration;
//! - `discord` (feature `discord`): Discord over HTTP interactions: [`Context`] from
//!   twilight-model interactions, an axum endpoint verifying Ed25519 signatures that
//!   routes clicks, selects and modal submits to interactive sessions and renders their
//!   replies, a REST client that edits a session's message when it ends; with
//!   `serenity` / `poise`, the same on serenity's gateway (`discord::serenity`: context
//!   from serenity's interactions, replies in its builders, a router with the deferral,
//!   data sessions from `poise::Context`);
//! - `runtime` (feature `interactive`): [`Runtime`], one value
//!   that runs the sweepers, shows the ends and shuts down gracefully;
//! - [`observe`]: the tracing spans and `metrics` every operation emits, and their names;
//! - `testing` (feature `testing`): the conformance suite every backend runs.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
pub mod codec;
mod context;
// The guide: chapters of Markdown whose examples are doc tests (docs.rs is the guide).
#[cfg(any(doc, doctest))]
pub mod guide;
pub mod key;
pub mod observe;
mod record;
#[cfg(feature = "interactive")]
pub mod runtime;
pub mod session;
pub mod store;

#[cfg(feature = "discord")]
pub mod discord;
#[cfg(feature = "encryption")]
pub mod encryption;
#[cfg(feature = "listener")]
pub mod http;
#[cfg(feature = "interactive")]
pub mod interactive;
#[cfg(feature = "telegram")]
pub mod telegram;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use codec::Codec;
pub use context::{ChatKind, Component, ComponentKind, Context, Extensions, ReplyRef};
pub use key::{KeyError, KeyStrategy, Namespace, Scope, SessionKey};
pub use record::{Precondition, Record, Write, new_version};
#[cfg(feature = "interactive")]
pub use runtime::Runtime;
pub use session::{DecodePolicy, Migrations, SessionError, SessionGuard, Sessions, Ttl};
pub use store::{DynStore, InProcess, Page, Pipeline, Queued, Store, StoreError, Taken, TypedValue};

/// The README's Rust code blocks, run as doctests so that a documented example can
/// never rot (blocks that need a bot token or a server are `no_run`: compiled only).
#[cfg(all(doctest, feature = "telegram", feature = "postgres", feature = "encryption"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
