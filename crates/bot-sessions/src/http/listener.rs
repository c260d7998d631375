//! An HTTP/1 listener whose clients cannot hold memory or connections for long.
//!
//! `axum::serve` reads request headers and bodies with no time limit and accepts any
//! number of connections: a client that never finishes its headers keeps its socket
//! for ever, and a few hundred clients stalled half-way through large bodies hold
//! their buffers. Every request to a bot's endpoint is unauthenticated until its body
//! is read and checked, so [`Listener`] bounds, per [`Limits`]:
//!
//! - the time to read a request's headers (hyper's header read timeout, which also
//!   closes a kept-alive connection that sends nothing);
//! - the time to read its body, from the end of the headers (408 and the connection
//!   closed past it);
//! - the body's size: a `Content-Length` over the limit gets 413 before any of it is
//!   read; a body without one is read up to the limit, then 413;
//! - the number of open connections: past the cap, new ones wait in the kernel's
//!   accept queue (no file descriptor, no memory here) until one closes.
//!
//! The body is read whole (up to the limit) before the router sees the request, so
//! the router's handlers get it at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How long a client may take to send a request's headers, unless configured.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send a request's body after its headers, unless
/// configured.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many connections may be open at once, unless configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// The largest request body read, unless configured: 256 KiB. A Discord interaction
/// (a component's message with its embeds and components, a command's resolved
/// users and attachments) stays well below it; so does a Telegram update.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// The longest header or body read time [`Limits`] takes.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// The most connections [`Limits`] takes (a semaphore's permits are bounded).
const MAX_CONNECTIONS: usize = 1 << 20;
/// The largest body limit [`Limits`] takes: 64 MiB.
const MAX_BODY_LIMIT: usize = 64 << 20;
/// hyper's read buffer, which bounds the headers (over it: 431).
const READ_BUFFER: usize = 64 * 1024;

/// A listener setting out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// A setting out of its range.
    #[error("the listener's {what} {reason}")]
    Config {
        /// The setting.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// What a [`Listener`] allows a client.
///
/// # Examples
///
/// ```
/// use bot_sessions::http::{Limits, Listener};
/// use std::time::Duration;
///
/// let limits = Limits::default().header_timeout(Duration::from_secs(2)).max_connections(64);
/// assert!(Listener::new(limits).is_ok());
/// assert!(Listener::new(Limits::default().max_connections(0)).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Limits {
    header_timeout: Duration,
    body_timeout: Duration,
    max_connections: usize,
    body_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

impl Limits {
    /// The time to send a request's headers (default [`DEFAULT_HEADER_TIMEOUT`];
    /// above zero, at most 5 minutes).
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// The time to send a request's body once the headers are in (default
    /// [`DEFAULT_BODY_TIMEOUT`]; above zero, at most 5 minutes).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How many connections may be open at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`]; 1 to 2^20).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// The largest body, in bytes (default [`DEFAULT_BODY_LIMIT`]; 1 byte to 64 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The body limit.
    pub fn body_limit_bytes(&self) -> usize {
        self.body_limit
    }

    /// Checks every setting's range.
    ///
    /// # Errors
    ///
    /// [`ListenerError::Config`] naming the first setting out of its range.
    pub fn check(&self) -> Result<(), ListenerError> {
        let bad = |what, reason: String| Err(ListenerError::Config { what, reason });
        for (what, d) in [("header timeout", self.header_timeout), ("body timeout", self.body_timeout)] {
            if d.is_zero() || d > MAX_TIMEOUT {
                return bad(what, format!("is {d:?}; it must be above zero and at most {MAX_TIMEOUT:?}"));
            }
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return bad("connection cap", format!("is {}; it must be 1 to {MAX_CONNECTIONS}", self.max_connections));
        }
        if !(1..=MAX_BODY_LIMIT).contains(&self.body_limit) {
            return bad("body limit", format!("is {} bytes; it must be 1 to {MAX_BODY_LIMIT}", self.body_limit));
        }
        Ok(())
    }
}

/// Serves a router over HTTP/1 within [`Limits`] (see the [module](crate::http) for what is
/// bounded and how).
///
/// # Examples
///
/// ```no_run
/// use bot_sessions::http::{Limits, Listener};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// Listener::new(Limits::default())?.serve(tcp, app, std::future::pending()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Listener {
    limits: Limits,
}

impl Listener {
    /// A listener within `limits`.
    ///
    /// # Errors
    ///
    /// [`ListenerError::Config`] for a setting out of its range.
    pub fn new(limits: Limits) -> Result<Self, ListenerError> {
        limits.check()?;
        Ok(Listener { limits })
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Serves `router` on `tcp` until `shutdown` completes; then stops accepting, lets
    /// the requests in hand finish (idle connections close at once) and returns.
    ///
    /// # Errors
    ///
    /// None in practice: accept errors (out of file descriptors, a connection reset
    /// before it was accepted) are logged and accepting goes on after a pause, as
    /// `axum::serve` does.
    pub async fn serve<F>(&self, tcp: TcpListener, router: Router, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let limits = self.limits;
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        let (stop, stopped) = watch::channel(false);
        let router = router.layer(axum::middleware::from_fn_with_state(limits, read_body));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = tcp.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a connection; trying again in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            tokio::spawn(connection(stream, router.clone(), limits, stopped.clone(), permit));
        }
        let _ = stop.send(true);
        // Every connection gives its permit back when it closes.
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        let _ = permits.acquire_many(all).await;
        Ok(())
    }
}

/// One connection, holding its permit until it closes.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(READ_BUFFER);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
    tokio::pin!(conn);
    let stop = async move {
        // The guard `wait_for` returns is dropped at once (it is not `Send`).
        let _ = stopped.wait_for(|stop| *stop).await.map(drop);
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stop => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Reads the body within the limits before the router sees the request.
async fn read_body(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.body_limit as u64) {
        return closing(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large");
    }
    let read = http_body_util::Limited::new(body, limits.body_limit).collect();
    let bytes = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return closing(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large");
        }
        Ok(Err(_)) => return closing(StatusCode::BAD_REQUEST, "the request body could not be read"),
        Err(_) => return closing(StatusCode::REQUEST_TIMEOUT, "the request body took too long"),
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// A refusal after which the connection closes (the rest of the body is not read).
fn closing(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, text).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
