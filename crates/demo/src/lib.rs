//! The bot-sessions demo bot.
//!
//! - [`bot`]: the logic (a counter, an onboarding form, a profile, forget-me, and the
//!   interactive [`menu`]), free of any transport;
//! - [`console`]: the transport that reads messages from stdin and answers on stdout;
//! - [`telegram`]: the transport that runs the same bot on Telegram (teloxide, long
//!   polling);
//! - [`discord`]: the transport that runs the same bot behind Discord's HTTP
//!   interactions endpoint or on its gateway ([`discord::gateway`], serenity), and
//!   [`register`], which registers its slash commands;
//! - [`metrics`]: `--metrics ADDR`, the library's metrics in the Prometheus format.
//!
//! Run it with `cargo run -p bot-sessions-demo` and type `/help`, or on Telegram with
//! `TELOXIDE_TOKEN=<token from @BotFather> cargo run -p bot-sessions-demo -- telegram`, or on
//! Discord with `cargo run -p bot-sessions-demo -- discord --listen 127.0.0.1:8080
//! --public-key <hex>` (see the README).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bot;
pub mod console;
pub mod discord;
pub mod menu;
pub mod metrics;
pub mod profile;
pub mod register;
pub mod telegram;
