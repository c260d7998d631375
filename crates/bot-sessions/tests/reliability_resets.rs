//! Connection resets in the middle of operations, as a user meets them: two "processes"
//! (two stores, two `Sessions`, each with its own connections) count one user through
//! a TCP proxy that resets about 1 % of the chunks it relays (requests cut half-way,
//! replies lost after the server ran the command; see `reset_proxy`). Every update is
//! counted: an update acknowledged is there, one that failed certainly is not (or, for
//! an ambiguous error, may be), none is applied twice; and the user sees at most one
//! error per ten resets.
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
use reliability_support::{seed, with_param};

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
    ambiguous: Vec<usize>,
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
                        Err(SessionError::Store(e)) if e.is_ambiguous() => seen.ambiguous.push(id),
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
    for (id, e) in seen.failed.iter().take(10) {
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
    use reliability_support::redis_url;
    use reliability_support::fake_server::upstream_of;

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

    async fn drop_table(table: &str) {
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
