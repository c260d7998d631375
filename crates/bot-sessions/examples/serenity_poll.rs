//! A serenity gateway bot with an interactive poll: `/poll question: Lunch? options:
//! Pizza, Sushi` posts buttons; anyone votes (a second click changes the vote), the
//! opener closes it, and a poll left alone closes itself after an hour (its message is
//! edited even then: `Ends`).
//!
//! The sessions live in SQLite (`polls.db`), so a restart keeps every open poll.
//!
//! Cargo.toml:
//!
//! ```toml
//! [dependencies]
//! bot-sessions = { version = "0.1", features = ["serenity"] }
//! serenity = { version = "0.12", default-features = false, features = ["builder", "client", "gateway", "model", "http", "rustls_backend"] }
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! Run: `DISCORD_TOKEN=... cargo run --example serenity_poll --features serenity`.

use std::collections::BTreeMap;
use std::time::Duration;

use bot_sessions::discord::serenity::{Router, SerenityError};
use bot_sessions::discord::{Ends, Rest};
use bot_sessions::interactive::{
    Button, ButtonStyle, CustomIdCodec, EndCx, Filter, Interactive, Kind, Manager, Reply, SigningKeys, StartCx, Step,
    Target, UpdateCx, View,
};
use bot_sessions::store::BoxError;
use bot_sessions::{Ttl, store};
use serenity::all::{
    Client, CommandInteraction, CommandOptionType, Context, CreateCommand, CreateCommandOption, EventHandler,
    GatewayIntents, Http, Interaction, Ready, ResolvedValue,
};

/// The poll: a question, its options, one vote per user.
pub struct Poll;

/// What is stored between clicks.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct PollState {
    question: String,
    options: Vec<String>,
    votes: BTreeMap<i64, usize>,
}

impl PollState {
    fn tally(&self) -> String {
        let mut text = self.question.clone();
        for (i, option) in self.options.iter().enumerate() {
            let n = self.votes.values().filter(|&&v| v == i).count();
            text.push_str(&format!("\n{option}: {n}"));
        }
        text
    }
}

fn render(s: &PollState, id: impl Fn(&str) -> Result<String, BoxError>) -> Result<View, BoxError> {
    let mut buttons = Vec::new();
    for (i, option) in s.options.iter().enumerate() {
        buttons.push(Button::new(option.clone(), id(&format!("vote-{i}"))?));
    }
    let close = Button::new("Close", id("close")?).style(ButtonStyle::Danger);
    Ok(View::text(s.tally()).row(buttons).row([close]))
}

impl Interactive for Poll {
    type State = PollState;
    type Args = (String, Vec<String>);
    type Output = String;

    async fn start(&self, cx: &mut StartCx<'_>, (question, options): Self::Args) -> Result<PollState, BoxError> {
        let state = PollState { question, options, votes: BTreeMap::new() };
        cx.reply(Reply::message(render(&state, |c| Ok(cx.encode(&cx.custom_id(c))?))?));
        Ok(state)
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, s: &mut PollState) -> Result<Step<String>, BoxError> {
        let user = cx.context().user_id.ok_or("a vote without a user")?;
        if cx.component() == "close" {
            if Some(user) != cx.origin().user {
                cx.reply(Reply::notice("Only the poll's opener can close it."));
                return Ok(Step::keep());
            }
            return Ok(Step::Finish(s.tally()));
        }
        let option = cx.component().strip_prefix("vote-").and_then(|i| i.parse().ok()).ok_or("not an option")?;
        s.votes.insert(user, option);
        cx.reply(Reply::edit(render(s, |c| Ok(cx.encode(&cx.custom_id(c))?))?));
        Ok(Step::keep())
    }

    async fn end(&self, cx: &mut EndCx<'_>, s: PollState) -> Result<Option<String>, BoxError> {
        cx.reply(Reply::close(format!("Poll closed.\n{}", s.tally())));
        Ok(Some(s.tally()))
    }

    fn ttl(&self) -> Ttl {
        Ttl::absolute(Duration::from_secs(3600))
    }

    fn update_filter(&self) -> Filter {
        Filter::allow_all() // anyone votes; `on_button` keeps "Close" to the opener
    }
}

/// The bot: the router of interactive sessions and the poll kind.
pub struct Bot {
    /// Routes clicks, starts polls.
    pub router: Router,
    /// The registered poll kind.
    pub poll: Kind<Poll>,
}

impl Bot {
    /// Sets up the sessions on `store`.
    pub fn new(store: bot_sessions::DynStore, secret: &[u8]) -> Result<Self, BoxError> {
        let codec = CustomIdCodec::new("poll", Target::Discord)?.signed(SigningKeys::new([secret.to_vec()])?);
        let manager = Manager::builder(store, codec).build()?;
        let poll = manager.register("poll", Poll)?;
        Ok(Bot { router: Router::new(manager)?, poll })
    }

    /// Handles one interaction: `/poll` starts a poll, clicks go to their poll.
    pub async fn handle(&self, http: &Http, interaction: &Interaction) -> Result<(), SerenityError> {
        match interaction {
            Interaction::Command(command) if command.data.name == "poll" => {
                self.router.start(http, command, &self.poll, poll_args(command)).await?;
            }
            _ => {
                self.router.route(http, interaction).await?;
            }
        }
        Ok(())
    }
}

/// The question and the comma-separated options of `/poll`.
pub fn poll_args(command: &CommandInteraction) -> (String, Vec<String>) {
    let (mut question, mut options) = (String::from("?"), Vec::new());
    for option in command.data.options() {
        match (option.name, option.value) {
            ("question", ResolvedValue::String(q)) => question = q.to_owned(),
            ("options", ResolvedValue::String(o)) => {
                options = o.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).take(5).collect();
            }
            _ => {}
        }
    }
    if options.is_empty() {
        options = vec!["Yes".into(), "No".into()];
    }
    (question, options)
}

#[serenity::async_trait]
impl EventHandler for Bot {
    async fn ready(&self, ctx: Context, _: Ready) {
        let command = CreateCommand::new("poll")
            .description("Start a poll")
            .add_option(CreateCommandOption::new(CommandOptionType::String, "question", "The question").required(true))
            .add_option(CreateCommandOption::new(CommandOptionType::String, "options", "Comma-separated options"));
        if let Err(error) = serenity::all::Command::create_global_command(&ctx.http, command).await {
            eprintln!("could not register /poll: {error}");
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if let Err(error) = self.handle(&ctx.http, &interaction).await {
            eprintln!("interaction failed: {error}");
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let token = std::env::var("DISCORD_TOKEN")?;
    let secret = std::env::var("POLL_SECRET").unwrap_or_else(|_| "change me: 32 bytes or more of secret".into());
    let store = store::open("sqlite://polls.db").await?;
    let bot = Bot::new(store, secret.as_bytes())?;
    // Edit a poll's message when it closes with no click (expiry).
    let rest = Rest::builder().bot_token(token.clone()).build()?;
    let _ends = Ends::new(rest, bot.router.message_records().cloned()).spawn(bot.router.manager());
    let mut client = Client::builder(&token, GatewayIntents::empty()).event_handler(bot).await?;
    client.start().await?;
    Ok(())
}
