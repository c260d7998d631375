//! Pipelined updates of one key, on a store that applies its queued writes in order
//! ([`Store::pipeline`](crate::Store::pipeline): the SQLite store's writer thread).
//!
//! Without this, an update holds its key's in-process lock from the load until its
//! write is committed, so a hot key sees at most one update per commit, whatever else
//! the store could batch. Here an update releases the lock as soon as its write is
//! *queued*, leaving the write in the lock table ([`Pending`]); the next holder runs
//! its closure on that queued value and queues a compare-and-set over the queued
//! version, so the writer can commit both in one transaction. It holds exactly when
//! the earlier write landed and nothing came in between (versions never repeat), so:
//!
//! - an update whose own write succeeded also proves every write it built on landed;
//! - a failed write fails the chain after it (their preconditions no longer hold), and
//!   each of them runs again from a fresh load after the queue settles, as after a
//!   conflict with another process;
//! - an update that built on a queued value and writes nothing waits for that value
//!   to settle, then checks with a load that the version it saw is the stored one (a
//!   conflict, and a fresh attempt, if not);
//! - nothing returns success before its own write and every write it built on are
//!   committed.
//!
//! Everything else that takes the key's lock (`open`, `get`, `set`, `delete`) waits
//! for the last queued write to settle first, as it waited for the lock before.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::attempts::{Attempts, Then};
use super::load::Loaded;
use super::locks::{KeyLock, KeyLocks};
use super::pending::{Pending, State};
use super::save::Plan;
use super::{Base, SessionError, Sessions, Ttl};
use crate::observe::Handled;
use crate::store::{Pipeline, Queued};
use crate::{Record, SessionKey, StoreError, Timestamp, Write};

/// Waits for a queued write's outcome, publishes it to the updates that built on it,
/// and then forgets the write in the lock table. Dropped before that (its update was
/// cancelled), it leaves a task to do so: until the write settles, the next holders
/// of the key must see it queued.
struct Publisher<'a> {
    tx: Option<watch::Sender<State>>,
    queued: Option<Queued>,
    pending: Arc<Pending>,
    locks: &'a KeyLocks,
    hash: u64,
}

impl Publisher<'_> {
    /// The write's outcome, published.
    async fn outcome(&mut self) -> Result<u64, StoreError> {
        let outcome = match self.queued.as_mut() {
            Some(queued) => queued.await,
            None => {
                Err(StoreError::backend("pipeline", None, false, "the outcome of a queued write was taken already"))
            }
        };
        self.queued = None;
        if let Some(tx) = self.tx.take() {
            publish(&tx, outcome.is_ok());
        }
        outcome
    }
}

fn publish(tx: &watch::Sender<State>, written: bool) {
    tx.send_replace(if written { State::Written } else { State::Failed });
}

impl Drop for Publisher<'_> {
    fn drop(&mut self) {
        if let (Some(queued), Some(tx)) = (self.queued.take(), self.tx.take())
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (locks, hash, pending) = (self.locks.clone(), self.hash, self.pending.clone());
            runtime.spawn(async move {
                publish(&tx, queued.await.is_ok());
                locks.settle(hash, &pending);
            });
            return;
        }
        self.locks.settle(self.hash, &self.pending);
    }
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// `update` on a store with an in-order write queue (see the module docs).
    pub(super) async fn update_pipelined<R, E, F>(
        &self,
        key: &SessionKey,
        mut f: F,
        pipe: &dyn Pipeline,
    ) -> Handled<R, E>
    where
        F: FnMut(&mut Option<T>, &mut Option<Ttl>) -> Result<R, E> + Send,
    {
        let retry = &self.inner.retry;
        let mut lock: Option<KeyLock<'_>> = None;
        let mut attempts = Attempts::new(retry);
        // After a failure the next attempt waits out what is queued and loads (from the
        // store itself: a cached copy may be what failed).
        let mut fresh = false;
        loop {
            let held = match lock.take() {
                Some(held) => held,
                None => self.inner.locks.lock(key.as_str()).await,
            };
            let queued = held.queued();
            let mut now = self.inner.clock.now();
            let built = match &queued {
                Some(pending) if !fresh && !pending.failed() => self.build_on(key, pending, now),
                _ => None,
            };
            let (value, base) = match built {
                Some(built) => built,
                None => {
                    if let Some(pending) = &queued {
                        pending.settled().await;
                        now = self.inner.clock.now();
                    }
                    // Nothing queued: the near cache may serve the key, since the write
                    // is a compare-and-set on what it served (as in `update_attempts`).
                    let via = if fresh { super::Via::Store } else { super::Via::Write };
                    match self.load(key, now, via).await {
                        Ok(loaded) => loaded,
                        Err(e) => return Handled(Err(e)),
                    }
                }
            };
            drop(queued);
            let from_cache = base.from_cache;
            let mut slot = Some(value);
            let mut ttl = base.own_ttl();
            let out = match f(&mut slot, &mut ttl) {
                Ok(out) => out,
                Err(e) => return Handled(Ok(Err(e))),
            };
            let plan = self.plan(key, slot.as_ref(), ttl, &base, now, Vec::new());
            drop(slot);
            let saved = match plan {
                Err(e) => {
                    lock = Some(held);
                    Err(e)
                }
                Ok(Plan::Write { bytes, expires_at, precondition }) => {
                    let write = Write::new(&bytes, self.inner.migrations.current(), expires_at);
                    let mut sent = pipe.enqueue(key, write, precondition, now);
                    // Only a record whose times are known can be built on: over a live
                    // record the store keeps its creation time, which a base that
                    // started over (a reset undecodable record) does not know.
                    let known = base.version.is_none() || base.created_at.is_some();
                    let outcome = match sent.try_outcome() {
                        Some(outcome) => {
                            lock = Some(held);
                            outcome
                        }
                        None if !known => {
                            lock = Some(held);
                            sent.await
                        }
                        None => {
                            let record = Record {
                                value: bytes.clone(),
                                version: write.version,
                                schema_version: write.schema_version,
                                created_at: base.created_at.unwrap_or(now),
                                updated_at: now,
                                expires_at,
                                user_id: None,
                            };
                            let (tx, state) = watch::channel(State::Queued);
                            let pending = Arc::new(Pending { key: key.clone(), record, state });
                            let mut publisher = Publisher {
                                tx: Some(tx),
                                queued: Some(sent),
                                pending: pending.clone(),
                                locks: &self.inner.locks,
                                hash: held.hash(),
                            };
                            held.release_queued(pending);
                            publisher.outcome().await
                        }
                    };
                    match outcome {
                        Ok(_) => Ok(()),
                        Err(e) if e.is_ambiguous() => {
                            // Resolved holding the key, as before pipelining.
                            if lock.is_none() {
                                lock = Some(self.inner.locks.lock(key.as_str()).await);
                            }
                            self.answered(key, write, precondition, Err(e)).await
                        }
                        Err(e) => Err(e.into()),
                    }
                }
                Ok(Plan::Unchanged(_)) => {
                    lock = Some(held);
                    match &base.queued {
                        Some(pending) => {
                            pending.settled().await;
                            self.still_stored(key, base.version).await
                        }
                        // A cached copy is checked against the store.
                        None => self.check_cached(key, &base, now).await,
                    }
                }
                Ok(Plan::Delete) => {
                    lock = Some(held);
                    self.delete_base(key, &base, now).await
                }
            };
            let e = match saved {
                Ok(()) => return Handled(Ok(Ok(out))),
                Err(e) => e,
            };
            fresh = true;
            let then = match attempts.after(retry, &self.inner.obs, key, e, from_cache) {
                Ok(then) => then,
                Err(e) => return Handled(Err(e)),
            };
            // Before a pause the key goes, so others go on meanwhile; a stale cached
            // copy is run again at once.
            if matches!(then, Then::AfterConflict | Then::AfterTransient(_)) {
                drop(lock.take());
            }
            if let Err(e) = attempts.pause(retry, key, then).await {
                return Handled(Err(e));
            }
        }
    }

    /// The value and base an update builds on when the last write queued under `key`
    /// is `pending`; `None` when that record needs more than a decode (it expired,
    /// say): wait for it to settle and load.
    fn build_on(&self, key: &SessionKey, pending: &Arc<Pending>, now: Timestamp) -> Option<(T, Base)> {
        if pending.key != *key {
            return None;
        }
        match self.decode_record(key, Some(pending.record.clone()), None, now, false) {
            Ok(Loaded::Ready(value, mut base)) => {
                base.queued = Some(pending.clone());
                Some((value, base))
            }
            Ok(Loaded::Expired(..) | Loaded::Quarantine(..)) | Err(_) => None,
        }
    }

    /// Whether the stored version under `key` is still `version` (an update that wrote
    /// nothing over a queued write, once it settled): a conflict if not.
    async fn still_stored(&self, key: &SessionKey, version: Option<u64>) -> Result<(), SessionError> {
        let now = self.inner.clock.now();
        let current = self.inner.store.load(key, now).await?.map(|r| r.version);
        if current == version { Ok(()) } else { Err(StoreError::Conflict { key: key.to_string() }.into()) }
    }
}
