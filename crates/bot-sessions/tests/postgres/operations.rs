//! Operating the store: a statement that runs out of time is cancelled on the server
//! (no backend left working for a caller that left), an outage does not become a
//! reconnect storm, and a `tokio_postgres::Config` built in code works as well as a URL.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::postgres::{PostgresConfig, PostgresStore, tokio_postgres};
use bot_sessions::testing::unique_namespace;
use bot_sessions::{Precondition, Scope, SessionKey, Store, StoreError, Timestamp, Write};

use super::faults::{db, upstream};
use super::proxy::Proxy;
use super::{SCHEMA, admin, connect, unique_app, url, url_as, wait_until};

/// The server sessions of `app` that are not idle (running or waiting for a lock).
async fn busy_backends(admin: &tokio_postgres::Client, app: &str) -> i64 {
    admin
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'", &[&app])
        .await
        .expect("pg_stat_activity")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_that_times_out_is_cancelled_on_the_server() {
    let app = unique_app("cancel");
    // The server's own statement_timeout is an hour: only the cancel request can end
    // the blocked statement while the test holds the lock.
    let config = PostgresConfig::default()
        .schema(SCHEMA)
        .pool_size(2)
        .op_timeout(Duration::from_secs(1))
        .statement_timeout(Duration::from_secs(3600));
    let store = connect(&url_as(&app), config).await;
    let direct = super::store().await;
    let k = SessionKey::new(unique_namespace("cancel"), Scope::Chat(1));
    let first = Write::new(b"1", 1, None);
    direct.write(&k, first, Precondition::Absent, Timestamp::now()).await.unwrap();

    let mut holder = admin().await;
    let tx = holder.transaction().await.unwrap();
    let locked = tx
        .execute(&format!("SELECT 1 FROM {SCHEMA}.bot_sessions WHERE key = $1 FOR UPDATE"), &[&k.as_str()])
        .await
        .unwrap();
    assert_eq!(locked, 1);
    let blocked = Write::new(b"blocked", 1, None);
    let err = store.write(&k, blocked, Precondition::Version(first.version), Timestamp::now()).await.unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");

    // The lock is still held, so a statement left running would still be waiting.
    let watcher = admin().await;
    wait_until("the timed-out statement to be cancelled on the server", Duration::from_secs(60), || async {
        busy_backends(&watcher, &app).await == 0
    })
    .await;
    let ours: i64 = watcher
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&app])
        .await
        .unwrap()
        .get(0);
    assert!(ours <= 2, "no backend beyond the pool's: {ours}");
    tx.commit().await.unwrap();
    // Cancelled while it waited: it never ran.
    let r = direct.load(&k, Timestamp::now()).await.unwrap().expect("still there");
    assert_eq!((r.value.as_slice(), r.version), (&b"1"[..], first.version));
    // The store goes on with a fresh connection.
    let seen = store.load(&k, Timestamp::now()).await.unwrap().map(|r| r.version);
    assert_eq!(seen, Some(first.version));
}

/// Connection attempts at once before the first one fails (the library's bound).
const OPENS_AT_ONCE: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_not_a_reconnect_storm() {
    let proxy = Proxy::start(upstream().await).await;
    let app = unique_app("storm");
    let pool = 16;
    // After a failed attempt, the next one waits 30 to 60 s: longer than this test.
    let config = PostgresConfig::default()
        .schema(SCHEMA)
        .pool_size(pool)
        .op_timeout(Duration::from_secs(5))
        .reconnect_delay(Duration::from_secs(60), Duration::from_secs(60));
    let store = Arc::new(connect(&proxy.url(&db(), &app), config).await);
    let k = SessionKey::new(unique_namespace("storm"), Scope::Chat(1));
    for _ in 0..pool {
        store.load(&k, Timestamp::now()).await.expect("every slot connects");
    }
    let opened = proxy.accepted();
    assert!(opened <= pool + 1, "one connection per slot (and the migration's): {opened}");

    // The server becomes unreachable; every connection breaks.
    proxy.set(|m| m.refuse = true);
    proxy.cut().await;
    let before = proxy.accepted();
    let tasks = 400;
    let start = Arc::new(tokio::sync::Barrier::new(tasks));
    let ops: Vec<_> = (0..tasks)
        .map(|_| {
            let (store, start, k) = (store.clone(), start.clone(), k.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.load(&k, Timestamp::now()).await
            })
        })
        .collect();
    for op in ops {
        match op.await.expect("task") {
            Err(e) => assert!(e.is_retryable(), "{e:?}"),
            Ok(r) => panic!("a load succeeded with the server unreachable: {r:?}"),
        }
    }
    let attempts = proxy.accepted() - before;
    assert!(
        (1..=OPENS_AT_ONCE).contains(&attempts),
        "{tasks} operations during the outage made {attempts} connection attempts"
    );
    // A failure while waiting says why, and stays retryable.
    let err = store.load(&k, Timestamp::now()).await.unwrap_err();
    assert!(err.is_retryable() && err.to_string().contains("next attempt"), "{err}");
    assert_eq!(proxy.accepted() - before, attempts, "no attempt while waiting");
    eprintln!("reconnect storm test: {tasks} operations, {attempts} connection attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_config_built_in_code_connects() {
    let app = unique_app("pgconfig");
    let mut pg = tokio_postgres::Config::from_str(&url()).expect("the test URL parses");
    pg.application_name(&app);
    let store = PostgresStore::connect_pg_config(pg, PostgresConfig::default().schema(SCHEMA)).await.unwrap();
    let k = SessionKey::new(unique_namespace("pgconfig"), Scope::Chat(1));
    let w = Write::new(b"x", 1, None);
    store.write(&k, w, Precondition::Absent, Timestamp::now()).await.unwrap();
    assert_eq!(store.load(&k, Timestamp::now()).await.unwrap().map(|r| r.version), Some(w.version));
    let n: i64 = admin()
        .await
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&app])
        .await
        .unwrap()
        .get(0);
    assert!(n >= 1, "the application_name set in code is the one the server sees");
    // Settings out of range are still refused.
    let pg = tokio_postgres::Config::from_str(&url()).unwrap();
    let r = PostgresStore::connect_pg_config(pg, PostgresConfig::default().pool_size(0)).await;
    assert!(matches!(r, Err(StoreError::Config(_))), "{r:?}");
}
