//! Redis' side of write batching (the queue is `store/batch.rs`): the near cache's
//! compare-and-sets ([`Store::write_over`](crate::Store::write_over)) that wait at the
//! same moment share one run of `cas_many.lua`, each decided on its own.
//!
//! Why: at 64 tasks on the 2-core test machine, the client and the server share the
//! cores, and a command's own cost (the client's framing, queueing and wake-ups, the
//! server's dispatch and socket work; measured as CPU per write with `bench --bin
//! cache`) was as large as the script's work. The cache saves the raw baseline's load
//! round trip, but each write still paid one command.
//!
//! A write finding [`IN_FLIGHT`] others under way queues; at most [`LANES`] runs empty
//! the queue. Fewer than [`IN_FLIGHT`] writes at once are sent alone, at once, as
//! before. Only on one server without `WAIT` ([`RedisConfig::batch_writes`]).
//!
//! [`RedisConfig::batch_writes`]: super::RedisConfig::batch_writes

use std::sync::Arc;

use redis::ScriptInvocation;

use super::BACKEND;
use super::connection::Con;
use super::error::sent_err;
use super::record::script_outcome_of;
use super::scripts::Scripts;
use crate::StoreError;
pub(super) use crate::store::batch::Outcome;
use crate::store::batch::{Sink, for_key};

/// Writes under way (alone or batched) before the next one queues.
pub(super) const IN_FLIGHT: usize = 8;
/// Runs of `cas_many.lua` under way at once.
pub(super) const LANES: usize = 2;

/// The batcher of a Redis store.
pub(super) type Batcher = crate::store::batch::Batcher<Runs>;

/// How a compare-and-set changes the record's expiry (and the expiry index).
#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    /// Unchanged: the index is not touched.
    Keep,
    /// Set: Redis' own expiry (`PEXPIREAT`) and the index's `expires_at`.
    Set { native: i64, at: i64 },
    /// Dropped: `PERSIST` and out of the index.
    Persist,
}

/// One compare-and-set over a known record: `cas.lua`'s keys and arguments.
#[derive(Debug)]
pub(super) struct Cas {
    /// The key's text.
    pub(super) key: String,
    /// The record hash.
    pub(super) record: String,
    /// The namespace's expiry index, when the expiry changes.
    pub(super) index: Option<String>,
    /// The version the record must hold, and its separator (`meta` begins with it).
    pub(super) expect: String,
    pub(super) value: Vec<u8>,
    /// The new `meta` field.
    pub(super) meta: String,
    pub(super) change: Change,
}

impl Cas {
    /// Adds this write's keys and arguments (`cas.lua`'s `KEYS[1..2]`, `ARGV[1..7]`).
    pub(super) fn push(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(&self.record).key(self.index.as_deref().unwrap_or(&self.record));
        inv.arg(&self.expect).arg(&self.value).arg(&self.meta);
        match self.change {
            Change::Keep => inv.arg("").arg("").arg("").arg(""),
            Change::Set { native, at } => inv.arg("s").arg(native).arg(at).arg(&self.key),
            Change::Persist => inv.arg("p").arg("").arg("").arg(&self.key),
        };
    }
}

/// What a script's answer for one write means.
pub(super) fn outcome(key: &str, reply: i64) -> Outcome {
    match script_outcome_of(key, reply) {
        Ok(_) => Outcome::Written,
        Err(StoreError::Conflict { .. }) => Outcome::Conflict,
        Err(e) => Outcome::Failed(e),
    }
}

/// Runs the compare-and-set scripts on the store's connection.
pub(super) struct Runs {
    pub(super) con: Con,
    pub(super) scripts: Arc<Scripts>,
}

impl Sink for Runs {
    type Item = Cas;

    fn key(cas: &Cas) -> &str {
        &cas.key
    }

    fn lost(key: &str, why: &'static str) -> StoreError {
        StoreError::ambiguous(BACKEND, key, why)
    }

    async fn send_one(&self, cas: &Cas) -> Outcome {
        let mut inv = self.scripts.cas.prepare_invoke();
        cas.push(&mut inv);
        // Batching runs on one server only: its client never re-sends a script.
        inv.arg("0");
        match inv.invoke_async::<i64>(&mut self.con.clone()).await {
            Ok(reply) => outcome(&cas.key, reply),
            Err(e) => Outcome::Failed(sent_err(&cas.key, e, false)),
        }
    }

    async fn send_many(&self, batch: &[&Cas]) -> Vec<Outcome> {
        let mut inv = self.scripts.cas_many.prepare_invoke();
        for cas in batch {
            cas.push(&mut inv);
        }
        match inv.invoke_async::<Vec<i64>>(&mut self.con.clone()).await {
            Ok(replies) => batch.iter().zip(replies).map(|(cas, reply)| outcome(&cas.key, reply)).collect(),
            Err(e) => {
                let first = batch.first().map_or("", |c| c.key.as_str());
                let e = sent_err(first, e, false);
                batch.iter().map(|cas| Outcome::Failed(for_key(BACKEND, &e, &cas.key))).collect()
            }
        }
    }
}
