//! Telegram webhooks (feature `telegram-webhook`): Telegram POSTs each update to the
//! bot's URL, and several processes of one bot behind that URL share every session.
//!
//! [`Webhook`] holds the public URL and the secret token; [`Webhook::set`] registers
//! both with `setWebhook`; [`Webhook::serve`] serves the POSTs on the crate's bounded
//! [`Listener`] (header and body read timeouts, a body cap, a connection cap), so a
//! slow or hostile client holds neither memory nor sockets for long.
//!
//! Each request:
//!
//! | request | answer |
//! | --- | --- |
//! | `X-Telegram-Bot-Api-Secret-Token` missing or wrong (compared in constant time) | 401, nothing processed |
//! | a body that is not a JSON update | 400, nothing processed |
//! | an update | handled, then 200 |
//! | another path | 404; another method: 405 |
//!
//! The answer waits until the update is handled, so Telegram (or a load balancer in
//! front of several processes) sees a bot that is busy as busy. A handler that fails
//! still gets 200: Telegram would send the update again, and an update applied twice is
//! worse than one that failed and was reported (the handler reports its errors).
//!
//! Updates are handled as they come, several at a time, in whichever process the load
//! balancer chose: the sessions' per-key locks and compare-and-set keep every update of
//! one user (see the [guide](crate::guide)), whichever process takes it.
//!
//! [`UpdateDispatch`] runs a dptree handler tree for one update the way teloxide's
//! `Dispatcher` does (with the bot, the bot's `Me` and the update as dependencies), so
//! the handlers of a polling bot run unchanged under a webhook.
//!
//! # Examples
//!
//! ```no_run
//! use bot_sessions::telegram::{UpdateDispatch, Webhook};
//! use teloxide::prelude::*;
//!
//! type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
//!
//! async fn echo(bot: Bot, msg: Message) -> HandlerResult {
//!     bot.send_message(msg.chat.id, msg.text().unwrap_or("?")).await?;
//!     Ok(())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let bot = Bot::from_env();
//! let secret = std::env::var("WEBHOOK_SECRET")?; // 1 to 256 of A-Z a-z 0-9 _ -
//! let webhook = Webhook::new("https://bot.example.com/telegram", &secret)?;
//! webhook.set(&bot).await?; // setWebhook with the URL and the secret token
//!
//! let tree = Update::filter_message().endpoint(echo);
//! let dispatch = UpdateDispatch::new(bot, tree, dptree::deps![]).await?;
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! webhook
//!     .serve(tcp, dispatch.on_update(|e| eprintln!("handler failed: {e}")), std::future::pending())
//!     .await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use teloxide::dispatching::UpdateHandler;
use teloxide::dptree::di::DependencyMap;
use teloxide::payloads::setters::*;
use teloxide::requests::{Request, Requester};
use teloxide::types::Update;

use crate::http::{Limits, Listener, ListenerError};
use crate::store::BoxError;

/// The header Telegram sends the secret token in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// What can go wrong setting up or serving a webhook. Never shows the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The webhook URL does not parse, or is not `http(s)` with a host.
    #[error("the webhook URL `{url}` {reason}")]
    Url {
        /// The URL as given, its password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The secret token is not what Telegram accepts (the secret is not shown).
    #[error("the webhook secret token {reason}")]
    Secret {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A listener limit out of its range.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// `setWebhook` failed.
    #[error("setWebhook failed: {0}")]
    SetWebhook(#[source] BoxError),
    /// Serving failed.
    #[error("cannot serve the webhook: {0}")]
    Io(#[from] std::io::Error),
}

/// The secret token, compared in constant time and never shown.
#[derive(Clone)]
struct Secret {
    text: Arc<str>,
    digest: [u8; 32],
}

impl Secret {
    fn new(text: &str) -> Result<Self, WebhookError> {
        if !(1..=256).contains(&text.len()) {
            return Err(WebhookError::Secret { reason: "must be 1 to 256 characters long" });
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(WebhookError::Secret { reason: "may hold only A-Z, a-z, 0-9, `_` and `-`" });
        }
        Ok(Secret { text: text.into(), digest: Sha256::digest(text.as_bytes()).into() })
    }

    /// Whether `header` is the secret. Both sides are hashed first, so the comparison
    /// takes the same time whatever the header's length or content.
    fn matches(&self, header: Option<&[u8]>) -> bool {
        let Some(header) = header else { return false };
        let digest: [u8; 32] = Sha256::digest(header).into();
        bool::from(digest.ct_eq(&self.digest))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A Telegram webhook: the public URL Telegram POSTs updates to, the secret token it
/// sends with each, and the [`Limits`] of the listener that serves them. See the
/// [module](self) for what each request gets.
///
/// # Examples
///
/// ```
/// use bot_sessions::telegram::{Webhook, WebhookError};
///
/// let webhook = Webhook::new("https://bot.example.com/tg/hook?x=1", "s3cret_token-1")?;
/// assert_eq!(webhook.path(), "/tg/hook");
/// assert!(!format!("{webhook:?}").contains("s3cret"));
/// assert!(matches!(Webhook::new("https://bot.example.com/", "no spaces"), Err(WebhookError::Secret { .. })));
/// assert!(matches!(Webhook::new("ftp://bot.example.com/", "ok"), Err(WebhookError::Url { .. })));
/// # Ok::<(), WebhookError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Webhook {
    url: url::Url,
    secret: Secret,
    limits: Limits,
    max_connections: Option<u8>,
}

impl Webhook {
    /// A webhook at `url` (what Telegram POSTs to: `https` on port 443, 80, 88 or 8443
    /// for Telegram itself; `http` is taken for a local Bot API server or a test) with
    /// the secret token `secret` (1 to 256 of `A-Z a-z 0-9 _ -`).
    ///
    /// # Errors
    ///
    /// [`WebhookError::Url`], [`WebhookError::Secret`].
    pub fn new(url: &str, secret: &str) -> Result<Self, WebhookError> {
        let bad = |reason: String| WebhookError::Url { url: crate::store::redact_url(url), reason };
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("does not parse: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(bad(format!("has scheme `{}`; Telegram POSTs to https", parsed.scheme())));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host".into()));
        }
        Ok(Webhook { url: parsed, secret: Secret::new(secret)?, limits: Limits::default(), max_connections: None })
    }

    /// The listener's limits (default [`Limits::default`]).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How many connections Telegram may open to this URL at once (`setWebhook`'s
    /// `max_connections`, 1 to 100; Telegram's default is 40).
    #[must_use]
    pub fn max_connections(mut self, connections: u8) -> Self {
        self.max_connections = Some(connections);
        self
    }

    /// The URL.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The path served: the URL's path.
    pub fn path(&self) -> &str {
        self.url.path()
    }

    /// Registers the webhook: `setWebhook` with the URL and the secret token. Telegram
    /// then stops answering `getUpdates` for this bot. Every process of the bot may
    /// call it at start: the same URL and secret set again changes nothing.
    ///
    /// # Errors
    ///
    /// [`WebhookError::SetWebhook`].
    pub async fn set<B>(&self, bot: &B) -> Result<(), WebhookError>
    where
        B: Requester,
        B::Err: std::error::Error + Send + Sync + 'static,
    {
        let fut = {
            let req = bot.set_webhook(self.url.clone()).secret_token(self.secret.text.to_string());
            match self.max_connections {
                Some(n) => req.max_connections(n).send(),
                None => req.send(),
            }
        };
        fut.await.map(drop).map_err(|e| WebhookError::SetWebhook(Box::new(e)))
    }

    /// The router that takes Telegram's POSTs at [`path`](Self::path) and awaits
    /// `on_update` for each before answering 200 (see the [module](self)). Serve it
    /// with a [`Listener`] (as [`serve`](Self::serve) does), or merge it into an app of
    /// your own, which should bound its clients as the listener does.
    pub fn router<F, Fut>(&self, on_update: F) -> Router
    where
        F: Fn(Update) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let secret = self.secret.clone();
        let post = move |headers: HeaderMap, body: Bytes| async move {
            if !secret.matches(headers.get(SECRET_HEADER).map(|v| v.as_bytes())) {
                return StatusCode::UNAUTHORIZED;
            }
            let update: Update = match serde_json::from_slice(&body) {
                Ok(update) => update,
                Err(error) => {
                    tracing::warn!(%error, "a webhook request with the right secret is not a Telegram update");
                    return StatusCode::BAD_REQUEST;
                }
            };
            on_update(update).await;
            StatusCode::OK
        };
        Router::new().route(self.path(), axum::routing::post(post))
    }

    /// Serves the webhook on `tcp` until `shutdown` completes, within the
    /// [`limits`](Self::limits); then lets the updates in hand finish and returns.
    ///
    /// # Errors
    ///
    /// [`WebhookError::Listener`] for limits out of range; [`WebhookError::Io`].
    pub async fn serve<F, Fut, S>(
        &self,
        tcp: tokio::net::TcpListener,
        on_update: F,
        shutdown: S,
    ) -> Result<(), WebhookError>
    where
        F: Fn(Update) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
        S: Future<Output = ()> + Send + 'static,
    {
        let listener = Listener::new(self.limits)?;
        listener.serve(tcp, self.router(on_update), shutdown).await?;
        Ok(())
    }
}

/// A dptree handler tree run for one update at a time, as teloxide's `Dispatcher` runs
/// it: the dependencies given, plus the bot, its [`Me`](teloxide::types::Me) and the
/// [`Update`]. For [`Webhook::serve`]: `dispatch.on_update(|e| log(e))`.
pub struct UpdateDispatch<E> {
    handler: Arc<UpdateHandler<E>>,
    deps: Arc<DependencyMap>,
}

impl<E> Clone for UpdateDispatch<E> {
    fn clone(&self) -> Self {
        UpdateDispatch { handler: self.handler.clone(), deps: self.deps.clone() }
    }
}

impl<E> fmt::Debug for UpdateDispatch<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateDispatch").finish_non_exhaustive()
    }
}

impl<E: Send + Sync + 'static> UpdateDispatch<E> {
    /// Runs `handler` with `deps`, `bot` and the bot's `Me` (one `getMe` here).
    ///
    /// # Errors
    ///
    /// The `getMe` request's error.
    pub async fn new<B>(bot: B, handler: UpdateHandler<E>, mut deps: DependencyMap) -> Result<Self, B::Err>
    where
        B: Requester + Clone + Send + Sync + 'static,
    {
        let me = bot.get_me().send().await?;
        deps.insert(me);
        deps.insert(bot);
        Ok(UpdateDispatch { handler: Arc::new(handler), deps: Arc::new(deps) })
    }

    /// Runs the handler for `update`. An update no branch takes is `Ok` (teloxide's
    /// default handler only logs it).
    ///
    /// # Errors
    ///
    /// The handler's error.
    pub async fn handle(&self, update: Update) -> Result<(), E> {
        let mut deps = (*self.deps).clone();
        deps.insert(update);
        match self.handler.dispatch(deps).await {
            ControlFlow::Break(result) => result,
            ControlFlow::Continue(_) => Ok(()),
        }
    }

    /// The `on_update` of [`Webhook::serve`]: [`handle`](Self::handle), its errors
    /// given to `on_error`.
    pub fn on_update<H>(
        &self,
        on_error: H,
    ) -> impl Fn(Update) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + Sync + 'static
    where
        H: Fn(E) + Clone + Send + Sync + 'static,
    {
        let dispatch = self.clone();
        move |update| {
            let (dispatch, on_error) = (dispatch.clone(), on_error.clone());
            Box::pin(async move {
                if let Err(e) = dispatch.handle(update).await {
                    on_error(e);
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_checked_whole() {
        let secret = Secret::new("abc_DEF-123").unwrap();
        assert!(secret.matches(Some(b"abc_DEF-123")));
        for wrong in [&b""[..], b"abc_DEF-12", b"abc_DEF-1234", b"ABC_DEF-123", b"abc_DEF-123 "] {
            assert!(!secret.matches(Some(wrong)), "{wrong:?}");
        }
        assert!(!secret.matches(None));
        assert!(Secret::new("").is_err());
        assert!(Secret::new(&"a".repeat(257)).is_err());
        assert!(Secret::new(&"a".repeat(256)).is_ok());
        assert!(Secret::new("é").is_err());
    }

    #[test]
    fn urls_are_checked_and_shown_without_their_password() {
        assert_eq!(Webhook::new("http://127.0.0.1:8080", "s").unwrap().path(), "/");
        let Err(e) = Webhook::new("mailto://u:pw123@h/x", "s") else { panic!("a mailto URL was taken") };
        assert!(!e.to_string().contains("pw123"), "{e}");
        assert!(Webhook::new("not a url", "s").is_err());
    }
}
