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

/// `r` with times later than `now` (a line within the allowed clock skew) brought back
/// to `now`: a write stamped in the future would judge expiry in the future, where a
/// live session has expired and looks absent.
fn not_after(r: &Record, now: Timestamp) -> Record {
    let mut r = r.clone();
    r.updated_at = r.updated_at.min(now);
    r.created_at = r.created_at.min(r.updated_at);
    r
}

/// Puts `r` under `key` unless the store has it already or has something newer
/// (`force` overwrites that). Every replacement and removal is a compare-and-set on the
/// version just read, so what a bot writes meanwhile is never removed.
///
/// # Errors
///
/// Store errors; a [`StoreError::Conflict`] when the key kept changing under the copy.
pub async fn put(store: &dyn Store, key: &SessionKey, r: &Record, force: bool) -> Result<Outcome, StoreError> {
    let now = Timestamp::now();
    if r.is_expired(now) {
        return Ok(Outcome::Expired);
    }
    let r = &not_after(r, now);
    for _ in 0..ATTEMPTS {
        match create(store, key, r).await {
            Ok(()) => return Ok(Outcome::Written),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        let now = Timestamp::now();
        let (there, as_of) = match store.load(key, now).await? {
            Some(there) if there == *r => return Ok(Outcome::Same),
            Some(there) if there.updated_at >= r.updated_at && !force => {
                return Ok(Outcome::Newer { version: there.version, updated_at: there.updated_at });
            }
            Some(there) => (there, now),
            // Nothing live now, but something was at the record's own time: an expired
            // leftover not purged yet. Remove it as of that time, if it is still the
            // one that expired (a bot may have written since).
            None => match store.load(key, r.created_at).await? {
                Some(old) if old.is_expired(Timestamp::now()) => (old, r.created_at),
                _ => continue,
            },
        };
        match store.delete(key, Precondition::Version(there.version), as_of).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict { key: key.to_string() })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use bot_sessions::store::memory::MemoryStore;
    use proptest::prelude::*;

    use super::*;
    use crate::transfer::line::Line;

    /// Imports one line the way `import` does (parse with its checks, then put); false
    /// when the line is refused.
    async fn import(store: &MemoryStore, line: &Line, force: bool) -> bool {
        let bytes = serde_json::to_vec(line).expect("a line serializes");
        match Line::parse(&bytes, Timestamp::now()) {
            Ok((key, record)) => put(store, &key, &record, force).await.is_ok(),
            Err(_) => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Random times and versions against a live record: without `--force`, a live
        /// session at least as new as the line is never replaced (and a refused line
        /// changes nothing).
        #[test]
        fn a_newer_live_session_is_never_replaced_without_force(
            live_age in 0i64..10_000_000,
            live_ttl in 1_000i64..10_000_000,
            created in -20_000_000i64..100_000_000,
            updated in -20_000_000i64..100_000_000,
            expires in proptest::option::of(-20_000_000i64..200_000_000),
            same_version in any::<bool>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(async {
                let store = MemoryStore::without_sweeper();
                let key: SessionKey = "c/chat:1".parse().expect("a key");
                let now = Timestamp::now().as_millis();
                let live_write = Write::new(b"live", 1, Some(Timestamp(now + live_ttl)));
                store.write(&key, live_write, Precondition::Absent, Timestamp(now - live_age)).await.expect("seeded");
                let live = store.load(&key, Timestamp::now()).await.expect("loads").expect("live");
                let line = Line {
                    key: key.to_string(),
                    value: base64::engine::general_purpose::STANDARD.encode(b"line"),
                    version: if same_version { live.version } else { new_version() },
                    schema_version: 1,
                    created_at: now + created,
                    updated_at: now + updated,
                    expires_at: expires.map(|e| now + e),
                    user_id: None,
                };
                let written = import(&store, &line, false).await;
                let after = store.load(&key, Timestamp::now()).await.expect("loads");
                if live.updated_at.as_millis() >= line.updated_at || !written {
                    prop_assert_eq!(after.as_ref(), Some(&live), "line {:?}", line);
                }
                Ok(())
            })?;
        }
    }
}
