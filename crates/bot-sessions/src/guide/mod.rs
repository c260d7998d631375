//! The guide: how to use bot-sessions, chapter by chapter.
//!
//! Every Rust example in these chapters is compiled by `cargo test --doc`, and those
//! that show a run are run, so none of them can rot. The API reference is the rest of
//! these docs; whole bots are in the crate's `examples/` folder.
//!
//! - [Getting started](getting_started): the demo bot on the console, Telegram and
//!   Discord.
//! - [Data sessions](data_sessions): a typed value per chat, user or topic, loaded and
//!   saved atomically; expiry hooks, listing, per-session TTLs.
//! - [Keys](keys): which session an update belongs to.
//! - [TTL and expiry](ttl_and_expiry): how long a session lives, telling the user, and
//!   what a changed TTL does to stored sessions.
//! - [Migrations](migrations): changing the shape of stored sessions.
//! - [Backends](backends): SQLite, Redis and PostgreSQL, their URLs and layouts.
//! - [What it guarantees](guarantees): no lost update, versions, ambiguous outcomes,
//!   expiry, bad bytes, erasure; fuzzing; what an acknowledged write means.
//! - [Production](production): TLS, Redis Cluster, durability, secrets in URLs,
//!   PostgreSQL operations, encryption and key rotation, reliability, observability.
//! - [The near cache](near_cache): one round trip per update on Redis and PostgreSQL.
//! - [Performance](performance): the benchmark report and what it measures.
//! - [Interactive sessions and conversations](interactive): buttons, menus, forms and
//!   text steps routed back to a live, expiring session; the runtime.
//! - [Telegram](telegram): teloxide, typed sessions in dptree, menus, `Dialogue` storage.
//! - [Discord](discord): HTTP interactions, serenity, poise, and on the gateway.
//! - [The operator tool](operator_tool): `bot-sessions`, to look into, fix, move and
//!   erase the sessions of a running bot.
//! - [Switching from another framework](switching): teloxide, grammY, aiogram,
//!   discord.py, nyx.

#[doc = include_str!("getting_started.md")]
pub mod getting_started {}

#[doc = include_str!("data_sessions.md")]
pub mod data_sessions {}

#[doc = include_str!("keys.md")]
pub mod keys {}

#[doc = include_str!("ttl.md")]
pub mod ttl_and_expiry {}

#[doc = include_str!("migrations.md")]
pub mod migrations {}

#[doc = include_str!("backends.md")]
pub mod backends {}

#[doc = include_str!("guarantees.md")]
pub mod guarantees {}

#[doc = include_str!("production.md")]
pub mod production {}

#[doc = include_str!("near_cache.md")]
pub mod near_cache {}

#[doc = include_str!("performance.md")]
pub mod performance {}

#[doc = include_str!("interactive.md")]
pub mod interactive {}

#[doc = include_str!("telegram.md")]
pub mod telegram {}

#[doc = include_str!("discord.md")]
pub mod discord {}

#[doc = include_str!("switching.md")]
pub mod switching {}

#[doc = include_str!("operator_tool.md")]
pub mod operator_tool {}
