//! Compare-and-set writes that are waiting at the same moment share one statement, and
//! so one commit.
//!
//! Why: a commit waits for the WAL flush, and a server backend runs the statements
//! pipelined on its connection one after another, each waiting for its own flush. With
//! many tasks on a pool of 16 connections, that flush wait, not the round trip, is what
//! an update costs once the near cache has removed the load (measured with pgbench on
//! the 2-core test machine: `UPDATE` alone 1.04-1.15x of `SELECT` + `UPDATE` at 16
//! connections). Here a write that finds [`PostgresConfig::pool_size`] statements of
//! this kind already in flight (or writes already queued) queues, and a writer sends
//! everything queued as one `compare_and_set_many` (one commit for all). At most
//! [`PostgresConfig::batch_in_flight`] such writers run at once (2 by default), so
//! each takes many writes. Alone, a write is sent at once by its own task, as before:
//! below `pool_size` concurrent writes nothing waits.
//!
//! Why lanes: with every permit able to empty the queue, 64 tasks on a pool of 16 made
//! batches of about 3, and the cache gave 1.0x to 1.6x the raw two-step baseline; a
//! plain limit of 4 statements made full batches at 64 tasks (2.3x) but made writes
//! wait for a slot at 8 to 16 tasks (0.8x to 0.9x, against 1.2x to 1.3x unbatched).
//!
//! Semantics are those of single statements: each write is its own compare-and-set,
//! the batch statement never waits for a row lock (`SKIP LOCKED`, so batches cannot
//! deadlock), and a write whose row was held by another transaction (or is absent) is
//! sent again alone. A batch whose answer is lost leaves each of its writes ambiguous,
//! and a batch the server refused fails each of them the same way.
//!
//! [`PostgresConfig::pool_size`]: super::PostgresConfig::pool_size
//! [`PostgresConfig::batch_in_flight`]: super::PostgresConfig::batch_in_flight

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;
use tokio_postgres::types::ToSql;

use super::BACKEND;
use super::conn::{Connections, Op};
use super::sql::Q;
use crate::StoreError;

/// At most this many writes in one statement.
const MAX_BATCH: usize = 64;

/// One compare-and-set: the parameters of `compare_and_set`.
#[derive(Debug)]
pub(super) struct Cas {
    pub(super) key: String,
    pub(super) value: Vec<u8>,
    pub(super) schema: i64,
    pub(super) now: i64,
    pub(super) expires: Option<i64>,
    pub(super) expected: i64,
    pub(super) version: i64,
}

/// What became of a queued write.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Written.
    Written,
    /// The precondition failed.
    Conflict,
    /// Not decided in the batch (its row was held by another transaction, or is
    /// absent): send it alone.
    Alone,
    /// The batch failed: ambiguous if its answer was lost, else certainly not written.
    Failed(StoreError),
}

struct Queued {
    cas: Cas,
    tx: oneshot::Sender<Outcome>,
}

/// The queue, the permits of the compare-and-set statements in flight, and the lanes
/// of the writers that empty the queue.
pub(super) struct Batcher {
    conns: Arc<Connections>,
    queue: Mutex<VecDeque<Queued>>,
    permits: Arc<Semaphore>,
    lanes: Arc<Semaphore>,
}

impl Batcher {
    /// At most `in_flight` compare-and-set statements at once, of which at most
    /// `batches` empty the queue.
    pub(super) fn new(conns: Arc<Connections>, in_flight: usize, batches: usize) -> Arc<Self> {
        Arc::new(Batcher {
            conns,
            queue: Mutex::new(VecDeque::new()),
            permits: Arc::new(Semaphore::new(in_flight)),
            lanes: Arc::new(Semaphore::new(batches.min(in_flight))),
        })
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Queued>> {
        // Each critical section is a push or a drain of whole items: a poisoned lock
        // still guards a consistent queue.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `cas` now if a permit is free and nothing is queued; otherwise queues it
    /// for the next batch. Answers by `deadline`, or reports the write ambiguous (it
    /// may still be sent: every later attempt carries the same precondition).
    pub(super) async fn submit(self: &Arc<Self>, cas: Cas, deadline: Instant) -> Outcome {
        if let Ok(permit) = self.permits.clone().try_acquire_owned()
            && self.queue().is_empty()
        {
            let _turn = Turn { batcher: self, permit: Some(permit), lane: None };
            return self.send_one(&cas).await;
        }
        let key = cas.key.clone();
        let (tx, rx) = oneshot::channel();
        self.queue().push_back(Queued { cas, tx });
        self.kick();
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Failed(StoreError::ambiguous(BACKEND, &key, "the batch carrying this write ended")),
            Err(_) => Outcome::Failed(StoreError::ambiguous(BACKEND, &key, "no answer in time to a batched write")),
        }
    }

    /// Starts a writer for the queue if a lane and a permit are free. (If not, a
    /// holder will look at the queue after giving its own back: see [`Turn`].) Few
    /// lanes make the writers that empty the queue take many writes each.
    fn kick(self: &Arc<Self>) {
        loop {
            let Ok(lane) = self.lanes.clone().try_acquire_owned() else { return };
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                let me = self.clone();
                tokio::spawn(async move { me.drain(permit, lane).await });
                return;
            }
            drop(lane);
            // A holder may have given its permit back while this kick held the lane, and
            // found that lane taken: then nobody else starts a writer. Look again.
            if self.permits.available_permits() == 0 || self.queue().is_empty() {
                return;
            }
        }
    }

    async fn drain(self: Arc<Self>, permit: OwnedSemaphorePermit, lane: OwnedSemaphorePermit) {
        let _turn = Turn { batcher: &self, permit: Some(permit), lane: Some(lane) };
        loop {
            let batch = self.take();
            if batch.is_empty() {
                return;
            }
            self.send(batch).await;
        }
    }

    /// Up to [`MAX_BATCH`] queued writes whose callers still wait, no key twice.
    fn take(&self) -> Vec<Queued> {
        let mut queue = self.queue();
        let mut batch: Vec<Queued> = Vec::new();
        while batch.len() < MAX_BATCH {
            let Some(q) = queue.front() else { break };
            if q.tx.is_closed() {
                queue.pop_front(); // its caller gave up before it was sent: never sent
                continue;
            }
            if batch.iter().any(|b| b.cas.key == q.cas.key) {
                break; // the same key again: the next batch
            }
            if let Some(q) = queue.pop_front() {
                batch.push(q);
            }
        }
        batch
    }

    async fn send_one(&self, cas: &Cas) -> Outcome {
        let params: [&(dyn ToSql + Sync); 7] =
            [&cas.key, &cas.value, &cas.schema, &cas.now, &cas.expires, &cas.expected, &cas.version];
        match self.conns.query(Op::Write(&cas.key), Q::CompareAndSet, &params).await {
            Ok(rows) if rows.is_empty() => Outcome::Conflict,
            Ok(_) => Outcome::Written,
            Err(e) => Outcome::Failed(e),
        }
    }

    async fn send(&self, batch: Vec<Queued>) {
        if let [one] = batch.as_slice() {
            let outcome = self.send_one(&one.cas).await;
            if let Some(q) = batch.into_iter().next() {
                let _ = q.tx.send(outcome);
            }
            return;
        }
        let keys: Vec<&str> = batch.iter().map(|q| q.cas.key.as_str()).collect();
        let values: Vec<&[u8]> = batch.iter().map(|q| q.cas.value.as_slice()).collect();
        let schemas: Vec<i64> = batch.iter().map(|q| q.cas.schema).collect();
        let nows: Vec<i64> = batch.iter().map(|q| q.cas.now).collect();
        let expires: Vec<Option<i64>> = batch.iter().map(|q| q.cas.expires).collect();
        let expected: Vec<i64> = batch.iter().map(|q| q.cas.expected).collect();
        let versions: Vec<i64> = batch.iter().map(|q| q.cas.version).collect();
        let params: [&(dyn ToSql + Sync); 7] = [&keys, &values, &schemas, &nows, &expires, &expected, &versions];
        let answer = self.conns.query(Op::Write(keys[0]), Q::CompareAndSetMany, &params).await;
        // Which keys the statement decided, and how; a row that does not read back
        // leaves the batch's outcome unknown.
        let decided: Result<Vec<(String, bool)>, StoreError> = answer.and_then(|rows| {
            rows.iter()
                .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, bool>(1)?)))
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(|e| StoreError::ambiguous(BACKEND, keys[0], e))
        });
        drop(keys);
        drop(values);
        for q in batch {
            let outcome = match &decided {
                Ok(decided) => match decided.iter().find(|(k, _)| *k == q.cas.key) {
                    Some((_, true)) => Outcome::Written,
                    Some((_, false)) => Outcome::Conflict,
                    None => Outcome::Alone,
                },
                Err(e) => Outcome::Failed(for_key(e, &q.cas.key)),
            };
            let _ = q.tx.send(outcome);
        }
    }
}

/// The batch's failure `e` as the failure of the write of `key`.
fn for_key(e: &StoreError, key: &str) -> StoreError {
    if e.is_ambiguous() {
        StoreError::ambiguous(BACKEND, key, format!("in a batch whose answer was lost: {e}"))
    } else {
        StoreError::backend(BACKEND, Some(key), e.is_retryable(), format!("in a batch the server refused: {e}"))
    }
}

/// A held permit (and lane, for a writer emptying the queue). Dropped (the turn is
/// over, or its task was cancelled), it gives both back and then starts a writer if
/// anything is queued: a write queued while every permit or lane was held is never
/// stranded.
struct Turn<'a> {
    batcher: &'a Arc<Batcher>,
    permit: Option<OwnedSemaphorePermit>,
    lane: Option<OwnedSemaphorePermit>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        drop(self.lane.take());
        let waiting = !self.batcher.queue().is_empty();
        if waiting && tokio::runtime::Handle::try_current().is_ok() {
            self.batcher.kick();
        }
    }
}
