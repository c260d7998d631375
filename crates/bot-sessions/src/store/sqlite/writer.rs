//! The dedicated writer: one thread, one connection, group commit.
//!
//! Every mutation of the store goes through here. The thread takes whatever requests
//! are queued (up to a batch limit), applies them one after the other inside a single
//! `BEGIN IMMEDIATE` transaction, each with its own precondition checked against the
//! state the earlier ones left, and answers each request only after `COMMIT` returned.
//! Under load, 64 concurrent writers cost one commit (and with `Durability::Full` one
//! fsync) instead of 64, yet each write keeps its compare-and-set and nothing is
//! acknowledged before it is in the file.
//!
//! A request that fails with an SQLite error (not a failed precondition) must not take
//! its batch neighbours down with it: the batch is rolled back and re-run one request
//! per transaction, so only the faulty one gets the error.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::schema::Sql;
use super::{BACKEND, sqlite_error};
use crate::{Precondition, Record, SessionKey, StoreError, Timestamp, Write};

/// One mutation.
#[derive(Debug)]
pub(super) enum Op {
    Write {
        key: SessionKey,
        value: Vec<u8>,
        schema_version: u32,
        expires_at: Option<Timestamp>,
        version: u64,
        owner: Option<i64>,
        precondition: Precondition,
    },
    Delete {
        key: SessionKey,
        precondition: Precondition,
    },
    ForgetUser {
        user_id: i64,
    },
    Purge,
}

impl Op {
    fn key(&self) -> Option<&str> {
        match self {
            Op::Write { key, .. } | Op::Delete { key, .. } => Some(key.as_str()),
            Op::ForgetUser { .. } | Op::Purge => None,
        }
    }
}

/// A mutation, the caller's `now`, and where to send its outcome (a version for a
/// write, 0/1 for a delete, a count for forget-user and purge).
#[derive(Debug)]
pub(super) struct Request {
    pub(super) op: Op,
    pub(super) now: Timestamp,
    pub(super) reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// The sending side, held by the store. Dropping it lets the thread commit what is
/// queued, close its connection and end, and waits for that: a process that drops its
/// store before exiting leaves a clean file (no WAL to recover).
#[derive(Debug)]
pub(super) struct Writer {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the sqlite writer thread panicked");
        }
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn spawn(
        conn: Connection,
        sql: std::sync::Arc<Sql>,
        max_batch: usize,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        // `begin_immediate` does the waiting, in finer steps than SQLite's busy handler.
        conn.busy_timeout(Duration::ZERO).map_err(|e| sqlite_error(None, &e, e.to_string()))?;
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("bot-sessions-sqlite-writer".into())
            .spawn(move || run(&conn, &sql, &rx, max_batch.max(1), busy_timeout))
            .map_err(|e| StoreError::backend(BACKEND, None, false, e))?;
        Ok(Writer { tx: Some(tx), thread: Some(thread) })
    }

    /// Queues `op` and waits for its outcome (after commit).
    pub(super) async fn submit(&self, op: Op, now: Timestamp) -> Result<u64, StoreError> {
        let key = op.key().map(str::to_owned);
        let stopped = || StoreError::backend(BACKEND, key.as_deref(), false, "the sqlite writer thread has stopped");
        let (reply, answer) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        tx.send(Request { op, now, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn run(conn: &Connection, sql: &Sql, rx: &mpsc::Receiver<Request>, max_batch: usize, busy_timeout: Duration) {
    let mut batch: Vec<Request> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let outcomes = commit(conn, sql, &batch, busy_timeout);
        for (request, outcome) in batch.drain(..).zip(outcomes) {
            // The caller may have gone (its future was dropped); the write stands.
            let _ = request.reply.send(outcome);
        }
    }
}

/// Where a batch failed.
enum Failure {
    /// Starting or committing the transaction: nothing of the batch is in.
    Transaction(rusqlite::Error),
    /// Request `i` failed; the transaction was rolled back.
    Request(usize, rusqlite::Error),
}

/// Applies `batch` in one transaction and returns one outcome per request.
fn commit(conn: &Connection, sql: &Sql, batch: &[Request], busy_timeout: Duration) -> Vec<Result<u64, StoreError>> {
    match apply(conn, sql, batch, busy_timeout) {
        Ok(outcomes) => outcomes,
        Err(Failure::Request(i, e)) if batch.len() == 1 => {
            vec![Err(sqlite_error(batch[i].op.key(), &e, e.to_string()))]
        }
        // Isolate the faulty request: everyone else gets their own transaction.
        Err(Failure::Request(..)) => {
            batch.iter().flat_map(|r| commit(conn, sql, std::slice::from_ref(r), busy_timeout)).collect()
        }
        Err(Failure::Transaction(e)) => {
            batch.iter().map(|r| Err(sqlite_error(r.op.key(), &e, e.to_string()))).collect()
        }
    }
}

fn apply(
    conn: &Connection,
    sql: &Sql,
    batch: &[Request],
    busy_timeout: Duration,
) -> Result<Vec<Result<u64, StoreError>>, Failure> {
    begin_immediate(conn, busy_timeout).map_err(Failure::Transaction)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (i, request) in batch.iter().enumerate() {
        match apply_one(conn, sql, &request.op, request.now) {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                rollback(conn);
                return Err(Failure::Request(i, e));
            }
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        rollback(conn);
        return Err(Failure::Transaction(e));
    }
    Ok(outcomes)
}

fn rollback(conn: &Connection) {
    // SQLite may already have rolled back on its own (SQLITE_FULL, I/O errors).
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::warn!(error = %e, "sqlite rollback failed");
    }
}

/// `BEGIN IMMEDIATE`, waiting up to `busy_timeout` for another process's writer.
///
/// SQLite's own busy handler sleeps up to 100 ms between attempts, and another
/// process's writer that commits batch after batch leaves only short gaps: polling
/// every few hundred microseconds finds those gaps, so two processes share the file
/// fairly instead of one starving until its timeout.
fn begin_immediate(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    let deadline = Instant::now() + busy_timeout;
    loop {
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(rand::random_range(100..=500)));
            }
            other => return other,
        }
    }
}

pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Applies one request inside the open transaction. The outer error is an SQLite
/// failure (the batch is redone without this request's neighbours); the inner one is
/// the request's own outcome (a failed precondition, a corrupt row).
fn apply_one(conn: &Connection, sql: &Sql, op: &Op, now: Timestamp) -> rusqlite::Result<Result<u64, StoreError>> {
    match op {
        Op::Write { key, value, schema_version, expires_at, version, owner, precondition } => {
            let previous = match live(head(conn, sql, key)?, key, now) {
                Ok(previous) => previous,
                Err(e) => return Ok(Err(e)),
            };
            if !precondition.holds(previous.as_ref().map(|r| r.version)) {
                return Ok(Err(StoreError::Conflict { key: key.to_string() }));
            }
            let write = Write {
                value: &[],
                schema_version: *schema_version,
                expires_at: *expires_at,
                version: *version,
                owner: *owner,
            };
            let next = Record::next(previous.as_ref(), key, &write, now);
            let Ok(version) = i64::try_from(next.version) else {
                return Ok(Err(corrupt(key, "version overflows")));
            };
            conn.prepare_cached(&sql.upsert)?.execute(params![
                key.as_str(),
                key.namespace().as_str(),
                next.user_id,
                value,
                version,
                schema_version,
                next.created_at.as_millis(),
                next.updated_at.as_millis(),
                next.expires_at.map(Timestamp::as_millis),
            ])?;
            Ok(Ok(next.version))
        }
        Op::Delete { key, precondition } => {
            let row = head(conn, sql, key)?;
            let exists = row.is_some();
            let live = match live(row, key, now) {
                Ok(previous) => previous.map(|r| r.version),
                Err(e) => return Ok(Err(e)),
            };
            if !precondition.holds(live) {
                return Ok(Err(StoreError::Conflict { key: key.to_string() }));
            }
            if exists {
                // Under `Absent` this only drops an expired leftover.
                conn.prepare_cached(&sql.delete)?.execute([key.as_str()])?;
            }
            Ok(Ok(u64::from(live.is_some())))
        }
        Op::ForgetUser { user_id } => {
            let mut stmt = conn.prepare_cached(&sql.forget_user)?;
            let live = stmt.query_map(params![user_id, now.as_millis()], |r| r.get::<_, bool>(0))?;
            let mut n = 0;
            for was_live in live {
                n += u64::from(was_live?);
            }
            Ok(Ok(n))
        }
        Op::Purge => {
            let n = conn.prepare_cached(&sql.purge)?.execute([now.as_millis()])?;
            Ok(Ok(n as u64))
        }
    }
}

/// The stored row's version, creation and expiry under `key`, live or not.
type Head = (i64, i64, Option<i64>, Option<i64>);

fn head(conn: &Connection, sql: &Sql, key: &SessionKey) -> rusqlite::Result<Option<Head>> {
    conn.prepare_cached(&sql.head)?.query_row([key.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
}

/// The live record's metadata (the value is not read), as [`Record::next`] needs it.
fn live(head: Option<Head>, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
    let Some((version, created_at, expires_at, user_id)) = head else { return Ok(None) };
    let expires_at = expires_at.map(Timestamp);
    if now.is_expired(expires_at) {
        return Ok(None);
    }
    let version = u64::try_from(version).map_err(|_| corrupt(key, &format!("negative version {version}")))?;
    let created_at = Timestamp(created_at);
    Ok(Some(Record {
        value: Vec::new(),
        version,
        schema_version: 0,
        created_at,
        updated_at: created_at,
        expires_at,
        user_id,
    }))
}

fn corrupt(key: &SessionKey, reason: &str) -> StoreError {
    StoreError::Corrupt { key: key.to_string(), reason: reason.to_owned() }
}
