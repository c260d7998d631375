//! The uncontended fast path: a write or delete applied in the caller's thread, in a
//! transaction of its own, when the writer is idle and nothing would make it wait
//! (see the [module docs](super)).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::TryLockError;
use std::sync::atomic::Ordering;

use super::super::BACKEND;
use super::super::row::sqlite_error;
use super::apply::apply_one;
use super::{CHECKPOINT_AFTER, Core, Op, commit_failed, is_busy, rollback};
use crate::{StoreError, Timestamp};

/// Applies `op` at once if it can: a write or delete, nothing queued for the thread,
/// no writes meeting each other lately, the connection free, no checkpoint due,
/// commits that do not sync the disk, and the file's write lock free on the first
/// try. `None`: nothing was done, queue it.
pub(super) fn try_apply(core: &Core, op: &Op, now: Timestamp) -> Option<Result<u64, StoreError>> {
    if !core.settings.inline_writes
        || !matches!(op, Op::Write { .. } | Op::Delete { .. })
        || core.queued.load(Ordering::Acquire) != 0
        || core.since_checkpoint.load(Ordering::Relaxed) >= CHECKPOINT_AFTER
        || core.recently_contended()
    {
        return None;
    }
    let conn = match core.conn.try_lock() {
        Ok(conn) => conn,
        // Transactions are rolled back on a panic inside them: still usable.
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => {
            core.contended();
            return None;
        }
    };
    let key = op.key();
    // One try: another process's writer is the thread's to wait out.
    match conn.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => {}
        Err(e) if is_busy(&e) => {
            core.contended();
            return None;
        }
        Err(e) => return Some(Err(sqlite_error(key, &e, e.to_string()))),
    }
    let outcome = match catch_unwind(AssertUnwindSafe(|| apply_one(&conn, &core.settings, op, now))) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            rollback(&conn);
            return Some(Err(sqlite_error(key, &e, e.to_string())));
        }
        Err(_) => {
            rollback(&conn);
            tracing::error!("an inline sqlite write panicked; rolled back");
            return Some(Err(StoreError::backend(BACKEND, key, false, "the write panicked and was rolled back")));
        }
    };
    if outcome.is_err() {
        // A failed precondition or a corrupt row: nothing was written.
        rollback(&conn);
        return Some(outcome);
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        rollback(&conn);
        return Some(Err(commit_failed(key, &e)));
    }
    core.since_checkpoint.fetch_add(1, Ordering::Relaxed);
    core.settings.commits.fetch_add(1, Ordering::Relaxed);
    Some(outcome)
}
