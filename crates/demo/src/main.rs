//! `bot-sessions-demo`: the demo bot on the console or on Telegram.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bot_sessions::SystemClock;
use bot_sessions_demo::bot::{Bot, BotConfig};
use bot_sessions_demo::telegram;
use clap::{Args, Parser, Subcommand};
use teloxide::prelude::Requester;

/// The bot-sessions demo bot: a counter, an onboarding form, a profile and a menu, kept
/// in a session store that survives restarts.
#[derive(Debug, Parser)]
#[command(name = "bot-sessions-demo", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    console: Settings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read messages from stdin (`<user>@<chat>: <text>` or `<text>`), answer on stdout
    /// (the default).
    Console(Settings),
    /// Run on Telegram (long polling): the token in TELOXIDE_TOKEN (from @BotFather),
    /// optionally another Bot API server in TELOXIDE_API_URL and a proxy in
    /// TELOXIDE_PROXY. Ctrl-C (or SIGTERM) stops it.
    Telegram(Settings),
}

#[derive(Debug, Clone, Args)]
struct Settings {
    /// Where sessions live: sqlite://PATH, memory://, redis://HOST:PORT,
    /// postgres://USER@HOST/DB.
    #[arg(long, value_name = "URL", default_value = "sqlite://./bot-sessions.db")]
    store: String,
    /// How long an unanswered onboarding form lives, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30 * 60, value_parser = clap::value_parser!(u64).range(1..))]
    onboarding_ttl: u64,
    /// How long a /menu lives without a click, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    menu_ttl: u64,
}

impl Settings {
    fn config(&self) -> BotConfig {
        BotConfig::default()
            .onboarding_ttl(Duration::from_secs(self.onboarding_ttl))
            .menu_ttl(Duration::from_secs(self.menu_ttl))
            .sweep_every(Some(Duration::from_secs(1)))
            .clock(Arc::new(SystemClock))
    }

    async fn open(&self, config: BotConfig) -> anyhow::Result<Bot> {
        let store = bot_sessions::store::open(&self.store)
            .await
            .with_context(|| format!("cannot open the session store {}", self.store))?;
        Ok(Bot::new(store, config).await?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Console(settings)) => console(&settings).await,
        None => console(&cli.console).await,
        Some(Command::Telegram(settings)) => on_telegram(&settings).await,
    }
}

async fn console(settings: &Settings) -> anyhow::Result<()> {
    let bot = settings.open(settings.config()).await?;
    let stdin = tokio::io::stdin();
    if std::io::stdin().is_terminal() {
        eprintln!(
            "bot-sessions demo, sessions in {}. Type /help. A line is `<user>@<chat>: <text>` or just <text> \
             (user 1 in chat 1); Ctrl-D quits.",
            settings.store
        );
    }
    bot_sessions_demo::console::run(&bot, tokio::io::BufReader::new(stdin), tokio::io::stdout())
        .await
        .context("console I/O failed")?;
    Ok(())
}

async fn on_telegram(settings: &Settings) -> anyhow::Result<()> {
    let api = telegram::bot_from_env()?;
    let me = api.get_me().await.context("cannot reach the Bot API (is TELOXIDE_TOKEN right?)")?;
    let bot = Arc::new(settings.open(settings.config().key(telegram::KEY)).await?);
    eprintln!(
        "bot-sessions demo on Telegram as @{}, sessions in {}. Ctrl-C stops it.",
        me.username.as_deref().unwrap_or(&me.first_name),
        settings.store
    );
    telegram::run(bot, api, stop_signal()).await?;
    eprintln!("stopped; open menus stay valid for the next start");
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix. If a handler cannot be installed, only the others stop
/// the bot.
async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
