//! The shared connections, and how a failed statement is reported (with the error
//! mapping of `error.rs`): retryable when it certainly did not run,
//! [`StoreError::Ambiguous`] when a write or delete was sent and its answer never came. A statement that runs out of time is cancelled on the server
//! (a cancel request), so a bot whose statements keep timing out does not pile up
//! server backends still working for callers that left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{CancelToken, Client, Row, Statement};

use super::BACKEND;
use super::error::{connect_err, connection_lost, pg_err, timed_out, timeout_err};
use super::reconnect::{OPENS_AT_ONCE, Reconnect, Wait};
use super::sql::Q;
use super::tls::{self, Tls};
use crate::StoreError;

/// What a statement does, which decides how a failure after sending it is reported.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op<'a> {
    /// Reads, or changes that are safe to repeat (forget-user, purge): a failure is a
    /// plain backend error, about `key` if any.
    Read(Option<&'a str>),
    /// A write or delete of `key`: once sent, a lost answer is ambiguous.
    Write(&'a str),
}

impl<'a> Op<'a> {
    fn key(self) -> Option<&'a str> {
        match self {
            Op::Read(key) => key,
            Op::Write(key) => Some(key),
        }
    }
}

/// One open connection, its prepared statements, and the task that drives it.
pub(super) struct Conn {
    client: Client,
    prepared: Vec<Statement>,
    driver: AbortHandle,
}

/// An open connection that is not in a slot (the migration's), and what ends it.
pub(super) struct Single {
    pub(super) client: Client,
    pub(super) driver: AbortHandle,
}

/// A connection slot: the live connection, if any, and a gate so one task at a time
/// opens a new one.
#[derive(Default)]
struct Slot {
    conn: Mutex<Option<Arc<Conn>>>,
    opening: tokio::sync::Mutex<()>,
}

/// The shared connections.
pub(super) struct Connections {
    pg: tokio_postgres::Config,
    tls: Tls,
    sql: Vec<String>,
    /// `SET statement_timeout = ...`, run on every new connection.
    session_setup: String,
    op_timeout: Duration,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    /// Waits between failed connection attempts.
    reconnect: Reconnect,
    /// At most [`OPENS_AT_ONCE`] connection attempts at a time.
    opens: tokio::sync::Semaphore,
}

/// The settings [`Connections::new`] takes.
pub(super) struct Settings {
    pub(super) pool_size: usize,
    pub(super) op_timeout: Duration,
    pub(super) statement_timeout_ms: u64,
    pub(super) reconnect_delay: Duration,
    pub(super) reconnect_delay_max: Duration,
}

impl Connections {
    /// `pool_size` empty slots; connections open on first use.
    pub(super) fn new(pg: tokio_postgres::Config, tls: Tls, sql: Vec<String>, settings: Settings) -> Self {
        let slots = (0..settings.pool_size).map(|_| Slot::default()).collect();
        let session_setup = format!("SET statement_timeout = {}", settings.statement_timeout_ms);
        Connections {
            pg,
            tls,
            sql,
            session_setup,
            op_timeout: settings.op_timeout,
            slots,
            next: AtomicUsize::new(0),
            reconnect: Reconnect::new(settings.reconnect_delay, settings.reconnect_delay_max),
            opens: tokio::sync::Semaphore::new(OPENS_AT_ONCE),
        }
    }

    fn current(slot: &Slot) -> Option<Arc<Conn>> {
        let conn = slot.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.as_ref().filter(|c| !c.client.is_closed()).cloned()
    }

    /// A live connection of any slot.
    fn any_live(&self) -> Option<Arc<Conn>> {
        self.slots.iter().find_map(Self::current)
    }

    /// A live connection: the next slot's, or a new one in it. When no new one may be
    /// opened now (waiting after failed attempts, or another attempt is under way) or
    /// opening fails, any other live connection serves; without one, the operation
    /// waits for the next attempt (its own or another's) until `deadline`, and then
    /// fails with what the last attempt said (retryable when that may pass).
    async fn get(&self, deadline: Instant) -> Result<Arc<Conn>, StoreError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[i];
        loop {
            if let Some(c) = Self::current(slot) {
                return Ok(c);
            }
            let wait = match self.reconnect.waiting(Instant::now()) {
                Some(wait) => wait,
                None => match self.open_in(slot).await {
                    Ok(c) => return Ok(c),
                    Err(wait) => wait,
                },
            };
            if let Some(c) = self.any_live() {
                return Ok(c);
            }
            if !wait.error.is_retryable() || !self.reconnect.wait_out(&wait, deadline).await {
                return Err(wait.error);
            }
        }
    }

    /// Opens a connection in `slot` (one task per slot at a time), or says why not.
    async fn open_in(&self, slot: &Slot) -> Result<Arc<Conn>, Wait> {
        let _opening = slot.opening.lock().await;
        if let Some(c) = Self::current(slot) {
            return Ok(c);
        }
        // Cannot fail: the semaphore is never closed.
        let _permit = self
            .opens
            .acquire()
            .await
            .map_err(|e| Wait { error: StoreError::backend(BACKEND, None, true, e), until: None })?;
        let attempt = self.reconnect.begin(Instant::now())?;
        match self.open().await {
            Ok(c) => {
                attempt.succeeded();
                let c = Arc::new(c);
                *slot.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                attempt.failed(Instant::now(), &e);
                // The next attempt's time, as the failure just set it.
                let until = self.reconnect.waiting(Instant::now()).and_then(|w| w.until);
                Err(Wait { error: e, until })
            }
        }
    }

    /// One connection outside the slots, for the migration.
    pub(super) async fn open_single(&self) -> Result<Single, StoreError> {
        let (client, driver) = connect(&self.pg, &self.tls).await?;
        Ok(Single { client, driver })
    }

    /// Sends a cancel request for whatever the connection of `token` runs, on a task
    /// of its own (bounded by the connect timeout), so the caller returns at once.
    pub(super) fn cancel(&self, token: CancelToken) {
        let tls = self.tls.connector.clone();
        let limit = self.pg.get_connect_timeout().copied().unwrap_or(Duration::from_secs(2));
        tokio::spawn(async move {
            match tokio::time::timeout(limit, token.cancel_query(tls)).await {
                Ok(Ok(())) => tracing::debug!("postgres: cancelled a statement that ran out of time"),
                Ok(Err(e)) => tracing::warn!(
                    error = %e,
                    "postgres: could not cancel a statement that ran out of time; the server's statement_timeout will"
                ),
                Err(_) => tracing::warn!(
                    "postgres: no answer to a cancel request in {limit:?}; the server's statement_timeout will end the statement"
                ),
            }
        });
    }

    async fn open(&self) -> Result<Conn, StoreError> {
        let (client, driver) = connect(&self.pg, &self.tls).await?;
        let opened = async {
            client.batch_execute(&self.session_setup).await?;
            let mut prepared = Vec::with_capacity(self.sql.len());
            for sql in &self.sql {
                prepared.push(client.prepare(sql).await?);
            }
            Ok(prepared)
        };
        match opened.await {
            Ok(prepared) => Ok(Conn { client, prepared, driver }),
            Err(e) => {
                driver.abort();
                Err(pg_err(None, e))
            }
        }
    }

    /// Drops `conn` from its slot (it failed or hung) and closes it, so the slot
    /// reconnects. Statements still in flight on it fail at once (closed).
    fn evict(&self, conn: &Arc<Conn>) {
        conn.driver.abort();
        for slot in self.slots.iter() {
            let mut cur = slot.conn.lock().unwrap_or_else(|p| p.into_inner());
            if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                *cur = None;
                return;
            }
        }
    }

    /// Runs one statement on a shared connection, within the operation timeout, and
    /// returns its rows.
    ///
    /// Failures before the statement is handed to a connection (none could be opened
    /// by the deadline, the time ran out waiting) are retryable. After that, an answer
    /// from the server is final (the statement's implicit transaction rolled back); a
    /// connection closed or broken under an [`Op::Read`] sends it again on another
    /// connection, within the same time (a timeout is retryable); for an [`Op::Write`],
    /// no answer is [`StoreError::Ambiguous`].
    pub(super) async fn query(&self, op: Op<'_>, q: Q, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let key = op.key();
        let deadline = Instant::now().checked_add(self.op_timeout).unwrap_or_else(Instant::now);
        loop {
            let conn = match tokio::time::timeout_at(deadline, self.get(deadline)).await {
                Ok(conn) => conn.map_err(|e| naming(e, key))?,
                Err(_) => return Err(timeout_err(key, self.op_timeout)),
            };
            if Instant::now() >= deadline {
                return Err(timeout_err(key, self.op_timeout)); // not sent
            }
            let Some(statement) = conn.prepared.get(q as usize) else {
                return Err(StoreError::backend(BACKEND, key, false, format!("statement {q:?} is not prepared")));
            };
            match tokio::time::timeout_at(deadline, conn.client.query(statement, params)).await {
                Ok(Ok(rows)) => return Ok(rows),
                Ok(Err(e)) => {
                    let lost = connection_lost(&e);
                    if lost {
                        self.evict(&conn);
                    }
                    match op {
                        Op::Write(key) if lost => return Err(StoreError::ambiguous(BACKEND, key, e)),
                        // Safe to repeat: sent again on another (or a new) connection,
                        // within the same time.
                        Op::Read(_) if lost => {
                            tracing::debug!(error = %e, "postgres connection lost under a read; trying again");
                        }
                        _ => return Err(pg_err(key, e)),
                    }
                }
                Err(_) => {
                    // Closed first, so the statements pipelined behind it fail on this
                    // side (their callers learn at once); then the server is asked to
                    // stop the one running, which would otherwise hold its locks and its
                    // backend until the server's own statement_timeout.
                    self.evict(&conn);
                    self.cancel(conn.client.cancel_token());
                    return match op {
                        Op::Write(key) => Err(StoreError::ambiguous(BACKEND, key, timed_out(self.op_timeout))),
                        Op::Read(key) => Err(timeout_err(key, self.op_timeout)),
                    };
                }
            }
        }
    }
}

/// `e`, naming `key` if it names none.
fn naming(e: StoreError, key: Option<&str>) -> StoreError {
    match (e, key) {
        (StoreError::Backend { backend, key: None, retryable, source }, Some(key)) => {
            StoreError::Backend { backend, key: Some(key.to_owned()), retryable, source }
        }
        (e, _) => e,
    }
}

/// Opens one connection and drives it on a task of its own.
async fn connect(pg: &tokio_postgres::Config, tls: &Tls) -> Result<(Client, AbortHandle), StoreError> {
    let (client, connection) =
        pg.connect(tls.connector.clone()).await.map_err(|e| tls::refused(e, tls.mode).unwrap_or_else(connect_err))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok((client, driver.abort_handle()))
}
