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
//!
//! A purge is not part of a batch: it deletes at most `purge_batch` rows per
//! transaction, and the writes queued meanwhile are committed between two of its
//! chunks, so a backlog of expired records never holds the write lock for all of it.
//!
//! # Which outcomes are unknown
//!
//! Almost none. A busy database fails at `BEGIN`, before anything is applied; an error
//! while applying a request rolls its transaction back. Two cases remain, and only they
//! answer [`StoreError::Ambiguous`]:
//!
//! - `COMMIT` itself fails with anything but "busy" (an I/O error while syncing the WAL,
//!   say): the commit frames may be in the WAL already and count after a restart.
//! - The request reached the thread but no answer came back (the thread panicked in
//!   the middle of a batch; it then carries on with the next batch).
//!
//! A request that could not even be queued (the thread is gone) is a plain
//! non-retryable error: it was certainly not applied.

mod apply;
mod purge;

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::BACKEND;
use super::row::{Corruption, sqlite_error};
use super::schema::Sql;
use crate::{Precondition, SessionKey, StoreError, Timestamp};
use apply::apply_one;
use purge::{PurgeJob, purge_chunk};

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
    /// Removes expired records in chunks. With a holder id, only while that holder has
    /// the purge lease (the background purge); without, unconditionally.
    Purge {
        lease_holder: Option<i64>,
    },
}

impl Op {
    fn key(&self) -> Option<&str> {
        match self {
            Op::Write { key, .. } | Op::Delete { key, .. } => Some(key.as_str()),
            Op::ForgetUser { .. } | Op::Purge { .. } => None,
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

/// The error for a request whose outcome is unknown (see the module docs).
fn unknown(key: Option<&str>, why: &str) -> StoreError {
    match key {
        Some(key) => StoreError::ambiguous(BACKEND, key, why.to_owned()),
        // Forget-user and purge are idempotent: running them again is harmless.
        None => StoreError::backend(BACKEND, None, false, format!("outcome unknown: {why}")),
    }
}

/// What the writer thread works with.
pub(super) struct Settings {
    pub(super) sql: Arc<Sql>,
    pub(super) max_batch: usize,
    pub(super) purge_batch: usize,
    pub(super) busy_timeout: Duration,
    pub(super) corruption: Arc<Corruption>,
}

/// The sending side, held by the store. [`Writer::shutdown`] lets the thread commit
/// what is queued, close its connection and end.
#[derive(Debug)]
pub(super) struct Writer {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What is left to do to stop a writer: drop the sender (the thread then drains its
/// queue and ends), and wait for the thread. Blocking; run it where blocking is fine.
#[derive(Debug)]
pub(super) struct Shutdown {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Shutdown {
    /// Signals the thread and waits for it to commit its queue and close the file.
    pub(super) fn run(mut self) {
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
    pub(super) fn spawn(conn: Connection, settings: Settings) -> Result<Self, StoreError> {
        // `begin_immediate` does the waiting, in finer steps than SQLite's busy handler.
        conn.busy_timeout(Duration::ZERO).map_err(|e| sqlite_error(None, &e, e.to_string()))?;
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("bot-sessions-sqlite-writer".into())
            .spawn(move || run(&conn, &settings, &rx))
            .map_err(|e| StoreError::backend(BACKEND, None, false, e))?;
        Ok(Writer { tx: Some(tx), thread: Some(thread) })
    }

    /// Takes what stopping the writer needs (`None` if it was taken before);
    /// afterwards every submit fails.
    pub(super) fn shutdown(&mut self) -> Option<Shutdown> {
        let tx = self.tx.take()?;
        Some(Shutdown { tx: Some(tx), thread: self.thread.take() })
    }

    /// Queues `op` and waits for its outcome (after commit).
    pub(super) async fn submit(&self, op: Op, now: Timestamp) -> Result<u64, StoreError> {
        let key = op.key().map(str::to_owned);
        let stopped = || StoreError::backend(BACKEND, key.as_deref(), false, "the sqlite writer thread has stopped");
        let (reply, answer) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        // A request that cannot be queued never reached the thread: not applied.
        tx.send(Request { op, now, reply }).map_err(|_| stopped())?;
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => {
                Err(unknown(key.as_deref(), "the sqlite writer stopped without answering; it may have committed"))
            }
        }
    }
}

fn run(conn: &Connection, settings: &Settings, rx: &mpsc::Receiver<Request>) {
    let mut batch: Vec<Request> = Vec::new();
    let mut purges: VecDeque<PurgeJob> = VecDeque::new();
    loop {
        // Block for work only when no purge is under way; otherwise take what is queued.
        if purges.is_empty() {
            match rx.recv() {
                Ok(first) => route(first, &mut batch, &mut purges),
                // Every sender is gone and the queue is empty: done.
                Err(mpsc::RecvError) => break,
            }
        }
        while batch.len() < settings.max_batch {
            match rx.try_recv() {
                Ok(next) => route(next, &mut batch, &mut purges),
                Err(_) => break,
            }
        }
        // One chunk of the oldest purge, then the writes queued meanwhile: a purge never
        // keeps a write waiting for more than one chunk.
        if let Some(job) = purges.front_mut() {
            let step = catch_unwind(AssertUnwindSafe(|| purge_chunk(conn, settings, job))).unwrap_or_else(|_| {
                rollback(conn);
                Some(Err(unknown(None, "the sqlite writer panicked during a purge")))
            });
            if let Some(outcome) = step
                && let Some(job) = purges.pop_front()
            {
                let _ = job.request.reply.send(outcome);
            }
        }
        if !batch.is_empty() {
            let outcomes = catch_unwind(AssertUnwindSafe(|| commit(conn, settings, &batch)))
                .unwrap_or_else(|_| after_panic(conn, &batch, "the sqlite writer panicked during this batch"));
            for (request, outcome) in batch.drain(..).zip(outcomes) {
                // The caller may have gone (its future was dropped); the write stands.
                let _ = request.reply.send(outcome);
            }
        }
    }
}

/// Puts a purge in the purge queue and anything else in the batch.
fn route(request: Request, batch: &mut Vec<Request>, purges: &mut VecDeque<PurgeJob>) {
    if let Op::Purge { lease_holder } = request.op {
        purges.push_back(PurgeJob { request, lease_holder, purged: 0 });
    } else {
        batch.push(request);
    }
}

/// The outcomes of a batch whose processing panicked: the transaction is rolled back,
/// but requests re-run one by one before the panic may have committed.
fn after_panic(conn: &Connection, batch: &[Request], why: &str) -> Vec<Result<u64, StoreError>> {
    rollback(conn);
    tracing::error!("{why}");
    batch.iter().map(|r| Err(unknown(r.op.key(), why))).collect()
}

/// Where a batch failed.
enum Failure {
    /// `BEGIN` failed: nothing of the batch is in.
    Begin(rusqlite::Error),
    /// `COMMIT` failed: rolled back if SQLite says so (busy), otherwise unknown.
    Commit(rusqlite::Error),
    /// Request `i` failed; the transaction was rolled back.
    Request(usize, rusqlite::Error),
}

/// Applies `batch` in one transaction and returns one outcome per request.
fn commit(conn: &Connection, settings: &Settings, batch: &[Request]) -> Vec<Result<u64, StoreError>> {
    match apply(conn, settings, batch) {
        Ok(outcomes) => outcomes,
        Err(Failure::Request(i, e)) if batch.len() == 1 => {
            vec![Err(sqlite_error(batch[i].op.key(), &e, e.to_string()))]
        }
        // Isolate the faulty request: everyone else gets their own transaction.
        Err(Failure::Request(..)) => {
            batch.iter().flat_map(|r| commit(conn, settings, std::slice::from_ref(r))).collect()
        }
        Err(Failure::Begin(e)) => batch.iter().map(|r| Err(sqlite_error(r.op.key(), &e, e.to_string()))).collect(),
        Err(Failure::Commit(e)) if is_busy(&e) => {
            batch.iter().map(|r| Err(sqlite_error(r.op.key(), &e, e.to_string()))).collect()
        }
        Err(Failure::Commit(e)) => {
            let why = format!("COMMIT failed ({e}); the transaction may be in the WAL");
            batch.iter().map(|r| Err(unknown(r.op.key(), &why))).collect()
        }
    }
}

fn apply(conn: &Connection, settings: &Settings, batch: &[Request]) -> Result<Vec<Result<u64, StoreError>>, Failure> {
    begin_immediate(conn, settings.busy_timeout).map_err(Failure::Begin)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (i, request) in batch.iter().enumerate() {
        match apply_one(conn, settings, &request.op, request.now) {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                rollback(conn);
                return Err(Failure::Request(i, e));
            }
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        rollback(conn);
        return Err(Failure::Commit(e));
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
    // `busy_timeout` is bounded when the store opens, so this cannot overflow.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Namespace, Scope};

    fn key() -> SessionKey {
        SessionKey::new(Namespace::new("writer").unwrap(), Scope::Chat(1))
    }

    fn write_op() -> Op {
        Op::Write {
            key: key(),
            value: b"v".to_vec(),
            schema_version: 1,
            expires_at: None,
            version: 7,
            owner: None,
            precondition: Precondition::Any,
        }
    }

    /// A writer whose thread takes `n` requests and dies without answering them, as
    /// after a panic between COMMIT and the reply.
    fn dying_writer(n: usize) -> Writer {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::spawn(move || {
            for request in rx.iter().take(n) {
                drop(request);
            }
        });
        Writer { tx: Some(tx), thread: Some(thread) }
    }

    #[tokio::test]
    async fn a_request_that_reached_the_writer_without_answer_is_ambiguous() {
        let writer = dying_writer(2);
        match writer.submit(write_op(), Timestamp(0)).await {
            Err(StoreError::Ambiguous { backend: "sqlite", key: named, .. }) => assert_eq!(named, key().to_string()),
            other => panic!("expected an ambiguous outcome, got {other:?}"),
        }
        // Forget-user has no key to resolve by; running it again is harmless.
        let err = writer.submit(Op::ForgetUser { user_id: 1 }, Timestamp(0)).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend { retryable: false, .. }), "{err:?}");
        assert!(err.to_string().contains("outcome unknown"), "{err}");
    }

    #[tokio::test]
    async fn a_request_that_never_reached_the_writer_is_not_ambiguous() {
        let mut writer = dying_writer(0);
        let thread = writer.thread.take().unwrap();
        thread.join().unwrap(); // the receiver is gone
        let err = writer.submit(write_op(), Timestamp(0)).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend { key: Some(k), retryable: false, .. } if *k == key().to_string()),
            "{err:?}"
        );
        let mut writer = dying_writer(0);
        writer.shutdown().unwrap().run();
        assert!(writer.shutdown().is_none(), "taken once");
        let err = writer.submit(write_op(), Timestamp(0)).await.unwrap_err();
        assert!(!err.is_ambiguous(), "{err:?}");
    }
}
