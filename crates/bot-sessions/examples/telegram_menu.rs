//! A Telegram bot with a typed session and a menu: `/size` opens a menu of sizes
//! (S, M, L) that only its opener can click; the pick is kept in the user's typed
//! session (`Prefs`), which `/prefs` shows. A menu left alone for five minutes says
//! `expired` and loses its buttons. Everything lives in SQLite (`menu.db`), so a
//! restart keeps the prefs and the open menus.
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
//! Run: `TELOXIDE_TOKEN=... MENU_SIGNING_KEY=<16 bytes or more> cargo run --example
//! telegram_menu --features telegram`.

use std::time::Duration;

use bot_sessions::interactive::{
    Button, CustomIdCodec, EndCx, EndEvent, EndReason, Interactive, Kind, Manager, Reply, SigningKeys, StartCx, Step,
    Target, UpdateCx, View,
};
use bot_sessions::store::BoxError;
use bot_sessions::telegram::{self, CallbackRouter, Session};
use bot_sessions::{DynStore, KeyStrategy, Runtime, SessionError, Sessions, Ttl, store};
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;

type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The typed session: one per user in each chat.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prefs {
    /// The size picked last.
    pub size: Option<String>,
    /// How many times a size was picked.
    pub picks: u32,
}

/// The menu: one button per size; a click saves the pick in the clicker's [`Prefs`].
/// Only the user who opened it may click (the default filter).
pub struct SizeMenu {
    prefs: Sessions<Prefs>,
}

const SIZES: [&str; 3] = ["S", "M", "L"];

impl Interactive for SizeMenu {
    type State = ();
    type Args = ();
    type Output = String;

    async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<(), BoxError> {
        let mut buttons = Vec::new();
        for size in SIZES {
            buttons.push(Button::new(size, cx.encode(&cx.custom_id("pick").push(size))?));
        }
        cx.reply(Reply::message(View::text("Pick a size").row(buttons)));
        Ok(())
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, _: &mut ()) -> Result<Step<String>, BoxError> {
        let size = cx.token(0).filter(|s| SIZES.contains(s)).ok_or("no such size")?.to_owned();
        let key = self.prefs.key(cx.context())?;
        self.prefs
            .update(&key, |p| {
                p.size = Some(size.clone());
                p.picks += 1;
                Ok::<_, SessionError>(())
            })
            .await?;
        cx.reply(Reply::close(format!("size: {size}")));
        Ok(Step::Finish(size))
    }

    async fn end(&self, cx: &mut EndCx<'_>, _: ()) -> Result<Option<String>, BoxError> {
        if cx.reason() != EndReason::Finished {
            cx.reply(Reply::close("expired"));
        }
        Ok(None)
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(5 * 60))
    }
}

/// The bot's parts, built on one store.
pub struct Parts {
    /// The typed sessions.
    pub prefs: Sessions<Prefs>,
    /// The interactive sessions.
    pub menus: Manager,
    /// The menu kind.
    pub kind: Kind<SizeMenu>,
}

/// Builds the sessions and the menu on `store`, the buttons signed with `signing_key`.
///
/// # Errors
///
/// A signing key under 16 bytes, a namespace taken.
pub fn parts(store: DynStore, signing_key: &[u8]) -> Result<Parts, BoxError> {
    let prefs = Sessions::<Prefs>::builder(store.clone()).namespace("prefs").key(KeyStrategy::ChatUser).build()?;
    let codec = CustomIdCodec::new("size", Target::Telegram)?.signed(SigningKeys::new([signing_key])?);
    let menus = Manager::builder(store, codec).build()?;
    let kind = menus.register("size", SizeMenu { prefs: prefs.clone() })?;
    Ok(Parts { prefs, menus, kind })
}

/// The handler tree: clicks to the menus, `/size`, `/prefs`.
///
/// ## Dependency requirements
///
/// - [`Sessions<Prefs>`], [`Manager`], [`Kind<SizeMenu>`]
pub fn schema(menus: Manager) -> UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>> {
    dptree::entry().branch(CallbackRouter::new(menus).handler::<Bot, _>()).branch(
        Update::filter_message().branch(dptree::filter(|m: Message| m.text() == Some("/size")).endpoint(size)).branch(
            dptree::filter(|m: Message| m.text() == Some("/prefs"))
                .chain(telegram::enter::<Prefs, _>())
                .endpoint(show_prefs),
        ),
    )
}

/// `/size`: the menu, opened, sent and recorded in one call.
async fn size(bot: Bot, msg: Message, menus: Manager, kind: Kind<SizeMenu>) -> HandlerResult {
    telegram::open_menu(&bot, &menus, &kind, &msg, ()).await?;
    Ok(())
}

/// `/prefs`: what the typed session holds.
async fn show_prefs(bot: Bot, msg: Message, prefs: Session<Prefs>) -> HandlerResult {
    let text = match prefs.get().await? {
        Some(Prefs { size: Some(size), picks }) => format!("size: {size} (picked {picks} times)"),
        _ => "no size yet: /size".to_owned(),
    };
    bot.send_message(msg.chat.id, text).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let store = store::open("sqlite://menu.db").await?;
    let key = std::env::var("MENU_SIGNING_KEY")?;
    let Parts { prefs, menus, kind } = parts(store, key.as_bytes())?;
    let bot = Bot::from_env();
    // Expired menus are edited to say so (the click that finishes one is shown by the
    // router already).
    let shower = bot.clone();
    let runtime = Runtime::builder()
        .manager(&menus)
        .on_end(move |end: EndEvent| {
            let shower = shower.clone();
            async move {
                if end.reason != EndReason::Finished {
                    let _ = telegram::show_end(&shower, &end, None).await;
                }
            }
        })
        .start()?;
    Dispatcher::builder(bot, schema(menus.clone()))
        .dependencies(dptree::deps![prefs, menus, kind])
        .build()
        .dispatch()
        .await;
    runtime.shutdown().await;
    Ok(())
}
