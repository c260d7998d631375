//! teloxide's own `examples/dialogue.rs`, with its dialogues kept by bot-sessions: the
//! same handlers, the same `dptree::case!` routing on the state, one line changed
//! (`InMemStorage` becomes [`DialogueStorage`] over a store). The dialogues now survive
//! a restart, can be shared by several processes, and expire after an hour idle.
//! (teloxide's example also enables its Ctrl-C handler, which needs teloxide's
//! `ctrlc_handler` feature; without it Ctrl-C stops the bot at once.)
//!
//! A conversation: `/start` (or any message) asks for the full name, then the age, then
//! the location, and sums them up.
//!
//! Cargo.toml:
//!
//! ```toml
//! [dependencies]
//! bot-sessions = { version = "0.1", features = ["sqlite", "telegram"] }
//! teloxide = { version = "0.17", default-features = false, features = ["rustls"] }
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! Run: `TELOXIDE_TOKEN=... cargo run --example telegram_dialogue --features telegram`.

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::telegram::DialogueStorage;
use bot_sessions::{DynStore, SessionError, Ttl, store};
use teloxide::dispatching::UpdateHandler;
use teloxide::dispatching::dialogue::Dialogue;
use teloxide::prelude::*;

/// The dialogue's storage: teloxide's `Dialogue` over any bot-sessions store.
pub type Storage = DialogueStorage<State>;
type MyDialogue = Dialogue<State, Storage>;
type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Where the conversation is (stored as JSON, so it must be serde).
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub enum State {
    /// Nothing asked yet.
    #[default]
    Start,
    /// The full name was asked.
    ReceiveFullName,
    /// The age was asked.
    ReceiveAge {
        /// The name given.
        full_name: String,
    },
    /// The location was asked.
    ReceiveLocation {
        /// The name given.
        full_name: String,
        /// The age given.
        age: u8,
    },
}

/// The storage: the dialogues in `store`, gone after an hour without a message.
///
/// # Errors
///
/// A namespace or TTL out of range.
pub fn storage(store: DynStore) -> Result<Arc<Storage>, SessionError> {
    DialogueStorage::<State>::builder(store).ttl(Ttl::idle(Duration::from_secs(3600))).build()
}

/// The handler tree, as in teloxide's example (with its `Arc<Storage>` dependency).
pub fn schema() -> UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>> {
    Update::filter_message()
        .enter_dialogue::<Message, Storage, State>()
        .branch(dptree::case![State::Start].endpoint(start))
        .branch(dptree::case![State::ReceiveFullName].endpoint(receive_full_name))
        .branch(dptree::case![State::ReceiveAge { full_name }].endpoint(receive_age))
        .branch(dptree::case![State::ReceiveLocation { full_name, age }].endpoint(receive_location))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = store::open("sqlite://dialogues.db").await?;
    let bot = Bot::from_env();
    Dispatcher::builder(bot, schema()).dependencies(dptree::deps![storage(store)?]).build().dispatch().await;
    Ok(())
}

async fn start(bot: Bot, dialogue: MyDialogue, msg: Message) -> HandlerResult {
    bot.send_message(msg.chat.id, "Let's start! What's your full name?").await?;
    dialogue.update(State::ReceiveFullName).await?;
    Ok(())
}

async fn receive_full_name(bot: Bot, dialogue: MyDialogue, msg: Message) -> HandlerResult {
    match msg.text() {
        Some(text) => {
            bot.send_message(msg.chat.id, "How old are you?").await?;
            dialogue.update(State::ReceiveAge { full_name: text.into() }).await?;
        }
        None => {
            bot.send_message(msg.chat.id, "Send me plain text.").await?;
        }
    }
    Ok(())
}

async fn receive_age(bot: Bot, dialogue: MyDialogue, full_name: String, msg: Message) -> HandlerResult {
    match msg.text().map(|text| text.parse::<u8>()) {
        Some(Ok(age)) => {
            bot.send_message(msg.chat.id, "What's your location?").await?;
            dialogue.update(State::ReceiveLocation { full_name, age }).await?;
        }
        _ => {
            bot.send_message(msg.chat.id, "Send me a number.").await?;
        }
    }
    Ok(())
}

async fn receive_location(
    bot: Bot,
    dialogue: MyDialogue,
    (full_name, age): (String, u8),
    msg: Message,
) -> HandlerResult {
    match msg.text() {
        Some(location) => {
            let report = format!("Full name: {full_name}\nAge: {age}\nLocation: {location}");
            bot.send_message(msg.chat.id, report).await?;
            dialogue.exit().await?;
        }
        None => {
            bot.send_message(msg.chat.id, "Send me plain text.").await?;
        }
    }
    Ok(())
}
