//! Connection resets in the middle of operations, as a user meets them: two "processes"
//! (two stores, two `Sessions`, each with its own connections) count one user through
//! a TCP proxy that resets about 1 % of the chunks it relays (requests cut half-way,
//! replies lost after the server ran the command; see `reset_proxy`). Every update is
//! counted: an update acknowledged is there, one that failed certainly is not (or, for
//! an ambiguous error, may be), none is applied twice; and the user sees at most one
//! error per ten resets.
//!
//! Also: an operation issued while the PostgreSQL store waits between reconnect
//! attempts waits for the connection (within its time) instead of failing at once; and
//! `store::open` rides out a server that refuses connections for a moment, and gives up
//! with a clear retryable error after its `open_retry` time.
//!
//! The dice are seeded: `BOT_SESSIONS_SOAK_SEED=N` replays a run.
#![cfg(all(feature = "testing", any(feature = "redis", feature = "postgres")))]

mod reliability_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bot_sessions::testing::{unique_namespace, unique_user};
use bot_sessions::{DynStore, Scope, SessionError, SessionKey, Sessions};
use reliability_support::reset_proxy::ResetProxy;
use reliability_support::{seed, wait_until, with_param};

/// Updates in all, each with its own id.
const UPDATES: usize = 2_000;
/// Stores (processes) counting the same user.
const PROCESSES: usize = 2;
/// Tasks per process.
const TASKS: usize = 4;
/// About 1 % of the relayed chunks end their connection.
const RESET_PER_MILLION: usize = 10_000;
/// A hang detector for the whole run, not a timing assertion.
const HANG: Duration = Duration::from_secs(600);

/// The user's counter, and which updates it holds (a bit per update id, in hex), so a
/// doubled or lost update shows.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Count {
    n: u64,
    done: String,
}

impl Count {
    fn has(&self, id: usize) -> bool {
        let nibble = self.done.as_bytes().get(id / 4).and_then(|c| (*c as char).to_digit(16)).unwrap_or(0);
        nibble & (1 << (id % 4)) != 0
    }

    fn set(&mut self, id: usize) {
        let mut digits: Vec<u32> = self.done.chars().map(|c| c.to_digit(16).unwrap_or(0)).collect();
        if digits.len() <= id / 4 {
            digits.resize(id / 4 + 1, 0);
        }
        digits[id / 4] |= 1 << (id % 4);
        self.done = digits.iter().map(|d| char::from_digit(*d, 16).unwrap_or('0')).collect();
    }
}

/// What the user saw.
#[derive(Debug, Default)]
struct Seen {
    acked: Vec<usize>,
    ambiguous: Vec<(usize, String)>,
    failed: Vec<(usize, String)>,
}

/// Runs [`UPDATES`] updates of one user's counter from [`PROCESSES`] stores opened by
/// `open` (each one a process's), through `proxy`, which resets as configured once
/// every store is open; then reads the counter through `direct` and checks every
/// update, and the errors against the resets.
async fn count_through_resets(what: &str, proxy: &ResetProxy, stores: Vec<DynStore>, direct: DynStore) {
    let ns = unique_namespace("rel-resets");
    let key = SessionKey::new(ns.clone(), Scope::User(unique_user()));
    let doubled = Arc::new(AtomicUsize::new(0));
    let per_process: Vec<Sessions<Count>> = stores
        .into_iter()
        .map(|store| Sessions::<Count>::builder(store).namespace(ns.as_str()).build().expect("sessions"))
        .collect();
    proxy.reset_per_million(RESET_PER_MILLION);
    let mut tasks = Vec::new();
    for (p, sessions) in per_process.iter().enumerate() {
        for t in 0..TASKS {
            let (sessions, key, doubled) = (sessions.clone(), key.clone(), doubled.clone());
            let lane = p * TASKS + t;
            tasks.push(tokio::spawn(async move {
                let mut seen = Seen::default();
                for id in (lane..UPDATES).step_by(PROCESSES * TASKS) {
                    let r = sessions
                        .update(&key, |c: &mut Count| {
                            if c.has(id) {
                                // Only this task writes `id`: an earlier attempt of this
                                // update landed, and it would be applied again.
                                doubled.fetch_add(1, Ordering::SeqCst);
                            } else {
                                c.set(id);
                                c.n += 1;
                            }
                            Ok::<_, SessionError>(())
                        })
                        .await;
                    match r {
                        Ok(()) => seen.acked.push(id),
                        Err(SessionError::Store(e)) if e.is_ambiguous() => seen.ambiguous.push((id, e.to_string())),
                        Err(e) => seen.failed.push((id, e.to_string())),
                    }
                }
                seen
            }));
        }
    }
    let mut seen = Seen::default();
    for t in tasks {
        let s = tokio::time::timeout(HANG, t).await.expect("the updates hung").expect("update task");
        seen.acked.extend(s.acked);
        seen.ambiguous.extend(s.ambiguous);
        seen.failed.extend(s.failed);
    }
    proxy.reset_per_million(0);
    let resets = proxy.resets();
    let errors = seen.ambiguous.len() + seen.failed.len();
    eprintln!(
        "{what}: {UPDATES} updates, {} chunks relayed, {resets} resets; {errors} user-visible errors \
         ({} ambiguous, {} failed): {:.3} per reset",
        proxy.chunks(),
        seen.ambiguous.len(),
        seen.failed.len(),
        errors as f64 / resets.max(1) as f64,
    );
    for (id, e) in seen.failed.iter().chain(&seen.ambiguous).take(10) {
        eprintln!("  update {id} failed: {e}");
    }

    let reader = Sessions::<Count>::builder(direct).namespace(ns.as_str()).build().expect("sessions");
    let stored = reader.get(&key).await.expect("read the counter back").unwrap_or_default();
    assert_eq!(doubled.load(Ordering::SeqCst), 0, "{what}: an update that had landed was applied again");
    for id in &seen.acked {
        assert!(stored.has(*id), "{what}: acknowledged update {id} is lost");
    }
    for (id, e) in &seen.failed {
        assert!(!stored.has(*id), "{what}: update {id} failed ({e}) but was applied");
    }
    let held = (0..UPDATES).filter(|id| stored.has(*id)).count();
    assert_eq!(stored.n, held as u64, "{what}: the count does not match the updates it holds (one applied twice)");
    assert!(held >= seen.acked.len() && held <= seen.acked.len() + seen.ambiguous.len(), "{what}: {held} held");
    assert!(resets >= 10, "{what}: only {resets} resets; the run shows nothing");
    assert!(
        errors * 10 <= resets,
        "{what}: {errors} user-visible errors for {resets} resets (at most one per ten resets allowed)"
    );
    reader.delete(&key).await.expect("clean up");
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use reliability_support::fake_server::upstream_of;
    use reliability_support::redis_url;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_resets_cost_the_user_at_most_one_error_per_ten_and_lose_or_double_nothing() {
        let seed = seed();
        eprintln!("seed {seed}");
        let proxy = ResetProxy::start(upstream_of(&redis_url()), seed).await;
        let url = with_param(&format!("redis://{}/0", proxy.addr()), "purge_interval", "off");
        let mut stores = Vec::new();
        for _ in 0..PROCESSES {
            stores.push(bot_sessions::store::open(&url).await.expect("open through the proxy"));
        }
        let direct = bot_sessions::store::open(&with_param(&redis_url(), "purge_interval", "off")).await.expect("open");
        count_through_resets("redis", &proxy, stores, direct).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use reliability_support::fake_server::upstream_of;
    use reliability_support::{postgres_url, unique_table};

    pub(super) async fn drop_table(table: &str) {
        let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.expect("admin");
        let driver = tokio::spawn(conn);
        let sql = format!("DROP TABLE IF EXISTS public.\"{table}\"; DROP TABLE IF EXISTS public.\"{table}_schema\"");
        client.batch_execute(&sql).await.expect("drop table");
        drop(client);
        let _ = driver.await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_resets_cost_the_user_at_most_one_error_per_ten_and_lose_or_double_nothing() {
        let seed = seed();
        eprintln!("seed {seed}");
        let table = unique_table("resets");
        let proxy = ResetProxy::start(upstream_of(&postgres_url()), seed).await;
        let url = format!("postgres://postgres@{}/test?table={table}&purge_interval=off", proxy.addr());
        let mut stores = Vec::new();
        for _ in 0..PROCESSES {
            stores.push(bot_sessions::store::open(&url).await.expect("open through the proxy"));
        }
        let direct = bot_sessions::store::open(&with_param(
            &with_param(&postgres_url(), "table", &table),
            "purge_interval",
            "off",
        ))
        .await
        .expect("open");
        count_through_resets("postgres", &proxy, stores, direct).await;
        drop_table(&table).await;
    }
}

/// Opening through `proxy` while it refuses connections: with time to try again, the
/// open succeeds once the server accepts again (after a few refusals, counted by the
/// proxy); without, it fails with a retryable error that says it gave up.
async fn open_rides_out_a_refusing_server(proxy: &ResetProxy, url: &str) {
    proxy.refuse(true);
    let before = proxy.refused();
    let patient = with_param(url, "open_retry", "60");
    let opening = bot_sessions::store::open(&patient);
    let server_back = async {
        wait_until("a few refused attempts", HANG, || async { proxy.refused() >= before + 3 }).await;
        proxy.refuse(false);
    };
    let (opened, ()) = tokio::join!(opening, server_back);
    let store = opened.expect("the store opens once the server accepts connections again");
    assert!(proxy.refused() >= before + 3);
    drop(store);

    proxy.refuse(true);
    let before = proxy.refused();
    let e = bot_sessions::store::open(&with_param(url, "open_retry", "1")).await.err().expect("the server stays down");
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("gave up opening the store after"), "{e}");
    assert!(proxy.refused() > before + 1, "tried more than once");
    eprintln!("open gave up: {e}");
    proxy.refuse(false);
}

#[cfg(feature = "redis")]
mod redis_open {
    use super::*;
    use reliability_support::fake_server::upstream_of;
    use reliability_support::redis_url;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_open_waits_for_a_server_that_comes_up_and_gives_up_after_open_retry() {
        let proxy = ResetProxy::start(upstream_of(&redis_url()), seed()).await;
        let url = with_param(&format!("redis://{}/0", proxy.addr()), "purge_interval", "off");
        open_rides_out_a_refusing_server(&proxy, &url).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres_reconnect {
    use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};
    use bot_sessions::{Precondition, Store, Timestamp, Write};

    use super::*;
    use reliability_support::fake_server::upstream_of;
    use reliability_support::{postgres_url, unique_table};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_open_waits_for_a_server_that_comes_up_and_gives_up_after_open_retry() {
        let table = unique_table("openretry");
        let proxy = ResetProxy::start(upstream_of(&postgres_url()), seed()).await;
        let url = format!("postgres://postgres@{}/test?table={table}&purge_interval=off", proxy.addr());
        open_rides_out_a_refusing_server(&proxy, &url).await;
        super::postgres::drop_table(&table).await;
    }

    /// The store loses its only connection and its reconnect attempt is refused, so
    /// it waits (1 to 2 s) before the next; an operation issued in that wait waits for
    /// the new connection and succeeds, instead of failing at once with "no connection
    /// to the server (the next attempt in ...)".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_operations_wait_for_a_reconnect_under_way() {
        let table = unique_table("rewait");
        let proxy = ResetProxy::start(upstream_of(&postgres_url()), seed()).await;
        let url = format!("postgres://postgres@{}/test?table={table}", proxy.addr());
        let config = PostgresConfig::default()
            .pool_size(1)
            .op_timeout(Duration::from_secs(20))
            .reconnect_delay(Duration::from_secs(2), Duration::from_secs(2));
        let store = PostgresStore::connect_with(&url, config).await.expect("connect");
        let key = SessionKey::new(unique_namespace("rel-rewait"), Scope::User(unique_user()));
        let written = store.write(&key, Write::new(b"{}", 1, None), Precondition::Any, Timestamp::now()).await;
        written.expect("a first write opens the connection");

        // Every chunk resets, and new connections are refused: the next statement loses
        // the connection, and the attempt to replace it fails.
        proxy.refuse(true);
        proxy.reset_per_million(1_000_000);
        let first = tokio::spawn({
            let store = store.clone();
            let key = key.clone();
            async move { store.load(&key, Timestamp::now()).await }
        });
        wait_until("the reconnect attempt to be refused", HANG, || async { proxy.refused() >= 1 }).await;
        proxy.reset_per_million(0);
        proxy.refuse(false);

        // The store now waits before its next attempt: this load waits for it.
        let second = store.load(&key, Timestamp::now()).await;
        let second = second.expect("an operation in the reconnect wait waits for the connection");
        assert!(second.is_some());
        let first = first.await.expect("task");
        assert!(first.expect("the load whose connection was lost is sent again").is_some());
        store.delete(&key, Precondition::Any, Timestamp::now()).await.expect("clean up");
        drop(store);
        super::postgres::drop_table(&table).await;
    }
}

/// What `Store::recent_versions` answers on a store that keeps a history: the versions
/// in order, the last 16, started anew by a re-creation, nothing for an absent key.
async fn recent_versions_follow_the_writes(store: &dyn bot_sessions::Store) {
    use bot_sessions::{Precondition, Timestamp, Write};
    let key = SessionKey::new(unique_namespace("rel-hist"), Scope::User(unique_user()));
    let now = Timestamp::now();
    assert_eq!(store.recent_versions(&key, now).await.expect("read"), None, "no record, no history");
    let mut written = Vec::new();
    let mut pre = Precondition::Absent;
    for _ in 0..20 {
        let w = Write::new(b"{}", 1, None);
        store.write(&key, w, pre, now).await.expect("write");
        written.push(w.version);
        pre = Precondition::Version(w.version);
        let want = &written[written.len().saturating_sub(16)..];
        assert_eq!(store.recent_versions(&key, now).await.expect("read").as_deref(), Some(want));
    }
    store.delete(&key, Precondition::Any, now).await.expect("delete");
    let w = Write::new(b"{}", 1, None);
    store.write(&key, w, Precondition::Absent, now).await.expect("create again");
    let any = Write::new(b"{}", 1, None);
    store.write(&key, any, Precondition::Any, now).await.expect("overwrite");
    assert_eq!(store.recent_versions(&key, now).await.expect("read"), Some(vec![w.version, any.version]));
    store.delete(&key, Precondition::Any, now).await.expect("clean up");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_records_keep_their_recent_versions() {
    let url = with_param(&reliability_support::redis_url(), "purge_interval", "off");
    let store = bot_sessions::store::open(&url).await.expect("open");
    recent_versions_follow_the_writes(store.as_ref()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_keep_their_recent_versions() {
    let table = reliability_support::unique_table("hist");
    let url = with_param(&with_param(&reliability_support::postgres_url(), "table", &table), "purge_interval", "off");
    let store = bot_sessions::store::open(&url).await.expect("open");
    recent_versions_follow_the_writes(store.as_ref()).await;
    drop(store);
    postgres::drop_table(&table).await;
}
