//! A Telegram bot on a webhook that several processes can serve behind one URL: each
//! user's `/count` in each chat is kept in one store (Redis, PostgreSQL or one SQLite
//! file), so a load balancer may send any update to any process and every count is
//! exact.
//!
//! Each process calls `setWebhook` with the URL and the secret at start, serves
//! Telegram's POSTs at the URL's path on its own address, refuses a request without the
//! secret (401), and answers 200 once the update is handled. See the guide's Telegram
//! chapter for two processes behind nginx.
//!
//! Cargo.toml:
//!
//! ```toml
//! [dependencies]
//! bot-sessions = { version = "0.1", features = ["redis", "telegram-webhook"] }
//! teloxide = { version = "0.17", default-features = false, features = ["rustls"] }
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "signal"] }
//! ```
//!
//! Run (one process; start another with another `LISTEN`):
//!
//! ```text
//! TELOXIDE_TOKEN=... STORE=redis://127.0.0.1:6379 WEBHOOK_URL=https://bot.example.com/telegram \
//! WEBHOOK_SECRET=<1-256 of A-Z a-z 0-9 _ -> LISTEN=127.0.0.1:8081 \
//! cargo run --example telegram_webhook --features redis,telegram-webhook
//! ```

use std::future::Future;

use bot_sessions::telegram::{self, Session, UpdateDispatch, Webhook};
use bot_sessions::{DynStore, KeyStrategy, SessionError, Sessions, store};
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A count per user in each chat.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    n: u64,
}

/// The handler tree: `/count` counts.
///
/// ## Dependency requirements
///
/// - [`Sessions<Counter>`]
pub fn schema() -> UpdateHandler<Error> {
    Update::filter_message()
        .filter(|m: Message| m.text() == Some("/count"))
        .chain(telegram::enter::<Counter, _>())
        .endpoint(count)
}

async fn count(bot: Bot, msg: Message, counter: Session<Counter>) -> Result<(), Error> {
    let n = counter
        .update(|c| {
            c.n += 1;
            Ok::<_, SessionError>(c.n)
        })
        .await?;
    bot.send_message(msg.chat.id, format!("count: {n}")).await?;
    Ok(())
}

/// Registers `webhook` with Telegram and serves it on `tcp` until `shutdown`.
///
/// # Errors
///
/// `getMe` or `setWebhook` failing, a session setting out of range, serving failing.
pub async fn serve(
    bot: Bot,
    store: DynStore,
    webhook: Webhook,
    tcp: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let counters = Sessions::<Counter>::builder(store).namespace("counter").key(KeyStrategy::ChatUser).build()?;
    webhook.set(&bot).await?;
    let dispatch = UpdateDispatch::new(bot, schema(), dptree::deps![counters]).await?;
    webhook.serve(tcp, dispatch.on_update(|e| eprintln!("handler failed: {e}")), shutdown).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let store = store::open(&var("STORE")?).await?;
    let webhook = Webhook::new(&var("WEBHOOK_URL")?, &var("WEBHOOK_SECRET")?)?;
    let tcp = tokio::net::TcpListener::bind(var("LISTEN")?).await?;
    eprintln!("serving {} on http://{}{}", webhook.url(), tcp.local_addr()?, webhook.path());
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(Bot::from_env(), store, webhook, tcp, stop).await
}
