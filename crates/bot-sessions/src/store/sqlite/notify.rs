//! End notices over SQLite, for processes sharing one file: a small table beside the
//! store's (`<table>_notices`), written and polled by one thread per store with a
//! connection of its own, started on first use. The poll is `PRAGMA data_version`,
//! which changes only when another connection committed: an idle poll reads the
//! file's change counter and nothing else; the rows past the last one seen are read
//! only after a change. Rows older than five minutes are deleted now and then.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use tokio::sync::broadcast;

use crate::store::notify::{Heard, Notice, Transport, backoff};

/// How often the file's change counter is read.
const POLL: Duration = Duration::from_millis(20);
/// How long notice rows are kept.
const KEEP_MS: i64 = 5 * 60 * 1000;
/// Old rows are deleted once per this many notices sent.
const PRUNE_EVERY: u64 = 128;

type Hub = Arc<OnceLock<broadcast::WeakSender<Heard>>>;

/// The SQLite side of a store's notices.
pub(super) struct SqliteNotices {
    outbox: mpsc::Sender<Notice>,
    poller: Mutex<Option<Poller>>,
    hub: Hub,
}

struct Poller {
    path: PathBuf,
    busy_timeout: Duration,
    table: String,
    outbox: mpsc::Receiver<Notice>,
    /// Tells this store's rows from the other processes'.
    origin: i64,
}

impl SqliteNotices {
    pub(super) fn new(path: PathBuf, busy_timeout: Duration, table: &str) -> Self {
        let (tx, rx) = mpsc::channel();
        let poller = Poller {
            path,
            busy_timeout,
            table: format!("\"{table}_notices\""),
            outbox: rx,
            origin: rand::random_range(1..=i64::MAX),
        };
        SqliteNotices { outbox: tx, poller: Mutex::new(Some(poller)), hub: Hub::default() }
    }

    fn ensure_running(&self) {
        let poller = self.poller.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(poller) = poller {
            let hub = self.hub.clone();
            let spawned =
                std::thread::Builder::new().name("bot-sessions-sqlite-notices".into()).spawn(move || poller.run(&hub));
            if let Err(error) = spawned {
                tracing::warn!(%error, "sqlite: could not start the notice thread; ends are heard by re-reading");
            }
        }
    }
}

impl Transport for SqliteNotices {
    fn publish(&self, notice: Notice) {
        self.ensure_running();
        let _ = self.outbox.send(notice);
    }

    fn start(&self, hub: broadcast::WeakSender<Heard>) {
        let _ = self.hub.set(hub);
        self.ensure_running();
    }

    fn echoes(&self) -> bool {
        false
    }
}

fn tell(hub: &Hub, heard: Heard) {
    if let Some(sender) = hub.get().and_then(broadcast::WeakSender::upgrade) {
        let _ = sender.send(heard);
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Why the poller stopped talking to the file.
enum Stop {
    /// The store was dropped.
    Gone,
    /// A database error: reconnect.
    Failed(rusqlite::Error),
}

impl From<rusqlite::Error> for Stop {
    fn from(e: rusqlite::Error) -> Self {
        Stop::Failed(e)
    }
}

impl Poller {
    /// Opens, listens and sends until the store is dropped; reconnects after errors.
    fn run(self, hub: &Hub) {
        let mut failures = 0;
        loop {
            match self.session(hub) {
                Stop::Gone => return,
                Stop::Failed(error) => {
                    failures += 1;
                    tracing::warn!(%error, table = %self.table, "sqlite: the notice connection failed; reopening");
                    match self.outbox.recv_timeout(backoff(failures)) {
                        Err(RecvTimeoutError::Disconnected) => return,
                        // A notice sent while failing is lost (its receivers re-read).
                        Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                    }
                }
            }
        }
    }

    fn session(&self, hub: &Hub) -> Stop {
        let run = || -> Result<(), Stop> {
            let conn = Connection::open(&self.path)?;
            conn.busy_timeout(self.busy_timeout)?;
            let t = &self.table;
            conn.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {t} (seq INTEGER PRIMARY KEY AUTOINCREMENT, origin INTEGER NOT NULL, \
                 topic TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL)"
            ))?;
            let mut last: i64 = conn.query_row(&format!("SELECT coalesce(max(seq), 0) FROM {t}"), [], |r| r.get(0))?;
            let mut version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
            tell(hub, Heard::Missed);
            let mut sent: u64 = 0;
            let insert = format!("INSERT INTO {t} (origin, topic, body, at) VALUES (?1, ?2, ?3, ?4)");
            let read = format!("SELECT seq, origin, topic, body FROM {t} WHERE seq > ?1 ORDER BY seq");
            loop {
                match self.outbox.recv_timeout(POLL) {
                    Ok(notice) => {
                        let mut next = Some(notice);
                        while let Some(n) = next {
                            conn.execute(&insert, params![self.origin, &*n.topic, &*n.body, now_ms()])?;
                            sent += 1;
                            if sent.is_multiple_of(PRUNE_EVERY) {
                                conn.execute(&format!("DELETE FROM {t} WHERE at < ?1"), [now_ms() - KEEP_MS])?;
                            }
                            next = self.outbox.try_recv().ok();
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Err(Stop::Gone),
                }
                if hub.get().is_none() {
                    continue; // nobody here listens: only send
                }
                let v: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
                if v == version {
                    continue;
                }
                version = v;
                let mut stmt = conn.prepare_cached(&read)?;
                let mut rows = stmt.query([last])?;
                while let Some(row) = rows.next()? {
                    last = row.get(0)?;
                    if row.get::<_, i64>(1)? == self.origin {
                        continue;
                    }
                    let (topic, body): (String, String) = (row.get(2)?, row.get(3)?);
                    tell(hub, Heard::Notice(Notice { topic: topic.into(), body: body.into() }));
                }
            }
        };
        match run() {
            Ok(()) => Stop::Gone,
            Err(stop) => stop,
        }
    }
}
