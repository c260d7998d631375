//! Redis: bot-sessions' `RedisStore`, the same `redis` client doing the same
//! read-modify-write by hand (HMGET, JSON, EVALSHA of the store's own compare-and-set
//! script), teloxide's `RedisStorage` (blind GET then SET), tower-sessions'
//! `RedisStore` over fred (blind GET then SET with an expiry).

use std::sync::Arc;

use bot_sessions::store::redis::{RedisStore, WRITE_SCRIPT};
use bot_sessions::{Sessions, Timestamp};
use teloxide::dispatching::dialogue::{RedisStorage, serializer::Json};
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};

use super::{Env, session_keys};
use crate::subject::{Action, Role, Subject, op, total};
use crate::{Bench, count_json};

/// What one raw key needs: the record hash and the index keys the script maintains.
struct RawKey {
    text: String,
    record: String,
    ns_keys: String,
    ns_exp: String,
    ns_own: String,
}

async fn hmget(
    con: &mut redis::aio::ConnectionManager,
    record: &str,
) -> anyhow::Result<(Option<Vec<u8>>, Option<u64>)> {
    let (value, meta): (Option<Vec<u8>>, Option<String>) =
        redis::cmd("HMGET").arg(record).arg("value").arg("meta").query_async(con).await?;
    // `meta` is `version schema created updated expires`.
    Ok((value, meta.and_then(|m| m.split(' ').next().and_then(|v| v.parse().ok()))))
}

fn raw(store: &RedisStore, con: redis::aio::ConnectionManager) -> Subject {
    let prefix = store.prefix().to_owned();
    let raw_keys: Arc<Vec<RawKey>> = Arc::new(
        session_keys("raw")
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
    let (k2, c2) = (raw_keys.clone(), con.clone());
    Subject {
        name: "raw/redis".into(),
        backend: "redis",
        role: Role::Raw,
        op: op(move |action, k| {
            let (raw_keys, script, namespaces, prefix, mut con) =
                (raw_keys.clone(), script.clone(), namespaces.clone(), prefix.clone(), con.clone());
            async move {
                let k = &raw_keys[k];
                match action {
                    Action::Update => {}
                    Action::Read => {
                        std::hint::black_box(count_json(hmget(&mut con, &k.record).await?.0.as_deref())?);
                        return Ok(());
                    }
                    Action::LazyUnread => return Ok(()),
                }
                loop {
                    let now = Timestamp::now().as_millis();
                    let (value, version) = hmget(&mut con, &k.record).await?;
                    let bytes = crate::bump_json(value.as_deref())?;
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
                        // The writer's version, the owner (none), whether the key names
                        // its user, the prefix.
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
        }),
        total: total(crate::keys::KEYS, move |k| {
            let (keys, mut con) = (k2.clone(), c2.clone());
            async move { count_json(hmget(&mut con, &keys[k].record).await?.0.as_deref()) }
        }),
    }
}

/// The Redis subjects of `instance`.
pub async fn subjects(env: &Env, instance: &str) -> anyhow::Result<Vec<Subject>> {
    let base = &env.redis_url;
    let store = RedisStore::connect(&format!("{base}/0?prefix={}", env.redis_prefix(instance))).await?;
    let con = redis::aio::ConnectionManager::new(redis::Client::open(format!("{base}/0"))?).await?;
    let teloxide = RedisStorage::open(&format!("{base}/0"), Json).await?;
    let pool = Pool::new(Config::from_url(&format!("{base}/0"))?, None, None, None, 8)?;
    pool.init().await?;
    let id_base = env.id_base(instance);
    let mut subjects = vec![
        super::ours(
            "bot-sessions/redis",
            "redis",
            Sessions::builder_with_initial(store.clone(), Bench::seeded).namespace("bench").build()?,
        ),
        raw(&store, con),
        super::teloxide("teloxide/RedisStorage", "redis", teloxide, id_base),
        super::tower("tower-sessions/RedisStore", "redis", tower_sessions_redis_store::RedisStore::new(pool), id_base),
    ];
    if super::with_near_cache(instance) {
        subjects.insert(1, super::ours_cached("redis", std::sync::Arc::new(store))?);
    }
    Ok(subjects)
}

/// Deletes this run's keys: every key under the run's prefixes (SCAN, never KEYS or
/// FLUSHALL) and the chat and session ids of teloxide's and tower-sessions' stores.
pub async fn cleanup(env: &Env) -> anyhow::Result<()> {
    let client = redis::Client::open(format!("{}/0", env.redis_url))?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let pattern = format!("bsbench-{}-*", env.run);
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await?;
        if !keys.is_empty() {
            let () = redis::cmd("DEL").arg(&keys).query_async(&mut con).await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for instance in super::INSTANCES {
        let b = env.id_base(instance);
        let ids: Vec<String> = (0..crate::keys::KEYS as i64)
            .flat_map(|k| {
                let tower = tower_sessions_core::session::Id(b as i128 + k as i128).to_string();
                [(b + k).to_string(), tower]
            })
            .collect();
        let () = redis::cmd("DEL").arg(&ids).query_async(&mut con).await?;
    }
    Ok(())
}
