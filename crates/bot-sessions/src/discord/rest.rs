//! A small Discord REST client: the calls that show a reply after the interaction
//! response is gone (a deferred answer, an ended session's message).
//!
//! Interaction webhooks (`/webhooks/{application}/{token}/...`) need the interaction
//! token, valid 15 minutes, and no bot token; channel messages
//! (`/channels/{channel}/messages/...`) need the bot token. Requests time out; a 429
//! is retried after Discord's `retry_after`, a bounded number of times. Tokens never
//! appear in errors, logs or `Debug` output (routes are reported as templates).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;

use super::commands::{CommandDef, CommandDefError};
use super::response::{RenderError, message_data};
use crate::interactive::View;

/// Discord's API base URL (version 10).
pub const DEFAULT_BASE_URL: &str = "https://discord.com/api/v10";

/// What a REST call ran into.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// The client could not be built (a bad base URL, a TLS setup failure).
    #[error("REST client configuration: {0}")]
    Config(String),
    /// A channel route needs the bot token, and none is configured.
    #[error("{route} needs a bot token; none is configured")]
    NoBotToken {
        /// The route.
        route: &'static str,
    },
    /// A token with characters no Discord token has (it is not put in a URL).
    #[error("the interaction or bot token has characters Discord tokens never have")]
    BadToken,
    /// The message cannot be shown on Discord.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A command Discord would refuse (nothing was sent).
    #[error(transparent)]
    Command(#[from] CommandDefError),
    /// No answer within the request timeout.
    #[error("{route}: no answer within the request timeout")]
    Timeout {
        /// The route.
        route: &'static str,
    },
    /// The request did not get through (connection refused, TLS, ...).
    #[error("{route}: {source}")]
    Transport {
        /// The route.
        route: &'static str,
        /// The cause (its URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// Discord answered with an error status.
    #[error("{route}: HTTP {status}: {body}")]
    Status {
        /// The route.
        route: &'static str,
        /// The status code.
        status: u16,
        /// The start of Discord's answer (its JSON error code and message).
        body: String,
    },
    /// Still rate limited after the allowed retries, or asked to wait longer than
    /// the configured maximum.
    #[error("{route}: rate limited (retry after {retry_after:?})")]
    RateLimited {
        /// The route.
        route: &'static str,
        /// How long Discord asked to wait.
        retry_after: Duration,
    },
}

impl RestError {
    /// Whether the interaction token is no longer accepted (it is older than 15
    /// minutes, or the interaction is unknown): Discord's 401 or 404 on a webhook
    /// route. The channel route (with the bot token) may still work.
    pub fn is_token_gone(&self) -> bool {
        matches!(self, RestError::Status { route, status: 401 | 404, .. } if route.starts_with("PATCH /webhooks")
            || route.starts_with("POST /webhooks") || route.starts_with("DELETE /webhooks"))
    }
}

/// Configures a [`Rest`] client; see [`Rest::builder`].
#[derive(Clone)]
#[must_use]
pub struct RestBuilder {
    base: String,
    bot_token: Option<String>,
    timeout: Duration,
    max_retries: u32,
    max_wait: Duration,
}

impl std::fmt::Debug for RestBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestBuilder")
            .field("base", &self.base)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RestBuilder {
    /// The API base URL (default [`DEFAULT_BASE_URL`]; a test points it at a local
    /// server).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The bot token, for channel routes (without the `Bot ` prefix).
    pub fn bot_token(mut self, token: impl Into<String>) -> Self {
        self.bot_token = Some(token.into());
        self
    }

    /// How long one request may take (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a rate-limited request is retried (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest `retry_after` waited for (default 30 s); a longer one fails with
    /// [`RestError::RateLimited`] at once.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`RestError::Config`] for a zero timeout, a base URL that is not http(s), or
    /// a client that cannot be built; [`RestError::BadToken`] for a malformed token.
    pub fn build(self) -> Result<Rest, RestError> {
        if self.timeout.is_zero() {
            return Err(RestError::Config("the request timeout must be above zero".into()));
        }
        if !(self.base.starts_with("https://") || self.base.starts_with("http://")) {
            return Err(RestError::Config(format!("the base URL `{}` is not http(s)", self.base)));
        }
        if self.bot_token.as_deref().is_some_and(|t| !token_ok(t)) {
            return Err(RestError::BadToken);
        }
        let agent = concat!("DiscordBot (", env!("CARGO_PKG_REPOSITORY"), ", ", env!("CARGO_PKG_VERSION"), ")");
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(agent)
            .build()
            .map_err(|e| RestError::Config(e.without_url().to_string()))?;
        Ok(Rest {
            inner: Arc::new(Inner {
                client,
                base: self.base,
                bot_token: self.bot_token,
                max_retries: self.max_retries,
                max_wait: self.max_wait,
                rate_limited: AtomicU64::new(0),
            }),
        })
    }
}

/// The Discord REST calls this crate makes. Cheap to clone.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::Rest;
/// use std::time::Duration;
///
/// let rest = Rest::builder()
///     .base_url("http://127.0.0.1:9/api/v10")
///     .bot_token("bot-token")
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// assert!(!format!("{rest:?}").contains("bot-token"));
/// # Ok::<(), bot_sessions::discord::RestError>(())
/// ```
#[derive(Clone)]
pub struct Rest {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    base: String,
    bot_token: Option<String>,
    max_retries: u32,
    max_wait: Duration,
    rate_limited: AtomicU64,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("base", &self.inner.base)
            .field("bot_token", &self.inner.bot_token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

const EDIT_ORIGINAL: &str = "PATCH /webhooks/{application}/{token}/messages/@original";
const DELETE_ORIGINAL: &str = "DELETE /webhooks/{application}/{token}/messages/@original";
const FOLLOWUP: &str = "POST /webhooks/{application}/{token}";
const EDIT_MESSAGE: &str = "PATCH /channels/{channel}/messages/{message}";
const CREATE_MESSAGE: &str = "POST /channels/{channel}/messages";
const CREATE_RESPONSE: &str = "POST /interactions/{interaction}/{token}/callback";
const PUT_COMMANDS: &str = "PUT /applications/{application}/commands";
const PUT_GUILD_COMMANDS: &str = "PUT /applications/{application}/guilds/{guild}/commands";

impl Rest {
    /// A builder with the defaults: [`DEFAULT_BASE_URL`], no bot token, 10 s timeout,
    /// 3 retries on 429, waits up to 30 s.
    pub fn builder() -> RestBuilder {
        RestBuilder {
            base: DEFAULT_BASE_URL.to_owned(),
            bot_token: None,
            timeout: Duration::from_secs(10),
            max_retries: 3,
            max_wait: Duration::from_secs(30),
        }
    }

    /// Whether a bot token is configured (channel routes work).
    pub fn has_bot_token(&self) -> bool {
        self.inner.bot_token.is_some()
    }

    /// How many 429 answers this client has met (each one waited for and retried,
    /// or reported).
    pub fn rate_limited(&self) -> u64 {
        self.inner.rate_limited.load(Ordering::Relaxed)
    }

    /// Edits the interaction's original response (for a component interaction
    /// answered with `UPDATE_MESSAGE` or a deferred update: the component's message)
    /// to `message`; no rows removes the components.
    ///
    /// # Errors
    ///
    /// [`RestError`]; [`RestError::is_token_gone`] once the token has expired.
    pub async fn edit_original(&self, application_id: u64, token: &str, message: &View) -> Result<(), RestError> {
        let path = format!("/webhooks/{application_id}/{}/messages/@original", checked(token)?);
        self.send(Method::PATCH, EDIT_ORIGINAL, &path, false, Some(&edit_body(message)?)).await.map(drop)
    }

    /// Deletes the interaction's original response (a deferred "thinking…" message
    /// nothing replaced).
    ///
    /// # Errors
    ///
    /// [`RestError`].
    pub async fn delete_original(&self, application_id: u64, token: &str) -> Result<(), RestError> {
        let path = format!("/webhooks/{application_id}/{}/messages/@original", checked(token)?);
        self.send::<()>(Method::DELETE, DELETE_ORIGINAL, &path, false, None).await.map(drop)
    }

    /// Sends a follow-up message to the interaction (ephemeral if `message` is).
    ///
    /// # Errors
    ///
    /// [`RestError`].
    pub async fn followup(&self, application_id: u64, token: &str, message: &View) -> Result<(), RestError> {
        let path = format!("/webhooks/{application_id}/{}", checked(token)?);
        self.send(Method::POST, FOLLOWUP, &path, false, Some(&message_data(message)?)).await.map(drop)
    }

    /// Edits a channel message with the bot token (what works once the interaction
    /// token is gone; not for ephemeral messages).
    ///
    /// # Errors
    ///
    /// [`RestError::NoBotToken`], and [`RestError`].
    pub async fn edit_message(&self, channel_id: u64, message_id: u64, message: &View) -> Result<(), RestError> {
        let path = format!("/channels/{channel_id}/messages/{message_id}");
        self.send(Method::PATCH, EDIT_MESSAGE, &path, true, Some(&edit_body(message)?)).await.map(drop)
    }

    /// Answers an interaction with `response`, its first response (the interaction
    /// callback): how a gateway bot answers an `INTERACTION_CREATE`, where the HTTP
    /// endpoint answers in the request's response. No bot token needed; see
    /// [`Endpoint::respond`](super::Endpoint::respond).
    ///
    /// # Errors
    ///
    /// [`RestError::BadToken`] for a token that cannot be a path segment, and
    /// [`RestError`].
    pub async fn create_response(
        &self,
        interaction_id: u64,
        token: &str,
        response: &twilight_model::http::interaction::InteractionResponse,
    ) -> Result<(), RestError> {
        let path = format!("/interactions/{interaction_id}/{}/callback", checked(token)?);
        self.send(Method::POST, CREATE_RESPONSE, &path, false, Some(response)).await.map(drop)
    }

    /// Sends a message to a channel with the bot token.
    ///
    /// # Errors
    ///
    /// [`RestError::NoBotToken`], and [`RestError`].
    pub async fn create_message(&self, channel_id: u64, message: &View) -> Result<(), RestError> {
        let path = format!("/channels/{channel_id}/messages");
        self.send(Method::POST, CREATE_MESSAGE, &path, true, Some(&edit_body(message)?)).await.map(drop)
    }

    /// Replaces the application's commands with `commands` (one `PUT` of the whole
    /// list, with the bot token): everywhere, or in `guild` only, where changes show
    /// at once. Returns how many commands Discord now has.
    ///
    /// # Errors
    ///
    /// [`RestError::Command`] for a command Discord would refuse (nothing is sent),
    /// [`RestError::NoBotToken`], and [`RestError`] (a 401 is a wrong token, a 403 a
    /// bot not in the guild, a 404 an application id that is not the token's).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use bot_sessions::discord::{CommandDef, Rest};
    ///
    /// # async fn run(rest: Rest) -> Result<(), bot_sessions::discord::RestError> {
    /// let commands = [CommandDef::slash("poll", "Start a poll"), CommandDef::user("Profile")];
    /// let count = rest.register_commands(1234, None, &commands).await?;
    /// # Ok(()) }
    /// ```
    pub async fn register_commands(
        &self,
        application_id: u64,
        guild: Option<u64>,
        commands: &[CommandDef],
    ) -> Result<usize, RestError> {
        for command in commands {
            command.check()?;
        }
        let (route, path) = match guild {
            Some(g) => (PUT_GUILD_COMMANDS, format!("/applications/{application_id}/guilds/{g}/commands")),
            None => (PUT_COMMANDS, format!("/applications/{application_id}/commands")),
        };
        let body = self.send(Method::PUT, route, &path, true, Some(&commands)).await?;
        let count = serde_json::from_str::<Vec<serde::de::IgnoredAny>>(&body).map(|v| v.len());
        Ok(count.unwrap_or(commands.len()))
    }

    /// Sends a request; the body of a success.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        route: &'static str,
        path: &str,
        bot: bool,
        body: Option<&B>,
    ) -> Result<String, RestError> {
        let inner = &*self.inner;
        let auth = match (bot, &inner.bot_token) {
            (false, _) => None,
            (true, Some(token)) => Some(format!("Bot {token}")),
            (true, None) => return Err(RestError::NoBotToken { route }),
        };
        let url = format!("{}{path}", inner.base);
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| RestError::Config(format!("request body: {e}")))?),
            None => None,
        };
        let mut attempt = 0;
        loop {
            let mut request = inner.client.request(method.clone(), &url);
            if let Some(auth) = &auth {
                request = request.header(reqwest::header::AUTHORIZATION, auth);
            }
            if let Some(body) = &body {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
            }
            let response = request.send().await.map_err(|e| transport(route, e))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response.text().await.unwrap_or_default());
            }
            if status != StatusCode::TOO_MANY_REQUESTS {
                let text = response.text().await.unwrap_or_default();
                return Err(RestError::Status {
                    route,
                    status: status.as_u16(),
                    body: text.chars().take(200).collect(),
                });
            }
            inner.rate_limited.fetch_add(1, Ordering::Relaxed);
            let retry_after = retry_after(response).await;
            if attempt >= inner.max_retries || retry_after > inner.max_wait {
                return Err(RestError::RateLimited { route, retry_after });
            }
            attempt += 1;
            tracing::debug!(route, ?retry_after, attempt, "Discord rate limit; waiting");
            tokio::time::sleep(retry_after).await;
        }
    }
}

/// The body of an edit: text and components, no flags (an edit cannot make a message
/// ephemeral).
fn edit_body(message: &View) -> Result<impl Serialize, RenderError> {
    let mut data = message_data(message)?;
    data.flags = None;
    Ok(data)
}

/// How long a 429 asks to wait: the JSON body's `retry_after` (seconds, fractional),
/// else the `Retry-After` header, else one second.
async fn retry_after(response: reqwest::Response) -> Duration {
    #[derive(serde::Deserialize)]
    struct Limit {
        retry_after: f64,
    }
    let header = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let body = response.bytes().await.ok().and_then(|b| serde_json::from_slice::<Limit>(&b).ok());
    let secs = body.map(|l| l.retry_after).or(header).unwrap_or(1.0);
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(1))
}

fn transport(route: &'static str, e: reqwest::Error) -> RestError {
    if e.is_timeout() { RestError::Timeout { route } } else { RestError::Transport { route, source: e.without_url() } }
}

/// Discord tokens are URL-safe (letters, digits, `.`, `_`, `-`); anything else is
/// refused rather than put into a path.
fn token_ok(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn checked(token: &str) -> Result<&str, RestError> {
    if token_ok(token) { Ok(token) } else { Err(RestError::BadToken) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked() {
        assert!(matches!(Rest::builder().timeout(Duration::ZERO).build(), Err(RestError::Config(_))));
        assert!(matches!(Rest::builder().base_url("ftp://x").build(), Err(RestError::Config(_))));
        assert!(matches!(Rest::builder().bot_token("a/b").build(), Err(RestError::BadToken)));
        assert!(token_ok("aW50ZXJhY3Rpb24.abc_d-e"));
        assert!(!token_ok("../../x") && !token_ok(""));
    }

    #[test]
    fn token_gone_is_a_webhook_401_or_404() {
        let gone = RestError::Status { route: EDIT_ORIGINAL, status: 401, body: String::new() };
        assert!(gone.is_token_gone());
        let channel = RestError::Status { route: EDIT_MESSAGE, status: 404, body: String::new() };
        assert!(!channel.is_token_gone());
    }
}
