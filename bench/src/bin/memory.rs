//! Memory store benchmarks (issue 2), one run:
//!
//! 1. Which concurrent map: dashmap, scc, papaya and a sharded `Mutex<HashMap>` doing
//!    the memory store's own pattern (clone the stored bytes out, decode, change one
//!    field, encode, compare-and-set the version back).
//! 2. `Sessions::update` on the memory store against that raw map doing the same work
//!    with the same codec (goal >= 0.7x), and teloxide's `InMemStorage` doing the same
//!    logical update (get_dialogue, change, update_dialogue).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{Codec, Sessions};
use bot_sessions_bench::{Bench, Op, compare, key_of, op, sessions_update, teloxide_update};
use teloxide::dispatching::dialogue::InMemStorage;

const TASKS: usize = 64;
const OPS: usize = 4_000;
const ROUNDS: usize = 5;

/// One read-modify-write on encoded bytes: what every raw baseline does.
fn bump(bytes: Option<&[u8]>) -> Vec<u8> {
    let mut v: Bench = bytes.map(|b| serde_json::from_slice(b).unwrap()).unwrap_or_else(Bench::seeded);
    v.count += 1;
    serde_json::to_vec(&v).unwrap()
}

#[derive(Clone)]
struct Versioned(u64, Vec<u8>);

fn dashmap_op() -> Op {
    let map: Arc<dashmap::DashMap<String, Versioned>> = Arc::default();
    op(move |t, i| {
        let map = map.clone();
        async move {
            let k = format!("bench/chat:{}", key_of(t, i));
            loop {
                let cur = map.get(&k).map(|e| e.clone());
                let next = bump(cur.as_ref().map(|v| v.1.as_slice()));
                let mut e = map.entry(k.clone()).or_insert(Versioned(0, Vec::new()));
                if e.0 == cur.as_ref().map_or(0, |v| v.0) {
                    *e = Versioned(e.0 + 1, next);
                    return Ok(());
                }
            }
        }
    })
}

fn scc_op() -> Op {
    let map: Arc<scc::HashMap<String, Versioned>> = Arc::default();
    op(move |t, i| {
        let map = map.clone();
        async move {
            let k = format!("bench/chat:{}", key_of(t, i));
            loop {
                let cur = map.read_sync(&k, |_, v| v.clone());
                let next = bump(cur.as_ref().map(|v| v.1.as_slice()));
                let mut e = map.entry_sync(k.clone()).or_insert(Versioned(0, Vec::new()));
                if e.0 == cur.as_ref().map_or(0, |v| v.0) {
                    *e = Versioned(e.0 + 1, next);
                    return Ok(());
                }
            }
        }
    })
}

fn papaya_op() -> Op {
    let map: Arc<papaya::HashMap<String, Versioned>> = Arc::default();
    op(move |t, i| {
        let map = map.clone();
        async move {
            let k = format!("bench/chat:{}", key_of(t, i));
            let m = map.pin();
            loop {
                let cur = m.get(&k).cloned();
                let next = bump(cur.as_ref().map(|v| v.1.as_slice()));
                let expected = cur.as_ref().map_or(0, |v| v.0);
                let done = m.compute(k.clone(), |e| match e {
                    Some((_, v)) if v.0 != expected => papaya::Operation::Abort(()),
                    None if expected != 0 => papaya::Operation::Abort(()),
                    _ => papaya::Operation::Insert(Versioned(expected + 1, next.clone())),
                });
                if !matches!(done, papaya::Compute::Aborted(())) {
                    return Ok(());
                }
            }
        }
    })
}

fn sharded_mutex_op() -> Op {
    let hasher = RandomState::new();
    let shards: Arc<Vec<Mutex<HashMap<String, Versioned>>>> = Arc::new((0..64).map(|_| Mutex::default()).collect());
    op(move |t, i| {
        let shards = shards.clone();
        let k = format!("bench/chat:{}", key_of(t, i));
        let shard = (hasher.hash_one(&k) % 64) as usize;
        async move {
            loop {
                let cur = shards[shard].lock().unwrap().get(&k).cloned();
                let next = bump(cur.as_ref().map(|v| v.1.as_slice()));
                let mut m = shards[shard].lock().unwrap();
                let e = m.entry(k.clone()).or_insert(Versioned(0, Vec::new()));
                if e.0 == cur.as_ref().map_or(0, |v| v.0) {
                    *e = Versioned(e.0 + 1, next);
                    return Ok(());
                }
            }
        }
    })
}

fn sessions_op(codec: Codec) -> Op {
    let store = MemoryStore::new();
    sessions_update(
        Sessions::builder_with_initial(store, Bench::seeded).namespace("bench").codec(codec).build().unwrap(),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let maps = [
        ("dashmap", dashmap_op()),
        ("scc", scc_op()),
        ("papaya", papaya_op()),
        ("sharded std Mutex<HashMap>", sharded_mutex_op()),
    ];
    compare("Concurrent maps: clone out, JSON decode/encode, CAS back", &maps, "dashmap", TASKS, OPS, ROUNDS).await?;

    let contenders = [
        ("raw dashmap + JSON", dashmap_op()),
        ("bot-sessions memory (JSON)", sessions_op(Codec::Json)),
        ("bot-sessions memory (MessagePack)", sessions_op(Codec::MessagePack)),
        ("teloxide InMemStorage", teloxide_update(InMemStorage::<Bench>::new())),
    ];
    compare("Memory store update vs raw map and teloxide", &contenders, "raw dashmap + JSON", TASKS, OPS, ROUNDS)
        .await?;
    Ok(())
}
