//! The Redis store on a real Redis Cluster the test starts on loopback ports (3 masters,
//! each with one replica): the conformance suite, two OS processes updating the same
//! keys, and a master killed mid-load with its replica promoted.
#![cfg(feature = "redis")]

mod redis_postgres_common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bot_sessions::store::redis::{RedisConfig, RedisStore, WaitFor};
use bot_sessions::testing::{Counter, conformance, hammer, process, total, unique_namespace};
use bot_sessions::{DynStore, Namespace, Scope, SessionError, SessionKey, Sessions};
use redis_postgres_common::{is_ambiguous, run, temp_dir, wait_until};

/// A port `p` free on loopback with `p + 10000` (its cluster bus) free too.
fn free_cluster_port() -> u16 {
    loop {
        let p: u16 = rand::random_range(20_000..30_000);
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(p) && free(p + 10_000) {
            return p;
        }
    }
}

/// Six `redis-server`s in cluster mode: 3 masters, 3 replicas.
struct Cluster {
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
    dir: PathBuf,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = temp_dir("redis-cluster");
        let ports: Vec<u16> = (0..6).map(|_| free_cluster_port()).collect();
        let mut cluster = Cluster { ports: ports.clone(), children: Vec::new(), dir };
        for i in 0..6 {
            let child = cluster.spawn(i);
            cluster.children.push(Some(child));
        }
        for &p in &ports {
            wait_until("a cluster node to answer PING", Duration::from_secs(30), || async move {
                Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "ping"])
                    .output()
                    .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
            })
            .await;
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        run(Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null()));
        cluster.wait_ok().await;
        cluster
    }

    fn spawn(&self, i: usize) -> Child {
        let node_dir = self.dir.join(format!("n{i}"));
        std::fs::create_dir_all(&node_dir).unwrap();
        Command::new("redis-server")
            .args(["--port", &self.ports[i].to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(&node_dir)
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"])
            .args(["--appendonly", "no", "--save", "", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server must be installed for the cluster tests")
    }

    /// Until every live node says the cluster is ok.
    async fn wait_ok(&self) {
        for (i, &p) in self.ports.iter().enumerate() {
            if self.children[i].is_none() {
                continue;
            }
            wait_until("cluster_state:ok", Duration::from_secs(60), || async move {
                Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
            })
            .await;
        }
    }

    fn url(&self) -> String {
        let hosts: Vec<String> = self.ports.iter().take(3).map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis://{}/?cluster=true", hosts.join(","))
    }

    /// The port of the master serving `key` (a Redis key name).
    fn master_of(&self, key: &str) -> u16 {
        let live = self.children.iter().position(Option::is_some).expect("a live node");
        let p = self.ports[live].to_string();
        let slot = run(Command::new("redis-cli").args(["-p", &p, "cluster", "keyslot", key])).stdout;
        let slot: u16 = String::from_utf8_lossy(&slot).trim().parse().expect("a slot number");
        let nodes =
            String::from_utf8(run(Command::new("redis-cli").args(["-p", &p, "cluster", "nodes"])).stdout).unwrap();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if !fields.get(2).is_some_and(|f| f.contains("master")) || fields.get(2).is_some_and(|f| f.contains("fail"))
            {
                continue;
            }
            for range in &fields[8..] {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>())
                    && (lo..=hi).contains(&slot)
                {
                    let addr = fields[1].split('@').next().unwrap();
                    return addr.rsplit(':').next().unwrap().parse().unwrap();
                }
            }
        }
        panic!("no master serves slot {slot}:\n{nodes}");
    }

    /// SIGKILL the node on `port`.
    fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).expect("a node of this cluster");
        if let Some(mut c) = self.children[i].take() {
            c.kill().expect("kill redis-server");
            c.wait().expect("reap redis-server");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(url: &str, config: RedisConfig) -> RedisStore {
    let store =
        RedisStore::connect_with(url, config).await.unwrap_or_else(|e| panic!("connect to the cluster {url}: {e}"));
    assert!(store.is_cluster());
    store
}

/// Every property of the conformance suite, on one cluster (one test, so the suite pays
/// for one cluster start rather than eighteen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_a_cluster() {
    let cluster = Cluster::start().await;
    let url = cluster.url();
    let store = || async { Arc::new(connect(&url, RedisConfig::default()).await) as DynStore };
    conformance::crud(store().await).await;
    conformance::versions_never_repeat(store().await).await;
    conformance::forget_user_reaches_owned_records(store().await).await;
    conformance::values_round_trip(store().await).await;
    conformance::preconditions(store().await).await;
    conformance::expiry(store().await).await;
    conformance::forget_user(store().await).await;
    conformance::scan_paging(store().await).await;
    conformance::count(store().await).await;
    conformance::concurrent_compare_and_set(store().await).await;
    conformance::sessions_concurrency(store().await).await;
    conformance::sessions_across_instances(store().await).await;
    conformance::writes_only_changes(store().await).await;
    conformance::session_ttl(store().await).await;
    conformance::undecodable_policies(store().await).await;
    conformance::schema_versions(store().await).await;
    conformance::size_limit(store().await).await;
    conformance::model_lifetimes(store().await).await;

    // A cluster node reached as if it were one server is refused, not half-working.
    let single = format!("redis://127.0.0.1:{}", cluster.ports[0]);
    match RedisStore::connect(&single).await {
        Err(bot_sessions::StoreError::Config(msg)) => assert!(msg.contains("cluster=true"), "{msg}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
}

const URL_ENV: &str = "BOT_SESSIONS_TEST_CLUSTER_URL";
const NS_ENV: &str = "BOT_SESSIONS_TEST_NAMESPACE";
const TASKS: usize = 32;
const UPDATES: usize = 300;

fn keys(ns: &Namespace) -> Vec<SessionKey> {
    (0..4).map(|i| SessionKey::new(ns.clone(), Scope::ChatUser { chat: -7, user: 1_000 + i })).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_update_the_same_keys_on_a_cluster() {
    if process::child_role().is_some() {
        let url = std::env::var(URL_ENV).expect("cluster URL from the parent");
        let ns: Namespace = std::env::var(NS_ENV).expect("namespace").parse().expect("namespace");
        let store = Arc::new(connect(&url, RedisConfig::default()).await) as DynStore;
        // A loaded machine can starve one process on a key for many attempts; the test
        // checks exact counts, not the default attempt bound.
        let retry = bot_sessions::session::RetryPolicy { max_attempts: 10_000, ..Default::default() };
        let sessions = Sessions::<Counter>::builder(store).namespace(ns.as_str()).retry(retry).build().unwrap();
        process::barrier(&sessions, &ns, 2, Duration::from_secs(60)).await.expect("both children start");
        hammer(&sessions, &keys(&ns), TASKS, UPDATES).await.expect("every child update succeeds");
        return;
    }
    let cluster = Cluster::start().await;
    let url = cluster.url();
    let ns = unique_namespace("procs");
    let children: Vec<Child> = (0..2)
        .map(|i| {
            process::spawn_child(
                "two_processes_update_the_same_keys_on_a_cluster",
                &i.to_string(),
                &[(NS_ENV, ns.as_str()), (URL_ENV, &url)],
            )
            .expect("spawn child")
        })
        .collect();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
        assert!(out.status.success(), "child failed: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stdout));
    }
    let store = Arc::new(connect(&url, RedisConfig::default()).await) as DynStore;
    let sessions = Sessions::<Counter>::builder(store).namespace(ns.as_str()).build().unwrap();
    assert_eq!(total(&sessions, &keys(&ns)).await.unwrap(), (2 * TASKS * UPDATES) as u64);
}

/// Per key: updates acknowledged, updates that failed (ambiguous ones may have landed).
struct Tally {
    acked: Vec<AtomicU64>,
    failed: Vec<AtomicU64>,
    ambiguous: AtomicU64,
}

/// Tasks updating `keys` through `sessions` until `stop`, counting every outcome.
fn load(
    sessions: &Sessions<Counter>,
    keys: &[SessionKey],
    stop: &Arc<AtomicBool>,
) -> (Arc<Tally>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(Tally {
        acked: keys.iter().map(|_| AtomicU64::new(0)).collect(),
        failed: keys.iter().map(|_| AtomicU64::new(0)).collect(),
        ambiguous: AtomicU64::new(0),
    });
    let tasks = (0..8)
        .map(|t| {
            let (sessions, keys, tally, stop) = (sessions.clone(), keys.to_vec(), tally.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = t;
                while !stop.load(Ordering::SeqCst) {
                    let k = i % keys.len();
                    i += 1;
                    match sessions
                        .update(&keys[k], |c| {
                            c.n += 1;
                            Ok::<_, SessionError>(())
                        })
                        .await
                    {
                        Ok(()) => {
                            tally.acked[k].fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            assert!(
                                e.is_retryable() || is_ambiguous(&e),
                                "a failover gives retryable or ambiguous errors: {e:?}"
                            );
                            if is_ambiguous(&e) {
                                tally.ambiguous.fetch_add(1, Ordering::SeqCst);
                            }
                            tally.failed[k].fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect();
    (tally, tasks)
}

fn acked(t: &Tally) -> u64 {
    t.acked.iter().map(|a| a.load(Ordering::SeqCst)).sum()
}

/// Four keys of one user: one shard, so one master serves them all.
fn one_users_keys(ns: &Namespace) -> Vec<SessionKey> {
    (0..4).map(|i| SessionKey::new(ns.clone(), Scope::ChatUser { chat: -7 - i, user: 1_000 })).collect()
}

/// Loads `key`, riding out a cluster that is still settling.
async fn settled(sessions: &Sessions<Counter>, key: &SessionKey) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match sessions.get(key).await {
            Ok(c) => return c.map_or(0, |c| c.n),
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{key} does not load after the failover: {e:?}"),
        }
    }
}

/// What the cluster client does on a failover: it re-sends a write script whose first
/// try landed (and reached the promoted replica). The re-send meets the writer's own
/// version, which must read as written, not as a conflict, or `Sessions` would run the
/// update a second time (the failover test below saw 108 stored for 107 acknowledged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_update_that_landed_is_written_not_a_conflict() {
    use bot_sessions::{Precondition, Store, StoreError, Timestamp, Write};
    let cluster = Cluster::start().await;
    let store = connect(&cluster.url(), RedisConfig::default()).await;
    let k = SessionKey::new(unique_namespace("resend"), Scope::User(7));
    let now = Timestamp::now();
    let w = |v: &'static [u8]| Write::new(v, 1, None);
    let created = w(b"v1");
    store.write(&k, created, Precondition::Absent, now).await.unwrap();
    let second = w(b"v2");
    store.write(&k, second, Precondition::Version(created.version), now).await.unwrap();
    assert_eq!(
        store.write(&k, second, Precondition::Version(created.version), now).await.unwrap(),
        second.version,
        "re-sent update"
    );
    // Another writer moved the key on meanwhile: the re-send still finds its version in
    // the history, and changes nothing.
    let known = store.load(&k, now).await.unwrap().expect("loads");
    let third = w(b"v3");
    store.write_over(&k, third, &known, now).await.unwrap();
    assert_eq!(
        store.write(&k, second, Precondition::Version(created.version), now).await.unwrap(),
        second.version,
        "re-sent after the key moved on"
    );
    assert_eq!(store.write_over(&k, third, &known, now).await.unwrap(), third.version, "re-sent compare-and-set");
    let r = store.load(&k, now).await.unwrap().expect("loads");
    assert_eq!((r.version, r.value.as_slice()), (third.version, &b"v3"[..]), "nothing re-applied");
    // A write this record never held is still a conflict, on both scripts; so is a
    // create over a live record (only updates are taken as re-sends).
    let stranger = w(b"x");
    let conflict = |r: Result<u64, StoreError>| matches!(r, Err(StoreError::Conflict { .. }));
    assert!(conflict(store.write(&k, stranger, Precondition::Version(created.version), now).await));
    assert!(conflict(store.write_over(&k, stranger, &known, now).await));
    assert!(conflict(store.write(&k, created, Precondition::Absent, now).await));
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_load_fails_over_and_with_wait_loses_no_acknowledged_update() {
    let mut cluster = Cluster::start().await;
    let url = cluster.url();
    let config = RedisConfig::default().op_timeout(Duration::from_secs(2));
    let plain = Arc::new(connect(&url, config.clone()).await) as DynStore;
    let waiting = connect(&url, config.wait(WaitFor::Replicas(1)).wait_timeout(Duration::from_millis(500))).await;
    // Both namespaces' keys name the same users, so they live in the same shards.
    let (ns_plain, ns_wait) = (unique_namespace("failover"), unique_namespace("failover-wait"));
    let (kp, kw) = (one_users_keys(&ns_plain), one_users_keys(&ns_wait));
    let victim = cluster.master_of(&waiting.record_key(&kw[0]));
    let sp = Sessions::<Counter>::builder(plain).namespace(ns_plain.as_str()).build().unwrap();
    let sw = Sessions::<Counter>::builder(Arc::new(waiting) as DynStore).namespace(ns_wait.as_str()).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tp, hp) = load(&sp, &kp, &stop);
    let (tw, hw) = load(&sw, &kw, &stop);
    let progress = |n: u64| {
        let (tp, tw) = (tp.clone(), tw.clone());
        let target = (acked(&tp) + n, acked(&tw) + n);
        move || {
            let (tp, tw) = (tp.clone(), tw.clone());
            async move { acked(&tp) >= target.0 && acked(&tw) >= target.1 }
        }
    };
    wait_until("the load to start", Duration::from_secs(60), progress(300)).await;

    cluster.kill(victim);
    // Without WAIT the load goes on as soon as the replica is promoted. With WAIT 1 the
    // promoted master has no replica left, so each write there waits `wait_timeout`, is
    // ambiguous, and `Sessions::update` resolves it by reading its own write back (Ok).
    // The old master is not restarted: without persistence it would come back empty and,
    // until it learns it was replaced, could take writes that its resync then drops.
    wait_until("the load to go on after the failover", Duration::from_secs(90), progress(100)).await;
    stop.store(true, Ordering::SeqCst);
    for h in hp.into_iter().chain(hw) {
        h.await.expect("no load task panicked");
    }

    let mut lost_plain = 0u64;
    for (sessions, keys, tally, waited) in [(&sp, &kp, &tp, false), (&sw, &kw, &tw, true)] {
        for (k, key) in keys.iter().enumerate() {
            let stored = settled(sessions, key).await;
            let (a, f) = (tally.acked[k].load(Ordering::SeqCst), tally.failed[k].load(Ordering::SeqCst));
            assert!(stored <= a + f, "{key}: {stored} stored, but only {a} acknowledged + {f} failed");
            if waited {
                assert!(a <= stored, "{key}: with WAIT 1, {a} acknowledged but {stored} stored after the failover");
            } else {
                lost_plain += a.saturating_sub(stored);
            }
        }
    }
    eprintln!(
        "cluster failover: without WAIT {} acknowledged, {lost_plain} lost; with WAIT 1 {} acknowledged, none lost \
         ({} ambiguous)",
        acked(&tp),
        acked(&tw),
        tw.ambiguous.load(Ordering::SeqCst)
    );
    drop(cluster);
}
