//! The guide: how to use bot-sessions, chapter by chapter.
//!
//! Every Rust example in these chapters is compiled and run by `cargo test --doc`, so
//! none of them can rot. The API reference is the rest of these docs; runnable bots are
//! in the crate's `examples/` folder.
//!
//! 1. [Keys](keys): which session an update belongs to.
//! 2. [TTL and expiry](ttl_and_expiry): how long a session lives, and telling the user.
//! 3. [Migrations](migrations): changing the shape of stored sessions.
//! 4. [Switching from another framework](switching): teloxide, grammY, aiogram,
//!    discord.py, nyx.

#[doc = include_str!("keys.md")]
pub mod keys {}

#[doc = include_str!("ttl.md")]
pub mod ttl_and_expiry {}

#[doc = include_str!("migrations.md")]
pub mod migrations {}

#[doc = include_str!("switching.md")]
pub mod switching {}
