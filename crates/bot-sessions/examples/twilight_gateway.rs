//! A gateway bot on twilight: twilight-gateway's `Shard` receives the events, and
//! each `INTERACTION_CREATE` is answered by the same code as the HTTP endpoint's
//! requests (`Endpoint::respond`: sessions, commands, the deferral after 2.5 s), sent
//! back with `Rest::create_response`. `/counter` opens a counter only its opener
//! clicks (an interactive session); `/visits` counts your visits in this server (a
//! data session per user per guild).
//!
//! The shard's loop only forwards interactions into a channel, and [`serve`] answers
//! what comes out of it: the same bot takes events from several shards, a queue
//! between processes, or a test.
//!
//! Cargo.toml:
//!
//! ```toml
//! [dependencies]
//! bot-sessions = { version = "0.1", features = ["discord"] }
//! twilight-gateway = "0.18"  # its TLS needs a rustls crypto provider: see its README
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! Run: `DISCORD_TOKEN=... cargo run --example twilight_gateway --features discord`
//! (register `/counter` and `/visits` first, e.g. with `Rest::register_commands`).

use bot_sessions::discord::twilight_model::application::interaction::Interaction;
use bot_sessions::discord::twilight_model::gateway::payload::incoming::InteractionCreate;
use bot_sessions::discord::{CommandDef, CommandRouter, Endpoint, PublicKey, Rest};
use bot_sessions::interactive::{
    Button, CustomIdCodec, Interactive, Kind, Manager, Reply, StartCx, Step, Target, UpdateCx, View,
};
use bot_sessions::store::BoxError;
use bot_sessions::{Context, DynStore, KeyStrategy, SessionError, Sessions, store};
use tokio::sync::mpsc;
use twilight_gateway::{Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _};

/// A counter: +1 until Done.
pub struct Counter;

fn counter(n: u64, id: impl Fn(&str) -> Result<String, BoxError>) -> Result<View, BoxError> {
    Ok(View::text(format!("count: {n}")).row([Button::new("+1", id("inc")?), Button::new("Done", id("done")?)]))
}

impl Interactive for Counter {
    type State = u64;
    type Args = ();
    type Output = u64;

    async fn start(&self, cx: &mut StartCx<'_>, (): ()) -> Result<u64, BoxError> {
        cx.reply(Reply::message(counter(0, |c| Ok(cx.encode(&cx.custom_id(c))?))?));
        Ok(0)
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, n: &mut u64) -> Result<Step<u64>, BoxError> {
        if cx.component() == "done" {
            cx.reply(Reply::close(format!("final: {n}")));
            return Ok(Step::Finish(*n));
        }
        *n += 1;
        cx.reply(Reply::edit(counter(*n, |c| Ok(cx.encode(&cx.custom_id(c))?))?));
        Ok(Step::keep())
    }
}

/// What the commands share.
#[derive(Clone)]
struct Bot {
    manager: Manager,
    counter: Kind<Counter>,
    visits: Sessions<u64>,
}

/// The bot's answers (the endpoint's logic, its HTTP listener unused: the gateway's
/// events carry no signature to check) and the manager of its sessions.
pub fn endpoint(store: DynStore) -> Result<(Endpoint, Manager), BoxError> {
    let manager = Manager::builder(store.clone(), CustomIdCodec::new("c", Target::Discord)?).build()?;
    let counter = manager.register("counter", Counter)?;
    let visits = Sessions::builder(store).namespace("visits").key(KeyStrategy::GuildUser).build()?;
    let commands = CommandRouter::new(Bot { manager: manager.clone(), counter, visits })
        .command(CommandDef::slash("counter", "Open a counter"), |bot: Bot, ctx: Context| async move {
            Ok(bot.manager.start(&bot.counter, &ctx, ()).await?.reply)
        })
        .command(CommandDef::slash("visits", "Count your visits here"), |bot: Bot, ctx: Context| async move {
            let key = bot.visits.key(&ctx)?;
            let n = bot
                .visits
                .update(&key, |n| {
                    Ok::<_, SessionError>({
                        *n += 1;
                        *n
                    })
                })
                .await?;
            Ok(Some(Reply::notice(format!("visits here: {n}"))))
        });
    // The key checks HTTP requests only (`respond` checks none): any valid key does,
    // here Ed25519's base point.
    let unused = PublicKey::from_hex(&format!("58{}", "66".repeat(31)))?;
    Ok((Endpoint::builder(unused).manager(manager.clone()).handler(commands).build()?, manager))
}

/// Answers every interaction `events` yields, each in its own task, until the channel
/// closes.
pub async fn serve(endpoint: Endpoint, rest: Rest, mut events: mpsc::Receiver<InteractionCreate>) {
    while let Some(InteractionCreate(interaction)) = events.recv().await {
        let (endpoint, rest) = (endpoint.clone(), rest.clone());
        tokio::spawn(async move { answer(&endpoint, &rest, interaction).await });
    }
}

async fn answer(endpoint: &Endpoint, rest: &Rest, interaction: Interaction) {
    let (id, token) = (interaction.id.get(), interaction.token.clone());
    let response = endpoint.respond(interaction).await;
    if let Err(error) = rest.create_response(id, &token, &response).await {
        eprintln!("cannot answer interaction {id}: {error}");
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let token = std::env::var("DISCORD_TOKEN")?;
    let (endpoint, manager) = endpoint(store::open("sqlite://counters.db").await?)?;
    let rest = Rest::builder().bot_token(token.clone()).build()?;
    let _ends = endpoint.ends().spawn(&manager); // an expired counter's message is edited
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(serve(endpoint, rest, rx));
    // twilight-gateway's event stream, wired in: interactions into the channel.
    let mut shard = Shard::new(ShardId::ONE, token, Intents::empty());
    while let Some(item) = shard.next_event(EventTypeFlags::INTERACTION_CREATE).await {
        match item {
            Ok(Event::InteractionCreate(event)) => tx.send(*event).await?,
            Ok(_) => {}
            Err(error) => eprintln!("gateway: {error}"),
        }
    }
    Ok(())
}
