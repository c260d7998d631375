//! A design the library does not have, measured (issue 25, the memory store against
//! teloxide's `InMemStorage` at one task): what an update would cost if the memory
//! store kept each session as a typed value and ran the handler under its map's entry
//! lock, with no key lock, store layer or byte record around it.
//!
//! Not a subject of the report (it is not a store anyone can use): `memory sketch`
//! runs it beside `bot-sessions/memory` and teloxide's `InMemStorage`.
//!
//! What it keeps of the contract: one update of a key at a time (the map's entry lock,
//! held while the handler runs: the handler is synchronous), a version that moves on
//! every write, the wall-clock read for an idle TTL and an expired value never handed
//! out, nothing written when the handler fails (it works on a clone: `T: Clone`), a
//! flag where a handler-scoped session (`Sessions::open`) would hold the key. With
//! `SIZED`, the value is also serialized (into a byte counter, nothing kept) for the
//! size limit checked before every write.
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

/// The size limit the sketch checks with `SIZED` (the library's default).
const LIMIT: usize = 64 * 1024;

/// The idle TTL the sketch refreshes on every write.
const IDLE: Duration = Duration::from_secs(3600);

/// The sketch as a subject: `typed-entry` (no serialization) or `typed-entry+size`.
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
                let mut entry = match map.get_mut(key.as_str()) {
                    Some(entry) => entry,
                    None => map.entry(Arc::from(key.as_str())).or_insert_with(|| Entry {
                        value: Bench::seeded(),
                        version: 0,
                        expires_at: now,
                        held: false,
                    }),
                };
                if entry.held {
                    anyhow::bail!("a handler-scoped session holds {key}: the update would wait for it");
                }
                // The handler works on a copy: an error writes nothing.
                let mut next =
                    if now.is_expired(Some(entry.expires_at)) { Bench::seeded() } else { entry.value.clone() };
                next.count += 1;
                if sized {
                    let mut counter = Counter(0);
                    serde_json::to_writer(&mut counter, &next)?;
                    counter.flush()?;
                    if counter.0 > LIMIT {
                        anyhow::bail!("{key}: {} bytes over the limit", counter.0);
                    }
                }
                entry.value = next;
                entry.version += 1;
                entry.expires_at = now.saturating_add(IDLE);
                Ok(())
            }
        }),
        total: total(crate::keys::KEYS, move |k| {
            let (map, keys) = (m2.clone(), k2.clone());
            async move { Ok(map.get(keys[k].as_str()).map_or(0, |e| e.value.count)) }
        }),
    }
}
