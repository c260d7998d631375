//! Redis store benchmark (issue 4), one run, 64 concurrent tasks:
//!
//! - `Sessions::update` on the Redis store (load with HMGET, change one field, save with
//!   the compare-and-set script);
//! - raw: the same `redis` client (one multiplexed `ConnectionManager`) doing the same
//!   read-modify-write by hand: HMGET of `value` and `meta`, JSON decode/encode, EVALSHA of the very same
//!   compare-and-set script, retry on conflict (goal: `Sessions::update` >= 0.9x);
//! - teloxide 0.17 `RedisStorage` doing the same logical update: `get_dialogue`, change,
//!   `update_dialogue` (a blind GET then SET; goal: >= 1.0x of it).
//!
//! Needs a Redis server (default `redis://127.0.0.1:6379`, or `BENCH_REDIS_URL`); the
//! store's keys go under the prefix `bsbench:` of db 0, teloxide's into db 15.

use std::sync::Arc;

use bot_sessions::store::redis::{RedisStore, WRITE_SCRIPT};
use bot_sessions::{Sessions, Timestamp};
use bot_sessions_bench::{Bench, Op, compare, key_of, keys, op, sessions_update, store_update, teloxide_update};
use teloxide::dispatching::dialogue::{RedisStorage, serializer::Json};

const TASKS: usize = 64;
const OPS: usize = 400;
const ROUNDS: usize = 9;

fn base_url() -> String {
    std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// What one raw key needs: the record hash and the index keys the script maintains.
struct RawKey {
    text: String,
    record: String,
    ns_keys: String,
    ns_exp: String,
    ns_own: String,
}

fn raw_op(store: &RedisStore, con: redis::aio::ConnectionManager) -> Op {
    let prefix = store.prefix().to_owned();
    let raw_keys: Arc<Vec<RawKey>> = Arc::new(
        keys("raw")
            .iter()
            .map(|k| RawKey {
                text: k.to_string(),
                record: store.record_key(k),
                ns_keys: format!("{prefix}{{ns:raw}}:keys"),
                ns_exp: format!("{prefix}{{ns:raw}}:exp"),
                ns_own: format!("{prefix}{{ns:raw}}:own"),
            })
            .collect(),
    );
    let namespaces = format!("{prefix}namespaces");
    let prefix = Arc::new(prefix);
    let script = Arc::new(redis::Script::new(WRITE_SCRIPT));
    op(move |t, i| {
        let (raw_keys, script, namespaces, prefix, mut con) =
            (raw_keys.clone(), script.clone(), namespaces.clone(), prefix.clone(), con.clone());
        async move {
            let k = &raw_keys[key_of(t, i)];
            loop {
                let now = Timestamp::now().as_millis();
                let (value, meta): (Option<Vec<u8>>, Option<String>) =
                    redis::cmd("HMGET").arg(&k.record).arg("value").arg("meta").query_async(&mut con).await?;
                // `meta` is `version schema created updated expires`.
                let version: Option<u64> = meta.and_then(|m| m.split(' ').next().and_then(|v| v.parse().ok()));
                let mut v: Bench = match &value {
                    Some(bytes) => serde_json::from_slice(bytes)?,
                    None => Bench::seeded(),
                };
                v.count += 1;
                let bytes = serde_json::to_vec(&v)?;
                let (mode, expected) = match version {
                    Some(n) => ("v", n),
                    None => ("n", 0),
                };
                let written: i64 = script
                    .key(&k.record)
                    .key(&k.ns_keys)
                    .key(&k.ns_exp)
                    .key(&k.record)
                    .key(&namespaces)
                    .key(&k.ns_own)
                    .arg(&k.text)
                    .arg("raw")
                    .arg(mode)
                    .arg(expected)
                    .arg(bytes)
                    .arg(1)
                    .arg(now)
                    .arg("")
                    .arg("")
                    .arg("0")
                    // The writer's version, the owner (none), whether the key names its
                    // user, the prefix.
                    .arg(bot_sessions::new_version())
                    .arg("-")
                    .arg("0")
                    .arg(prefix.as_str())
                    .invoke_async(&mut con)
                    .await?;
                if written > 0 {
                    return Ok(());
                }
            }
        }
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let base = base_url();
    let store = RedisStore::connect(&format!("{base}/0?prefix=bsbench:")).await?;
    let client = redis::Client::open(format!("{base}/0"))?;
    let mut con = redis::aio::ConnectionManager::new(client).await?;
    // Start from an empty prefix (earlier runs may have left records behind).
    let old: Vec<String> = redis::cmd("KEYS").arg("bsbench:*").query_async(&mut con).await?;
    for chunk in old.chunks(500) {
        let () = redis::cmd("DEL").arg(chunk).query_async(&mut con).await?;
    }
    let teloxide = RedisStorage::open(&format!("{base}/15"), Json).await?;

    let contenders = [
        (
            "bot-sessions redis Sessions::update",
            sessions_update(Sessions::builder_with_initial(store.clone(), Bench::seeded).namespace("bench").build()?),
        ),
        ("raw redis: HMGET + EVALSHA CAS script", raw_op(&store, con)),
        ("bot-sessions RedisStore load + write (no Sessions layer)", store_update(Arc::new(store.clone()), "store")),
        ("teloxide 0.17 RedisStorage get+update", teloxide_update(teloxide)),
    ];
    compare(
        "Redis update (load, change one field, save) at 64 tasks",
        &contenders,
        "raw redis: HMGET + EVALSHA CAS script",
        TASKS,
        OPS,
        ROUNDS,
    )
    .await?;
    Ok(())
}
