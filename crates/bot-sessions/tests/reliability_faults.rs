//! Servers that accept connections and never answer, answer random bytes, or answer in
//! the wrong protocol (HTTP), for Redis and PostgreSQL: opening a store against one
//! fails in bounded time, every store operation on a store whose server turns into one
//! fails in bounded time with a retryable or ambiguous error, the store heals once the
//! real server is back, and after the store is dropped no connection and no task of
//! it is left (counted on the fake server and by the runtime's `num_alive_tasks`).
//!
//! "Bounded" is each backend's configured timeouts; the generous outer timeout
//! ([`HANG`]) only tells a hang from a failure, it asserts no speed.
#![cfg(all(feature = "testing", any(feature = "redis", feature = "postgres")))]

mod reliability_support;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bot_sessions::testing::{unique_namespace, unique_user};
use bot_sessions::{Precondition, Scope, SessionKey, Store, StoreError, Timestamp, Write};
use reliability_support::fake_server::{Behaviour, FAULTS, FakeServer, upstream_of, url_via};
use reliability_support::wait_until;

/// The operation and connection timeouts the stores are given.
const TIMEOUT: Duration = Duration::from_millis(300);
/// Past this an operation is a hang (a failure detector, far above any bound).
const HANG: Duration = Duration::from_secs(60);

type Op<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Every store operation, each on its own.
fn operations<'a>(store: &'a dyn Store, key: &'a SessionKey, user: i64) -> Vec<(&'static str, Op<'a>)> {
    let now = Timestamp::now();
    let ns = key.namespace();
    vec![
        ("load", Box::pin(async move { store.load(key, now).await.map(drop) })),
        (
            "write",
            Box::pin(
                async move { store.write(key, Write::new(b"{}", 1, None), Precondition::Any, now).await.map(drop) },
            ),
        ),
        ("delete", Box::pin(async move { store.delete(key, Precondition::Any, now).await.map(drop) })),
        ("forget_user", Box::pin(async move { store.forget_user(user, now).await.map(drop) })),
        ("scan", Box::pin(async move { store.scan(ns, None, 100, now).await.map(drop) })),
        ("count", Box::pin(async move { store.count(Some(ns), now).await.map(drop) })),
        ("count all", Box::pin(async move { store.count(None, now).await.map(drop) })),
        ("purge_expired", Box::pin(async move { store.purge_expired(now).await.map(drop) })),
        ("purge_expired_background", Box::pin(async move { store.purge_expired_background(now).await.map(drop) })),
    ]
}

/// Runs every operation against a server behaving as `behaviour`: each must fail,
/// with a retryable or ambiguous error, and none may hang.
async fn every_operation_fails(store: &dyn Store, key: &SessionKey, user: i64, behaviour: Behaviour) {
    for (name, op) in operations(store, key, user) {
        let r = tokio::time::timeout(HANG, op)
            .await
            .unwrap_or_else(|_| panic!("{name} hung against a {behaviour:?} server"));
        let e = r.expect_err(&format!("{name} cannot succeed against a {behaviour:?} server"));
        assert!(
            e.is_retryable() || e.is_ambiguous(),
            "{name} against a {behaviour:?} server: want a retryable or ambiguous error, got {e:?}"
        );
    }
}

/// Waits until nothing of a dropped store is left: no connection open on `server`, and
/// as many tasks alive on this runtime as `tasks_before`.
async fn nothing_left(server: &FakeServer, tasks_before: usize, what: &str) {
    let metrics = tokio::runtime::Handle::current().metrics();
    wait_until(&format!("{what}: the store's connections to close"), HANG, || async { server.open() == 0 }).await;
    wait_until(&format!("{what}: the store's tasks to end"), HANG, || async {
        metrics.num_alive_tasks() == tasks_before
    })
    .await;
}

/// Opening a store against each faulty server fails in bounded time with a retryable
/// error, and leaves nothing behind.
async fn opening_fails<F, Fut, S>(url: &str, open: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    for behaviour in FAULTS {
        let server = FakeServer::start(None, behaviour);
        let r = tokio::time::timeout(HANG, open(url_via(url, server.addr())))
            .await
            .unwrap_or_else(|_| panic!("opening a store hung against a {behaviour:?} server"));
        let Err(e) = r else { panic!("a store opened against a {behaviour:?} server") };
        assert!(e.is_retryable(), "opening against a {behaviour:?} server: want a retryable error, got {e:?}");
        assert!(server.accepted() > 0, "the store did try the {behaviour:?} server");
        nothing_left(&server, tasks_before, &format!("open against {behaviour:?}")).await;
        eprintln!("open against {behaviour:?}: {e}; {} connections accepted", server.accepted());
    }
}

/// A store opened through a fake server that relays to the real one, which then turns
/// into each faulty server in turn: every operation fails properly, and relaying
/// again, the store heals; dropped, it leaves nothing.
async fn operations_fail_then_heal<S: Store>(server: &FakeServer, store: S, tasks_before: usize) {
    let key = SessionKey::new(unique_namespace("rel-fault"), Scope::ChatUser { chat: -1, user: unique_user() });
    let user = key.user_id().expect("the key has a user");
    store.write(&key, Write::new(b"{}", 1, None), Precondition::Any, Timestamp::now()).await.expect("relayed write");
    for behaviour in FAULTS {
        server.set(behaviour);
        every_operation_fails(&store, &key, user, behaviour).await;
        eprintln!("{behaviour:?}: every operation failed; {} connections accepted so far", server.accepted());
        server.set(Behaviour::Forward);
        // The store heals by itself: connections that broke or went silent are
        // replaced (a connection accepted while faulting stays silent for good).
        wait_until(&format!("the store to work again after a {behaviour:?} server"), HANG, || async {
            store.load(&key, Timestamp::now()).await.is_ok()
        })
        .await;
    }
    store.delete(&key, Precondition::Any, Timestamp::now()).await.expect("clean up");
    drop(store);
    nothing_left(server, tasks_before, "after the faults").await;
}

#[cfg(feature = "redis")]
mod redis {
    use bot_sessions::store::redis::{RedisConfig, RedisStore};

    use super::*;
    use reliability_support::redis_url;

    fn config() -> RedisConfig {
        RedisConfig::default().op_timeout(TIMEOUT).connect_timeout(TIMEOUT)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_open_against_a_silent_or_garbage_server_fails_in_bounded_time() {
        opening_fails(&redis_url(), |url| async move { RedisStore::connect_with(&url, config()).await }).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_every_operation_against_a_silent_or_garbage_server_fails_in_bounded_time() {
        let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let server = FakeServer::start(Some(upstream_of(&redis_url())), Behaviour::Forward);
        let store = RedisStore::connect_with(&url_via(&redis_url(), server.addr()), config()).await.expect("connect");
        operations_fail_then_heal(&server, store, tasks_before).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};

    use super::*;
    use reliability_support::{postgres_url, unique_table};

    fn config(schema: &str) -> PostgresConfig {
        PostgresConfig::default().schema(schema).pool_size(2).op_timeout(TIMEOUT).connect_timeout(TIMEOUT)
    }

    async fn drop_schema(schema: &str) {
        let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.expect("admin");
        let driver = tokio::spawn(conn);
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await.expect("drop schema");
        drop(client);
        let _ = driver.await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_open_against_a_silent_or_garbage_server_fails_in_bounded_time() {
        opening_fails(&postgres_url(), |url| async move { PostgresStore::connect_with(&url, config("unused")).await })
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_every_operation_against_a_silent_or_garbage_server_fails_in_bounded_time() {
        let schema = unique_table("fault");
        let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let server = FakeServer::start(Some(upstream_of(&postgres_url())), Behaviour::Forward);
        let url = url_via(&postgres_url(), server.addr());
        // Opening creates the table within the short timeout: tried again while the
        // shared server is slow to answer.
        let deadline = tokio::time::Instant::now() + HANG;
        let store = loop {
            match PostgresStore::connect_with(&url, config(&schema)).await {
                Ok(store) => break store,
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                    eprintln!("connecting again after: {e}");
                }
                Err(e) => panic!("connect through the relay: {e}"),
            }
        };
        operations_fail_then_heal(&server, store, tasks_before).await;
        drop_schema(&schema).await;
    }
}
