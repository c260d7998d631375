//! The Discord transport on the gateway (`discord --gateway`): the same [`Bot`] as a
//! serenity client, through the library's serenity adapter, answering what the HTTP
//! endpoint answers.
//!
//! - Clicks and modal submits of menus go to the library's [`Router`] first (the menus'
//!   answers, and `not yours`, `expired`, `refused` in the bot's words); what it does
//!   not take falls through to the same slash commands ([`commands`]) and the same
//!   answers to the onboarding modal and its buttons as on the endpoint, answered
//!   through [`Router::answer`] (deferred after 2.5 s; a menu's message recorded).
//! - The gateway carries messages, which the endpoint never sees: the menu's Set asks
//!   for the opener's next message in the channel, and that message goes to the menu,
//!   whose new message is sent in the channel. Other messages are left alone. Reading
//!   a message's text needs the Message Content intent ([`INTENTS`]).
//! - A menu that expires has its message edited over REST ([`Ends`], with the bot
//!   token), and an onboarding form that expires at its confirm step is told in its
//!   channel, as on the endpoint with a bot token.
//!
//! Discord's REST API and the gateway's discovery (`GET /gateway/bot`, which names the
//! websocket URL) are at `--api-url`, so a test points both at a local fake.

use std::future::Future;
use std::sync::Arc;

use bot_sessions::discord::serenity::serenity::all::{
    ApplicationId, Client, ClientBuilder, Context as Serenity, EventHandler, GatewayIntents, Http, HttpBuilder,
    Interaction, Message, Ready,
};
use bot_sessions::discord::serenity::serenity::{self, Error as SError, gateway::GatewayError};
use bot_sessions::discord::serenity::{Router, SerenityError, context_of, create_message, message_context};
use bot_sessions::discord::twilight_model::application::interaction::InteractionType;
use bot_sessions::discord::{CommandRouter, Ends, RenderError, Rest};
use bot_sessions::interactive::{InteractiveError, RouteOutcome};
use bot_sessions::store::StoreError;

use super::{DiscordError, Shared, TOKEN_VAR, answer, commands, tell_notices, texts};
use crate::bot::{Bot, BotError};

/// The gateway intents: the messages of guilds and DMs and their text, for the menu's
/// Set. Message Content is privileged: turn it on in the developer portal (Bot,
/// Privileged Gateway Intents), or Discord refuses the connection.
pub const INTENTS: GatewayIntents =
    GatewayIntents::GUILD_MESSAGES.union(GatewayIntents::DIRECT_MESSAGES).union(GatewayIntents::MESSAGE_CONTENT);

/// What can go wrong on the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayFailure {
    /// Setting up the bot's Discord parts failed.
    #[error(transparent)]
    Setup(#[from] DiscordError),
    /// The sweepers cannot start.
    #[error("cannot start the sweepers: {0}")]
    Runtime(BotError),
    /// `--api-url` is not Discord's REST API base (`.../api/v10`).
    #[error("--api-url `{0}` must end in /api/v10 on the gateway (serenity adds the API path itself)")]
    ApiUrl(String),
    /// Discord refused the bot token.
    #[error("Discord refused the bot token in {TOKEN_VAR}")]
    Token(#[source] Box<SError>),
    /// The Message Content intent is not turned on for the application.
    #[error(
        "Discord refused the intents: turn on Message Content under Bot, Privileged Gateway Intents, in the developer portal"
    )]
    Intents,
    /// Discord's API or the gateway failed.
    #[error("the gateway failed")]
    Serenity(#[source] Box<SError>),
}

impl From<SError> for GatewayFailure {
    fn from(error: SError) -> Self {
        match error {
            SError::Gateway(GatewayError::DisallowedGatewayIntents | GatewayError::InvalidGatewayIntents) => {
                GatewayFailure::Intents
            }
            SError::Gateway(GatewayError::InvalidAuthentication | GatewayError::NoAuthentication) => {
                GatewayFailure::Token(Box::new(error))
            }
            SError::Http(ref http) if http.status_code().is_some_and(|s| s.as_u16() == 401) => {
                GatewayFailure::Token(Box::new(error))
            }
            other => GatewayFailure::Serenity(Box::new(other)),
        }
    }
}

/// What can go wrong handing a channel message to a menu.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The menu, or the store under it, failed.
    #[error(transparent)]
    Menu(#[from] InteractiveError),
    /// Recording the menu's new message failed.
    #[error(transparent)]
    Bot(#[from] BotError),
    /// Forgetting where the menu was shown before failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The menu's answer is not a message Discord takes.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Discord refused the message.
    #[error("cannot send the menu's answer")]
    Send(#[source] Box<SError>),
}

/// The bot on the gateway: what serenity's event handler calls. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    bot: Arc<Bot>,
    router: Router,
    commands: Arc<CommandRouter<Shared>>,
    ends: Ends,
    rest: Rest,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("router", &self.router).finish_non_exhaustive()
    }
}

impl Gateway {
    /// The bot on the gateway, editing expired menus' messages through `rest` (its bot
    /// token: the gateway's).
    ///
    /// # Errors
    ///
    /// [`DiscordError`] when the router cannot be built.
    pub fn new(bot: Arc<Bot>, rest: Rest) -> Result<Self, DiscordError> {
        let router = Router::new(bot.menus().clone())?.texts(texts());
        let ends = Ends::new(rest.clone(), router.message_records().cloned());
        let commands = Arc::new(commands(bot.clone(), ends.clone()));
        Ok(Gateway { bot, router, commands, ends, rest })
    }

    /// Answers one interaction: a menu's click or modal first, else the bot's command
    /// or answer (an autocomplete or a PING is left alone: the demo's commands have no
    /// options).
    ///
    /// # Errors
    ///
    /// [`SerenityError`]: a failed answer (the user was told), a failed API call.
    pub async fn interaction(&self, http: &Http, interaction: &Interaction) -> Result<(), SerenityError> {
        let kind = match interaction {
            Interaction::Command(_) => InteractionType::ApplicationCommand,
            Interaction::Component(_) => InteractionType::MessageComponent,
            Interaction::Modal(_) => InteractionType::ModalSubmit,
            _ => return Ok(()),
        };
        if !matches!(self.router.route(http, interaction).await?, RouteOutcome::NotOurs) {
            return Ok(());
        }
        let Some(ctx) = context_of(interaction) else { return Ok(()) };
        match (kind == InteractionType::ApplicationCommand).then(|| self.commands.route(ctx.clone())).flatten() {
            Some(command) => self.router.answer(http, interaction, command).await,
            None => self.router.answer(http, interaction, answer(&self.bot, &self.ends, &ctx, kind)).await,
        }
    }

    /// A message in a channel: the menu waiting for its opener's number (Set) gets it,
    /// and its new message is sent in the channel; every other message is left alone.
    ///
    /// # Errors
    ///
    /// [`MessageError`]: the menu's, the store's or the API call's.
    pub async fn message(&self, http: &Http, message: &Message) -> Result<(), MessageError> {
        if message.author.bot {
            return Ok(());
        }
        let ctx = message_context(message);
        let routed = self.bot.menus().handle_text(&ctx, &message.content).await?;
        let RouteOutcome::Handled { session, .. } = routed.outcome else { return Ok(()) };
        for reply in routed.reply.into_iter().chain(routed.end_reply) {
            let Some(view) = reply.as_message() else { continue };
            let sent = message
                .channel_id
                .send_message(http, create_message(view)?)
                .await
                .map_err(|e| MessageError::Send(Box::new(e)))?;
            if !view.rows.is_empty() {
                // The end edits this message now (the channel route), not the one the
                // interaction token shows.
                if let Some(records) = self.router.message_records() {
                    records.remove(session).await?;
                }
                if let Ok(id) = i64::try_from(sent.id.get()) {
                    self.bot.menu_sent(session, id).await?;
                }
            }
        }
        Ok(())
    }

    /// Connects to the gateway with `token` (Discord's API at `api_url`) and answers
    /// until `shutdown` completes; then the shards close, the background tasks stop and
    /// open menus stay in the store for the next start. `application_id`, when given,
    /// is used before READY tells it.
    ///
    /// # Errors
    ///
    /// [`GatewayFailure`]: a bad `--api-url`, a refused token or intents, a failed
    /// connection.
    pub async fn run<F>(
        self,
        token: &str,
        api_url: &str,
        application_id: Option<u64>,
        shutdown: F,
    ) -> Result<(), GatewayFailure>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut http = HttpBuilder::new(token);
        let base = serenity_proxy(api_url)?;
        if base != DISCORD {
            // Serenity's rate limiter sends to Discord itself, whatever the proxy: off,
            // as behind an HTTP proxy (twilight-http-proxy) that limits for it.
            http = http.proxy(base).ratelimiter_disabled(true);
        }
        if let Some(id) = application_id.filter(|&id| id != 0) {
            http = http.application_id(ApplicationId::new(id));
        }
        let http = http.build();
        // The token is checked, and the websocket URL learnt, at --api-url (serenity's
        // own lookup would fall back to Discord's gateway on a failure).
        let url = http.get_bot_gateway().await?.url;
        let mut client: Client =
            ClientBuilder::new_with_http(http, INTENTS).event_handler(Handler(self.clone())).await?;
        *client.ws_url.lock().await = url;
        let ends = self.ends.clone();
        let runtime = self
            .bot
            .start_runtime(move |event| {
                let ends = ends.clone();
                async move {
                    if let Err(error) = ends.show(&event).await {
                        eprintln!("discord: cannot show the end of menu {}: {error}", event.session);
                    }
                }
            })
            .map_err(GatewayFailure::Runtime)?;
        let notices = tokio::spawn(tell_notices(self.rest.clone(), self.bot.subscribe_notices()));
        let shards = client.shard_manager.clone();
        let stop = tokio::spawn(async move {
            shutdown.await;
            shards.shutdown_all().await;
        });
        let ran = client.start().await;
        stop.abort();
        notices.abort();
        runtime.shutdown().await;
        Ok(ran?)
    }
}

/// Discord's own origin: no proxy.
const DISCORD: &str = "https://discord.com";

/// Serenity's proxy base for `api_url`: the URL without its `/api/v10`.
fn serenity_proxy(api_url: &str) -> Result<String, GatewayFailure> {
    let trimmed = api_url.trim().trim_end_matches('/');
    trimmed
        .strip_suffix("/api/v10")
        .filter(|base| base.starts_with("http://") || base.starts_with("https://"))
        .map(str::to_owned)
        .ok_or_else(|| GatewayFailure::ApiUrl(api_url.to_owned()))
}

/// Serenity's event handler: each event to the [`Gateway`], failures logged.
struct Handler(Gateway);

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _: Serenity, ready: Ready) {
        eprintln!("connected to the gateway as {}; Ctrl-C stops it", ready.user.name);
    }

    async fn interaction_create(&self, ctx: Serenity, interaction: Interaction) {
        if let Err(error) = self.0.interaction(&ctx.http, &interaction).await {
            eprintln!("discord: an interaction failed: {error}");
        }
    }

    async fn message(&self, ctx: Serenity, message: Message) {
        if let Err(error) = self.0.message(&ctx.http, &message).await {
            eprintln!("discord: a message failed: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_is_the_api_url_without_its_path() {
        assert_eq!(serenity_proxy("https://discord.com/api/v10").unwrap(), "https://discord.com");
        assert_eq!(serenity_proxy("http://127.0.0.1:9/api/v10/").unwrap(), "http://127.0.0.1:9");
        for bad in ["http://127.0.0.1:9/api", "discord.com/api/v10", "/api/v10"] {
            assert!(matches!(serenity_proxy(bad), Err(GatewayFailure::ApiUrl(_))), "{bad}");
        }
    }
}
