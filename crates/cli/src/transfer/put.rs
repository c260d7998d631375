//! Writing one exported record into a store so that it reads back identical (value,
//! version, schema, times, expiry, owner), and so that doing it again is harmless.
//!
//! Only [`Store`] operations are used. The store stamps `created_at` / `updated_at` with
//! the `now` it is given, so a record is created at its own `created_at` and, when it
//! was updated later, rewritten at its `updated_at` with compare-and-set on the version
//! of the first write. A run killed between the two leaves a record that is older than
//! the one being copied, which the next run replaces.

use bot_sessions::{Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write, new_version};

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written.
    Written,
    /// Already there, identical: skipped.
    Same,
    /// The target's record is newer (or as new and different): kept, unless forced.
    Newer {
        /// Its version.
        version: u64,
        /// When it was written.
        updated_at: Timestamp,
    },
    /// Expired by now: skipped.
    Expired,
}

/// How often a record that keeps changing under the copy is tried.
const ATTEMPTS: usize = 4;

async fn create(store: &dyn Store, key: &SessionKey, r: &Record) -> Result<(), StoreError> {
    let last = Write {
        value: &r.value,
        schema_version: r.schema_version,
        expires_at: r.expires_at,
        version: r.version,
        owner: r.user_id,
    };
    if r.created_at >= r.updated_at {
        store.write(key, last, Precondition::Absent, r.created_at).await?;
        return Ok(());
    }
    let first = Write { version: new_version(), ..last };
    store.write(key, first, Precondition::Absent, r.created_at).await?;
    store.write(key, last, Precondition::Version(first.version), r.updated_at).await?;
    Ok(())
}

/// Puts `r` under `key` unless the store has it already or has something newer
/// (`force` overwrites that).
///
/// # Errors
///
/// Store errors; a [`StoreError::Conflict`] when the key kept changing under the copy.
pub async fn put(store: &dyn Store, key: &SessionKey, r: &Record, force: bool) -> Result<Outcome, StoreError> {
    let now = Timestamp::now();
    if r.is_expired(now) {
        return Ok(Outcome::Expired);
    }
    for _ in 0..ATTEMPTS {
        match create(store, key, r).await {
            Ok(()) => return Ok(Outcome::Written),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        let now = Timestamp::now();
        match store.load(key, now).await? {
            Some(there) if there == *r => return Ok(Outcome::Same),
            Some(there) if there.updated_at >= r.updated_at && !force => {
                return Ok(Outcome::Newer { version: there.version, updated_at: there.updated_at });
            }
            Some(there) => match store.delete(key, Precondition::Version(there.version), now).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            },
            // Nothing live now, but something was at the record's own time: an expired
            // leftover not purged yet. Remove it as of that time.
            None => {
                store.delete(key, Precondition::Any, r.created_at).await?;
            }
        }
    }
    Err(StoreError::Conflict { key: key.to_string() })
}
