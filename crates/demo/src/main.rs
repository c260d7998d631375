//! `bot-sessions-demo`: the demo bot on the console, on Telegram or on Discord.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bot_sessions::SystemClock;
use bot_sessions_demo::bot::{Bot, BotConfig};
use bot_sessions_demo::{discord, register, telegram};
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
    /// Serve the session metrics in the Prometheus text format at
    /// http://ADDR/metrics, e.g. 127.0.0.1:9090 (port 0: any free port, printed).
    #[arg(long, value_name = "ADDR", global = true)]
    metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read messages from stdin (`<user>@<chat>: <text>` or `<text>`), answer on stdout
    /// (the default).
    Console(Settings),
    /// Run on Telegram (long polling, or a webhook with --webhook-listen): the token in
    /// TELOXIDE_TOKEN (from @BotFather), optionally another Bot API server in
    /// TELOXIDE_API_URL and a proxy in TELOXIDE_PROXY. Ctrl-C (or SIGTERM) stops it.
    ///
    /// Webhook: `--webhook-listen ADDR --webhook-url URL --webhook-secret SECRET` (the
    /// secret better in BOT_SESSIONS_WEBHOOK_SECRET) calls setWebhook with URL and the
    /// secret at start and serves Telegram's POSTs at URL's path on ADDR; a request
    /// without the secret gets 401.
    ///
    /// Two processes behind a proxy: give both the same --store (Redis, PostgreSQL or
    /// one SQLite file), the same --webhook-url and secret, and each its own
    /// --webhook-listen, e.g. 127.0.0.1:8081 and 127.0.0.1:8082; let the proxy that
    /// terminates https://bot.example.com spread /telegram over both (nginx: `upstream
    /// bot { server 127.0.0.1:8081; server 127.0.0.1:8082; }` and `location /telegram
    /// { proxy_pass http://bot; }`). They share every session, menu and form.
    #[command(verbatim_doc_comment)]
    Telegram(TelegramArgs),
    /// Run on Discord: the HTTP interactions endpoint at POST /interactions on
    /// --listen (paste its public URL, e.g. through a tunnel, into the developer
    /// portal's "Interactions Endpoint URL"). The bot token in DISCORD_TOKEN is
    /// optional: without it the channel-message fallback is off (a menu's message is
    /// edited only within its interaction token's 15 minutes) and expired onboarding
    /// forms are not told. Ctrl-C (or SIGTERM) stops it.
    ///
    /// With --gateway, the same bot connects to Discord's gateway instead (serenity; no
    /// public URL, no --listen or --public-key): the bot token in DISCORD_TOKEN is
    /// required. The menu's Set then reads your next message in the channel, which
    /// needs the Message Content intent (developer portal, Bot, Privileged Gateway
    /// Intents). Register the slash commands first with `register`.
    Discord(DiscordArgs),
    /// Register the slash commands (/count, /onboard, /profile, /forget, /menu) with
    /// Discord: replaces the application's global commands, or one guild's with
    /// --guild (shown at once there). The bot token comes from DISCORD_TOKEN or
    /// --token-file.
    Register(RegisterArgs),
}

#[derive(Debug, Clone, Args)]
struct TelegramArgs {
    #[command(flatten)]
    webhook: telegram::WebhookArgs,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Clone, Args)]
struct DiscordArgs {
    /// Connect to Discord's gateway (a serenity client) instead of serving the HTTP
    /// endpoint; the bot token in DISCORD_TOKEN is required.
    #[arg(long, conflicts_with_all = ["listen", "public_key"])]
    gateway: bool,
    /// Where to listen, e.g. 127.0.0.1:8080 (port 0: any free port, printed).
    #[arg(long, value_name = "ADDR", required_unless_present = "gateway")]
    listen: Option<std::net::SocketAddr>,
    /// The application's public key, in hex (developer portal, General Information).
    #[arg(long, value_name = "HEX", required_unless_present = "gateway")]
    public_key: Option<String>,
    /// The application id (developer portal, General Information): only shown, with
    /// the portal link, at start; interactions carry their own (on the gateway, READY
    /// tells it).
    #[arg(long, value_name = "ID")]
    application_id: Option<u64>,
    /// Discord's REST API (a test points it at a local server); on the gateway also
    /// where the gateway's URL is asked (GET /gateway/bot), and another URL than
    /// Discord's turns serenity's own rate limiter off (as behind an HTTP proxy that
    /// limits for it).
    #[arg(long, value_name = "URL", default_value = bot_sessions::discord::DEFAULT_BASE_URL)]
    api_url: String,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Clone, Args)]
struct RegisterArgs {
    /// Read the bot token (developer portal, Bot; without the `Bot ` prefix) from FILE;
    /// without it, from DISCORD_TOKEN. Never a flag: a command line shows in `ps`.
    #[arg(long, value_name = "FILE")]
    token_file: Option<std::path::PathBuf>,
    /// Refused: a token on the command line shows in `ps` (use DISCORD_TOKEN or
    /// --token-file).
    #[arg(long, hide = true, value_name = "TOKEN")]
    token: Option<String>,
    /// The application id (developer portal, General Information).
    #[arg(long, value_name = "ID")]
    application_id: u64,
    /// Register in this guild only (shown at once) instead of globally.
    #[arg(long, value_name = "GUILD_ID")]
    guild: Option<u64>,
    /// Discord's REST API (a test points it at a local server).
    #[arg(long, value_name = "URL", default_value = bot_sessions::discord::DEFAULT_BASE_URL)]
    api_url: String,
}

#[derive(Debug, Clone, Args)]
struct Settings {
    /// Where sessions live: sqlite://PATH, memory://, redis://HOST:PORT,
    /// postgres://USER@HOST/DB. A URL with a password belongs in BOT_SESSIONS_STORE (a
    /// command line shows in `ps`); it is never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "BOT_SESSIONS_STORE",
        hide_env_values = true,
        default_value = "sqlite://./bot-sessions.db"
    )]
    store: String,
    /// How long an unanswered onboarding form lives, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30 * 60, value_parser = clap::value_parser!(u64).range(1..))]
    onboarding_ttl: u64,
    /// How long a /menu lives without a click, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    menu_ttl: u64,
    /// Seal what the bot stores (the menu signing key, sessions, menus, Discord
    /// interaction tokens) with the key ring in FILE (`ID=HEX,...`, 32-byte keys, the
    /// newest last); without it, from BOT_SESSIONS_KEYS; with neither, they are stored
    /// in clear. Never a flag: a command line shows in `ps`.
    #[arg(long, value_name = "FILE")]
    keys_file: Option<std::path::PathBuf>,
}

impl Settings {
    fn config(&self) -> anyhow::Result<BotConfig> {
        Ok(BotConfig::default()
            .onboarding_ttl(Duration::from_secs(self.onboarding_ttl))
            .menu_ttl(Duration::from_secs(self.menu_ttl))
            .clock(Arc::new(SystemClock))
            .keys(self.key_ring()?))
    }

    /// The key ring from --keys-file or BOT_SESSIONS_KEYS (the text is never printed).
    fn key_ring(&self) -> anyhow::Result<Option<bot_sessions::encryption::KeyRing>> {
        let text = match &self.keys_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the key ring file {}", path.display()))?,
            None => match std::env::var("BOT_SESSIONS_KEYS") {
                Ok(text) => text,
                Err(std::env::VarError::NotPresent) => return Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("BOT_SESSIONS_KEYS is not UTF-8"),
            },
        };
        let ring = bot_sessions::encryption::KeyRing::parse(text.trim())
            .map_err(|e| anyhow::anyhow!("the key ring (--keys-file or BOT_SESSIONS_KEYS) is not valid: {e}"))?;
        Ok(Some(ring))
    }

    /// The store URL as printed: its password masked.
    fn shown_store(&self) -> String {
        bot_sessions::store::redact_url(&self.store)
    }

    async fn open(&self, config: BotConfig) -> anyhow::Result<Bot> {
        let store = bot_sessions::store::open(&self.store)
            .await
            .map_err(|e| anyhow::anyhow!(bot_sessions::store::redact_url_in(&e.to_string(), &self.store)))
            .with_context(|| format!("cannot open the session store {}", self.shown_store()))?;
        Ok(Bot::new(store, config).await?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(addr) = cli.metrics {
        let bound = bot_sessions_demo::metrics::serve(addr).await?;
        eprintln!("metrics on http://{bound}/metrics");
    }
    match cli.command {
        Some(Command::Console(settings)) => console(&settings).await,
        None => console(&cli.console).await,
        Some(Command::Telegram(args)) => on_telegram(&args).await,
        Some(Command::Discord(args)) => on_discord(&args).await,
        Some(Command::Register(args)) => register_commands(&args).await,
    }
}

async fn console(settings: &Settings) -> anyhow::Result<()> {
    let bot = settings.open(settings.config()?).await?;
    let stdin = tokio::io::stdin();
    if std::io::stdin().is_terminal() {
        eprintln!(
            "bot-sessions demo, sessions in {}. Type /help. A line is `<user>@<chat>: <text>` or just <text> \
             (user 1 in chat 1); Ctrl-D quits.",
            settings.shown_store()
        );
    }
    bot_sessions_demo::console::run(&bot, tokio::io::BufReader::new(stdin), tokio::io::stdout())
        .await
        .context("console I/O failed")?;
    Ok(())
}

async fn on_telegram(args: &TelegramArgs) -> anyhow::Result<()> {
    let settings = &args.settings;
    let webhook = args.webhook.webhook()?;
    let api = telegram::bot_from_env()?;
    let me = api.get_me().await.context("cannot reach the Bot API (is TELOXIDE_TOKEN right?)")?;
    let bot = Arc::new(settings.open(settings.config()?.key(telegram::KEY)).await?);
    eprintln!(
        "bot-sessions demo on Telegram as @{}, sessions in {}. Ctrl-C stops it.",
        me.username.as_deref().unwrap_or(&me.first_name),
        settings.shown_store()
    );
    match webhook {
        None => telegram::run(bot, api, stop_signal()).await?,
        Some((webhook, addr)) => {
            let tcp = telegram::bind(addr).await?;
            let bound = tcp.local_addr().context("the listener has no address")?;
            eprintln!(
                "webhook {} served on http://{bound}{}",
                bot_sessions::store::redact_url(webhook.url().as_str()),
                webhook.path()
            );
            telegram::run_webhook(bot, api, webhook, tcp, stop_signal()).await?;
        }
    }
    eprintln!("stopped; open menus stay valid for the next start");
    Ok(())
}

async fn on_discord(args: &DiscordArgs) -> anyhow::Result<()> {
    if args.gateway {
        return on_gateway(args).await;
    }
    let (Some(public_key), Some(listen)) = (&args.public_key, args.listen) else {
        anyhow::bail!("--listen and --public-key are required without --gateway");
    };
    let key = bot_sessions::discord::PublicKey::from_hex(public_key.trim())
        .with_context(|| format!("--public-key `{public_key}` is not an Ed25519 public key in hex"))?;
    let token = std::env::var(discord::TOKEN_VAR).ok().filter(|t| !t.trim().is_empty());
    let has_token = token.is_some();
    let rest = discord::rest(&args.api_url, token).with_context(|| format!("cannot use --api-url {}", args.api_url))?;
    let settings = &args.settings;
    let bot = Arc::new(settings.open(settings.config()?.key(discord::KEY)).await?);
    let on_discord = discord::Discord::new(bot, key, rest)?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr().context("the listener has no address")?;
    eprintln!("bot-sessions demo on Discord, sessions in {}", settings.shown_store());
    if !has_token {
        eprintln!("no {} set: the channel-message fallback is off", discord::TOKEN_VAR);
    }
    if let Some(app) = args.application_id {
        eprintln!(
            "paste https://<your public host>/interactions into https://discord.com/developers/applications/{app}/information"
        );
    }
    eprintln!("listening on http://{addr}/interactions; Ctrl-C stops it");
    on_discord.serve(listener, stop_signal()).await.context("the endpoint failed")?;
    eprintln!("stopped; open menus stay valid for the next start");
    Ok(())
}

/// `discord --gateway`: the bot as a serenity gateway client.
async fn on_gateway(args: &DiscordArgs) -> anyhow::Result<()> {
    let token = std::env::var(discord::TOKEN_VAR)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .with_context(|| format!("--gateway needs the bot token in {}", discord::TOKEN_VAR))?;
    let rest = discord::rest(&args.api_url, Some(token.clone()))
        .with_context(|| format!("cannot use --api-url {}", args.api_url))?;
    let settings = &args.settings;
    let bot = Arc::new(settings.open(settings.config()?.key(discord::KEY)).await?);
    let gateway = discord::gateway::Gateway::new(bot, rest)?;
    eprintln!("bot-sessions demo on Discord's gateway, sessions in {}", settings.shown_store());
    gateway.run(&token, &args.api_url, args.application_id, stop_signal()).await?;
    eprintln!("stopped; open menus stay valid for the next start");
    Ok(())
}

/// The bot token of `register`: from `--token-file` or `DISCORD_TOKEN`, never a flag.
fn register_token(args: &RegisterArgs) -> anyhow::Result<String> {
    if args.token.is_some() {
        anyhow::bail!(
            "--token is not taken: a token on the command line shows in `ps`; set {} or pass --token-file FILE",
            discord::TOKEN_VAR
        );
    }
    match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .with_context(|| format!("cannot read --token-file {}", path.display())),
        None => std::env::var(discord::TOKEN_VAR)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .with_context(|| format!("no bot token: set {} or pass --token-file FILE", discord::TOKEN_VAR)),
    }
}

async fn register_commands(args: &RegisterArgs) -> anyhow::Result<()> {
    let token = register_token(args)?;
    let n = register::register(&args.api_url, &token, args.application_id, args.guild).await?;
    match args.guild {
        Some(guild) => eprintln!("registered {n} commands in guild {guild}"),
        None => eprintln!("registered {n} global commands (they may take a moment to show)"),
    }
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
