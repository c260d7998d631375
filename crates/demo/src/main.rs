//! `bot-sessions-demo`: the demo bot on the console (more transports to come).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bot_sessions::SystemClock;
use bot_sessions_demo::bot::{Bot, BotConfig};
use clap::{Args, Parser, Subcommand};

/// The bot-sessions demo bot: a counter, an onboarding form and a profile, kept in a
/// session store that survives restarts.
#[derive(Debug, Parser)]
#[command(name = "bot-sessions-demo", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    console: ConsoleArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read messages from stdin (`<user>@<chat>: <text>` or `<text>`), answer on stdout
    /// (the default).
    Console(ConsoleArgs),
}

#[derive(Debug, Clone, Args)]
struct ConsoleArgs {
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Console(args)) => args,
        None => cli.console,
    };
    let store = bot_sessions::store::open(&args.store)
        .await
        .with_context(|| format!("cannot open the session store {}", args.store))?;
    let config = BotConfig::default()
        .onboarding_ttl(Duration::from_secs(args.onboarding_ttl))
        .menu_ttl(Duration::from_secs(args.menu_ttl))
        .sweep_every(Some(Duration::from_secs(1)))
        .clock(Arc::new(SystemClock));
    let bot = Bot::new(store, config).await?;
    let stdin = tokio::io::stdin();
    if std::io::stdin().is_terminal() {
        eprintln!(
            "bot-sessions demo, sessions in {}. Type /help. A line is `<user>@<chat>: <text>` or just <text> \
             (user 1 in chat 1); Ctrl-D quits.",
            args.store
        );
    }
    bot_sessions_demo::console::run(&bot, tokio::io::BufReader::new(stdin), tokio::io::stdout())
        .await
        .context("console I/O failed")?;
    Ok(())
}
