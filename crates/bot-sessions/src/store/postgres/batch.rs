//! PostgreSQL's side of write batching (the queue is `store/batch.rs`): compare-and-set
//! writes that wait at the same moment share one statement, and so one commit.
//!
//! Why: a commit waits for the WAL flush, and a server backend runs the statements
//! pipelined on its connection one after another, each waiting for its own flush. With
//! many tasks on a pool of 16 connections, that flush wait, not the round trip, is what
//! an update costs once the near cache has removed the load (measured with pgbench on
//! the 2-core test machine: `UPDATE` alone 1.04-1.15x of `SELECT` + `UPDATE` at 16
//! connections). A write that finds [`PostgresConfig::pool_size`] statements of this
//! kind already in flight queues, and at most [`PostgresConfig::batch_in_flight`]
//! writers send what is queued as one `compare_and_set_many` (one commit for all).
//!
//! The batch statement never waits for a row lock (`SKIP LOCKED`, so batches cannot
//! deadlock); a write whose row was held by another transaction (or is absent) is sent
//! again alone. A batch whose answer is lost leaves each of its writes ambiguous, and a
//! batch the server refused fails each of them the same way.
//!
//! [`PostgresConfig::pool_size`]: super::PostgresConfig::pool_size
//! [`PostgresConfig::batch_in_flight`]: super::PostgresConfig::batch_in_flight

use std::sync::Arc;

use tokio_postgres::types::ToSql;

use super::BACKEND;
use super::conn::{Connections, Op};
use super::sql::Q;
use crate::StoreError;
pub(super) use crate::store::batch::Outcome;
use crate::store::batch::{Sink, for_key};

/// The batcher of a PostgreSQL store.
pub(super) type Batcher = crate::store::batch::Batcher<Statements>;

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

/// Sends compare-and-sets over the store's connections.
pub(super) struct Statements(pub(super) Arc<Connections>);

impl Sink for Statements {
    type Item = Cas;

    fn key(cas: &Cas) -> &str {
        &cas.key
    }

    fn lost(key: &str, why: &'static str) -> StoreError {
        StoreError::ambiguous(BACKEND, key, why)
    }

    async fn send_one(&self, cas: &Cas) -> Outcome {
        let params: [&(dyn ToSql + Sync); 7] =
            [&cas.key, &cas.value, &cas.schema, &cas.now, &cas.expires, &cas.expected, &cas.version];
        match self.0.query(Op::Write(&cas.key), Q::CompareAndSet, &params).await {
            Ok(rows) if rows.is_empty() => Outcome::Conflict,
            Ok(_) => Outcome::Written,
            Err(e) => Outcome::Failed(e),
        }
    }

    async fn send_many(&self, batch: &[&Cas]) -> Vec<Outcome> {
        let keys: Vec<&str> = batch.iter().map(|c| c.key.as_str()).collect();
        let values: Vec<&[u8]> = batch.iter().map(|c| c.value.as_slice()).collect();
        let schemas: Vec<i64> = batch.iter().map(|c| c.schema).collect();
        let nows: Vec<i64> = batch.iter().map(|c| c.now).collect();
        let expires: Vec<Option<i64>> = batch.iter().map(|c| c.expires).collect();
        let expected: Vec<i64> = batch.iter().map(|c| c.expected).collect();
        let versions: Vec<i64> = batch.iter().map(|c| c.version).collect();
        let params: [&(dyn ToSql + Sync); 7] = [&keys, &values, &schemas, &nows, &expires, &expected, &versions];
        let answer = self.0.query(Op::Write(keys[0]), Q::CompareAndSetMany, &params).await;
        // Which keys the statement decided, and how; a row that does not read back
        // leaves the batch's outcome unknown.
        let decided: Result<Vec<(String, bool)>, StoreError> = answer.and_then(|rows| {
            rows.iter()
                .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, bool>(1)?)))
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(|e| StoreError::ambiguous(BACKEND, keys[0], e))
        });
        batch
            .iter()
            .map(|c| match &decided {
                Ok(decided) => match decided.iter().find(|(k, _)| *k == c.key) {
                    Some((_, true)) => Outcome::Written,
                    Some((_, false)) => Outcome::Conflict,
                    None => Outcome::Alone,
                },
                Err(e) => Outcome::Failed(for_key(BACKEND, e, &c.key)),
            })
            .collect()
    }
}
