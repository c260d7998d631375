//! The interactions endpoint: what Discord POSTs every interaction to (the steps are
//! on [`Endpoint`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::handler::{Handler, Texts};
use super::messages::Messages;
use super::replay::{DEFAULT_REPLAY_WINDOW, Replays};
use super::rest::{Rest, RestError};
use super::shared::{Counters, Shared};
use super::signature::PublicKey;
use crate::http::{Limits, Listener, ListenerError};
use crate::interactive::Manager;
use crate::session::IntoDynStore;
use crate::{Clock, DynStore, KeyError, SystemClock};
use axum::Router;
use axum::extract::DefaultBodyLimit;

/// The longest replay window [`EndpointBuilder::replay_window`] takes: a day.
const MAX_REPLAY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A misconfigured endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The path does not start with `/`.
    #[error("the endpoint path `{0}` does not start with `/`")]
    Path(String),
    /// A zero deferral window or body limit.
    #[error("{0} must be above zero")]
    Zero(&'static str),
    /// The default REST client could not be built.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The message records' namespace is invalid.
    #[error(transparent)]
    Messages(#[from] KeyError),
    /// The listener's limits are out of range.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// A setting out of its range.
    #[error("{what} {reason}")]
    Config {
        /// The setting.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Counters of what the endpoint did, since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests received.
    pub requests: u64,
    /// Refused for their signature (401).
    pub unauthorized: u64,
    /// Signed, but refused as replays (401): a timestamp out of the window or not a
    /// Unix time, or an interaction id seen already.
    pub replays: u64,
    /// Signed, but not an interaction (400).
    pub bad_requests: u64,
    /// PINGs answered.
    pub pings: u64,
    /// Interactions a session took (any outcome but "not ours").
    pub routed: u64,
    /// Interactions the bot's handler got.
    pub handled: u64,
    /// Deferred responses sent.
    pub deferred: u64,
    /// Answers that failed (session, handler, rendering or REST errors).
    pub failures: u64,
}

/// Configures an [`Endpoint`]; see [`Endpoint::builder`].
#[must_use]
pub struct EndpointBuilder {
    key: PublicKey,
    path: String,
    manager: Option<Manager>,
    handler: Option<Arc<dyn Handler>>,
    rest: Option<Rest>,
    messages: Option<Messages>,
    body_limit: usize,
    defer_after: Duration,
    texts: Texts,
    replay_window: Duration,
    replay_store: Option<DynStore>,
    clock: Option<Arc<dyn Clock>>,
    limits: Option<Limits>,
}

impl std::fmt::Debug for EndpointBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointBuilder").field("path", &self.path).field("key", &self.key).finish_non_exhaustive()
    }
}

impl EndpointBuilder {
    /// The path Discord POSTs to (default `/interactions`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Routes component clicks and modal submits to this manager's sessions.
    pub fn manager(mut self, manager: Manager) -> Self {
        self.manager = Some(manager);
        self
    }

    /// The bot's handler for everything else (without one, those get
    /// [`Texts::unsupported`]).
    pub fn handler(mut self, handler: impl Handler) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// The REST client for deferred answers and follow-ups (default: Discord's API,
    /// no bot token).
    pub fn rest(mut self, rest: Rest) -> Self {
        self.rest = Some(rest);
        self
    }

    /// Where the sessions' messages are noted (default: in the manager's store, on
    /// its clock, see [`Messages`]).
    pub fn messages(mut self, messages: Messages) -> Self {
        self.messages = Some(messages);
        self
    }

    /// The largest body read, in bytes (default
    /// [`DEFAULT_BODY_LIMIT`](crate::http::DEFAULT_BODY_LIMIT), 256 KiB: far above a
    /// real interaction); larger requests get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long an answer may take before a deferred response goes out (default
    /// 2.5 s; Discord invalidates the interaction after 3 s without a response).
    pub fn defer_after(mut self, window: Duration) -> Self {
        self.defer_after = window;
        self
    }

    /// The texts of answers nobody gave.
    pub fn texts(mut self, texts: Texts) -> Self {
        self.texts = texts;
        self
    }

    /// How far a request's `X-Signature-Timestamp` may be from the clock, either way
    /// (default [`DEFAULT_REPLAY_WINDOW`], 5 minutes; at most a day). Older or newer
    /// requests, and timestamps that are not decimal Unix times, get 401 (see
    /// [`replay`](super::replay)).
    pub fn replay_window(mut self, window: Duration) -> Self {
        self.replay_window = window;
        self
    }

    /// Where the interaction ids seen are kept, so that a request replayed to another
    /// process sharing the store is refused too (default: the manager's store; without
    /// a manager, this process only, in a bounded set).
    pub fn replay_store(mut self, store: impl IntoDynStore) -> Self {
        self.replay_store = Some(store.into_dyn_store());
        self
    }

    /// What [`Endpoint::serve`] allows a client: header and body read times, open
    /// connections (default [`Limits::default`], with the
    /// [`body_limit`](Self::body_limit)).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// The clock request timestamps are checked against (default: the system clock;
    /// Discord's timestamps are wall-clock Unix times).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Builds the endpoint.
    ///
    /// # Errors
    ///
    /// [`EndpointError`] for a path without a leading `/`, a zero window or body
    /// limit, a replay window or listener limits out of range, or a default REST
    /// client that cannot be built.
    pub fn build(self) -> Result<Endpoint, EndpointError> {
        if !self.path.starts_with('/') {
            return Err(EndpointError::Path(self.path));
        }
        if self.defer_after.is_zero() {
            return Err(EndpointError::Zero("the deferral window"));
        }
        if self.body_limit == 0 {
            return Err(EndpointError::Zero("the body limit"));
        }
        if self.replay_window.is_zero() {
            return Err(EndpointError::Zero("the replay window"));
        }
        if self.replay_window > MAX_REPLAY_WINDOW {
            let reason = format!("is {:?}, above the most allowed, {MAX_REPLAY_WINDOW:?}", self.replay_window);
            return Err(EndpointError::Config { what: "the replay window", reason });
        }
        let rest = match self.rest {
            Some(rest) => rest,
            None => Rest::builder().build()?,
        };
        let messages = match (self.messages, &self.manager) {
            (Some(m), _) => Some(m),
            (None, Some(manager)) => {
                let messages = Messages::new(manager.store().clone())?;
                Some(messages.clock_arc(manager.core.clock.clone()).sealer(manager.core.sealer.clone()))
            }
            (None, None) => None,
        };
        let listener = Listener::new(self.limits.unwrap_or_default().body_limit(self.body_limit))?;
        let replay_store = self.replay_store.or_else(|| self.manager.as_ref().map(|m| m.store().clone()));
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let replays = Replays::new(self.replay_window, clock, replay_store)?;
        let shared = Shared {
            key: self.key,
            manager: self.manager,
            handler: self.handler,
            rest,
            messages,
            defer_after: self.defer_after,
            texts: self.texts,
            counters: Counters::default(),
            replays,
        };
        Ok(Endpoint { shared: Arc::new(shared), path: self.path.into(), body_limit: self.body_limit, listener })
    }
}

/// Discord's interactions endpoint as an axum [`Router`]. Cheap to clone.
///
/// Per request, in order:
///
/// 1. the body is read up to [`EndpointBuilder::body_limit`] (over it: 413);
/// 2. the Ed25519 signature is checked (missing, malformed, wrong: 401, nothing else
///    happens), then the timestamp: not a decimal Unix time within
///    [`EndpointBuilder::replay_window`] of the clock: 401;
/// 3. a PING is answered PONG;
/// 4. the body is read as an interaction ([`parse_interaction`](super::parse_interaction);
///    not one: 400); an interaction id seen before, by this process or another sharing
///    the store, is a replay: 401, nothing else happens (see [`replay`](super::replay));
/// 5. a component click or a modal submit goes to the interactive [`Manager`]; if it is
///    not one of its sessions (another namespace), or for anything else (application
///    commands), to the bot's [`Handler`]; an autocomplete request is answered with
///    no choices;
/// 6. the answer is rendered as the interaction response
///    ([`interaction_response`](super::interaction_response)); outcomes no session
///    answered get the [`Texts`] as ephemeral messages;
/// 7. if the answer is not ready within [`EndpointBuilder::defer_after`] (2.5 s by
///    default; Discord waits 3 s), a deferred response goes out (`DEFERRED_UPDATE_MESSAGE`
///    on a component's message, else `DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE`) and the
///    answer follows over REST when it is ready.
///
/// # Examples
///
/// ```no_run
/// use bot_sessions::discord::{Endpoint, PublicKey};
/// use bot_sessions::interactive::{CustomIdCodec, Manager, Reply, Target};
/// use bot_sessions::store::memory::MemoryStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = Manager::builder(MemoryStore::new(), CustomIdCodec::new("m", Target::Discord)?).build()?;
/// let endpoint = Endpoint::builder(PublicKey::from_hex(&std::env::var("DISCORD_PUBLIC_KEY")?)?)
///     .manager(manager.clone())
///     .handler(|_ctx, _interaction| async { Ok(Some(Reply::notice("hello"))) })
///     .build()?;
/// // Edit sessions' messages when they end with nobody clicking (expiry, shutdown).
/// let _ends = endpoint.ends().spawn(&manager);
/// // Mount it in an app of one's own...
/// let _app: axum::Router = axum::Router::new().merge(endpoint.router());
/// // ...or serve it alone.
/// endpoint.serve("127.0.0.1:8080".parse()?).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    pub(super) shared: Arc<Shared>,
    path: Arc<str>,
    body_limit: usize,
    listener: Listener,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("path", &self.path).field("key", &self.shared.key).finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Starts configuring an endpoint verifying requests with `key`.
    pub fn builder(key: PublicKey) -> EndpointBuilder {
        EndpointBuilder {
            key,
            path: "/interactions".into(),
            manager: None,
            handler: None,
            rest: None,
            messages: None,
            body_limit: crate::http::DEFAULT_BODY_LIMIT,
            defer_after: Duration::from_millis(2500),
            texts: Texts::default(),
            replay_window: DEFAULT_REPLAY_WINDOW,
            replay_store: None,
            clock: None,
            limits: None,
        }
    }

    /// The router: `POST` at the path, with the body limit.
    pub fn router(&self) -> Router {
        Router::new()
            .route(&self.path, axum::routing::post(super::dispatch::post))
            .layer(DefaultBodyLimit::max(self.body_limit))
            .with_state(self.shared.clone())
    }

    /// Serves the router alone on `addr` until the process ends, within the
    /// [`limits`](EndpointBuilder::limits) (see [`Listener`]).
    ///
    /// # Errors
    ///
    /// The listener's I/O errors (the address is taken, ...).
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<()> {
        let tcp = tokio::net::TcpListener::bind(addr).await?;
        self.serve_on(tcp, std::future::pending()).await
    }

    /// Serves the router alone on `tcp` until `shutdown` completes, within the
    /// [`limits`](EndpointBuilder::limits); then the requests in hand finish.
    ///
    /// # Errors
    ///
    /// The listener's I/O errors.
    pub async fn serve_on<F>(&self, tcp: tokio::net::TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.listener.serve(tcp, self.router(), shutdown).await
    }

    /// Answers an interaction that came some other way than a signed POST, such as a
    /// gateway's `INTERACTION_CREATE` (twilight-gateway): routed to the sessions and
    /// the handler, rendered and deferred exactly as a request's (steps 5 to 7 above;
    /// a deferred answer follows over REST, a session's message is noted). The
    /// signature and replay checks are left out: the gateway connection is
    /// authenticated. A PING is answered PONG. Send the response with
    /// [`Rest::create_response`]; nothing counts it in [`stats`](Self::stats)' requests.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use bot_sessions::discord::twilight_model::application::interaction::Interaction;
    /// use bot_sessions::discord::{Endpoint, Rest};
    ///
    /// # async fn on_event(endpoint: &Endpoint, rest: &Rest, interaction: Interaction) -> Result<(), bot_sessions::discord::RestError> {
    /// // An interaction from twilight-gateway's `Event::InteractionCreate(event)`: `event.0`.
    /// let (id, token) = (interaction.id.get(), interaction.token.clone());
    /// let response = endpoint.respond(interaction).await;
    /// rest.create_response(id, &token, &response).await?;
    /// # Ok(()) }
    /// ```
    pub async fn respond(
        &self,
        interaction: twilight_model::application::interaction::Interaction,
    ) -> twilight_model::http::interaction::InteractionResponse {
        if interaction.kind == twilight_model::application::interaction::InteractionType::Ping {
            return super::response::bare(twilight_model::http::interaction::InteractionResponseType::Pong);
        }
        super::dispatch::respond(self.shared.clone(), interaction).await
    }

    /// The REST client.
    pub fn rest(&self) -> &Rest {
        &self.shared.rest
    }

    /// Where sessions' messages are noted (`None` without a manager or records).
    pub fn messages(&self) -> Option<&Messages> {
        self.shared.messages.as_ref()
    }

    /// What shows the ends no click answered, with this endpoint's REST client and
    /// message records; [`Ends::spawn`](super::Ends::spawn) it on the manager.
    pub fn ends(&self) -> super::Ends {
        super::Ends::new(self.shared.rest.clone(), self.shared.messages.clone())
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            requests: get(&c.requests),
            unauthorized: get(&c.unauthorized),
            replays: get(&c.replays),
            bad_requests: get(&c.bad_requests),
            pings: get(&c.pings),
            routed: get(&c.routed),
            handled: get(&c.handled),
            deferred: get(&c.deferred),
            failures: get(&c.failures),
        }
    }
}
