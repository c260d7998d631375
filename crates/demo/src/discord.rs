//! The Discord transport: the same [`Bot`] behind Discord's HTTP interactions
//! endpoint (the library's [`Endpoint`] at `POST /interactions`).
//!
//! - Slash commands go to the bot: `/count`, `/profile`, `/forget`, `/menu` (and
//!   `/help`) as the text commands of the other transports; `/onboard` opens the
//!   [`onboarding_modal`], whose submit saves the profile or asks to confirm replacing
//!   a different one ([`Bot::submit_onboarding`]). `/profile`, `/forget` and the
//!   onboarding replies are ephemeral (they show an email address); `/count` and
//!   `/menu` are public, so that others may click the menu (and read `not yours`).
//! - Clicks on a menu go to the interactive manager by the endpoint: the message is
//!   updated in place (`UPDATE_MESSAGE`); someone else's click, a click on an ended
//!   menu and a forged custom id are answered ephemerally with [`NOT_YOURS`],
//!   [`EXPIRED`] and [`REFUSED`].
//! - A menu that expires has its message edited over REST to say `expired`, without
//!   buttons: with the interaction token of the latest response that showed it
//!   (`PATCH /webhooks/{application}/{token}/messages/@original`, 15 minutes), else,
//!   with a bot token, the channel message. `/forget` first closes the user's menu
//!   messages the same way.
//! - With a bot token, an onboarding form that expires at its confirm step is told in
//!   its channel; without one there is no way to speak unprompted, and it is not.
//!
//! Sessions are keyed per user in each channel ([`KEY`]); a thread is a channel of its
//! own (see [`bot_sessions::discord::context`]).
//!
//! [`gateway`] runs the same bot as a serenity gateway client (`discord --gateway`).

pub mod gateway;

use std::future::Future;
use std::sync::Arc;

use bot_sessions::KeyStrategy;
use bot_sessions::discord::axum::Router;
use bot_sessions::discord::twilight_model::application::interaction::{Interaction, InteractionType};
use bot_sessions::discord::{
    Command, CommandDef, CommandRouter, Endpoint, EndpointError, Ends, Messages, PublicKey, Rest, RestError, Texts,
};
use bot_sessions::interactive::{Reply, View};
use bot_sessions::store::BoxError;
use bot_sessions::{Context, KeyError};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::bot::{
    Bot, BotError, EMAIL_FIELD, EXPIRED, NAME_FIELD, NOT_MINE, NOT_YOURS, Notice, ONBOARD_MODAL, REFUSED,
    onboarding_modal,
};

/// The key strategy of the per-conversation sessions on Discord: per user in each
/// channel (a thread is its own channel).
pub const KEY: KeyStrategy = KeyStrategy::ChatUser;

/// The environment variable holding the bot token (optional).
pub const TOKEN_VAR: &str = "DISCORD_TOKEN";

/// What a user reads when answering failed (the details go to the log).
pub const FAILED: &str = "something went wrong; please try again";

/// What the messages of a user's menus say once `/forget` erased them.
pub const FORGOTTEN: &str = "forgotten";

/// What can go wrong setting up Discord.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscordError {
    /// The endpoint cannot be built.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The REST client cannot be built.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The message records' namespace is invalid.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The serenity router cannot be built (on the gateway).
    #[error(transparent)]
    Serenity(#[from] bot_sessions::discord::serenity::SerenityError),
}

/// The texts of the answers the endpoint gives itself: the bot's words.
pub fn texts() -> Texts {
    Texts::default().not_yours(NOT_YOURS).expired(EXPIRED).forged(REFUSED).failed(FAILED).unsupported(NOT_MINE)
}

/// The bot on Discord: the endpoint answering interactions, and what shows menus'
/// ends. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Discord {
    bot: Arc<Bot>,
    endpoint: Endpoint,
    ends: Ends,
}

impl Discord {
    /// The endpoint of `bot`, verifying requests with `key`, calling Discord's REST
    /// API through `rest` (its base URL, and the bot token if any).
    ///
    /// # Errors
    ///
    /// [`DiscordError`] when the endpoint cannot be built.
    pub fn new(bot: Arc<Bot>, key: PublicKey, rest: Rest) -> Result<Self, DiscordError> {
        let manager = bot.menus().clone();
        let messages = Messages::new(manager.store().clone())?.clock(bot.clock());
        let ends = Ends::new(rest.clone(), Some(messages.clone()));
        let fallback = {
            let (bot, ends) = (bot.clone(), ends.clone());
            move |ctx: Context, interaction: Interaction| {
                let (bot, ends) = (bot.clone(), ends.clone());
                async move { answer(&bot, &ends, &ctx, interaction.kind).await }
            }
        };
        let handler = commands(bot.clone(), ends.clone()).fallback(fallback);
        let endpoint = Endpoint::builder(key)
            .manager(manager)
            .messages(messages)
            .rest(rest)
            .handler(handler)
            .texts(texts())
            .build()?;
        Ok(Discord { bot, endpoint, ends })
    }

    /// The endpoint (its router, counters, REST client).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The router: `POST /interactions`.
    pub fn router(&self) -> Router {
        self.endpoint.router()
    }

    /// Starts telling expired onboarding forms; abort the handles to stop. (The ends
    /// of menus are shown by the bot's runtime, see [`serve`](Self::serve).)
    pub fn spawn_background(&self) -> Vec<JoinHandle<()>> {
        vec![tokio::spawn(tell_notices(self.endpoint.rest().clone(), self.bot.subscribe_notices()))]
    }

    /// Serves the endpoint on `listener` until `shutdown` completes; then the requests
    /// in hand finish, the background tasks stop, and open menus stay in the store for
    /// the next start (the runtime of [`Bot::start_runtime`]).
    ///
    /// # Errors
    ///
    /// The listener's I/O errors.
    pub async fn serve<F>(&self, listener: TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
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
            .map_err(std::io::Error::other)?;
        let background = self.spawn_background();
        // The library's bounded listener: header and body read times, body size and open
        // connections are capped (unauthenticated clients cannot hold memory).
        let served = self.endpoint.serve_on(listener, shutdown).await;
        for task in background {
            task.abort();
        }
        runtime.shutdown().await;
        served
    }
}

/// The bot's answer to an interaction of `kind` no menu took (on the endpoint and on
/// the [`gateway`]).
async fn answer(bot: &Bot, ends: &Ends, ctx: &Context, kind: InteractionType) -> Result<Option<Reply>, BoxError> {
    let answered = match kind {
        InteractionType::ApplicationCommand => command(bot, ends, ctx).await,
        InteractionType::ModalSubmit if ctx.custom_id.as_deref() == Some(ONBOARD_MODAL) => {
            let field = |id| ctx.field(id).unwrap_or_default();
            bot.submit_onboarding(ctx, field(NAME_FIELD), field(EMAIL_FIELD)).await.map(Some)
        }
        InteractionType::MessageComponent => match ctx.custom_id.as_deref() {
            Some(id) => bot.onboarding_button(ctx, id).await.map(|r| r.or_else(|| Some(Reply::notice(NOT_MINE)))),
            None => Ok(Some(Reply::notice(NOT_MINE))),
        },
        _ => Ok(Some(Reply::notice(NOT_MINE))),
    };
    match answered {
        Ok(reply) => Ok(reply),
        Err(e @ BotError::NoUser) => Ok(Some(Reply::notice(e.to_string()))),
        Err(e) => Err(e.into()),
    }
}

/// What the command handlers share.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The bot.
    pub bot: Arc<Bot>,
    /// What closes a user's menu messages (`/forget`).
    pub ends: Ends,
}

/// The registered command `name` (its description from [`crate::register::COMMANDS`]).
fn def(name: &str) -> CommandDef {
    crate::register::commands().into_iter().find(|c| c.name == name).unwrap_or_else(|| CommandDef::slash(name, name))
}

/// The slash commands and their handlers, on any transport: `/count` and `/menu`
/// public (others may click the menu), `/profile` and `/forget` ephemeral (they show
/// an email address), `/onboard` the [`onboarding_modal`]. Its definitions are what
/// `register` registers.
pub fn commands(bot: Arc<Bot>, ends: Ends) -> CommandRouter<Shared> {
    CommandRouter::new(Shared { bot, ends })
        .command(def("count"), |s: Shared, ctx| async move { answered(as_text(&s.bot, &ctx, "count", false).await) })
        .command(def("onboard"), |_, ctx: Context| async move {
            answered(if ctx.user_id.is_none() {
                Err(BotError::NoUser)
            } else {
                Ok(Some(Reply::modal(onboarding_modal())))
            })
        })
        .command(def("profile"), |s: Shared, ctx| async move { answered(as_text(&s.bot, &ctx, "profile", true).await) })
        .command(def("forget"), |s: Shared, ctx: Context| async move {
            let Some(user) = ctx.user_id else { return answered(Err(BotError::NoUser)) };
            // Before the records go: their tokens are what can edit the messages.
            if let Err(e) = s.ends.close_user_messages(user, &View::text(FORGOTTEN)).await {
                eprintln!("discord: cannot close the menus of user {user}: {e}");
            }
            answered(as_text(&s.bot, &ctx, "forget", true).await)
        })
        .command(def("menu"), |s: Shared, ctx| async move { answered(as_text(&s.bot, &ctx, "menu", false).await) })
}

/// A bot answer as a handler's: a missing user is told, other errors fail.
fn answered(answer: Result<Option<Reply>, BotError>) -> Result<Option<Reply>, BoxError> {
    match answer {
        Ok(reply) => Ok(reply),
        Err(e @ BotError::NoUser) => Ok(Some(Reply::notice(e.to_string()))),
        Err(e) => Err(e.into()),
    }
}

/// A command no handler of [`commands`] takes (`/help`), as the text command.
async fn command(bot: &Bot, _ends: &Ends, ctx: &Context) -> Result<Option<Reply>, BotError> {
    let name = ctx.extensions.get::<Command>().map(|c| c.name.as_str()).unwrap_or_default();
    as_text(bot, ctx, name, name == "help").await
}

/// A slash command as the text command of the same name.
async fn as_text(bot: &Bot, ctx: &Context, name: &str, private: bool) -> Result<Option<Reply>, BotError> {
    let outgoing = bot.respond(ctx, &format!("/{name}")).await?;
    // Every command answers with one reply; the endpoint notes a menu's message
    // itself (the reply carries the menu's custom ids).
    Ok(outgoing.into_iter().next().map(|out| match out.reply {
        Reply::Message(m) if private => Reply::Message(m.ephemeral()),
        other => other,
    }))
}

/// Tells users, with the bot token, that their onboarding form expired.
async fn tell_notices(rest: Rest, mut notices: broadcast::Receiver<Notice>) {
    loop {
        match notices.recv().await {
            Ok(notice) if rest.has_bot_token() => {
                let Some(message) = notice.reply.as_message() else { continue };
                let Ok(channel) = u64::try_from(notice.chat) else { continue };
                if let Err(e) = rest.create_message(channel, message).await {
                    eprintln!("discord: cannot tell user {} that their form expired: {e}", notice.user);
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The REST client: Discord's API at `api_url`, with the bot token when given (the
/// channel-message route for edits past the interaction token's 15 minutes).
///
/// # Errors
///
/// [`DiscordError::Rest`] when the client cannot be built.
pub fn rest(api_url: &str, bot_token: Option<String>) -> Result<Rest, DiscordError> {
    let mut rest = Rest::builder().base_url(api_url.trim_end_matches('/'));
    if let Some(token) = bot_token.filter(|t| !t.trim().is_empty()) {
        rest = rest.bot_token(token.trim());
    }
    Ok(rest.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_answers_in_the_bots_words() {
        let t = texts();
        assert_eq!((t.not_yours.as_str(), t.expired.as_str(), t.forged.as_str()), (NOT_YOURS, EXPIRED, REFUSED));
    }
}
