//! Purges in chunks of `purge_batch` rows, one transaction each, under the background
//! purge's lease when there is one.

use std::time::Duration;

use rusqlite::{Connection, params};

use super::super::row::sqlite_error;
use super::{Request, Settings, begin_immediate, is_busy, rollback, unknown};
use crate::StoreError;

/// How long a background purge's lease lasts past each of its chunks. Every chunk
/// renews it, so it only matters when a purging process dies: the next one takes over
/// at most this long afterwards.
const LEASE: Duration = Duration::from_secs(60);

/// A purge in progress: it runs one chunk per transaction, with queued writes between.
pub(super) struct PurgeJob {
    pub(super) request: Request,
    pub(super) lease_holder: Option<i64>,
    pub(super) purged: u64,
}

/// Runs one chunk of the purge at the front of the queue, in its own transaction.
/// `Some(outcome)` when the purge is over (nothing more to do, the lease went to
/// somebody else, or it failed), `None` when another chunk is due.
pub(super) fn purge_chunk(
    conn: &Connection,
    settings: &Settings,
    job: &mut PurgeJob,
) -> Option<Result<u64, StoreError>> {
    let now = job.request.now.as_millis();
    let chunk = i64::try_from(settings.purge_batch).unwrap_or(i64::MAX);
    let fail = |e: &rusqlite::Error| Some(Err(sqlite_error(None, e, format!("purging expired records: {e}"))));
    if let Err(e) = begin_immediate(conn, settings.busy_timeout) {
        return fail(&e);
    }
    let sql = &settings.sql;
    let work = || -> rusqlite::Result<Option<u64>> {
        if let Some(holder) = job.lease_holder {
            let until = job.request.now.saturating_add(LEASE).as_millis();
            if conn.prepare_cached(&sql.lease_take)?.execute(params![holder, until, now])? == 0 {
                return Ok(None); // another live holder purges this round
            }
        }
        let n = conn.prepare_cached(&sql.purge)?.execute(params![now, chunk])?;
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        if n < settings.purge_batch as u64
            && let Some(holder) = job.lease_holder
        {
            conn.prepare_cached(&sql.lease_release)?.execute([holder])?;
        }
        Ok(Some(n))
    };
    let done = match work() {
        Ok(done) => done,
        Err(e) => {
            rollback(conn);
            return fail(&e);
        }
    };
    if let Err(e) = conn.execute_batch("COMMIT") {
        rollback(conn);
        if is_busy(&e) {
            return fail(&e);
        }
        return Some(Err(unknown(None, &format!("COMMIT of a purge chunk failed ({e})"))));
    }
    match done {
        None => Some(Ok(job.purged)),
        Some(n) => {
            job.purged = job.purged.saturating_add(n);
            (n < settings.purge_batch as u64).then_some(Ok(job.purged))
        }
    }
}
