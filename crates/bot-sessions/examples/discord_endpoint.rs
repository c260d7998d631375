//! A Discord bot on the HTTP interactions endpoint (no gateway: Discord POSTs each
//! interaction to your URL). `/clicker` opens a game only its opener can play (an
//! interactive session: +1 until Done), and Done adds the game to the player's score
//! in this server (a data session per user per guild), which `/score` shows.
//!
//! The sessions live in SQLite (`clicker.db`): a restart keeps open games and scores.
//! A game left alone for ten minutes ends by itself, and its message is edited to say
//! so (the `Runtime` sweeps, `Ends` edits).
//!
//! Cargo.toml:
//!
//! ```toml
//! [dependencies]
//! bot-sessions = { version = "0.1", features = ["discord"] }
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net", "signal"] }
//! ```
//!
//! Run: `DISCORD_PUBLIC_KEY=<hex> DISCORD_TOKEN=<bot token> DISCORD_APPLICATION_ID=<id>
//! cargo run --example discord_endpoint --features discord`, make 127.0.0.1:8080
//! public (a tunnel) and paste `https://<host>/interactions` into the developer
//! portal's "Interactions Endpoint URL". The commands are registered at start.

use std::time::Duration;

use bot_sessions::discord::{CommandDef, CommandRouter, Endpoint, PublicKey, Rest};
use bot_sessions::interactive::{
    Button, ButtonStyle, CustomIdCodec, EndCx, EndReason, Interactive, Kind, Manager, Reply, StartCx, Step, Target,
    UpdateCx, View,
};
use bot_sessions::store::BoxError;
use bot_sessions::{Context, DynStore, KeyStrategy, Runtime, SessionError, Sessions, Ttl, store};

/// One player's score in one server.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// Games finished.
    pub games: u64,
    /// The most clicks in one game.
    pub best: u64,
}

/// The game: its clicks are its state; Done writes the score.
pub struct Clicker {
    scores: Sessions<Score>,
}

fn board(clicks: u64, id: impl Fn(&str) -> Result<String, BoxError>) -> Result<View, BoxError> {
    let buttons = [Button::new("+1", id("inc")?), Button::new("Done", id("done")?).style(ButtonStyle::Success)];
    Ok(View::text(format!("clicks: {clicks}")).row(buttons))
}

impl Interactive for Clicker {
    type State = u64;
    type Args = ();
    type Output = u64;

    async fn start(&self, cx: &mut StartCx<'_>, (): ()) -> Result<u64, BoxError> {
        cx.reply(Reply::message(board(0, |c| Ok(cx.encode(&cx.custom_id(c))?))?));
        Ok(0)
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, clicks: &mut u64) -> Result<Step<u64>, BoxError> {
        if cx.component() == "done" {
            let n = *clicks;
            let key = self.scores.key(cx.context())?; // this user in this server
            let best = self
                .scores
                .update(&key, |s| {
                    s.games += 1;
                    s.best = s.best.max(n);
                    Ok::<_, SessionError>(s.best)
                })
                .await?;
            cx.reply(Reply::close(format!("done: {n} clicks (your best here: {best})")));
            return Ok(Step::Finish(n));
        }
        *clicks += 1;
        cx.reply(Reply::edit(board(*clicks, |c| Ok(cx.encode(&cx.custom_id(c))?))?));
        Ok(Step::keep())
    }

    async fn end(&self, cx: &mut EndCx<'_>, clicks: u64) -> Result<Option<u64>, BoxError> {
        // Done answered itself; an expiry (or a shutdown) says so on the message.
        if cx.reason() != EndReason::Finished {
            cx.reply(Reply::close(format!("game over: {clicks} clicks, not counted")));
        }
        Ok(None)
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(600))
    }
}

/// What the command handlers share.
#[derive(Clone)]
pub struct Bot {
    manager: Manager,
    clicker: Kind<Clicker>,
    scores: Sessions<Score>,
}

/// The slash commands: what the endpoint answers, and what is registered.
pub fn commands(bot: Bot) -> CommandRouter<Bot> {
    CommandRouter::new(bot)
        .command(CommandDef::slash("clicker", "Play a game of clicks"), |bot: Bot, ctx: Context| async move {
            Ok(bot.manager.start(&bot.clicker, &ctx, ()).await?.reply)
        })
        .command(CommandDef::slash("score", "Your score in this server"), |bot: Bot, ctx: Context| async move {
            let score = bot.scores.get(&bot.scores.key(&ctx)?).await?.unwrap_or_default();
            Ok(Some(Reply::notice(format!("games: {}, best: {}", score.games, score.best))))
        })
}

/// The bot's parts: the endpoint, the manager of the games, the commands to register.
pub struct App {
    /// Serves `POST /interactions`.
    pub endpoint: Endpoint,
    /// The games.
    pub manager: Manager,
    /// What to register with Discord.
    pub commands: Vec<CommandDef>,
}

/// The bot on `store`, verifying requests with `key`; `rest` edits the messages of
/// games that end unclicked.
pub fn app(store: DynStore, key: PublicKey, rest: Rest) -> Result<App, BoxError> {
    let scores = Sessions::builder(store.clone()).namespace("score").key(KeyStrategy::GuildUser).build()?;
    let manager = Manager::builder(store, CustomIdCodec::new("clicker", Target::Discord)?).build()?;
    let clicker = manager.register("clicker", Clicker { scores: scores.clone() })?;
    let router = commands(Bot { manager: manager.clone(), clicker, scores });
    let commands = router.definitions().to_vec();
    let endpoint = Endpoint::builder(key).manager(manager.clone()).rest(rest).handler(router).build()?;
    Ok(App { endpoint, manager, commands })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let key = PublicKey::from_hex(&std::env::var("DISCORD_PUBLIC_KEY")?)?;
    let rest = Rest::builder().bot_token(std::env::var("DISCORD_TOKEN")?).build()?;
    let app = app(store::open("sqlite://clicker.db").await?, key, rest.clone())?;
    if let Ok(id) = std::env::var("DISCORD_APPLICATION_ID") {
        rest.register_commands(id.parse()?, None, &app.commands).await?;
    }
    // Sweeps expired games; `Ends` edits their messages.
    let ends = app.endpoint.ends();
    let runtime = Runtime::builder()
        .manager(&app.manager)
        .on_end(move |event| {
            let ends = ends.clone();
            async move {
                if let Err(error) = ends.show(&event).await {
                    eprintln!("cannot show the end of game {}: {error}", event.session);
                }
            }
        })
        .start()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    app.endpoint.serve_on(listener, async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
    runtime.shutdown().await; // open games stay in the store for the next start
    Ok(())
}
