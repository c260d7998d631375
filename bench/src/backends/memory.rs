//! In-process maps: bot-sessions' `MemoryStore`, a raw dashmap with the same codec and
//! compare-and-set, teloxide's `InMemStorage`, tower-sessions' `MemoryStore`.

use std::sync::Arc;

use bot_sessions::Sessions;
use bot_sessions::store::memory::MemoryStore;
use teloxide::dispatching::dialogue::InMemStorage;

use crate::subject::{Action, Role, Subject, op, total};
use crate::{Bench, bump_json, count_json};

/// A stored value and its version, as the raw map keeps it.
#[derive(Clone)]
pub struct Versioned(pub u64, pub Vec<u8>);

/// The raw map: `String -> (version, JSON bytes)`.
pub type RawMap = Arc<dashmap::DashMap<String, Versioned>>;

/// The textual key of chat `k` (what the raw baselines key by).
pub fn raw_key(k: usize) -> String {
    format!("bench/chat:{k}")
}

/// One compare-and-set update of the raw map: clone out, decode, bump, encode, put
/// back if the version did not move.
pub fn raw_update(map: &RawMap, k: &str) -> anyhow::Result<()> {
    loop {
        let cur = map.get(k).map(|e| e.clone());
        let next = bump_json(cur.as_ref().map(|v| v.1.as_slice()))?;
        let mut e = map.entry(k.to_owned()).or_insert(Versioned(0, Vec::new()));
        if e.0 == cur.as_ref().map_or(0, |v| v.0) {
            *e = Versioned(e.0 + 1, next);
            return Ok(());
        }
    }
}

/// The memory subjects.
pub fn subjects() -> Vec<Subject> {
    let sessions = Sessions::builder_with_initial(MemoryStore::new(), Bench::seeded)
        .namespace("bench")
        .build()
        .expect("a valid bench configuration");
    let map: RawMap = Arc::default();
    let keys: Arc<Vec<String>> = Arc::new((0..crate::keys::KEYS).map(raw_key).collect());
    let (m2, k2) = (map.clone(), keys.clone());
    let raw = Subject {
        name: "raw/dashmap".into(),
        backend: "memory",
        role: Role::Raw,
        op: op(move |action, k| {
            let (map, keys) = (map.clone(), keys.clone());
            async move {
                match action {
                    Action::Update => raw_update(&map, &keys[k]),
                    Action::Read => {
                        let cur = map.get(&keys[k]).map(|e| e.clone());
                        std::hint::black_box(count_json(cur.as_ref().map(|v| v.1.as_slice()))?);
                        Ok(())
                    }
                    Action::LazyUnread => Ok(()),
                }
            }
        }),
        total: total(crate::keys::KEYS, move |k| {
            let (map, keys) = (m2.clone(), k2.clone());
            async move { count_json(map.get(&keys[k]).map(|e| e.1.clone()).as_deref()) }
        }),
    };
    vec![
        super::ours("bot-sessions/memory", "memory", sessions),
        raw,
        super::teloxide("teloxide/InMemStorage", "memory", InMemStorage::<Bench>::new(), 0),
        super::tower("tower-sessions/MemoryStore", "memory", tower_sessions_memory_store::MemoryStore::default(), 0),
    ]
}
