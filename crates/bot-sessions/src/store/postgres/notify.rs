//! End notices over PostgreSQL: one dedicated connection per store, opened on first
//! use, that `LISTEN`s on the store's channel and sends `pg_notify` for this process,
//! and reconnects (with growing waits) when it drops. PostgreSQL delivers a
//! notification to every listening session, the sender's included, once its
//! transaction commits (`pg_notify` runs in its own).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_postgres::AsyncMessage;

use super::tls::Tls;
use crate::store::notify::{Heard, Notice, Transport, backoff, stable_hash};

/// Notices waiting for the connection; past this many, new ones are dropped.
const OUTBOX: usize = 1024;

type Hub = Arc<OnceLock<broadcast::WeakSender<Heard>>>;

/// The PostgreSQL side of a store's notices.
pub(super) struct PgNotices {
    outbox: mpsc::Sender<String>,
    /// Taken by the task, started on first use.
    task: std::sync::Mutex<Option<Task>>,
    hub: Hub,
}

struct Task {
    pg: tokio_postgres::Config,
    tls: Tls,
    channel: String,
    outbox: mpsc::Receiver<String>,
}

impl PgNotices {
    /// Notices on the channel named after `schema.table`, over connections like the
    /// store's.
    pub(super) fn new(pg: tokio_postgres::Config, tls: Tls, schema: &str, table: &str) -> Self {
        let (tx, rx) = mpsc::channel(OUTBOX);
        // A stable, short identifier (channel names are at most 63 bytes).
        let channel = format!("bot_sessions_{:016x}", stable_hash(&format!("{schema}.{table}")));
        let task = Task { pg, tls, channel, outbox: rx };
        PgNotices { outbox: tx, task: std::sync::Mutex::new(Some(task)), hub: Hub::default() }
    }

    fn ensure_running(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            tokio::spawn(task.run(self.hub.clone()));
        }
    }
}

impl Transport for PgNotices {
    fn publish(&self, notice: Notice) {
        self.ensure_running();
        if self.outbox.try_send(notice.encode()).is_err() {
            tracing::debug!("postgres: the notice connection is behind; an end notice was dropped");
        }
    }

    fn start(&self, hub: broadcast::WeakSender<Heard>) {
        let _ = self.hub.set(hub);
        self.ensure_running();
    }

    fn echoes(&self) -> bool {
        true
    }
}

fn tell(hub: &Hub, heard: Heard) {
    if let Some(sender) = hub.get().and_then(broadcast::WeakSender::upgrade) {
        let _ = sender.send(heard);
    }
}

impl Task {
    /// Connects, listens and sends until the store's notices are dropped.
    async fn run(mut self, hub: Hub) {
        let limit = self.pg.get_connect_timeout().copied().unwrap_or(Duration::from_secs(5));
        let notify = "SELECT pg_notify($1, $2)";
        let mut failures = 0;
        loop {
            if failures > 0 {
                tokio::time::sleep(backoff(failures)).await;
                if self.outbox.is_closed() {
                    return;
                }
            }
            failures += 1;
            let (client, mut connection) = match tokio::time::timeout(
                limit,
                self.pg.connect(self.tls.connector.clone()),
            )
            .await
            {
                Ok(Ok(pair)) => pair,
                Ok(Err(error)) => {
                    tracing::warn!(error = %super::error::with_causes(&error), "postgres: the notice connection failed; retrying");
                    continue;
                }
                Err(_) => {
                    tracing::warn!("postgres: the notice connection timed out; retrying");
                    continue;
                }
            };
            let heard = hub.clone();
            let mut driver = tokio::spawn(async move {
                while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    match message {
                        Ok(AsyncMessage::Notification(n)) => match Notice::decode(n.payload()) {
                            Some(notice) => tell(&heard, Heard::Notice(notice)),
                            None => tracing::debug!("postgres: a notification that is not a notice"),
                        },
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(%error, "postgres: the notice connection broke");
                            return;
                        }
                    }
                }
            });
            if let Err(error) = client.batch_execute(&format!("LISTEN \"{}\"", self.channel)).await {
                tracing::warn!(error = %super::error::with_causes(&error), "postgres: LISTEN failed; reconnecting");
                driver.abort();
                continue;
            }
            // Whatever was sent while not listening is lost.
            tell(&hub, Heard::Missed);
            loop {
                tokio::select! {
                    out = self.outbox.recv() => {
                        let Some(text) = out else {
                            driver.abort();
                            return; // the store is gone
                        };
                        if let Err(error) = client.execute(notify, &[&self.channel, &text]).await {
                            tracing::debug!(error = %super::error::with_causes(&error), "postgres: an end notice was not sent");
                            if client.is_closed() {
                                break;
                            }
                        }
                    }
                    _ = &mut driver => break,
                }
            }
            driver.abort();
            failures = 1;
            tracing::warn!("postgres: the notice connection closed; reconnecting");
        }
    }
}
