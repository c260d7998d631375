//! The near cache (issue 13), one run, side by side:
//!
//! 1. Redis and PostgreSQL `update` at 64 tasks in one process: the raw two-step
//!    baseline (load, then compare-and-set, by hand), `Sessions::update` without a
//!    cache, and with one (`near_cache`); ratios against the raw baseline.
//! 2. Two processes updating the same keys (this binary started twice as children),
//!    with and without the cache: wall time and exact counts.
//! 3. Hit rate and the cache's memory at 10^5 live sessions (weight estimate, and the
//!    process RSS grown by filling the cache).
//! 4. The memory store against a raw map: `update` throughput (dashmap + the same JSON
//!    codec), and memory per live session at 10^4 and 10^6 sessions with a 7-byte value
//!    (`{"n":1}`), each measured as the RSS growth of a fresh child process, against a
//!    `HashMap<String, Vec<u8>>` holding the same key texts and values.
//!
//! `cargo run --release --bin cache [redis|postgres|two|scale|memory]` (default: all).
//!
//! Needs Redis (`BENCH_REDIS_URL`, default `redis://127.0.0.1:6379`) and PostgreSQL
//! (`BENCH_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::store::near_cache::{CacheConfig, NearCache};
use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};
use bot_sessions::store::redis::{RedisStore, WRITE_SCRIPT};
use bot_sessions::{DynStore, Namespace, Scope, SessionError, SessionKey, Sessions, Store, Timestamp};
use tokio_postgres::{Client, NoTls, Statement};

// The harness of the per-backend bins this one was written beside (before the report
// binary), kept here so the near-cache comparison stands on its own.

/// One contender: a name and an operation run `ops_per_task` times on each task.
pub type Op =
    Arc<dyn Fn(usize, usize) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send + Sync>;

/// Wraps an async closure `(task, i) -> Result<()>` as an [`Op`].
pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    Arc::new(move |t, i| Box::pin(f(t, i)))
}

/// Runs `op` on `tasks` tasks, `ops_per_task` each; returns the wall time.
pub async fn run_once(op: &Op, tasks: usize, ops_per_task: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..ops_per_task {
                op(t, i).await?;
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(start.elapsed())
}

/// Runs every contender `rounds` times, interleaved, and prints ops/s (median round)
/// and the ratio to `baseline` (a contender's name).
pub async fn compare(
    title: &str,
    contenders: &[(&str, Op)],
    baseline: &str,
    tasks: usize,
    ops_per_task: usize,
    rounds: usize,
) -> anyhow::Result<Vec<(String, f64)>> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    for _ in 0..rounds {
        for (i, (_, op)) in contenders.iter().enumerate() {
            times[i].push(run_once(op, tasks, ops_per_task).await?);
        }
    }
    let total = (tasks * ops_per_task) as f64;
    let rates: Vec<(String, f64)> = contenders
        .iter()
        .zip(times.iter_mut())
        .map(|((name, _), t)| {
            t.sort();
            (name.to_string(), total / t[t.len() / 2].as_secs_f64())
        })
        .collect();
    let base = rates.iter().find(|(n, _)| n == baseline).map(|(_, r)| *r).unwrap_or(f64::NAN);
    println!("\n## {title}\n{tasks} tasks x {ops_per_task} ops, median of {rounds} rounds\n");
    println!("| contender | ops/s | x {baseline} |\n| --- | ---: | ---: |");
    for (name, rate) in &rates {
        println!("| {name} | {rate:.0} | {:.2} |", rate / base);
    }
    Ok(rates)
}

/// The session value every data-session benchmark updates: a few fields, one of which
/// changes per update (the shape of a typical counter/onboarding session).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bench {
    /// Incremented by each update.
    pub count: u64,
    /// Carried along unchanged.
    pub name: String,
    /// Carried along unchanged.
    pub tags: Vec<String>,
}

impl Bench {
    /// A value with realistic unchanged payload.
    pub fn seeded() -> Self {
        Bench { count: 0, name: "Ada Lovelace".into(), tags: vec!["onboarded".into(), "en".into()] }
    }
}

/// Keys every data-session benchmark spreads its updates over.
pub const KEYS: usize = 1_024;

/// The key task `t` updates on its `i`-th operation: spread, and the same in every
/// benchmark so the contenders meet the same contention.
pub fn key_of(t: usize, i: usize) -> usize {
    (t * 7919 + i * 31) % KEYS
}

/// The [`KEYS`] per-chat session keys of namespace `ns`.
pub fn keys(ns: &str) -> Arc<Vec<bot_sessions::SessionKey>> {
    let ns = bot_sessions::Namespace::new(ns).expect("a valid bench namespace");
    Arc::new(
        (0..KEYS).map(|k| bot_sessions::SessionKey::new(ns.clone(), bot_sessions::Scope::Chat(k as i64))).collect(),
    )
}

/// `Sessions::update` bumping the count: the operation this project is measured by.
pub fn sessions_update(sessions: bot_sessions::Sessions<Bench>) -> Op {
    let keys = keys(sessions.namespace().as_str());
    op(move |t, i| {
        let (sessions, keys) = (sessions.clone(), keys.clone());
        async move {
            sessions
                .update(&keys[key_of(t, i)], |b| {
                    b.count += 1;
                    Ok::<_, bot_sessions::SessionError>(())
                })
                .await?;
            Ok(())
        }
    })
}

const TASKS: usize = 64;
const ROUNDS: usize = 7;
const POOL: usize = 16;
const SCHEMA: &str = "bot_sessions_bench";
/// Updates per task of one child process in the two-process comparison.
const CHILD_OPS: usize = 200;

fn base_url() -> String {
    std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn url() -> String {
    std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// What one raw key needs: the record hash and the index keys the script maintains.
struct RawKey {
    text: String,
    record: String,
    ns_keys: String,
    ns_exp: String,
    ns_own: String,
}

fn raw_op(store: &RedisStore, con: redis::aio::ConnectionManager) -> Op {
    let prefix = store.prefix().to_owned();
    let raw_keys: Arc<Vec<RawKey>> = Arc::new(
        keys("raw")
            .iter()
            .map(|k| RawKey {
                text: k.to_string(),
                record: store.record_key(k),
                ns_keys: format!("{prefix}{{ns:raw}}:keys"),
                ns_exp: format!("{prefix}{{ns:raw}}:exp"),
                ns_own: format!("{prefix}{{ns:raw}}:own"),
            })
            .collect(),
    );
    let namespaces = format!("{prefix}namespaces");
    let prefix = Arc::new(prefix);
    let script = Arc::new(redis::Script::new(WRITE_SCRIPT));
    op(move |t, i| {
        let (raw_keys, script, namespaces, prefix, mut con) =
            (raw_keys.clone(), script.clone(), namespaces.clone(), prefix.clone(), con.clone());
        async move {
            let k = &raw_keys[key_of(t, i)];
            loop {
                let now = Timestamp::now().as_millis();
                let (value, meta): (Option<Vec<u8>>, Option<String>) =
                    redis::cmd("HMGET").arg(&k.record).arg("value").arg("meta").query_async(&mut con).await?;
                // `meta` is `version schema created updated expires`.
                let version: Option<u64> = meta.and_then(|m| m.split(' ').next().and_then(|v| v.parse().ok()));
                let mut v: Bench = match &value {
                    Some(bytes) => serde_json::from_slice(bytes)?,
                    None => Bench::seeded(),
                };
                v.count += 1;
                let bytes = serde_json::to_vec(&v)?;
                let (mode, expected) = match version {
                    Some(n) => ("v", n),
                    None => ("n", 0),
                };
                let written: i64 = script
                    .key(&k.record)
                    .key(&k.ns_keys)
                    .key(&k.ns_exp)
                    .key(&k.record)
                    .key(&namespaces)
                    .key(&k.ns_own)
                    .arg(&k.text)
                    .arg("raw")
                    .arg(mode)
                    .arg(expected)
                    .arg(bytes)
                    .arg(1)
                    .arg(now)
                    .arg("")
                    .arg("")
                    .arg("0")
                    // The writer's version, the owner (none), whether the key names its
                    // user, the prefix.
                    .arg(bot_sessions::new_version())
                    .arg("-")
                    .arg("0")
                    .arg(prefix.as_str())
                    .invoke_async(&mut con)
                    .await?;
                if written > 0 {
                    return Ok(());
                }
            }
        }
    })
}

struct Raw {
    clients: Vec<(Client, Statement, Statement, Statement)>,
    keys: Vec<String>,
}

async fn raw_op_pg() -> anyhow::Result<Op> {
    // The same table layout as the store's, in a table of its own.
    let _ = PostgresStore::connect_with(&url(), PostgresConfig::default().schema(SCHEMA).table("raw")).await?;
    let table = format!("{SCHEMA}.raw");
    let mut clients = Vec::new();
    for _ in 0..POOL {
        let (client, conn) = tokio_postgres::connect(&url(), NoTls).await?;
        tokio::spawn(conn);
        let load = client
            .prepare(&format!(
                "SELECT value, version FROM {table} WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)"
            ))
            .await?;
        let update = client
            .prepare(&format!(
                "UPDATE {table} SET value = $2, version = version + 1, schema_version = 1, updated_at = $3 \
                 WHERE key = $1 AND version = $4 AND (expires_at IS NULL OR expires_at > $3)"
            ))
            .await?;
        let insert = client
            .prepare(&format!(
                "INSERT INTO {table} (key, namespace, value, version, schema_version, created_at, updated_at) \
                 VALUES ($1, 'raw', $2, 1, 1, $3, $3) ON CONFLICT (key) DO NOTHING"
            ))
            .await?;
        clients.push((client, load, update, insert));
    }
    let keys = keys("raw").iter().map(|k| k.to_string()).collect();
    let raw = Arc::new(Raw { clients, keys });
    Ok(op(move |t, i| {
        let raw = raw.clone();
        async move {
            let (client, load, update, insert) = &raw.clients[t % POOL];
            let key = &raw.keys[key_of(t, i)];
            loop {
                let now = Timestamp::now().as_millis();
                let row = client.query_opt(load, &[key, &now]).await?;
                let (mut v, version): (Bench, Option<i64>) = match &row {
                    Some(r) => (serde_json::from_slice(r.get::<_, &[u8]>(0))?, Some(r.get(1))),
                    None => (Bench::seeded(), None),
                };
                v.count += 1;
                let bytes = serde_json::to_vec(&v)?;
                let n = match version {
                    Some(ver) => client.execute(update, &[key, &bytes, &now, &ver]).await?,
                    None => client.execute(insert, &[key, &bytes, &now]).await?,
                };
                if n == 1 {
                    return Ok(());
                }
            }
        }
    }))
}

fn cached(store: DynStore, ns: &str) -> anyhow::Result<Sessions<Bench>> {
    Ok(Sessions::builder_with_initial(store, Bench::seeded).namespace(ns).near_cache(CacheConfig::default()).build()?)
}

fn plain(store: DynStore, ns: &str) -> anyhow::Result<Sessions<Bench>> {
    Ok(Sessions::builder_with_initial(store, Bench::seeded).namespace(ns).build()?)
}

async fn redis_store() -> anyhow::Result<RedisStore> {
    Ok(RedisStore::connect(&format!("{}/0?prefix=bsbench:", base_url())).await?)
}

async fn pg_store() -> anyhow::Result<PostgresStore> {
    Ok(PostgresStore::connect_with(&url(), PostgresConfig::default().schema(SCHEMA).pool_size(POOL)).await?)
}

async fn store_of(backend: &str) -> anyhow::Result<DynStore> {
    Ok(match backend {
        "redis" => Arc::new(redis_store().await?),
        _ => Arc::new(pg_store().await?),
    })
}

/// A child of the two-process comparison: `TASKS` tasks x `CHILD_OPS` updates of the
/// shared keys of namespace `ns`.
async fn child(backend: &str, ns: &str, with_cache: bool) -> anyhow::Result<()> {
    let store = store_of(backend).await?;
    let sessions = if with_cache { cached(store, ns)? } else { plain(store, ns)? };
    run_once(&sessions_update(sessions.clone()), TASKS, CHILD_OPS).await?;
    if let Some(c) = sessions.near_cache() {
        let s = c.stats();
        eprintln!("child {backend}: cache hits {} misses {}", s.hits, s.misses);
    }
    Ok(())
}

/// Two children at once on the same keys; returns the wall time and checks the count.
async fn two_processes(backend: &str, with_cache: bool) -> anyhow::Result<f64> {
    let ns = format!("two-{}-{:08x}", if with_cache { "c" } else { "n" }, rand_u32());
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let spawn = || {
        std::process::Command::new(&exe)
            .args(["--child", backend, &ns, if with_cache { "cache" } else { "none" }])
            .spawn()
    };
    let (mut a, mut b) = (spawn()?, spawn()?);
    let (ra, rb) = (a.wait()?, b.wait()?);
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(ra.success() && rb.success(), "a child failed");
    let sessions = plain(store_of(backend).await?, &ns)?;
    let mut sum = 0;
    for k in keys(&ns).iter() {
        sum += sessions.get(k).await?.map_or(0, |b| b.count);
    }
    let expected = (2 * TASKS * CHILD_OPS) as u64;
    anyhow::ensure!(sum == expected, "{backend}: counted {sum}, expected {expected}");
    Ok(secs)
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
        ^ std::process::id()
}

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split(' ').nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

/// Hit rate and memory of the cache at 10^5 live sessions over the memory store.
async fn cache_at_scale() -> anyhow::Result<()> {
    const LIVE: i64 = 100_000;
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let ns = Namespace::new("scale")?;
    let keys: Vec<SessionKey> = (0..LIVE).map(|i| SessionKey::new(ns.clone(), Scope::Chat(i))).collect();
    let uncached = plain(store.clone(), "scale")?;
    for k in &keys {
        uncached
            .update(k, |b| {
                b.count += 1;
                Ok::<_, SessionError>(())
            })
            .await?;
    }
    let cache = NearCache::new(store.clone(), CacheConfig::default())?;
    let before = rss();
    for k in &keys {
        cache.load(k, Timestamp::now()).await?;
    }
    let grown = rss().saturating_sub(before);
    let stats = cache.stats();
    println!("\n## Near cache at {LIVE} live sessions (memory store behind it)\n");
    println!("| entries | weight estimate (bytes) | RSS grown filling it (bytes) | per entry (RSS) |");
    println!("| ---: | ---: | ---: | ---: |");
    println!("| {} | {} | {} | {} |", stats.entries, stats.bytes, grown, grown / stats.entries.max(1));
    // Hit rate: updates of keys drawn uniformly from the live ones, one process.
    let sessions = Sessions::builder_with_initial(Arc::new(cache.clone()) as DynStore, Bench::seeded)
        .namespace("scale")
        .build()?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..LIVE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = &keys[(x % LIVE as u64) as usize];
        sessions
            .update(k, |b| {
                b.count += 1;
                Ok::<_, SessionError>(())
            })
            .await?;
    }
    let s = cache.stats();
    println!(
        "\nuniform updates over {LIVE} keys, default bounds ({} entries, {} MiB): hit rate {:.3}",
        CacheConfig::default().entries(),
        CacheConfig::default().bytes() >> 20,
        s.hit_rate()
    );
    let small = NearCache::new(store.clone(), CacheConfig::default().max_entries(10_000))?;
    let sessions = Sessions::builder_with_initial(Arc::new(small.clone()) as DynStore, Bench::seeded)
        .namespace("scale")
        .build()?;
    for _ in 0..2 * LIVE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 80 % of updates on 10 % of the keys: chats that are active now.
        let i = if x % 10 < 8 { (x >> 8) % (LIVE as u64 / 10) } else { (x >> 8) % LIVE as u64 };
        sessions
            .update(&keys[i as usize], |b| {
                b.count += 1;
                Ok::<_, SessionError>(())
            })
            .await?;
    }
    let s = small.stats();
    println!(
        "80 % of updates on 10 % of {LIVE} keys, cache of 10 000 entries: hit rate {:.3}, {} entries, {} bytes",
        s.hit_rate(),
        s.entries,
        s.bytes
    );
    Ok(())
}

/// The session of the memory comparison: `{"n":1}` is 7 bytes of JSON.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Small {
    n: u64,
}

/// The key texts of the memory comparison: one session per user in a chat.
fn mem_key(ns: &Namespace, i: i64) -> SessionKey {
    SessionKey::new(ns.clone(), Scope::ChatUser { chat: -100_000 - (i % 1000), user: i })
}

/// A child of the memory comparison: fills `n` sessions into `what` (`store` or `raw`)
/// and prints the RSS it grew by.
async fn mem_child(what: &str, n: i64) -> anyhow::Result<()> {
    let ns = Namespace::new("mem")?;
    let before = rss();
    let grown = match what {
        "store" => {
            let sessions = Sessions::<Small>::builder(MemoryStore::without_sweeper()).namespace("mem").build()?;
            for i in 0..n {
                sessions
                    .update(&mem_key(&ns, i), |c| {
                        c.n = 1;
                        Ok::<_, SessionError>(())
                    })
                    .await?;
            }
            let grown = rss().saturating_sub(before);
            std::hint::black_box(&sessions);
            grown
        }
        _ => {
            let mut map: std::collections::HashMap<String, Vec<u8>> = std::collections::HashMap::new();
            for i in 0..n {
                map.insert(mem_key(&ns, i).to_string(), br#"{"n":1}"#.to_vec());
            }
            let grown = rss().saturating_sub(before);
            std::hint::black_box(&map);
            grown
        }
    };
    println!("{grown}");
    Ok(())
}

fn mem_run(what: &str, n: i64) -> anyhow::Result<f64> {
    let out =
        std::process::Command::new(std::env::current_exe()?).args(["--mem-child", what, &n.to_string()]).output()?;
    anyhow::ensure!(out.status.success(), "memory child failed: {}", String::from_utf8_lossy(&out.stderr));
    let grown: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Ok(grown / n as f64)
}

/// The dashmap + JSON raw baseline of the memory bin: clone out, decode, bump, encode,
/// compare-and-set back.
fn raw_map_op() -> Op {
    #[derive(Clone)]
    struct Versioned(u64, Vec<u8>);
    let map: Arc<dashmap::DashMap<String, Versioned>> = Arc::default();
    op(move |t, i| {
        let map = map.clone();
        async move {
            let k = format!("bench/chat:{}", key_of(t, i));
            loop {
                let cur = map.get(&k).map(|e| e.clone());
                let mut v: Bench = match &cur {
                    Some(c) => serde_json::from_slice(&c.1)?,
                    None => Bench::seeded(),
                };
                v.count += 1;
                let next = serde_json::to_vec(&v)?;
                let mut e = map.entry(k.clone()).or_insert(Versioned(0, Vec::new()));
                if e.0 == cur.as_ref().map_or(0, |v| v.0) {
                    *e = Versioned(e.0 + 1, next);
                    return Ok(());
                }
            }
        }
    })
}

async fn memory_vs_raw() -> anyhow::Result<()> {
    let contenders = [
        ("raw dashmap + JSON", raw_map_op()),
        ("bot-sessions/memory", sessions_update(plain(Arc::new(MemoryStore::new()), "bench")?)),
    ];
    compare("Memory store update vs raw map, 64 tasks", &contenders, "raw dashmap + JSON", TASKS, 4_000, ROUNDS)
        .await?;
    println!("\n## Memory per live session, 7-byte value, RSS growth of a fresh process\n");
    println!(
        "| sessions | memory store (B/session) | raw HashMap<String, Vec<u8>> (B/session) | ratio |\n| ---: | ---: | ---: | ---: |"
    );
    for n in [10_000, 1_000_000] {
        let store = mem_run("store", n)?;
        let raw = mem_run("raw", n)?;
        println!("| {n} | {store:.0} | {raw:.0} | {:.2} |", store / raw);
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2], &args[3], args[4] == "cache").await;
    }
    if args.get(1).map(String::as_str) == Some("--mem-child") {
        return mem_child(&args[2], args[3].parse()?).await;
    }
    let only = args.get(1).cloned().unwrap_or_default();

    if only.is_empty() || only == "redis" {
        let store = redis_store().await?;
        let client = redis::Client::open(format!("{}/0", base_url()))?;
        let mut con = redis::aio::ConnectionManager::new(client).await?;
        let old: Vec<String> = redis::cmd("KEYS").arg("bsbench:*").query_async(&mut con).await?;
        for chunk in old.chunks(500) {
            let () = redis::cmd("DEL").arg(chunk).query_async(&mut con).await?;
        }
        let dyn_store: DynStore = Arc::new(store.clone());
        let contenders = [
            ("raw redis: HMGET + EVALSHA CAS script", raw_op(&store, con)),
            ("bot-sessions/redis (no cache)", sessions_update(plain(dyn_store.clone(), "bench")?)),
            ("bot-sessions/redis+cache", sessions_update(cached(dyn_store.clone(), "cached")?)),
        ];
        compare(
            "Redis update at 64 tasks, one process",
            &contenders,
            "raw redis: HMGET + EVALSHA CAS script",
            TASKS,
            400,
            ROUNDS,
        )
        .await?;
    }
    if only.is_empty() || only == "postgres" {
        let store: DynStore = Arc::new(pg_store().await?);
        let contenders = [
            ("raw tokio-postgres: SELECT + UPDATE WHERE version", raw_op_pg().await?),
            ("bot-sessions/postgres (no cache)", sessions_update(plain(store.clone(), "bench")?)),
            ("bot-sessions/postgres+cache", sessions_update(cached(store.clone(), "cached")?)),
        ];
        compare(
            "PostgreSQL update at 64 tasks, one process",
            &contenders,
            "raw tokio-postgres: SELECT + UPDATE WHERE version",
            TASKS,
            100,
            ROUNDS,
        )
        .await?;
    }
    if only.is_empty() || only == "two" {
        println!("\n## Two processes x {TASKS} tasks x {CHILD_OPS} updates on the same {KEYS} keys (counts checked)\n");
        println!("| backend | no cache (s) | cache (s) | cache / no cache time |\n| --- | ---: | ---: | ---: |");
        for backend in ["redis", "postgres"] {
            let (mut none, mut with) = (Vec::new(), Vec::new());
            for _ in 0..5 {
                none.push(two_processes(backend, false).await?);
                with.push(two_processes(backend, true).await?);
            }
            none.sort_by(f64::total_cmp);
            with.sort_by(f64::total_cmp);
            println!("| {backend} | {:.2} | {:.2} | {:.2} |", none[2], with[2], with[2] / none[2]);
        }
    }
    if only.is_empty() || only == "scale" {
        cache_at_scale().await?;
    }
    if only.is_empty() || only == "memory" {
        memory_vs_raw().await?;
    }
    Ok(())
}
