//! A design the library does not have, measured (issue 25, the memory store against
//! teloxide's `InMemStorage` at one task): what an update would cost if the memory
//! store kept each session as a typed value and ran the handler under its map's lock
//! (the write lock of the key's shard: dashmap has no lock per entry), with no key
//! lock, store layer or byte record around it.
//!
//! Not a subject of the report (it is not a store anyone can use): `memory sketch`
//! runs it beside `bot-sessions/memory` and teloxide's `InMemStorage`, and `memory spin
//! sketch/typed-entry ...` alone for a profiler.
//!
//! What it keeps of the contract: one update of a key at a time (the shard's write
//! lock, held while the handler runs: the handler is synchronous), a version that
//! moves on every write, the wall-clock read for an idle TTL and an expired value never
//! handed out, nothing written when the handler fails (it works on a clone: `T:
//! Clone`; a new key is inserted only once its value is made), a flag where a
//! handler-scoped session (`Sessions::open`) would hold the key. The `+size` form also
//! serializes the value (into a byte counter, nothing kept) for the size limit checked
//! before every write.
//!
//! What it drops: the bytes an operator reads (scan, export, the CLI), a decode of
//! what another session type or a migration left, "nothing written when nothing
//! changed" (that needs the bytes, or `T: PartialEq`), the store trait (so one code
//! path for every backend).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::{Clock, SystemClock, Timestamp};

use crate::Bench;
use crate::subject::{Action, Role, Subject, op, total};

/// What the sketch keeps per key.
struct Entry {
    value: Bench,
    version: u64,
    expires_at: Timestamp,
    /// Set while a handler-scoped session holds the key (never in this bench).
    held: bool,
}

/// Counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The size limit the `+size` form checks (the library's default).
const LIMIT: usize = bot_sessions::session::DEFAULT_MAX_SIZE;

/// The idle TTL the sketch refreshes on every write.
const IDLE: Duration = Duration::from_secs(3600);

/// The sketch as a subject: `sketch/typed-entry` (no serialization) or
/// `sketch/typed-entry+size`. Its role is `Ours` (what this project would ship), though
/// it is no part of the library and never in the report.
pub fn typed_entry(sized: bool) -> Subject {
    let map: Arc<dashmap::DashMap<Arc<str>, Entry, foldhash::fast::RandomState>> = Arc::default();
    let keys = crate::backends::session_keys("sketch");
    let (m2, k2) = (map.clone(), keys.clone());
    Subject {
        name: if sized { "sketch/typed-entry+size" } else { "sketch/typed-entry" }.into(),
        backend: "memory",
        role: Role::Ours,
        op: op(move |action, k| {
            let (map, keys) = (map.clone(), keys.clone());
            async move {
                if action != Action::Update {
                    anyhow::bail!("the sketch only updates");
                }
                let key = &keys[k];
                let now = SystemClock.now();
                loop {
                    let mut entry = map.get_mut(key.as_str());
                    if entry.as_ref().is_some_and(|e| e.held) {
                        anyhow::bail!("a handler-scoped session holds {key}: the update would wait for it");
                    }
                    // The handler works on a copy: an error writes nothing.
                    let mut next = match &entry {
                        Some(e) if !now.is_expired(Some(e.expires_at)) => e.value.clone(),
                        _ => Bench::seeded(),
                    };
                    next.count += 1;
                    if sized {
                        let mut counter = Counter(0);
                        serde_json::to_writer(&mut counter, &next)?;
                        counter.flush()?;
                        if counter.0 > LIMIT {
                            anyhow::bail!("{key}: {} bytes over the limit", counter.0);
                        }
                    }
                    let expires_at = now.saturating_add(IDLE);
                    if let Some(e) = &mut entry {
                        e.value = next;
                        e.version += 1;
                        e.expires_at = expires_at;
                        return Ok(());
                    }
                    // A new key: created unless another task created it meanwhile (then
                    // the update runs again on its value, as after a compare-and-set).
                    drop(entry);
                    if let dashmap::Entry::Vacant(v) = map.entry(Arc::from(key.as_str())) {
                        v.insert(Entry { value: next, version: 1, expires_at, held: false });
                        return Ok(());
                    }
                }
            }
        }),
        total: total(crate::keys::KEYS, move |k| {
            let (map, keys) = (m2.clone(), k2.clone());
            async move { Ok(map.get(keys[k].as_str()).map_or(0, |e| e.value.count)) }
        }),
    }
}
