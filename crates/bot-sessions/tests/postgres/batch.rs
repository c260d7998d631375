//! Compare-and-set writes that wait together share one statement
//! (`PostgresConfig::batch_writes`): each write is still decided on its own, a row held
//! by another transaction is sent alone (never waited for inside a batch), and many
//! tasks through the near cache count every update.

use std::sync::Arc;

use bot_sessions::store::near_cache::CacheConfig;
use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};
use bot_sessions::{
    Namespace, Precondition, Scope, SessionError, SessionKey, Sessions, Store, StoreError, Timestamp, Write,
};

use super::{admin, connect, drop_schema, unique_app, unique_schema, url, url_as, wait_until};

fn key(chat: i64) -> SessionKey {
    SessionKey::new(Namespace::new("batch").unwrap(), Scope::Chat(chat))
}

/// A store whose pool of `pool` connections makes writes queue (and batch) as soon as
/// more than `pool` are in flight.
async fn small_pool(schema: &str, pool: usize) -> Arc<PostgresStore> {
    Arc::new(connect(&url(), PostgresConfig::default().schema(schema).pool_size(pool)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_write_of_a_batch_is_decided_on_its_own() {
    let schema = unique_schema();
    let store = small_pool(&schema, 1).await;
    let now = Timestamp::now();
    let mut versions = Vec::new();
    for chat in 0..40 {
        let w = Write::new(b"0", 1, None);
        store.write(&key(chat), w, Precondition::Absent, now).await.unwrap();
        versions.push(w.version);
    }
    // 40 writes at once on one connection: even chats with the stored version, odd
    // ones with a stale one.
    let writes = (0..40i64).map(|chat| {
        let (store, expected) = (store.clone(), versions[chat as usize]);
        tokio::spawn(async move {
            let pre = Precondition::Version(if chat % 2 == 0 { expected } else { expected ^ 1 });
            let value = format!("{chat}");
            let w = Write::new(value.as_bytes(), 1, None);
            (w.version, store.write(&key(chat), w, pre, Timestamp::now()).await)
        })
    });
    let results = super::futures_join(writes).await;
    for (chat, (proposed, result)) in results.into_iter().enumerate() {
        let stored = store.load(&key(chat as i64), Timestamp::now()).await.unwrap().unwrap();
        if chat % 2 == 0 {
            assert_eq!(result.unwrap(), proposed, "chat {chat} written");
            assert_eq!((stored.version, stored.value), (proposed, format!("{chat}").into_bytes()));
        } else {
            assert!(matches!(result, Err(StoreError::Conflict { .. })), "chat {chat}: {result:?}");
            assert_eq!((stored.version, stored.value), (versions[chat], b"0".to_vec()), "chat {chat} untouched");
        }
    }
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_held_by_another_transaction_is_written_once_it_is_free() {
    let schema = unique_schema();
    let app = unique_app("batch");
    let store = Arc::new(connect(&url_as(&app), PostgresConfig::default().schema(schema.as_str()).pool_size(2)).await);
    let now = Timestamp::now();
    let mut versions = Vec::new();
    for chat in 0..10 {
        let w = Write::new(b"0", 1, None);
        store.write(&key(chat), w, Precondition::Absent, now).await.unwrap();
        versions.push(w.version);
    }
    // Another transaction holds chat 0's row while ten writes go out at once.
    let mut holder = admin().await;
    let tx = holder.transaction().await.unwrap();
    tx.query(&format!("SELECT 1 FROM {schema}.bot_sessions WHERE key = $1 FOR UPDATE"), &[&key(0).as_str()])
        .await
        .unwrap();
    let writes: Vec<_> = (0..10i64)
        .map(|chat| {
            let (store, expected) = (store.clone(), versions[chat as usize]);
            tokio::spawn(async move {
                let w = Write::new(b"1", 1, None);
                store.write(&key(chat), w, Precondition::Version(expected), Timestamp::now()).await.map(|_| w.version)
            })
        })
        .collect();
    // A batch skips the held row (SKIP LOCKED) and chat 0 is sent alone, which waits
    // for the row like any single statement.
    let watcher = admin().await;
    wait_until("chat 0's write to wait for the row", std::time::Duration::from_secs(60), || async {
        let n: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        n == 1
    })
    .await;
    tx.commit().await.unwrap();
    let written = super::futures_join(writes.into_iter()).await;
    for (chat, result) in written.into_iter().enumerate() {
        let proposed = result.unwrap_or_else(|e| panic!("chat {chat} failed: {e}"));
        let stored = store.load(&key(chat as i64), Timestamp::now()).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.value), (proposed, b"1".to_vec()), "chat {chat} written once");
    }
    drop_schema(&schema).await;
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter {
    n: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_through_the_near_cache_count_every_update() {
    let schema = unique_schema();
    let store = small_pool(&schema, 2).await;
    let sessions = Sessions::<Counter>::builder(store.clone())
        .namespace("batch")
        .near_cache(CacheConfig::default())
        .build()
        .unwrap();
    const TASKS: u64 = 32;
    const EACH: u64 = 25;
    let tasks = (0..TASKS).map(|t| {
        let sessions = sessions.clone();
        tokio::spawn(async move {
            for i in 0..EACH {
                let k = key(((t * 7 + i * 3) % 16) as i64);
                sessions
                    .update(&k, |c| {
                        c.n += 1;
                        Ok::<_, SessionError>(())
                    })
                    .await
                    .unwrap();
            }
        })
    });
    super::futures_join(tasks).await;
    let mut sum = 0;
    for chat in 0..16 {
        sum += sessions.get(&key(chat)).await.unwrap().map_or(0, |c| c.n);
    }
    assert_eq!(sum, TASKS * EACH);
    let stats = sessions.near_cache().unwrap().stats();
    assert!(stats.hits > 0, "updates went straight to compare-and-set: {stats:?}");
    drop_schema(&schema).await;
}
