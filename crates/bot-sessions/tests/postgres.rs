//! The PostgreSQL store against a real server: the conformance suite, migrations,
//! settings, bad stored rows, the background purge's lock, two OS processes on the same
//! keys, and faults: killed connections, a crashed server, and a proxy that holds or
//! drops requests and replies (`postgres/faults.rs`); TLS in every `sslmode` against a
//! server of the test's own (`postgres/tls.rs`); passwords kept out of every error
//! (`postgres/redaction.rs`); cancelled timeouts, bounded reconnects and the
//! `tokio_postgres::Config` builder (`postgres/operations.rs`).
//!
//! The shared server is `postgres://postgres@127.0.0.1:5432/test` (override with
//! `BOT_SESSIONS_POSTGRES_URL`); the tests work in the schema `bot_sessions_test` or in
//! schemas of their own. The crash, TLS and redaction tests run `initdb` and `postgres`
//! of their own on a free loopback port. An unreachable server fails the tests; nothing is skipped.
#![cfg(feature = "postgres")]

#[path = "postgres/bad_data.rs"]
mod bad_data;
#[path = "postgres/batch.rs"]
mod batch;
#[path = "postgres/faults.rs"]
mod faults;
#[path = "postgres/ledger.rs"]
mod ledger;
#[path = "postgres/operations.rs"]
mod operations;
#[path = "postgres/proxy.rs"]
mod proxy;
#[path = "postgres/redaction.rs"]
mod redaction;
mod redis_postgres_common;
#[path = "postgres/server.rs"]
mod server;
#[path = "postgres/tls.rs"]
mod tls;

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};
use bot_sessions::{DynStore, Namespace, Precondition, Scope, SessionKey, Store, StoreError, Timestamp, Write};
use redis_postgres_common::{free_port, two_processes, wait_until};

fn url() -> String {
    std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url()` with an `application_name`, so the test can find its store's connections.
fn url_as(app: &str) -> String {
    let u = url();
    format!("{u}{}application_name={app}", if u.contains('?') { '&' } else { '?' })
}

const SCHEMA: &str = "bot_sessions_test";

/// Connects, trying again for up to a minute while the server is busy (a loaded CI
/// machine, other tests' connections).
async fn connect(url: &str, config: PostgresConfig) -> PostgresStore {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match PostgresStore::connect_with(url, config.clone()).await {
            Ok(s) => return s,
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                eprintln!("connecting to {url} again after: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the PostgreSQL tests need a server at {url} (set BOT_SESSIONS_POSTGRES_URL): {e}"),
        }
    }
}

async fn store() -> DynStore {
    Arc::new(connect(&url(), PostgresConfig::default().schema(SCHEMA)).await)
}

bot_sessions::conformance_tests!(store, near_cache);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_update_the_same_keys() {
    two_processes("two_processes_update_the_same_keys", store).await;
}

async fn admin_at(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("admin connection");
    tokio::spawn(conn);
    client
}

async fn admin() -> tokio_postgres::Client {
    admin_at(&url()).await
}

fn unique_schema() -> String {
    format!("bs_t{:016x}", rand::random::<u64>())
}

fn unique_app(what: &str) -> String {
    format!("bs_{what}_{:x}", rand::random::<u32>())
}

/// Waits until the server at `admin_url` has no session of `app` left: everything
/// such a session had sent has run (or was rolled back), and nothing more can land.
async fn wait_until_gone(admin_url: &str, app: &str) {
    let admin = admin_at(admin_url).await;
    wait_until("the store's server sessions to end", Duration::from_secs(60), || async {
        let n: i64 = admin
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&app])
            .await
            .expect("pg_stat_activity")
            .get(0);
        n == 0
    })
    .await;
}

async fn drop_schema(schema: &str) {
    admin().await.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("drop the test schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_migrate_once() {
    let schema = unique_schema();
    let starts = (0..6).map(|_| {
        let schema = schema.clone();
        tokio::spawn(async move { PostgresStore::connect_with(&url(), PostgresConfig::default().schema(schema)).await })
    });
    let stores: Vec<PostgresStore> =
        futures_join(starts).await.into_iter().map(|r| r.expect("every concurrent start succeeds")).collect();
    let k = SessionKey::new(Namespace::new("m").unwrap(), Scope::Chat(1));
    let w = Write::new(b"x", 1, None);
    stores[0].write(&k, w, Precondition::Absent, Timestamp::now()).await.unwrap();
    assert_eq!(stores[5].load(&k, Timestamp::now()).await.unwrap().map(|r| r.version), Some(w.version), "one table");

    let admin = admin().await;
    let v: i32 =
        admin.query_one(&format!("SELECT version FROM {schema}.bot_sessions_schema"), &[]).await.unwrap().get(0);
    assert_eq!(v, 2);
    let indexes: i64 = admin
        .query_one("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'bot_sessions'", &[&schema])
        .await
        .unwrap()
        .get(0);
    assert_eq!(indexes, 4, "primary key, (namespace, key), expires_at, user_id");

    // A table from newer code is refused, not touched.
    admin.execute(&format!("UPDATE {schema}.bot_sessions_schema SET version = 99"), &[]).await.unwrap();
    match PostgresStore::connect_with(&url(), PostgresConfig::default().schema(schema.clone())).await {
        Err(e @ StoreError::Backend { retryable: false, .. }) => assert!(e.to_string().contains("99"), "{e}"),
        other => panic!("expected a non-retryable error for a newer table, got {other:?}"),
    }
    drop_schema(&schema).await;
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_owners_are_stored_as_written() {
    let store = store().await;
    let admin = admin().await;
    let ns = bot_sessions::testing::unique_namespace("pgver");
    let k = SessionKey::new(ns.clone(), Scope::Custom { id: "menu".into(), user: None });
    let now = Timestamp::now();
    let created = Write::new(b"a", 1, None).with_owner(Some(42));
    store.write(&k, created, Precondition::Absent, now).await.unwrap();
    let column = |sql: &'static str| {
        let admin = &admin;
        let k = k.as_str().to_owned();
        async move {
            let row = admin.query_one(&format!("SELECT {sql} FROM {SCHEMA}.bot_sessions WHERE key = $1"), &[&k]).await;
            row.unwrap().get::<_, Option<i64>>(0)
        }
    };
    assert_eq!(column("version").await, Some(created.version as i64), "the proposed version, as given");
    assert_eq!(column("user_id").await, Some(42), "the owner, indexed");
    for pre in [Precondition::Version(created.version), Precondition::Any] {
        let next = Write::new(b"b", 1, None).with_owner(Some(7));
        store.write(&k, next, pre, now).await.unwrap();
        assert_eq!(column("version").await, Some(next.version as i64), "{pre:?}");
        assert_eq!(column("user_id").await, Some(42), "{pre:?}: the owner stays");
    }
    // A version the column cannot hold is refused before anything is sent.
    for bad in [0, u64::MAX] {
        let w = Write { version: bad, ..Write::new(b"c", 1, None) };
        let err = store.write(&k, w, Precondition::Any, now).await.unwrap_err();
        assert!(err.to_string().contains(k.as_str()) && !err.is_ambiguous(), "{err}");
    }
}

#[tokio::test]
async fn configured_names_are_validated_before_any_sql() {
    for (schema, table) in [("public", "x; DROP TABLE y"), ("Public", "t"), ("a\"b", "t"), ("s", "")] {
        let r = PostgresStore::connect_with(&url(), PostgresConfig::default().schema(schema).table(table)).await;
        assert!(matches!(r, Err(StoreError::Config(_))), "{schema:?}.{table:?}: {r:?}");
    }
    let r = PostgresStore::connect(&format!("{}?table=Robert');DROP", url())).await;
    assert!(matches!(r, Err(StoreError::Config(_))), "{r:?}");
}

#[tokio::test]
async fn out_of_range_settings_are_config_errors_at_connect() {
    let base = url();
    let sep = if base.contains('?') { '&' } else { '?' };
    for option in
        ["pool_size=0", "pool_size=1000000000000", "pool_size=99999999999999999999999", "connect_timeout=999999999"]
    {
        let with = format!("{base}{sep}{option}");
        let r = PostgresStore::connect(&with).await;
        assert!(matches!(r, Err(StoreError::Config(_))), "{option}: {r:?}");
        let r = bot_sessions::store::open(&with).await.map(drop);
        assert!(matches!(r, Err(StoreError::Config(_))), "open {option}: {r:?}");
    }
    let configs = [
        PostgresConfig::default().pool_size(0),
        PostgresConfig::default().pool_size(usize::MAX),
        PostgresConfig::default().batch_in_flight(0),
        PostgresConfig::default().batch_in_flight(1025),
        PostgresConfig::default().op_timeout(Duration::MAX),
        PostgresConfig::default().op_timeout(Duration::ZERO),
        PostgresConfig::default().connect_timeout(Duration::MAX),
        PostgresConfig::default().connect_timeout(Duration::ZERO),
    ];
    for config in configs {
        let r = PostgresStore::connect_with(&base, config.clone()).await;
        assert!(matches!(r, Err(StoreError::Config(_))), "{config:?}: {r:?}");
    }
    // The largest allowed values work.
    let big = PostgresConfig::default().schema(SCHEMA).pool_size(1024).op_timeout(Duration::from_secs(3600));
    let store = connect(&base, big).await;
    let k = SessionKey::new(bot_sessions::testing::unique_namespace("big"), Scope::Chat(1));
    assert_eq!(store.load(&k, Timestamp::now()).await.unwrap(), None);
}

#[tokio::test]
async fn a_password_never_shows_in_errors() {
    let port = free_port();
    for url in [
        format!("postgres://postgres:s3cret-pw@127.0.0.1:{port}/test?pool_size=0"),
        format!("postgres://postgres:s3cret-pw@127.0.0.1:{port}/test?port=notaport"),
        format!("postgres://postgres:s3cret-pw@127.0.0.1:{port}/test"),
        format!("postgres://postgres@127.0.0.1:{port}/test?password=s3cret-pw"),
    ] {
        let config = PostgresConfig::default().connect_timeout(Duration::from_secs(2));
        let err = PostgresStore::connect_with(&url, config).await.unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cret-pw"), "{err:?}");
    }
}

#[tokio::test]
async fn unreachable_server_is_a_retryable_error_in_bounded_time() {
    let port = free_port();
    let config = PostgresConfig::default().op_timeout(Duration::from_secs(2));
    let err =
        PostgresStore::connect_with(&format!("postgres://postgres@127.0.0.1:{port}/test"), config).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_in_batches() {
    let schema = unique_schema();
    let store = connect(&url(), PostgresConfig::default().schema(schema.clone())).await;
    let ns = bot_sessions::testing::unique_namespace("purge");
    let now = Timestamp::now();
    let soon = Some(now.saturating_add(Duration::from_secs(60)));
    for i in 0..2500 {
        let k = SessionKey::new(ns.clone(), Scope::Chat(i));
        let expires_at = if i % 5 == 0 { None } else { soon };
        store.write(&k, Write::new(b"x", 1, expires_at), Precondition::Any, now).await.unwrap();
    }
    let later = now.saturating_add(Duration::from_secs(120));
    assert_eq!(store.purge_expired(later).await.unwrap(), 2000, "more than one batch of 1000");
    assert_eq!(store.count(Some(&ns), now).await.unwrap(), 500);
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_purge_runs_in_one_process_at_a_time() {
    let schema = unique_schema();
    let a = connect(&url(), PostgresConfig::default().schema(schema.clone())).await;
    let b = connect(&url(), PostgresConfig::default().schema(schema.clone())).await;
    let admin = admin().await;
    let now = Timestamp::now();
    let later = now.saturating_add(Duration::from_secs(120));
    let plant = |tag: i64, n: i64| {
        let admin = &admin;
        let schema = schema.clone();
        async move {
            let sql = format!(
                "INSERT INTO {schema}.bot_sessions (key, namespace, value, version, schema_version, created_at, \
                 updated_at, expires_at) SELECT 'p:' || i || ':' || $2::bigint, 'p', '\\x00', i, 1, $1::bigint, \
                 $1::bigint, $1::bigint + 60000 FROM generate_series(1, $3::bigint) i"
            );
            admin.execute(&sql, &[&now.as_millis(), &tag, &n]).await.unwrap();
        }
    };
    plant(1, 1500).await;
    let lock = format!("bot-sessions-purge:{schema}.bot_sessions");
    admin.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&lock]).await.unwrap();
    assert_eq!(a.purge_expired_background(later).await.unwrap(), 0, "another process holds the purge lock");
    assert_eq!(b.purge_expired_background(later).await.unwrap(), 0);
    let left: i64 = admin.query_one(&format!("SELECT count(*) FROM {schema}.bot_sessions"), &[]).await.unwrap().get(0);
    assert_eq!(left, 1500, "a skipped round deletes nothing");
    // An operator's purge does not wait for the lock.
    assert_eq!(a.purge_expired(later).await.unwrap(), 1500);
    plant(2, 1500).await;
    admin.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", &[&lock]).await.unwrap();
    assert_eq!(b.purge_expired_background(later).await.unwrap(), 1500, "in batches, while it holds the lock");
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_under_load_heal_and_apply_every_update_once() {
    let app = unique_app("kill");
    let config = PostgresConfig::default().schema(SCHEMA).pool_size(8).op_timeout(Duration::from_secs(3));
    let store: DynStore = Arc::new(connect(&url_as(&app), config).await);
    let load = ledger::Ledger::start(store, 16, 32);
    load.wait_for_progress(300, "the load to start").await;
    let admin = admin().await;
    for round in 0..3 {
        let killed: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        assert!(killed > 0, "round {round}: the store's connections were found");
        load.wait_for_progress(300, "the load to resume after pg_terminate_backend").await;
    }
    let store_ambiguous = load.store_ambiguous();
    let (keys, outcomes) = load.stop().await;
    wait_until_gone(&url(), &app).await;
    let landed = ledger::check(self::store().await, &keys, &outcomes).await;
    eprintln!(
        "postgres terminate test: {} acknowledged, {} ambiguous ({landed} landed), {} failed; the store reported \
         {store_ambiguous} ambiguous outcomes",
        outcomes.acked.len(),
        outcomes.ambiguous.len(),
        outcomes.failed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_crashed_and_restarted_under_load_applies_every_update_once() {
    let mut server = server::Server::init(free_port());
    server.start();
    server.wait_ready().await;
    let app = unique_app("crash");
    let config = PostgresConfig::default().pool_size(8).op_timeout(Duration::from_secs(3));
    let store_url = format!("{}?application_name={app}", server.url());
    let store: DynStore = Arc::new(connect(&store_url, config.clone()).await);

    let load = ledger::Ledger::start(store, 16, 32);
    load.wait_for_progress(300, "the load to start").await;
    server.crash();
    let failed = load.failed() + load.ambiguous();
    wait_until("updates to fail while the server is down", Duration::from_secs(30), || async {
        load.failed() + load.ambiguous() > failed
    })
    .await;
    let acked_while_down = load.acked();
    server.start();
    server.wait_ready().await;
    load.wait_for_progress(300, "the load to resume after the restart").await;
    assert!(load.acked() >= acked_while_down + 300);
    let (keys, outcomes) = load.stop().await;
    wait_until_gone(&server.url(), &app).await;
    let fresh: DynStore = Arc::new(connect(&server.url(), config).await);
    let landed = ledger::check(fresh, &keys, &outcomes).await;
    assert!(!outcomes.failed.is_empty() || !outcomes.ambiguous.is_empty(), "the outage was seen");
    eprintln!(
        "postgres crash test: {} acknowledged, {} ambiguous ({landed} landed), {} failed during the outage",
        outcomes.acked.len(),
        outcomes.ambiguous.len(),
        outcomes.failed.len()
    );
}
