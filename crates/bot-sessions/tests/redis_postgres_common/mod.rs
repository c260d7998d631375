//! What the Redis and PostgreSQL tests share: the two-process workload, a load that
//! counts every acknowledged update while a server is killed and restarted, and small
//! process helpers.
#![allow(dead_code)]

use std::future::Future;
use std::net::TcpListener;
use std::process::{Child, Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bot_sessions::session::RetryPolicy;
use bot_sessions::testing::{Counter, hammer, process, total, unique_namespace};
use bot_sessions::{DynStore, Namespace, Scope, SessionError, SessionKey, Sessions};

/// Tasks per process and updates per task of the two-process test.
pub const TASKS: usize = 32;
/// Updates per task of the two-process test.
pub const UPDATES: usize = 300;
const NS_ENV: &str = "BOT_SESSIONS_TEST_NAMESPACE";

fn keys(ns: &Namespace) -> Vec<SessionKey> {
    (0..4).map(|i| SessionKey::new(ns.clone(), Scope::ChatUser { chat: -7, user: 1_000 + i })).collect()
}

/// Counters on `ns`, with the default retry policy.
fn counters(store: DynStore, ns: &Namespace) -> Sessions<Counter> {
    Sessions::<Counter>::builder(store).namespace(ns.as_str()).build().expect("sessions build")
}

/// The counters of the two-process test. Under a loaded CI machine one process can win
/// the same key many times in a row while the other sleeps in backoff, so the test
/// raises the attempt bound: what it checks is the exact count, not the default bound
/// (a `Contention` error would be an honest failure, but it would stop the child).
fn patient_counters(store: DynStore, ns: &Namespace) -> Sessions<Counter> {
    let retry = RetryPolicy { max_attempts: 10_000, ..RetryPolicy::default() };
    Sessions::<Counter>::builder(store).namespace(ns.as_str()).retry(retry).build().expect("sessions build")
}

/// The two-process test: the parent starts two children of `test_name` that each run
/// [`TASKS`] x [`UPDATES`] updates of the same 4 keys through `Sessions::update`; then
/// the totals must be exact. Call it first thing in the test, in parent and child.
pub async fn two_processes<F, Fut>(test_name: &str, store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynStore>,
{
    if process::child_role().is_some() {
        let ns: Namespace = std::env::var(NS_ENV).expect("namespace from the parent").parse().expect("namespace");
        let sessions = patient_counters(store().await, &ns);
        // Start together, so the two processes really contend for the keys.
        process::barrier(&sessions, &ns, 2, Duration::from_secs(60)).await.expect("both children start");
        hammer(&sessions, &keys(&ns), TASKS, UPDATES).await.expect("every child update succeeds");
        return;
    }
    let ns = unique_namespace("procs");
    let children: Vec<Child> = (0..2)
        .map(|i| process::spawn_child(test_name, &i.to_string(), &[(NS_ENV, ns.as_str())]).expect("spawn child"))
        .collect();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
        assert!(out.status.success(), "child failed: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stdout));
    }
    let sessions = counters(store().await, &ns);
    let sum = total(&sessions, &keys(&ns)).await.expect("totals load");
    assert_eq!(sum, (2 * TASKS * UPDATES) as u64, "every update of both processes counted");
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bot-sessions-{what}-{}-{:x}", std::process::id(), rand_u64()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Runs a command to completion and fails loudly with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `ready` every 50 ms until it is true; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !ready().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counters of a running [`Load`].
#[derive(Debug, Default)]
pub struct Tally {
    /// Updates the store acknowledged.
    pub acked: AtomicU64,
    /// Updates that returned an error (which may or may not have been applied).
    pub failed: AtomicU64,
    /// Of the failed updates, those whose outcome the store reported as unknown
    /// (`StoreError::Ambiguous`: sent, but the reply was lost).
    pub ambiguous: AtomicU64,
}

/// Whether an update's error says its outcome is unknown (it may have been applied).
pub fn is_ambiguous(e: &SessionError) -> bool {
    matches!(e, SessionError::Store(s) if s.is_ambiguous())
}

/// Tasks updating counters until stopped, counting every acknowledged update per key.
pub struct Load {
    pub sessions: Sessions<Counter>,
    pub keys: Vec<SessionKey>,
    pub tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(Vec<u64>, Vec<u64>)>>,
}

impl Load {
    /// Starts `tasks` tasks on 4 fresh keys of `store`.
    pub fn start(store: DynStore, tasks: usize) -> Load {
        let ns = unique_namespace("fault");
        let sessions = counters(store, &ns);
        let keys = keys(&ns);
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|t| {
                let (sessions, keys, tally, stop) = (sessions.clone(), keys.clone(), tally.clone(), stop.clone());
                tokio::spawn(async move {
                    let (mut acked, mut failed) = (vec![0u64; keys.len()], vec![0u64; keys.len()]);
                    let mut i = t;
                    while !stop.load(Ordering::SeqCst) {
                        let k = i % keys.len();
                        i += 1;
                        let r = sessions
                            .update(&keys[k], |c| {
                                c.n += 1;
                                Ok::<_, SessionError>(())
                            })
                            .await;
                        match r {
                            Ok(()) => {
                                acked[k] += 1;
                                tally.acked.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => {
                                // A write cut off mid-flight is ambiguous (it may have
                                // landed); anything else an outage gives is retryable.
                                let ambiguous = is_ambiguous(&e);
                                assert!(
                                    e.is_retryable() || ambiguous,
                                    "an outage must give retryable or ambiguous errors, got {e:?}"
                                );
                                if ambiguous {
                                    tally.ambiguous.fetch_add(1, Ordering::SeqCst);
                                }
                                failed[k] += 1;
                                tally.failed.fetch_add(1, Ordering::SeqCst);
                                // Pace the retries of a down server.
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    (acked, failed)
                })
            })
            .collect();
        Load { sessions, keys, tally, stop, tasks }
    }

    /// Acknowledged updates so far.
    pub fn acked(&self) -> u64 {
        self.tally.acked.load(Ordering::SeqCst)
    }

    /// Failed updates so far.
    pub fn failed(&self) -> u64 {
        self.tally.failed.load(Ordering::SeqCst)
    }

    /// Failed updates so far whose outcome was unknown.
    pub fn ambiguous(&self) -> u64 {
        self.tally.ambiguous.load(Ordering::SeqCst)
    }

    /// Waits until `n` more updates than now are acknowledged.
    pub async fn wait_for_progress(&self, n: u64, what: &str) {
        let target = self.acked() + n;
        wait_until(what, Duration::from_secs(60), || async { self.acked() >= target }).await;
    }

    /// Stops the tasks (a task panicking fails the test here) and checks that every
    /// acknowledged update is stored: per key, acknowledged <= stored <= acknowledged +
    /// failed (a failed update may have been applied before its answer was lost).
    pub async fn stop_and_check(self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        let mut acked = vec![0u64; self.keys.len()];
        let mut failed = vec![0u64; self.keys.len()];
        for t in self.tasks {
            let (a, f) = t.await.expect("no load task panicked");
            for k in 0..acked.len() {
                acked[k] += a[k];
                failed[k] += f[k];
            }
        }
        for (k, key) in self.keys.iter().enumerate() {
            let mut stored = None;
            // The server is back; a load may still hit a reconnecting connection once.
            for _ in 0..50 {
                match self.sessions.get(key).await {
                    Ok(c) => {
                        stored = Some(c.map_or(0, |c| c.n));
                        break;
                    }
                    Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
                    Err(e) => panic!("loading {key} after the restart: {e:?}"),
                }
            }
            let stored = stored.unwrap_or_else(|| panic!("{key} does not load after the restart"));
            assert!(
                acked[k] <= stored && stored <= acked[k] + failed[k],
                "{key}: {} acknowledged, {} failed, {stored} stored",
                acked[k],
                failed[k]
            );
        }
        (acked.iter().sum(), failed.iter().sum())
    }
}
