//! Notices: a store-wide channel on which one process tells every other process on the
//! same store that something happened (the interactive manager says "session X of
//! namespace N ended", so a handle waiting in another process resolves at once).
//!
//! Notices are a hint, never the truth: they carry no data, may be lost (a dropped
//! connection, a lagging receiver), and a receiver checks the store before acting. A
//! receiver that may have missed some hears [`Heard::Missed`] and re-checks what it
//! waits for.
//!
//! Each backend carries them its own way, behind [`Store::notices`](super::Store::notices):
//! Redis with `PUBLISH` and a dedicated, reconnecting pub/sub connection; PostgreSQL
//! with `NOTIFY` and a dedicated, reconnecting `LISTEN` connection; SQLite with a small
//! table polled through `PRAGMA data_version` (which changes only when another
//! connection commits, so an idle poll reads nothing); the memory store in process.

use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;

/// How many notices a slow receiver may lag behind before it hears [`Heard::Missed`].
const CAPACITY: usize = 1024;

/// One notice: what (`body`, e.g. a session id) happened in which `topic` (e.g. a
/// namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The topic (the interactive manager uses its namespace).
    pub topic: Arc<str>,
    /// What the notice is about (the interactive manager sends a session id).
    pub body: Arc<str>,
}

impl Notice {
    /// The notice as one line of text: `topic body` (neither contains a space: the
    /// publisher checks).
    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub(crate) fn encode(&self) -> String {
        format!("{} {}", self.topic, self.body)
    }

    /// Reads [`encode`](Self::encode)'s text; `None` for anything else.
    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub(crate) fn decode(text: &str) -> Option<Notice> {
        let (topic, body) = text.split_once(' ')?;
        Some(Notice { topic: topic.into(), body: body.into() })
    }
}

/// What a receiver of [`Notices::subscribe`] hears.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Heard {
    /// A notice, from this process or another.
    Notice(Notice),
    /// Notices may have been lost (the backend connection was (re)opened, or this
    /// receiver lagged): re-check everything waited for.
    Missed,
}

/// How a backend carries notices between processes.
pub(crate) trait Transport: Send + Sync + 'static {
    /// Sends `notice` to the other processes, without waiting (a failure is logged).
    /// Called inside a tokio runtime.
    fn publish(&self, notice: Notice);

    /// Starts listening: what other processes publish goes to `hub` (and, after each
    /// (re)connection, a [`Heard::Missed`]). Called once, inside a tokio runtime; the
    /// work stops once `hub` has no strong sender left.
    fn start(&self, hub: broadcast::WeakSender<Heard>);

    /// Whether what [`publish`](Self::publish) sends comes back to this process's
    /// listener (Redis and PostgreSQL echo; the SQLite poller does not).
    fn echoes(&self) -> bool;
}

struct Shared {
    hub: broadcast::Sender<Heard>,
    transport: Option<Box<dyn Transport>>,
    started: OnceLock<()>,
}

/// A store's notices (see the [module docs](self)); cheap to clone. Get a store's with
/// [`Store::notices`](super::Store::notices).
///
/// # Examples
///
/// ```
/// use bot_sessions::store::notify::{Heard, Notices};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let notices = Notices::in_process();
/// let mut heard = notices.subscribe();
/// notices.publish("interactive", "a1b2c3");
/// let Heard::Notice(notice) = heard.recv().await? else { panic!("a notice") };
/// assert_eq!((&*notice.topic, &*notice.body), ("interactive", "a1b2c3"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Notices {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices")
            .field("cross_process", &self.shared.transport.is_some())
            .field("receivers", &self.shared.hub.receiver_count())
            .finish()
    }
}

impl Default for Notices {
    fn default() -> Self {
        Self::in_process()
    }
}

impl Notices {
    /// Notices that stay in this process (the memory store's, or a custom store's that
    /// only one process uses).
    pub fn in_process() -> Self {
        Self::build(None)
    }

    /// Notices carried between processes by `transport`.
    #[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
    pub(crate) fn with_transport(transport: impl Transport) -> Self {
        Self::build(Some(Box::new(transport)))
    }

    fn build(transport: Option<Box<dyn Transport>>) -> Self {
        let hub = broadcast::channel(CAPACITY).0;
        Notices { shared: Arc::new(Shared { hub, transport, started: OnceLock::new() }) }
    }

    /// Whether notices reach other processes.
    pub fn cross_process(&self) -> bool {
        self.shared.transport.is_some()
    }

    /// Starts the backend's listener, once, if there is a tokio runtime to run it.
    fn start(&self, transport: &dyn Transport) -> bool {
        if self.shared.started.get().is_some() {
            return true;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return false;
        }
        self.shared.started.get_or_init(|| transport.start(self.shared.hub.downgrade()));
        true
    }

    /// Tells every subscriber, in this process and (on a shared backend) in the others,
    /// that `body` happened in `topic`. Never waits; delivery is best effort. A topic
    /// or body containing a space or a line break is not sent (logged).
    pub fn publish(&self, topic: &str, body: &str) {
        if topic.contains([' ', '\n', '\r']) || body.contains([' ', '\n', '\r']) {
            tracing::warn!(topic, body, "a notice with a space or line break in its topic or body; not sent");
            return;
        }
        let notice = Notice { topic: topic.into(), body: body.into() };
        match &self.shared.transport {
            Some(transport) if tokio::runtime::Handle::try_current().is_ok() => {
                if !transport.echoes() {
                    let _ = self.shared.hub.send(Heard::Notice(notice.clone()));
                }
                transport.publish(notice);
            }
            Some(_) => tracing::debug!(topic, "a notice published outside a tokio runtime; not sent"),
            None => drop(self.shared.hub.send(Heard::Notice(notice))),
        }
    }

    /// Hears every notice published from now on (a receiver that falls more than 1024
    /// behind gets [`broadcast::error::RecvError::Lagged`]: treat it as
    /// [`Heard::Missed`]). The first call starts the backend's listener (inside a tokio
    /// runtime; outside one, only this process's notices are heard).
    pub fn subscribe(&self) -> broadcast::Receiver<Heard> {
        if let Some(transport) = &self.shared.transport {
            self.start(&**transport);
        }
        self.shared.hub.subscribe()
    }
}

/// The delay before reconnection attempt `failures` (1, 2, ...) of a listener: 100 ms
/// doubling up to 5 s.
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
pub(crate) fn backoff(failures: u32) -> std::time::Duration {
    let ms = 100u64.saturating_mul(1 << failures.saturating_sub(1).min(6));
    std::time::Duration::from_millis(ms.min(5_000))
}

/// A stable 64-bit hash (FNV-1a) of `text`, the same in every process: for channel
/// names derived from a table name.
#[cfg(feature = "postgres")]
pub(crate) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(feature = "redis", feature = "postgres"))]
    #[test]
    fn notices_round_trip_as_text() {
        let n = Notice { topic: "interactive".into(), body: "abc".into() };
        assert_eq!(Notice::decode(&n.encode()), Some(n));
        assert_eq!(Notice::decode("no-space"), None);
    }

    #[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1).as_millis(), 100);
        assert_eq!(backoff(2).as_millis(), 200);
        assert_eq!(backoff(40).as_millis(), 5_000);
    }

    #[tokio::test]
    async fn in_process_notices_reach_every_subscriber_and_skip_bad_text() {
        let notices = Notices::in_process();
        let (mut a, mut b) = (notices.subscribe(), notices.subscribe());
        notices.publish("ns", "bad body");
        notices.publish("ns", "s1");
        let want = Heard::Notice(Notice { topic: "ns".into(), body: "s1".into() });
        assert_eq!(a.recv().await.unwrap(), want);
        assert_eq!(b.recv().await.unwrap(), want);
        assert!(a.try_recv().is_err(), "the notice with a space was not sent");
    }
}
