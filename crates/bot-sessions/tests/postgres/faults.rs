//! Unknown outcomes: a write or delete whose answer never comes is
//! `StoreError::Ambiguous` (it may have landed, or may land later), a failure before
//! anything was sent is retryable, and `Sessions::update` never applies an update twice
//! through any of it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};
use bot_sessions::testing::unique_namespace;
use bot_sessions::{DynStore, Precondition, Scope, SessionKey, Store, StoreError, Timestamp, Write};

use super::ledger::{self, Ledger};
use super::proxy::Proxy;
use super::{SCHEMA, admin, connect, unique_app, url, url_as, wait_until, wait_until_gone};

/// The shared server's address, for the proxy.
pub(super) async fn upstream() -> SocketAddr {
    let config: tokio_postgres::Config = url().parse().expect("the test URL parses");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        other => panic!("the proxy tests need a TCP server address, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    tokio::net::lookup_host((host.as_str(), port)).await.expect("resolve").next().expect("an address")
}

pub(super) fn db() -> String {
    let config: tokio_postgres::Config = url().parse().expect("the test URL parses");
    config.get_dbname().unwrap_or("postgres").to_owned()
}

fn assert_ambiguous<T: std::fmt::Debug>(r: Result<T, StoreError>, k: &SessionKey, what: &str) {
    match r {
        Err(e @ StoreError::Ambiguous { .. }) => {
            assert!(e.to_string().contains(k.as_str()), "{what}: the error names the key: {e}");
            assert!(!e.is_retryable(), "{what}: an unknown outcome is not a plain retry");
        }
        other => panic!("{what}: expected an ambiguous outcome, got {other:?}"),
    }
}

fn key() -> SessionKey {
    SessionKey::new(unique_namespace("amb"), Scope::Chat(1))
}

/// How long the stores under fault wait for an answer. The faults themselves are
/// certain (a held message never arrives), so this only bounds how long each faulted
/// call takes; it is long enough that the calls around them pass on a busy machine.
const TIMEOUT: Duration = Duration::from_secs(1);

/// `op` once it stops failing retryably (a busy machine, a store reconnecting): for
/// the calls around a fault, which are not what is tested.
async fn eventually<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{what}: {e:?}"),
        }
    }
}

/// A store through `proxy` with `pool` connections, all of them opened.
async fn through(proxy: &Proxy, app: &str, pool: usize) -> PostgresStore {
    let config = PostgresConfig::default().schema(SCHEMA).pool_size(pool).op_timeout(TIMEOUT);
    let store = connect(&proxy.url(&db(), app), config).await;
    let k = key();
    // Slots are picked round robin: `pool` loads in a row that succeed opened them all
    // (a slow start on a busy machine is tried again).
    let mut in_a_row = 0;
    while in_a_row < pool {
        match store.load(&k, Timestamp::now()).await {
            Ok(_) => in_a_row += 1,
            Err(e) if e.is_retryable() => in_a_row = 0,
            Err(e) => panic!("{e:?}"),
        }
    }
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_reply_is_lost_is_ambiguous_and_may_have_landed() {
    let proxy = Proxy::start(upstream().await).await;
    let app = unique_app("reply");
    let store = through(&proxy, &app, 2).await;
    let direct = super::store().await;
    let k = key();
    let now = Timestamp::now();
    let first = Write::new(b"1", 1, None);
    direct.write(&k, first, Precondition::Absent, now).await.unwrap();

    proxy.set(|m| m.hold_replies = true);
    let second = Write::new(b"2", 1, None);
    assert_ambiguous(store.write(&k, second, Precondition::Version(first.version), now).await, &k, "write");
    // The server ran it; only the answer was lost. The proposed version tells.
    wait_until("the write to land", Duration::from_secs(30), || async {
        direct.load(&k, Timestamp::now()).await.unwrap().map(|r| r.version) == Some(second.version)
    })
    .await;
    assert_ambiguous(store.delete(&k, Precondition::Version(second.version), now).await, &k, "delete");
    wait_until("the delete to land", Duration::from_secs(30), || async {
        direct.load(&k, Timestamp::now()).await.unwrap().is_none()
    })
    .await;

    proxy.set(|m| m.hold_replies = false);
    assert_eq!(eventually("the store heals", || store.load(&k, Timestamp::now())).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_never_reached_the_server_is_ambiguous_and_did_not_land() {
    let proxy = Proxy::start(upstream().await).await;
    let app = unique_app("request");
    let store = through(&proxy, &app, 1).await;
    let direct = super::store().await;
    let k = key();
    let now = Timestamp::now();
    let first = Write::new(b"1", 1, None);
    direct.write(&k, first, Precondition::Absent, now).await.unwrap();

    proxy.set(|m| m.hold_requests = true);
    let lost = Write::new(b"lost", 1, None);
    assert_ambiguous(store.write(&k, lost, Precondition::Version(first.version), now).await, &k, "write");
    // Drop the held request with its connection: it can never run now.
    proxy.cut().await;
    proxy.set(|m| m.hold_requests = false);
    wait_until_gone(&url(), &app).await;
    let r = direct.load(&k, Timestamp::now()).await.unwrap().expect("still there");
    assert_eq!((r.value.as_slice(), r.version), (&b"1"[..], first.version), "the lost write did not land");
    let healed = eventually("the store heals", || store.load(&k, Timestamp::now())).await;
    assert_eq!(healed.map(|r| r.version), Some(first.version));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_without_a_connection_is_retryable_not_ambiguous() {
    let proxy = Proxy::start(upstream().await).await;
    let app = unique_app("refused");
    let store = through(&proxy, &app, 1).await;
    let k = key();
    let now = Timestamp::now();
    proxy.set(|m| m.refuse = true);
    proxy.cut().await;
    // The read finds the connection gone (and drops it), or cannot open one.
    let err = store.load(&k, now).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    // Now there is no connection, and none can be opened: nothing is sent.
    for pre in [Precondition::Absent, Precondition::Any, Precondition::Version(5)] {
        let err = store.write(&k, Write::new(b"x", 1, None), pre, now).await.unwrap_err();
        assert!(err.is_retryable() && !err.is_ambiguous(), "{pre:?}: {err:?}");
        assert!(err.to_string().contains(k.as_str()), "the error names the key: {err}");
        let err = store.delete(&k, pre, now).await.unwrap_err();
        assert!(err.is_retryable() && !err.is_ambiguous(), "{pre:?}: {err:?}");
    }
    proxy.set(|m| m.refuse = false);
    assert_eq!(eventually("the store heals", || store.load(&k, Timestamp::now())).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_blocked_past_the_timeout_is_ambiguous() {
    let app = unique_app("lock");
    let config = PostgresConfig::default().schema(SCHEMA).pool_size(2).op_timeout(TIMEOUT);
    let store = connect(&url_as(&app), config).await;
    let direct = super::store().await;
    let k = key();
    let now = Timestamp::now();
    let first = Write::new(b"1", 1, None);
    direct.write(&k, first, Precondition::Absent, now).await.unwrap();

    // Another connection holds the row lock, so the write waits past the timeout.
    let mut admin = admin().await;
    let tx = admin.transaction().await.unwrap();
    let locked = tx
        .execute(&format!("SELECT 1 FROM {SCHEMA}.bot_sessions WHERE key = $1 FOR UPDATE"), &[&k.as_str()])
        .await
        .unwrap();
    assert_eq!(locked, 1);
    let blocked = Write::new(b"blocked", 1, None);
    assert_ambiguous(store.write(&k, blocked, Precondition::Version(first.version), now).await, &k, "write");
    assert_ambiguous(store.delete(&k, Precondition::Version(first.version), now).await, &k, "delete");
    let seen = eventually("reads do not wait for row locks", || store.load(&k, now)).await;
    assert_eq!(seen.map(|r| r.version), Some(first.version));
    tx.commit().await.unwrap();

    // Each waiting statement runs (or is cancelled by the server) once the lock goes;
    // at most one of the two can land, both being conditional on the first version.
    drop(store);
    wait_until_gone(&url(), &app).await;
    let r = direct.load(&k, Timestamp::now()).await.unwrap();
    let outcome = r.as_ref().map(|r| (r.value.as_slice(), r.version));
    assert!(
        [Some((&b"1"[..], first.version)), Some((&b"blocked"[..], blocked.version)), None].contains(&outcome),
        "{outcome:?}"
    );
}

/// `Sessions::update` through rows locked past the timeout, held requests, held
/// replies, cut connections and refused ones: every acknowledged update is there once,
/// no update is there twice, and the only others there are ambiguous ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_outcomes_never_apply_an_update_twice() {
    let proxy = Proxy::start(upstream().await).await;
    let app = unique_app("ledger");
    let config = PostgresConfig::default().schema(SCHEMA).pool_size(4).op_timeout(TIMEOUT);
    let store: DynStore = Arc::new(connect(&proxy.url(&db(), &app), config).await);
    let load = Ledger::start(store, 8, 3);
    load.wait_for_progress(200, "the load to start").await;
    let keys: Vec<&str> = load.keys.iter().map(SessionKey::as_str).collect();
    let mut admin = admin().await;
    let limit = Duration::from_secs(60);
    let seen = || load.ambiguous() + load.failed();
    for round in 0..2 {
        // The rows locked by another transaction: every update loads, then its write
        // (and each resend of it) waits past the timeout; when the lock goes, the
        // waiting writes of one update (one precondition) run, and at most one lands.
        let before = load.ambiguous();
        let tx = admin.transaction().await.unwrap();
        let locked = tx
            .execute(&format!("SELECT 1 FROM {SCHEMA}.bot_sessions WHERE key = ANY($1) FOR UPDATE"), &[&keys])
            .await
            .unwrap();
        assert_eq!(locked, keys.len() as u64, "every key of the load exists");
        wait_until("an update to stay ambiguous", limit, || async { load.ambiguous() > before }).await;
        tx.commit().await.unwrap();
        load.wait_for_progress(100, "the load to resume after the lock").await;

        // Replies held: the server commits what it got, the callers never hear.
        let before = seen();
        proxy.set(|m| m.hold_replies = true);
        wait_until("updates to fail", limit, || async { seen() > before }).await;
        proxy.cut().await;
        proxy.set(|m| m.hold_replies = false);
        load.wait_for_progress(100, "the load to resume after held replies").await;

        // Requests held, then delivered late, after their callers gave up.
        let before = seen();
        proxy.set(|m| m.hold_requests = true);
        wait_until("updates to fail", limit, || async { seen() > before }).await;
        proxy.set(|m| m.hold_requests = false);
        load.wait_for_progress(100, "the load to resume after held requests").await;

        // Requests held, then dropped with their connections.
        let before = seen();
        proxy.set(|m| m.hold_requests = true);
        wait_until("updates to fail", limit, || async { seen() > before }).await;
        proxy.cut().await;
        proxy.set(|m| m.hold_requests = false);
        load.wait_for_progress(100, "the load to resume after dropped requests").await;

        // No connection at all: plain retryable failures.
        let before = load.failed();
        proxy.set(|m| m.refuse = true);
        proxy.cut().await;
        wait_until("updates to fail", limit, || async { load.failed() > before }).await;
        proxy.set(|m| m.refuse = false);
        load.wait_for_progress(100, "the load to resume after refused connections").await;
        eprintln!("round {round}: {} acknowledged, {} ambiguous", load.acked(), load.ambiguous());
    }
    let store_ambiguous = load.store_ambiguous();
    assert!(store_ambiguous > 0, "the faults hit writes in flight");
    let (keys, outcomes) = load.stop().await;
    wait_until_gone(&url(), &app).await;
    let landed = ledger::check(super::store().await, &keys, &outcomes).await;
    eprintln!(
        "postgres ambiguity test: {} acknowledged, {} ambiguous ({landed} landed), {} failed; the store reported \
         {store_ambiguous} ambiguous outcomes",
        outcomes.acked.len(),
        outcomes.ambiguous.len(),
        outcomes.failed.len()
    );
}
