//! The Telegram transport: the same [`Bot`] over the Bot API, through teloxide 0.17 and
//! long polling.
//!
//! - A text message goes to [`Bot::respond`]; each reply is sent with `sendMessage` in
//!   the message's chat (and forum topic), its buttons as an inline keyboard
//!   ([`keyboard`]). When the reply shows a `/menu`, the id of the sent message is
//!   recorded ([`Bot::menu_sent`]) so that the menu's expiry can edit it.
//! - A callback query of the menus goes to the library's [`CallbackRouter`]: the menu
//!   message is edited (`editMessageText`) and the query answered exactly once, with
//!   [`NOT_YOURS`], [`EXPIRED`] or [`REFUSED`] as text where they apply. Any other
//!   callback query is answered too ([`NOT_MINE`]), so no button keeps spinning.
//! - A menu that ends without a click (expiry) is shown with [`show_end`]: its message
//!   says `expired` and loses its buttons. An onboarding form that expires is told
//!   with `sendMessage` in its chat and topic.
//! - [`run`] stops gracefully when its `shutdown` future completes: polling stops and
//!   confirms the updates it took, the updates in hand are finished, and the open menus
//!   are left in the store for the next start ([`Bot::detach`]).
//! - [`run_webhook`] runs the same handlers under a webhook ([`WebhookArgs`]): it calls
//!   `setWebhook` with the URL and the secret token at start (never `getUpdates`),
//!   serves Telegram's POSTs at the URL's path, refuses a missing or wrong secret with
//!   401 and answers 200 once the update is handled. Several processes on one store
//!   behind one URL behave as one bot.
//!
//! The Bot API methods used are `getMe`, `getWebhookInfo`, `deleteWebhook` (only when a
//! webhook is set), `getUpdates` (polling), `setWebhook` (webhook), `sendMessage`,
//! `editMessageText`, `editMessageReplyMarkup` and `answerCallbackQuery`. Sessions are keyed per user in
//! each forum topic, else in the chat: run the [`Bot`] with
//! [`BotConfig::key`](crate::bot::BotConfig::key) set to [`KEY`].
//!
//! Failures while handling an update are written to stderr; the bot carries on.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bot_sessions::KeyStrategy;
use bot_sessions::interactive::{EndEvent, EndReason, Reply, View as Text};
use bot_sessions::store::{redact_url, redact_url_in};
use bot_sessions::telegram::{
    CallbackRouter, CallbackTexts, RenderError, RouterError, UpdateDispatch, Webhook, WebhookError, context_of_message,
    keyboard, show_end,
};
use teloxide::RequestError;
use teloxide::dispatching::{Dispatcher, UpdateFilterExt, UpdateHandler};
use teloxide::dptree;
use teloxide::payloads::setters::*;
use teloxide::prelude::Requester;
use teloxide::stop::StopToken;
use teloxide::types::{
    CallbackQuery, ChatId, ChatKind, InlineKeyboardMarkup, Message, MessageId, ReplyParameters, ThreadId, Update,
};
use teloxide::update_listeners::{self, UpdateListener};
use tokio::sync::broadcast;

use crate::bot::{Bot, BotError, EXPIRED, NOT_MINE, NOT_YOURS, Notice, REFUSED};

/// The key strategy of the per-conversation sessions on Telegram: per user in each
/// forum topic, else per user in the chat.
pub const KEY: KeyStrategy = KeyStrategy::TopicOrChatUser;

/// What a user reads when answering their message failed (the details go to stderr).
pub const FAILED: &str = "something went wrong; please try again";

/// What can go wrong on Telegram.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelegramError {
    /// `TELOXIDE_TOKEN` is not set (or not Unicode).
    #[error("TELOXIDE_TOKEN is not set: get a bot token from @BotFather and export TELOXIDE_TOKEN=<token>")]
    NoToken,
    /// `TELOXIDE_API_URL` is not a URL.
    #[error("TELOXIDE_API_URL `{url}` is not a URL: {reason}")]
    ApiUrl {
        /// The variable's value, its password masked.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// `TELOXIDE_PROXY` is not a proxy URL.
    #[error("TELOXIDE_PROXY `{proxy}` is not a proxy URL: {reason}")]
    Proxy {
        /// The variable's value, its password masked.
        proxy: String,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// A Bot API request failed.
    #[error("Bot API request failed: {0}")]
    Api(#[from] RequestError),
    /// The bot's logic failed.
    #[error(transparent)]
    Bot(#[from] BotError),
    /// Routing a callback query failed (it was answered).
    #[error(transparent)]
    Router(#[from] RouterError),
    /// A reply cannot be shown on Telegram.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The webhook's settings are wrong, `setWebhook` failed or serving failed.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// `--webhook-listen` cannot be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// The webhook options of `bot-sessions-demo telegram`: all three, or none (long
/// polling).
#[derive(Clone, Default, clap::Args)]
pub struct WebhookArgs {
    /// Serve Telegram's webhook POSTs on ADDR (e.g. 127.0.0.1:8081; port 0: any free
    /// port, printed) instead of long polling. Needs --webhook-url and
    /// --webhook-secret (or BOT_SESSIONS_WEBHOOK_SECRET).
    #[arg(long, value_name = "ADDR", requires_all = ["webhook_url", "webhook_secret"])]
    pub webhook_listen: Option<SocketAddr>,
    /// The public HTTPS URL Telegram POSTs updates to, registered with setWebhook at
    /// start; its path is served on --webhook-listen.
    #[arg(long, value_name = "URL", requires = "webhook_listen")]
    pub webhook_url: Option<String>,
    /// The secret token Telegram sends with each update (1 to 256 of A-Z a-z 0-9 _ -):
    /// better in BOT_SESSIONS_WEBHOOK_SECRET, as a command line shows in `ps`. Never
    /// printed.
    #[arg(long, value_name = "SECRET", env = "BOT_SESSIONS_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for WebhookArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookArgs")
            .field("webhook_listen", &self.webhook_listen)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "***"))
            .finish()
    }
}

impl WebhookArgs {
    /// The webhook and the address to serve it on; `None` for long polling.
    ///
    /// # Errors
    ///
    /// [`TelegramError::Webhook`]: a URL or secret Telegram would not take (the secret
    /// is never shown).
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions_demo::telegram::WebhookArgs;
    ///
    /// assert!(WebhookArgs::default().webhook()?.is_none());
    /// let args = WebhookArgs {
    ///     webhook_listen: Some("127.0.0.1:8081".parse()?),
    ///     webhook_url: Some("https://bot.example.com/tg".into()),
    ///     webhook_secret: Some("s3cret".into()),
    /// };
    /// let (webhook, addr) = args.webhook()?.expect("a webhook");
    /// assert_eq!((webhook.path(), addr.port()), ("/tg", 8081));
    /// assert!(!format!("{args:?}").contains("s3cret"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn webhook(&self) -> Result<Option<(Webhook, SocketAddr)>, TelegramError> {
        let (Some(addr), Some(url), Some(secret)) = (self.webhook_listen, &self.webhook_url, &self.webhook_secret)
        else {
            return Ok(None);
        };
        Ok(Some((Webhook::new(url, secret.trim())?, addr)))
    }
}

/// A teloxide bot configured from the environment as [`teloxide::Bot::from_env`]
/// configures it, with errors instead of panics: the token from `TELOXIDE_TOKEN`, the
/// Bot API server from `TELOXIDE_API_URL` (a trailing `/` ignored; Telegram's when
/// unset) and a proxy from `TELOXIDE_PROXY`.
///
/// # Errors
///
/// [`TelegramError::NoToken`], [`TelegramError::ApiUrl`], [`TelegramError::Proxy`],
/// [`TelegramError::Client`].
pub fn bot_from_env() -> Result<teloxide::Bot, TelegramError> {
    bot_from(|name| std::env::var(name).ok())
}

/// [`bot_from_env`] reading the variables through `var`.
///
/// # Errors
///
/// As [`bot_from_env`].
///
/// # Examples
///
/// ```
/// use bot_sessions_demo::telegram::{TelegramError, bot_from};
///
/// let env = |url: &'static str| move |name: &str| match name {
///     "TELOXIDE_TOKEN" => Some("1234:ABC".to_owned()),
///     "TELOXIDE_API_URL" => Some(url.to_owned()),
///     _ => None,
/// };
/// let bot = bot_from(env("http://127.0.0.1:8081/"))?;
/// assert_eq!(bot.api_url().as_str(), "http://127.0.0.1:8081/");
/// assert_eq!(bot.token(), "1234:ABC");
/// assert!(matches!(bot_from(env("not a url")), Err(TelegramError::ApiUrl { .. })));
/// assert!(matches!(bot_from(|_| None), Err(TelegramError::NoToken)));
/// # Ok::<(), TelegramError>(())
/// ```
pub fn bot_from(var: impl Fn(&str) -> Option<String>) -> Result<teloxide::Bot, TelegramError> {
    let token = var("TELOXIDE_TOKEN").filter(|t| !t.trim().is_empty()).ok_or(TelegramError::NoToken)?;
    let mut client = teloxide::net::default_reqwest_settings();
    if let Some(proxy) = var("TELOXIDE_PROXY") {
        let all = reqwest::Proxy::all(&proxy).map_err(|e| TelegramError::Proxy {
            proxy: redact_url(&proxy),
            reason: redact_url_in(&e.to_string(), &proxy),
        })?;
        client = client.proxy(all);
    }
    let client = client.build().map_err(|e| TelegramError::Client(e.to_string()))?;
    let bot = teloxide::Bot::with_client(token, client);
    match var("TELOXIDE_API_URL") {
        Some(url) => {
            let parsed = reqwest::Url::parse(url.trim_end_matches('/')).map_err(|e| TelegramError::ApiUrl {
                reason: redact_url_in(&e.to_string(), &url),
                url: redact_url(&url),
            })?;
            Ok(bot.set_api_url(parsed))
        }
        None => Ok(bot),
    }
}

/// The answers to clicks no menu answered: the same words as [`Bot::click`].
pub fn callback_texts() -> CallbackTexts {
    CallbackTexts::default().not_yours(NOT_YOURS).expired(EXPIRED).forged(REFUSED)
}

/// The dptree handler of the bot: the menus' callback queries to `router`, other
/// callback queries answered [`NOT_MINE`], text messages to the [`Bot`].
///
/// ## Dependency requirements
///
/// - `Arc<Bot>`
/// - [`teloxide::Bot`] and [`Update`] (the `Dispatcher` provides them)
pub fn handler(router: CallbackRouter) -> UpdateHandler<TelegramError> {
    dptree::entry()
        .branch(router.handler::<teloxide::Bot, TelegramError>())
        .branch(Update::filter_callback_query().endpoint(not_ours))
        .branch(Update::filter_message().endpoint(on_message))
}

/// Runs `bot` on Telegram through `api` (long polling) until `shutdown` completes,
/// then stops gracefully (see the [module documentation](self)).
///
/// # Errors
///
/// [`TelegramError::Api`] when the first request (`getMe`) fails, typically a wrong
/// token or an unreachable Bot API server.
pub async fn run<F>(bot: Arc<Bot>, api: teloxide::Bot, shutdown: F) -> Result<(), TelegramError>
where
    F: Future<Output = ()> + Send,
{
    let router = CallbackRouter::new(bot.menus().clone()).texts(callback_texts());
    let shows = api.clone();
    let runtime = bot.start_runtime(move |event| show_ends(shows.clone(), event))?;
    let notices = tokio::spawn(send_notices(api.clone(), bot.subscribe_notices()));
    let mut dispatcher = Dispatcher::builder(api.clone(), handler(router))
        .dependencies(dptree::deps![bot.clone()])
        .default_handler(|_| async {})
        .error_handler(Arc::new(|e: TelegramError| async move { eprintln!("telegram: {e}") }))
        .build();
    // Stopping the listener, not the dispatcher: teloxide's `ShutdownToken` wakes the
    // dispatcher with `Notify::notify_waiters`, which is lost when the dispatcher is
    // not waiting at that instant (then it never stops). A stopped listener stays
    // stopped: polling confirms the updates it took and ends, the dispatcher finishes
    // the updates in hand and returns.
    let stop = OnceLock::<StopToken>::new();
    let dispatch = async {
        let mut listener = update_listeners::polling_default(api.clone()).await;
        let _ = stop.set(listener.stop_token());
        let on_error = Arc::new(|e: RequestError| async move { eprintln!("telegram: getUpdates failed: {e}") });
        dispatcher.try_dispatch_with_listener(listener, on_error).await
    };
    tokio::pin!(dispatch, shutdown);
    let result = tokio::select! {
        result = &mut dispatch => result,
        () = &mut shutdown => match stop.get() {
            Some(stop) => {
                stop.stop();
                dispatch.await
            }
            // Still at the webhook check: no update taken yet.
            None => Ok(()),
        },
    };
    notices.abort();
    runtime.shutdown().await;
    Ok(result?)
}

/// Runs `bot` on Telegram through `api` under `webhook`, served on `tcp`, until
/// `shutdown` completes: `setWebhook` first, then every POST handled as [`run`] handles
/// polled updates (see the [module documentation](self)); at shutdown the requests in
/// hand finish and the open menus are left in the store.
///
/// # Errors
///
/// [`TelegramError::Webhook`] when `setWebhook` fails, [`TelegramError::Api`] when
/// `getMe` fails.
pub async fn run_webhook<F>(
    bot: Arc<Bot>,
    api: teloxide::Bot,
    webhook: Webhook,
    tcp: tokio::net::TcpListener,
    shutdown: F,
) -> Result<(), TelegramError>
where
    F: Future<Output = ()> + Send + 'static,
{
    webhook.set(&api).await?;
    let router = CallbackRouter::new(bot.menus().clone()).texts(callback_texts());
    let dispatch = UpdateDispatch::new(api.clone(), handler(router), dptree::deps![bot.clone()]).await?;
    let shows = api.clone();
    let runtime = bot.start_runtime(move |event| show_ends(shows.clone(), event))?;
    let notices = tokio::spawn(send_notices(api.clone(), bot.subscribe_notices()));
    let on_error = |e: TelegramError| eprintln!("telegram: {e}");
    let served = webhook.serve(tcp, dispatch.on_update(on_error), shutdown).await;
    notices.abort();
    runtime.shutdown().await;
    Ok(served?)
}

/// Binds `addr` for [`run_webhook`].
///
/// # Errors
///
/// [`TelegramError::Listen`].
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, TelegramError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| TelegramError::Listen { addr, reason: e.to_string() })
}

/// A text message: the bot's replies, sent in its chat and topic.
async fn on_message(bot: Arc<Bot>, api: teloxide::Bot, msg: Message) -> Result<(), TelegramError> {
    let Some(text) = msg.text() else { return Ok(()) };
    let ctx = context_of_message(&msg);
    let place = Place::of(&msg);
    let outgoing = match bot.respond(&ctx, text).await {
        Ok(outgoing) => outgoing,
        Err(e @ BotError::NoUser) => {
            place.send(&api, &e.to_string(), InlineKeyboardMarkup::default()).await?;
            return Ok(());
        }
        Err(e) => {
            place.send(&api, FAILED, InlineKeyboardMarkup::default()).await?;
            return Err(e.into());
        }
    };
    for out in outgoing {
        let (text, buttons) = match &out.reply {
            Reply::Message(m) | Reply::Edit(m) => (m.text.clone(), keyboard(m)?),
            Reply::Notice(text) => (text.clone(), InlineKeyboardMarkup::default()),
            Reply::Modal(m) => return Err(RenderError::ModalUnsupported { custom_id: m.custom_id.clone() }.into()),
            other => (other.to_string(), InlineKeyboardMarkup::default()),
        };
        let sent = place.send(&api, &text, buttons).await?;
        if let Some(menu) = out.menu {
            bot.menu_sent(menu, i64::from(sent.0)).await?;
        }
    }
    Ok(())
}

/// A callback query that is none of the menus': answered all the same.
async fn not_ours(api: teloxide::Bot, query: CallbackQuery) -> Result<(), TelegramError> {
    api.answer_callback_query(query.id).text(NOT_MINE).await?;
    Ok(())
}

/// Where replies to a message go.
struct Place {
    chat: ChatId,
    topic: Option<ThreadId>,
    /// The message answered, in groups (where several people talk to the bot).
    reply_to: Option<MessageId>,
}

impl Place {
    fn of(msg: &Message) -> Place {
        let topic = if msg.is_topic_message { msg.thread_id } else { None };
        let reply_to = match msg.chat.kind {
            ChatKind::Private(_) => None,
            ChatKind::Public(_) => Some(msg.id),
        };
        Place { chat: msg.chat.id, topic, reply_to }
    }

    async fn send(
        &self,
        api: &teloxide::Bot,
        text: &str,
        buttons: InlineKeyboardMarkup,
    ) -> Result<MessageId, RequestError> {
        let mut req = api.send_message(self.chat, text);
        if let Some(topic) = self.topic {
            req = req.message_thread_id(topic);
        }
        if let Some(id) = self.reply_to {
            req = req.reply_parameters(ReplyParameters::new(id).allow_sending_without_reply());
        }
        if !buttons.inline_keyboard.is_empty() {
            req = req.reply_markup(buttons);
        }
        Ok(req.await?.id)
    }
}

/// Shows the ends no click answered (an expired menu's message edited to say so).
async fn show_ends(api: teloxide::Bot, event: EndEvent) {
    if event.reason != EndReason::Finished
        && let Err(e) = show_end(&api, &event, None).await
    {
        eprintln!("telegram: cannot show the end of menu {}: {e}", event.session);
    }
}

/// Tells users that their onboarding form expired, in its chat and topic.
async fn send_notices(api: teloxide::Bot, mut notices: broadcast::Receiver<Notice>) {
    loop {
        match notices.recv().await {
            Ok(notice) => {
                let text = match &notice.reply {
                    Reply::Message(Text { text, .. }) => text.clone(),
                    other => other.to_string(),
                };
                let topic = notice.topic.and_then(|t| i32::try_from(t).ok()).map(|t| ThreadId(MessageId(t)));
                let place = Place { chat: ChatId(notice.chat), topic, reply_to: None };
                if let Err(e) = place.send(&api, &text, InlineKeyboardMarkup::default()).await {
                    eprintln!("telegram: cannot tell user {} that their form expired: {e}", notice.user);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_environment_is_read_as_teloxide_reads_it() {
        let bot = bot_from(vars(&[("TELOXIDE_TOKEN", "1:A")])).unwrap();
        assert_eq!(bot.api_url().as_str(), "https://api.telegram.org/");
        let bot = bot_from(vars(&[("TELOXIDE_TOKEN", "1:A"), ("TELOXIDE_API_URL", "http://h:1/p//")])).unwrap();
        assert_eq!(bot.api_url().as_str(), "http://h:1/p");
        assert!(matches!(bot_from(vars(&[("TELOXIDE_TOKEN", " ")])), Err(TelegramError::NoToken)));
        assert!(matches!(
            bot_from(vars(&[("TELOXIDE_TOKEN", "1:A"), ("TELOXIDE_PROXY", "::")])),
            Err(TelegramError::Proxy { .. })
        ));
    }

    #[test]
    fn a_proxy_that_does_not_parse_is_reported_without_its_password() {
        for proxy in
            ["http://u:s3cret@h:notaport", "http://u:s3cret@h:99999999", "http://u:s3c/ret@[h:1", "u:s3cret@h:x:y"]
        {
            let env = |name: &str| match name {
                "TELOXIDE_TOKEN" => Some("1:A".to_owned()),
                "TELOXIDE_PROXY" => Some(proxy.to_owned()),
                _ => None,
            };
            let Err(e) = bot_from(env) else {
                panic!("{proxy} was accepted");
            };
            let shown = format!("{e} {e:?}");
            assert!(matches!(e, TelegramError::Proxy { .. }), "{shown}");
            assert!(!shown.contains("s3c"), "{proxy}: {shown}");
        }
        let Err(e) = bot_from(vars(&[("TELOXIDE_TOKEN", "1:A"), ("TELOXIDE_API_URL", "http://u:s3cret@h:x")])) else {
            panic!("a bad API URL was accepted");
        };
        assert!(!format!("{e} {e:?}").contains("s3cret"), "{e}");
    }

    #[test]
    fn clicks_are_answered_in_the_bots_words() {
        let texts = callback_texts();
        assert_eq!(
            (texts.not_yours.as_str(), texts.expired.as_str(), texts.forged.as_str()),
            (NOT_YOURS, EXPIRED, REFUSED)
        );
    }
}
