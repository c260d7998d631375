//! The shared connections, and how a failed statement is reported: retryable when it
//! certainly did not run, [`StoreError::Ambiguous`] when a write or delete was sent and
//! its answer never came.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::sql::Q;
use crate::StoreError;

pub(super) const BACKEND: &str = "postgres";

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
    sql: Vec<String>,
    /// `SET statement_timeout = ...`, run on every new connection.
    session_setup: String,
    op_timeout: Duration,
    slots: Box<[Slot]>,
    next: AtomicUsize,
}

impl Connections {
    /// `pool_size` empty slots; connections open on first use.
    pub(super) fn new(
        pg: tokio_postgres::Config,
        sql: Vec<String>,
        pool_size: usize,
        op_timeout: Duration,
        statement_timeout_ms: u64,
    ) -> Self {
        let slots = (0..pool_size).map(|_| Slot::default()).collect();
        let session_setup = format!("SET statement_timeout = {statement_timeout_ms}");
        Connections { pg, sql, session_setup, op_timeout, slots, next: AtomicUsize::new(0) }
    }

    pub(super) fn driver_config(&self) -> &tokio_postgres::Config {
        &self.pg
    }

    fn current(slot: &Slot) -> Option<Arc<Conn>> {
        let conn = slot.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.as_ref().filter(|c| !c.client.is_closed()).cloned()
    }

    /// A live connection, opening one in the next slot if it has none.
    async fn get(&self) -> Result<Arc<Conn>, StoreError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[i];
        if let Some(c) = Self::current(slot) {
            return Ok(c);
        }
        let _opening = slot.opening.lock().await;
        if let Some(c) = Self::current(slot) {
            return Ok(c);
        }
        let c = Arc::new(self.open().await?);
        *slot.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    async fn open(&self) -> Result<Conn, StoreError> {
        let (client, driver) = connect(&self.pg).await?;
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
    /// Failures before the statement is handed to a connection (none could be opened,
    /// the time ran out waiting) are retryable. After that, an answer from the server
    /// is final (the statement's implicit transaction rolled back); no answer (the
    /// timeout, a connection closed or broken) is retryable for [`Op::Read`] and
    /// [`StoreError::Ambiguous`] for [`Op::Write`].
    pub(super) async fn query(&self, op: Op<'_>, q: Q, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let key = op.key();
        let deadline = Instant::now().checked_add(self.op_timeout).unwrap_or_else(Instant::now);
        let conn = match tokio::time::timeout_at(deadline, self.get()).await {
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
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => {
                let lost = connection_lost(&e);
                if lost {
                    self.evict(&conn);
                }
                match op {
                    Op::Write(key) if lost => Err(StoreError::ambiguous(BACKEND, key, e)),
                    _ => Err(pg_err(key, e)),
                }
            }
            Err(_) => {
                self.evict(&conn);
                match op {
                    Op::Write(key) => Err(StoreError::ambiguous(BACKEND, key, timed_out(self.op_timeout))),
                    Op::Read(key) => Err(timeout_err(key, self.op_timeout)),
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
pub(super) async fn connect(pg: &tokio_postgres::Config) -> Result<(Client, AbortHandle), StoreError> {
    let (client, connection) = pg.connect(NoTls).await.map_err(|e| pg_err(None, e))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok((client, driver.abort_handle()))
}

/// Whether the error means the connection broke before the server's answer arrived:
/// closed, an I/O failure, a connection exception (SQLSTATE class 08) or the server
/// ending the session (57P01-57P05: terminated, shut down, crashed). Such a statement
/// may or may not have committed.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P")
        }
        // No SQLSTATE: the server did not answer (closed, I/O, a garbled message). The
        // parameters of this store's statements always convert, so it was not that.
        None => true,
    }
}

/// Whether a PostgreSQL error may pass if the operation is tried again.
pub(super) fn retryable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        // 08: connection exception; 40001/40P01: serialization failure, deadlock;
        // 53200/53300: out of memory, too many connections; 55P03: lock not available;
        // 57014: query canceled; 57P01-57P05: shutdown, crash, cannot connect now.
        return code.starts_with("08")
            || matches!(code, "40001" | "40P01" | "53200" | "53300" | "55P03" | "57014")
            || code.starts_with("57P");
    }
    // No SQLSTATE: an I/O failure or a timeout talking to the server is transient; a
    // conversion error is not.
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    let text = e.to_string();
    io || text.contains("timeout") || text.contains("connection") || text.contains("closed")
}

pub(super) fn pg_err(key: Option<&str>, e: tokio_postgres::Error) -> StoreError {
    StoreError::backend(BACKEND, key, retryable(&e), e)
}

fn timed_out(after: Duration) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer from postgres within {after:?}"))
}

pub(super) fn timeout_err(key: Option<&str>, after: Duration) -> StoreError {
    StoreError::backend(BACKEND, key, true, timed_out(after))
}
