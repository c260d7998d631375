//! Compare-and-set writes that wait at the same moment share one round trip: the part
//! of write batching that is the same on every networked backend (PostgreSQL: one
//! statement and so one commit, `postgres/batch.rs`; Redis: one script run,
//! `redis/batch.rs`). A backend says how to send one write and how to send several
//! ([`Sink`]); this module decides which writes go alone and which wait for a batch.
//!
//! A write that finds `in_flight` writes of this kind already under way (or writes
//! already queued) queues, and a writer sends everything queued as one. At most
//! `batches` such writers run at once, so each takes many writes. Alone, a write is
//! sent at once by its own task: below `in_flight` concurrent writes nothing waits.
//!
//! Why lanes: on PostgreSQL, with every permit able to empty the queue, 64 tasks on a
//! pool of 16 made batches of about 3, and the near cache gave 1.0x to 1.6x the raw
//! two-step baseline; a plain limit of 4 statements made full batches at 64 tasks
//! (2.3x) but made writes wait for a slot at 8 to 16 tasks (0.8x to 0.9x, against 1.2x
//! to 1.3x unbatched).
//!
//! Semantics are those of single writes: each is its own compare-and-set, no key is
//! twice in one batch, a write the batch did not decide ([`Outcome::Alone`]) is sent
//! again alone, and a batch whose answer is lost leaves each of its writes ambiguous
//! (the sink says so in each [`Outcome::Failed`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;

use crate::StoreError;

/// At most this many writes in one batch.
const MAX_BATCH: usize = 64;

/// What became of a write.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Written.
    Written,
    /// The precondition failed.
    Conflict,
    /// Not decided in the batch (PostgreSQL: its row was held by another transaction,
    /// or is absent): send it alone.
    Alone,
    /// The write failed: ambiguous if its answer was lost, else certainly not written.
    Failed(StoreError),
}

/// How a backend sends queued writes.
pub(crate) trait Sink: Send + Sync + 'static {
    /// One compare-and-set, as the backend needs it.
    type Item: Send + Sync + 'static;
    /// The key text of `item` (no key goes twice into one batch; errors name it).
    fn key(item: &Self::Item) -> &str;
    /// Sends one write alone.
    fn send_one(&self, item: &Self::Item) -> impl Future<Output = Outcome> + Send;
    /// Sends two or more writes of distinct keys as one; an outcome for each, in order
    /// (a missing one counts as [`Outcome::Alone`]).
    fn send_many(&self, items: &[&Self::Item]) -> impl Future<Output = Vec<Outcome>> + Send;
    /// The failure of a write whose caller stopped waiting for its batch's answer.
    fn lost(key: &str, why: &'static str) -> StoreError;
}

struct Queued<I> {
    item: I,
    tx: oneshot::Sender<Outcome>,
}

/// The queue, the permits of the writes in flight, and the lanes of the writers that
/// empty the queue.
pub(crate) struct Batcher<S: Sink> {
    sink: S,
    queue: Mutex<VecDeque<Queued<S::Item>>>,
    permits: Arc<Semaphore>,
    lanes: Arc<Semaphore>,
}

impl<S: Sink> Batcher<S> {
    /// At most `in_flight` writes (alone or batches) at once, of which at most
    /// `batches` empty the queue.
    pub(crate) fn new(sink: S, in_flight: usize, batches: usize) -> Arc<Self> {
        Arc::new(Batcher {
            sink,
            queue: Mutex::new(VecDeque::new()),
            permits: Arc::new(Semaphore::new(in_flight)),
            lanes: Arc::new(Semaphore::new(batches.min(in_flight))),
        })
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Queued<S::Item>>> {
        // Each critical section is a push or a drain of whole items: a poisoned lock
        // still guards a consistent queue.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `item` now if a permit is free and nothing is queued; otherwise queues it
    /// for the next batch. Answers by `deadline`, or reports the write ambiguous (it
    /// may still be sent: every later attempt carries the same precondition).
    pub(crate) async fn submit(self: &Arc<Self>, item: S::Item, deadline: Instant) -> Outcome {
        if let Ok(permit) = self.permits.clone().try_acquire_owned()
            && self.queue().is_empty()
        {
            let _turn = Turn { batcher: self, permit: Some(permit), lane: None };
            return self.sink.send_one(&item).await;
        }
        let key = S::key(&item).to_owned();
        let (tx, rx) = oneshot::channel();
        self.queue().push_back(Queued { item, tx });
        self.kick();
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Failed(S::lost(&key, "the batch carrying this write ended")),
            Err(_) => Outcome::Failed(S::lost(&key, "no answer in time to a batched write")),
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
    fn take(&self) -> Vec<Queued<S::Item>> {
        let mut queue = self.queue();
        let mut batch: Vec<Queued<S::Item>> = Vec::new();
        while batch.len() < MAX_BATCH {
            let Some(q) = queue.front() else { break };
            if q.tx.is_closed() {
                queue.pop_front(); // its caller gave up before it was sent: never sent
                continue;
            }
            if batch.iter().any(|b| S::key(&b.item) == S::key(&q.item)) {
                break; // the same key again: the next batch
            }
            if let Some(q) = queue.pop_front() {
                batch.push(q);
            }
        }
        batch
    }

    async fn send(&self, batch: Vec<Queued<S::Item>>) {
        if let [one] = batch.as_slice() {
            let outcome = self.sink.send_one(&one.item).await;
            if let Some(q) = batch.into_iter().next() {
                let _ = q.tx.send(outcome);
            }
            return;
        }
        let items: Vec<&S::Item> = batch.iter().map(|q| &q.item).collect();
        let outcomes = self.sink.send_many(&items).await;
        drop(items);
        let mut outcomes = outcomes.into_iter();
        for q in batch {
            let _ = q.tx.send(outcomes.next().unwrap_or(Outcome::Alone));
        }
    }
}

/// A batch's failure `e` as the failure of the write of `key` in it: ambiguous if the
/// batch's answer was lost, else what the server refused.
pub(crate) fn for_key(backend: &'static str, e: &StoreError, key: &str) -> StoreError {
    if e.is_ambiguous() {
        StoreError::ambiguous(backend, key, format!("in a batch whose answer was lost: {e}"))
    } else {
        StoreError::backend(backend, Some(key), e.is_retryable(), format!("in a batch the server refused: {e}"))
    }
}

/// A held permit (and lane, for a writer emptying the queue). Dropped (the turn is
/// over, or its task was cancelled), it gives both back and then starts a writer if
/// anything is queued: a write queued while every permit or lane was held is never
/// stranded.
struct Turn<'a, S: Sink> {
    batcher: &'a Arc<Batcher<S>>,
    permit: Option<OwnedSemaphorePermit>,
    lane: Option<OwnedSemaphorePermit>,
}

impl<S: Sink> Drop for Turn<'_, S> {
    fn drop(&mut self) {
        drop(self.permit.take());
        drop(self.lane.take());
        let waiting = !self.batcher.queue().is_empty();
        if waiting && tokio::runtime::Handle::try_current().is_ok() {
            self.batcher.kick();
        }
    }
}
