//! The guide: how to use bot-sessions, chapter by chapter.
//!
//! Every Rust example in these chapters is compiled by `cargo test --doc`, and those
//! that show a run are run, so none of them can rot. The API reference is the rest of
//! these docs; whole bots are in the crate's `examples/` folder.
//!
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
//! - [Discord](discord): HTTP interactions, serenity and poise.
//! - [Switching from another framework](switching): teloxide, grammY, aiogram,
//!   discord.py, nyx.

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

#[doc = include_str!("discord.md")]
pub mod discord {}

#[doc = include_str!("switching.md")]
pub mod switching {}
