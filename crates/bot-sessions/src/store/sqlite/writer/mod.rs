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
//!
//! # The uncontended fast path
//!
//! Handing a lone write to the thread and its answer back costs two thread wake-ups,
//! several times the write itself. So a write or delete that finds the writer idle
//! (nothing queued, the connection free) runs in the caller's thread instead, on the
//! same connection, in its own transaction (see [`inline`]): only when it cannot wait.
//! `BEGIN IMMEDIATE` is tried once (another process holding the lock sends the write
//! to the thread, which waits), commits that sync the disk (`Durability::Full`) always
//! go to the thread, and so do WAL checkpoints: the connection's automatic checkpoint
//! is off, and once enough writes have gone into the WAL the thread asks a checkpoint
//! thread, on a connection of its own, for a checkpoint (a write that finds one due
//! takes the thread's path, so the WAL never grows without bound; writes go on while
//! the checkpoint syncs the disk).

mod apply;
mod inline;
mod purge;

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
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
    /// Whether a lone write may commit in the caller's thread (not when a commit
    /// syncs the disk).
    pub(super) inline_writes: bool,
    /// Write transactions committed (batches and inline writes; purge chunks not).
    pub(super) commits: AtomicU64,
}

/// Writes committed since the last checkpoint after which the thread checkpoints the
/// WAL (about what SQLite's automatic checkpoint at 1,000 pages amounts to).
const CHECKPOINT_AFTER: usize = 400;

/// The writer's connection and what the thread and the inline path share about it.
pub(super) struct Core {
    conn: Mutex<Connection>,
    settings: Settings,
    /// Requests handed to the thread and not answered yet.
    queued: AtomicUsize,
    /// Writes committed since the last checkpoint.
    since_checkpoint: AtomicUsize,
    /// When writes last met each other (a batch of several, or the connection busy
    /// for an inline write), in nanoseconds since `epoch`.
    last_contention: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("queued", &self.queued).finish_non_exhaustive()
    }
}

/// How long after writes last met each other they all go to the thread: under load,
/// group commit beats a commit per write, and an inline write between two batches
/// would only split them.
const CONTENDED_FOR: Duration = Duration::from_millis(2);

impl Core {
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Notes that writes met each other now.
    fn contended(&self) {
        self.last_contention.store(self.now_nanos(), Ordering::Relaxed);
    }

    /// Whether writes met each other within [`CONTENDED_FOR`].
    fn recently_contended(&self) -> bool {
        let last = self.last_contention.load(Ordering::Relaxed);
        // `u64::MAX` nanoseconds is centuries: the cast cannot truncate.
        self.now_nanos().saturating_sub(last) < CONTENDED_FOR.as_nanos() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // Every transaction is rolled back on a panic inside it, so a poisoned
        // connection is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the checkpoint thread for a checkpoint once enough writes went into the
    /// WAL. It runs on a connection of its own, so writes go on meanwhile (a
    /// checkpoint syncs the disk twice, which can take milliseconds).
    fn checkpoint_if_due(&self, checkpoints: &mpsc::SyncSender<()>) {
        if self.since_checkpoint.load(Ordering::Relaxed) < CHECKPOINT_AFTER {
            return;
        }
        // Counted from here: writes during the checkpoint may go inline again.
        self.since_checkpoint.store(0, Ordering::Relaxed);
        // Full: one is asked for already, which will do.
        let _ = checkpoints.try_send(());
    }
}

/// The sending side, held by the store. [`Writer::shutdown`] lets the thread commit
/// what is queued, close its connection and end.
#[derive(Debug)]
pub(super) struct Writer {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Shared with the thread, for the inline path.
    core: Option<Arc<Core>>,
}

/// What is left to do to stop a writer: drop the sender (the thread then drains its
/// queue and ends), and wait for the thread. Blocking; run it where blocking is fine.
#[derive(Debug)]
pub(super) struct Shutdown {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
    core: Option<Arc<Core>>,
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
        // The last handle on the connection: closing it checkpoints the WAL.
        drop(self.core.take());
    }
}

impl Writer {
    /// Starts the writer thread on `conn`, and the checkpoint thread on `checkpointer`
    /// (another connection to the file).
    pub(super) fn spawn(conn: Connection, checkpointer: Connection, settings: Settings) -> Result<Self, StoreError> {
        // `begin_immediate` does the waiting, in finer steps than SQLite's busy handler.
        conn.busy_timeout(Duration::ZERO).map_err(|e| sqlite_error(None, &e, e.to_string()))?;
        // Checkpoints are the thread's, never part of a commit (see the module docs).
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(|e| sqlite_error(None, &e, e.to_string()))?;
        let core = Arc::new(Core {
            conn: Mutex::new(conn),
            settings,
            queued: AtomicUsize::new(0),
            since_checkpoint: AtomicUsize::new(0),
            last_contention: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let (checkpoints, asked) = mpsc::sync_channel::<()>(1);
        let checkpoint_thread = std::thread::Builder::new()
            .name("bot-sessions-sqlite-checkpoint".into())
            .spawn(move || checkpoint(&checkpointer, &asked))
            .map_err(|e| StoreError::backend(BACKEND, None, false, e))?;
        let (tx, rx) = mpsc::channel::<Request>();
        let theirs = core.clone();
        let thread = std::thread::Builder::new()
            .name("bot-sessions-sqlite-writer".into())
            .spawn(move || {
                run(&theirs, &checkpoints, &rx);
                // Its connection closes before the writer's, which then removes the WAL.
                drop(checkpoints);
                if checkpoint_thread.join().is_err() {
                    tracing::error!("the sqlite checkpoint thread panicked");
                }
            })
            .map_err(|e| StoreError::backend(BACKEND, None, false, e))?;
        Ok(Writer { tx: Some(tx), thread: Some(thread), core: Some(core) })
    }

    /// Write transactions committed so far (see [`Settings::commits`]).
    pub(super) fn commits(&self) -> u64 {
        self.core.as_ref().map_or(0, |core| core.settings.commits.load(Ordering::Relaxed))
    }

    /// Takes what stopping the writer needs (`None` if it was taken before);
    /// afterwards every submit fails.
    pub(super) fn shutdown(&mut self) -> Option<Shutdown> {
        let tx = self.tx.take()?;
        Some(Shutdown { tx: Some(tx), thread: self.thread.take(), core: self.core.take() })
    }

    /// Applies `op` in the caller's thread when nothing would make it wait (see the
    /// module docs), otherwise queues it; returns its outcome after commit.
    pub(super) async fn submit(&self, op: Op, now: Timestamp) -> Result<u64, StoreError> {
        if let Some(core) = &self.core
            && let Some(outcome) = inline::try_apply(core, &op, now)
        {
            return outcome;
        }
        let key = op.key().map(str::to_owned);
        let answer = self.queue(op, now)?;
        Self::answer(answer, key.as_deref()).await
    }

    /// As [`submit`](Self::submit), but returns once the request is applied (inline)
    /// or queued, with its outcome to come: the thread applies queued requests in the
    /// order they were queued, and nothing submitted after this call returned can be
    /// applied before it (a later request goes inline only once nothing is queued).
    pub(super) fn enqueue(&self, op: Op, now: Timestamp) -> crate::store::Queued {
        if let Some(core) = &self.core
            && let Some(outcome) = inline::try_apply(core, &op, now)
        {
            return crate::store::Queued::ready(outcome);
        }
        let key = op.key().map(str::to_owned);
        match self.queue(op, now) {
            Ok(answer) => crate::store::Queued::new(async move { Self::answer(answer, key.as_deref()).await }),
            Err(e) => crate::store::Queued::ready(Err(e)),
        }
    }

    /// Hands `op` to the thread.
    fn queue(&self, op: Op, now: Timestamp) -> Result<oneshot::Receiver<Result<u64, StoreError>>, StoreError> {
        let stopped =
            |key: Option<&str>| StoreError::backend(BACKEND, key, false, "the sqlite writer thread has stopped");
        let (reply, answer) = oneshot::channel();
        let Some(tx) = self.tx.as_ref() else { return Err(stopped(op.key())) };
        if let Some(core) = &self.core {
            core.queued.fetch_add(1, Ordering::AcqRel);
        }
        // A request that cannot be queued never reached the thread: not applied.
        if let Err(mpsc::SendError(request)) = tx.send(Request { op, now, reply }) {
            if let Some(core) = &self.core {
                core.queued.fetch_sub(1, Ordering::AcqRel);
            }
            return Err(stopped(request.op.key()));
        }
        Ok(answer)
    }

    /// The thread's answer to a queued request on `key`.
    async fn answer(answer: oneshot::Receiver<Result<u64, StoreError>>, key: Option<&str>) -> Result<u64, StoreError> {
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => Err(unknown(key, "the sqlite writer stopped without answering; it may have committed")),
        }
    }
}

/// The checkpoint thread: a passive checkpoint (never waiting for readers or writers)
/// each time one is asked for, until the writer thread ends.
fn checkpoint(conn: &Connection, asked: &mpsc::Receiver<()>) {
    for () in asked {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => {}
            // Another connection is checkpointing: that does it.
            Err(e) if is_busy(&e) => {}
            Err(e) => tracing::warn!(error = %e, "sqlite WAL checkpoint failed"),
        }
    }
}

fn run(core: &Core, checkpoints: &mpsc::SyncSender<()>, rx: &mpsc::Receiver<Request>) {
    let settings = &core.settings;
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
            let step = {
                let conn = core.lock();
                catch_unwind(AssertUnwindSafe(|| purge_chunk(&conn, settings, job))).unwrap_or_else(|_| {
                    rollback(&conn);
                    Some(Err(unknown(None, "the sqlite writer panicked during a purge")))
                })
            };
            if let Some(outcome) = step
                && let Some(job) = purges.pop_front()
            {
                core.queued.fetch_sub(1, Ordering::AcqRel);
                let _ = job.request.reply.send(outcome);
            }
        }
        if !batch.is_empty() {
            let outcomes = {
                let conn = core.lock();
                catch_unwind(AssertUnwindSafe(|| commit(&conn, settings, &batch)))
                    .unwrap_or_else(|_| after_panic(&conn, &batch, "the sqlite writer panicked during this batch"))
            };
            if batch.len() > 1 {
                core.contended();
            }
            let written = outcomes.iter().filter(|o| o.is_ok()).count();
            core.since_checkpoint.fetch_add(written, Ordering::Relaxed);
            // Counted down before the answers, so a caller's next write may go inline.
            core.queued.fetch_sub(batch.len(), Ordering::AcqRel);
            for (request, outcome) in batch.drain(..).zip(outcomes) {
                // The caller may have gone (its future was dropped); the write stands.
                let _ = request.reply.send(outcome);
            }
        }
        // After the answers: nobody waits for it.
        core.checkpoint_if_due(checkpoints);
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
        Err(Failure::Commit(e)) => batch.iter().map(|r| Err(commit_failed(r.op.key(), &e))).collect(),
    }
}

/// The outcome of a write whose `COMMIT` failed (and was rolled back where it could
/// be): a busy file left nothing in; anything else may have.
fn commit_failed(key: Option<&str>, e: &rusqlite::Error) -> StoreError {
    if is_busy(e) {
        sqlite_error(key, e, e.to_string())
    } else {
        unknown(key, &format!("COMMIT failed ({e}); the transaction may be in the WAL"))
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
    settings.commits.fetch_add(1, Ordering::Relaxed);
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
        Writer { tx: Some(tx), thread: Some(thread), core: None }
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
