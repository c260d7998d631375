//! The near cache's compare-and-sets that wait together share one script run
//! (`RedisConfig::batch_writes`): each write is still decided on its own (a stale
//! version, an unreadable record, an expiry set or dropped), and many tasks through the
//! near cache count every update.

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::near_cache::CacheConfig;
use bot_sessions::store::redis::{RedisConfig, RedisStore};
use bot_sessions::testing::unique_namespace;
use bot_sessions::{
    Namespace, Precondition, Scope, SessionError, SessionKey, Sessions, Store, StoreError, Timestamp, Write,
};

use super::{Server, free_port, temp_dir, url};

fn key(chat: i64) -> SessionKey {
    SessionKey::new(Namespace::new("batch").unwrap(), Scope::Chat(chat))
}

async fn info_calls(con: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(con).await.expect("INFO");
    let line = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// 64 writes over known records at once, held up behind a paused server so that they
/// queue: far fewer script runs than writes, and each write decided on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_write_of_a_batch_is_decided_on_its_own() {
    let dir = temp_dir("redis-batch");
    let server = Server::start(free_port(), &dir);
    server.wait_ready().await;
    let store = Arc::new(RedisStore::connect(&server.url()).await.expect("connect"));
    let mut admin =
        redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.expect("connect");
    let now = Timestamp::now();
    let later = now.saturating_add(Duration::from_secs(600));
    let mut known = Vec::new();
    for chat in 0..64 {
        // Chat 3 starts with an expiry that its write drops; the others without one.
        let w = Write::new(b"0", 1, (chat == 3).then_some(later));
        store.write(&key(chat), w, Precondition::Absent, now).await.unwrap();
        known.push(store.load(&key(chat), now).await.unwrap().expect("written"));
    }
    // Chat 1 is garbled behind the store's back; chats 5, 15, .. are stale.
    let () = redis::cmd("HSET")
        .arg(store.record_key(&key(1)))
        .arg("meta")
        .arg("garbage")
        .query_async(&mut admin)
        .await
        .unwrap();
    let stale = |chat: i64| chat % 10 == 5;
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut admin).await.unwrap();
    let () = redis::cmd("CLIENT").arg("PAUSE").arg(500).arg("ALL").query_async(&mut admin).await.unwrap();
    let writes = (0..64i64).map(|chat| {
        let store = store.clone();
        let mut previous = known[chat as usize].clone();
        if stale(chat) {
            previous.version ^= 1;
        }
        tokio::spawn(async move {
            let value = format!("{chat}");
            // Chat 2 gets an expiry; chat 3 loses its own.
            let w = Write::new(
                value.as_bytes(),
                1,
                (chat == 2).then(|| Timestamp::now().saturating_add(Duration::from_secs(900))),
            );
            (w.version, store.write_over(&key(chat), w, &previous, Timestamp::now()).await)
        })
    });
    let mut results = Vec::new();
    for w in writes.collect::<Vec<_>>() {
        results.push(w.await.expect("task"));
    }
    let runs = info_calls(&mut admin, "evalsha").await + info_calls(&mut admin, "eval").await;
    assert!(runs < 32, "64 writes at once took {runs} script runs: not batched");
    for (chat, (proposed, result)) in results.into_iter().enumerate() {
        let chat = chat as i64;
        if chat == 1 {
            assert!(matches!(result, Err(StoreError::Corrupt { .. })), "chat 1: {result:?}");
            continue;
        }
        let stored = store.load(&key(chat), Timestamp::now()).await.unwrap().expect("there");
        if stale(chat) {
            assert!(matches!(result, Err(StoreError::Conflict { .. })), "chat {chat}: {result:?}");
            assert_eq!((stored.version, stored.value), (known[chat as usize].version, b"0".to_vec()), "chat {chat}");
        } else {
            assert_eq!(result.unwrap(), proposed, "chat {chat} written");
            assert_eq!((stored.version, stored.value), (proposed, format!("{chat}").into_bytes()), "chat {chat}");
        }
    }
    let ttl = |chat: i64| redis::cmd("PTTL").arg(store.record_key(&key(chat))).clone();
    let index = "bs:{ns:batch}:exp";
    let expiring: Vec<String> = redis::cmd("ZRANGE").arg(index).arg(0).arg(-1).query_async(&mut admin).await.unwrap();
    assert_eq!(expiring, vec![key(2).to_string()], "the expiry index follows the writes");
    let t2: i64 = ttl(2).query_async(&mut admin).await.unwrap();
    let t3: i64 = ttl(3).query_async(&mut admin).await.unwrap();
    assert!(t2 > 900_000 && t3 == -1, "native expiry set on chat 2 ({t2}) and dropped on chat 3 ({t3})");
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter {
    n: u64,
}

/// 64 tasks on 16 keys through the near cache (so most writes are batched
/// compare-and-sets): every update counted, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_through_the_near_cache_count_every_update() {
    let store = Arc::new(RedisStore::connect_with(&url(), RedisConfig::default()).await.expect("connect"));
    let ns = unique_namespace("batch");
    let sessions = Sessions::<Counter>::builder(store.clone())
        .namespace(ns.as_str())
        .near_cache(CacheConfig::default())
        .build()
        .unwrap();
    const TASKS: u64 = 64;
    const EACH: u64 = 40;
    let key = |chat: u64| SessionKey::new(ns.clone(), Scope::Chat(chat as i64));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let sessions = sessions.clone();
            let keys: Vec<SessionKey> = (0..EACH).map(|i| key((t * 7 + i * 3) % 16)).collect();
            tokio::spawn(async move {
                for k in keys {
                    sessions
                        .update(&k, |c| {
                            c.n += 1;
                            Ok::<_, SessionError>(())
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let mut sum = 0;
    for chat in 0..16 {
        sum += sessions.get(&key(chat)).await.unwrap().map_or(0, |c| c.n);
        sessions.delete(&key(chat)).await.unwrap();
    }
    assert_eq!(sum, TASKS * EACH);
    let stats = sessions.near_cache().unwrap().stats();
    assert!(stats.hits > 0, "updates went straight to compare-and-set: {stats:?}");
}
