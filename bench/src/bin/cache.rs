//! The near cache (issue 13) in detail, with more rounds than the report gives it; the
//! subjects are the report's own (`bot_sessions_bench::backends`), so both measure
//! the same thing:
//!
//! 1. `update`: Redis, PostgreSQL and the memory store at 64 tasks in one process: the
//!    raw two-step baseline, `Sessions::update` without a cache and, on Redis and
//!    PostgreSQL, with one (`+cache`); the median of several interleaved rounds, and
//!    ratios against the raw baseline. Lost updates are counted.
//! 2. `two`: two processes updating the same keys (the report's two-process workload,
//!    64 tasks each), with and without the cache, rounds interleaved; exact counts.
//! 3. `scale`: hit rate and the cache's memory at 10^5 live sessions (weight estimate,
//!    and the process RSS grown by filling the cache).
//! 4. `memory`: memory per live session in the memory store at 10^4 and 10^6 sessions
//!    with a 7-byte value (`{"n":1}`), each measured as the RSS growth of a fresh child
//!    process, against a `HashMap<String, Vec<u8>>` holding the same key texts and
//!    values.
//!
//! `cargo run --release --bin cache [update|two|scale|memory]... [--rounds N] [--tasks N]`
//! (default: all, 5 rounds, 64 tasks in `update`). Environment as for the report (`BENCH_REDIS_URL`,
//! `BENCH_POSTGRES_URL`); a backend that does not answer is skipped.

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::store::near_cache::{CacheConfig, NearCache};
use bot_sessions::{DynStore, Namespace, Scope, SessionError, SessionKey, Sessions, Store, Timestamp};
use bot_sessions_bench::Bench;
use bot_sessions_bench::backends::{self, Env};
use bot_sessions_bench::harness::{Cpu, Mix, cpu_seconds, parse_rounds, round_start, run_cell_from};
use bot_sessions_bench::keys::{Dist, KEYS};
use bot_sessions_bench::subject::{Role, Subject};
use bot_sessions_bench::workloads::{self, Plan};

const TASKS: usize = 64;
const CELL: Duration = Duration::from_secs(1);

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs every subject `rounds` times at [`TASKS`] tasks, interleaved; prints the
/// median ops/s, the ratio to the raw subject, and lost updates.
async fn compare(
    title: &str,
    subjects: &[Subject],
    rounds: usize,
    tasks: usize,
    server: Option<&ServerCpu>,
) -> anyhow::Result<()> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut lost = vec![0i64; subjects.len()];
    let mut errors = vec![0u64; subjects.len()];
    // CPU seconds (this process, the server) and operations, summed over the rounds.
    let mut cpu = vec![(0.0f64, 0.0f64, 0u64); subjects.len()];
    for r in 0..rounds {
        for (i, s) in subjects.iter().enumerate() {
            let before = (s.total)().await?;
            let (own0, srv0) = (cpu_seconds(Cpu::Own), server_cpu(server).await);
            let sample = run_cell_from(&s.op, tasks, CELL, Dist::Uniform, KEYS, Mix::Update, round_start(r)).await;
            let (own1, srv1) = (cpu_seconds(Cpu::Own), server_cpu(server).await);
            let after = (s.total)().await?;
            lost[i] += sample.acked_updates as i64 - after.saturating_sub(before) as i64;
            errors[i] += sample.errors;
            rates[i].push(sample.ops_per_s());
            cpu[i].0 += own1 - own0;
            cpu[i].1 += srv1 - srv0;
            cpu[i].2 += sample.ops;
        }
    }
    let medians: Vec<f64> = rates
        .iter_mut()
        .map(|r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    let raw = subjects.iter().position(|s| s.role == Role::Raw).map_or(f64::NAN, |i| medians[i]);
    println!("\n## {title}\n");
    println!(
        "{tasks} tasks, uniform keys over {KEYS}, {rounds} rounds of {CELL:?} interleaved, median; load average {}\n",
        load_average()
    );
    println!(
        "CPU per operation: this process's (every thread), and the server's where it reports it (Redis: INFO used_cpu_*); a cost that load on the machine does not change the way it changes ops/s.\n"
    );
    println!("| subject | ops/s | x raw | lost | errors | client CPU us/op | server CPU us/op |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, s) in subjects.iter().enumerate() {
        let (own, srv, ops) = cpu[i];
        let per = |secs: f64| secs * 1e6 / ops.max(1) as f64;
        let srv = if server.is_some() { format!("{:.1}", per(srv)) } else { "-".into() };
        println!(
            "| {} | {:.0} | {:.2} | {} | {} | {:.1} | {srv} |",
            s.name,
            medians[i],
            medians[i] / raw,
            lost[i],
            errors[i],
            per(own)
        );
    }
    Ok(())
}

/// A Redis server to read its CPU time from.
struct ServerCpu(redis::aio::MultiplexedConnection);

/// The server's CPU seconds so far (`used_cpu_sys + used_cpu_user`), or 0 without one.
async fn server_cpu(server: Option<&ServerCpu>) -> f64 {
    let Some(ServerCpu(con)) = server else { return 0.0 };
    let info: String = redis::cmd("INFO").arg("cpu").query_async(&mut con.clone()).await.unwrap_or_default();
    info.lines()
        .filter(|l| l.starts_with("used_cpu_sys:") || l.starts_with("used_cpu_user:"))
        .filter_map(|l| l.split_once(':').and_then(|(_, v)| v.trim().parse::<f64>().ok()))
        .sum()
}

/// The subjects of `backend` on `instance` that are this project's or the raw one.
async fn ours_and_raw(env: &Env, backend: &str, instance: &str) -> anyhow::Result<Vec<Subject>> {
    let all = backends::build(env, backend, instance).await?;
    Ok(all.into_iter().filter(|s| s.role != Role::Peer).collect())
}

async fn update(env: &Env, redis: bool, postgres: bool, rounds: usize, tasks: usize) -> anyhow::Result<()> {
    if redis {
        let client = redis::Client::open(env.redis_url.as_str())?;
        let server = ServerCpu(client.get_multiplexed_async_connection().await?);
        compare("Redis update", &ours_and_raw(env, "redis", "update").await?, rounds, tasks, Some(&server)).await?;
    }
    if postgres {
        let mut subjects = ours_and_raw(env, "postgres", "update").await?;
        // The same with every compare-and-set a statement of its own (one commit each).
        let unbatched = backends::postgres::store(env, "update_single", false).await?;
        let mut single = backends::ours_cached("postgres", Arc::new(unbatched))?;
        single.name.push_str(" (writes not batched)");
        subjects.push(single);
        compare("PostgreSQL update", &subjects, rounds, tasks, None).await?;
    }
    compare("Memory store update", &ours_and_raw(env, "memory", "update").await?, rounds, tasks, None).await
}

/// The report's two-process update at [`TASKS`] tasks per process, with and without
/// the cache, `rounds` times interleaved.
async fn two(env: &Env, redis: bool, postgres: bool, rounds: usize) -> anyhow::Result<()> {
    let plan = Plan { quick: false, cell: CELL, rounds: 1, warmup: Duration::ZERO, concurrency: &[TASKS] };
    println!("\n## Two processes x {TASKS} tasks on the same {} keys\n", bot_sessions_bench::keys::TWO_PROCESS_KEYS);
    println!("load average {}\n", load_average());
    println!("| backend | no cache (ops/s) | cache (ops/s) | cache / no cache | lost | errors |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for backend in [("redis", redis), ("postgres", postgres)].iter().filter(|b| b.1).map(|b| b.0) {
        let subjects: Vec<Subject> =
            backends::build(env, backend, "tp").await?.into_iter().filter(|s| s.role == Role::Ours).collect();
        let (mut plain, mut cached, mut lost, mut errors) = (Vec::new(), Vec::new(), 0, 0);
        for _ in 0..rounds {
            for row in workloads::two_process(&plan, env, backend, &subjects, TASKS).await {
                anyhow::ensure!(!row.note.starts_with("failed"), "{}: {}", row.subject, row.note);
                lost += row.lost_updates.unwrap_or(i64::MAX).abs();
                errors += row.errors;
                if row.subject.ends_with("+cache") { &mut cached } else { &mut plain }.push(row.ops_per_s);
            }
        }
        plain.sort_by(f64::total_cmp);
        cached.sort_by(f64::total_cmp);
        let (p, c) = (plain[plain.len() / 2], cached[cached.len() / 2]);
        println!("| {backend} | {p:.0} | {c:.0} | {:.2} | {lost} | {errors} |", c / p);
    }
    Ok(())
}

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split(' ').nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn plain(store: DynStore, ns: &str) -> anyhow::Result<Sessions<Bench>> {
    Ok(Sessions::builder_with_initial(store, Bench::seeded).namespace(ns).build()?)
}

async fn bump(sessions: &Sessions<Bench>, key: &SessionKey) -> anyhow::Result<()> {
    sessions
        .update(key, |b| {
            b.count += 1;
            Ok::<_, SessionError>(())
        })
        .await?;
    Ok(())
}

/// Hit rate and memory of the cache at 10^5 live sessions over the memory store.
async fn scale() -> anyhow::Result<()> {
    const LIVE: i64 = 100_000;
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let ns = Namespace::new("scale")?;
    let keys: Vec<SessionKey> = (0..LIVE).map(|i| SessionKey::new(ns.clone(), Scope::Chat(i))).collect();
    let uncached = plain(store.clone(), "scale")?;
    for k in &keys {
        bump(&uncached, k).await?;
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
    let sessions = plain(Arc::new(cache.clone()), "scale")?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..LIVE {
        bump(&sessions, &keys[(next() % LIVE as u64) as usize]).await?;
    }
    let s = cache.stats();
    println!(
        "\nuniform updates over {LIVE} keys, default bounds ({} entries, {} MiB): hit rate {:.3}",
        CacheConfig::default().entries(),
        CacheConfig::default().bytes() >> 20,
        s.hit_rate()
    );
    let small = NearCache::new(store.clone(), CacheConfig::default().max_entries(10_000))?;
    let sessions = plain(Arc::new(small.clone()), "scale")?;
    for _ in 0..2 * LIVE {
        let x = next();
        // 80 % of updates on 10 % of the keys: chats that are active now.
        let i = if x % 10 < 8 { (x >> 8) % (LIVE as u64 / 10) } else { (x >> 8) % LIVE as u64 };
        bump(&sessions, &keys[i as usize]).await?;
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

fn memory() -> anyhow::Result<()> {
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        // The report's children (the two-process update) are this binary too.
        Some("--child") => return bot_sessions_bench::child::main(&args[1..]).await,
        Some("--mem-child") => return mem_child(&args[1], args[2].parse()?).await,
        _ => {}
    }
    let mut parts: Vec<String> = Vec::new();
    let mut rounds = 5;
    let mut tasks = TASKS;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = parse_rounds(it.next().map(String::as_str))?,
            "--tasks" => tasks = it.next().ok_or_else(|| anyhow::anyhow!("--tasks needs a number"))?.parse()?,
            "update" | "two" | "scale" | "memory" => parts.push(a.clone()),
            other => {
                anyhow::bail!("unknown argument {other:?}: cache [update|two|scale|memory]... [--rounds N] [--tasks N]")
            }
        }
    }
    anyhow::ensure!(tasks > 0, "--tasks must be at least 1");
    let all = parts.is_empty();
    let wants = |p: &str| all || parts.iter().any(|x| x == p);
    let env = Env::from_env();
    std::fs::create_dir_all(&env.dir)?;
    let (redis, postgres) = (env.redis_up().await, env.postgres_up().await);
    for (name, up) in [("Redis", redis), ("PostgreSQL", postgres)] {
        if !up {
            eprintln!("cache: {name} not reached: skipped");
        }
    }
    let result = async {
        if wants("update") {
            update(&env, redis, postgres, rounds, tasks).await?;
        }
        if wants("two") {
            two(&env, redis, postgres, rounds).await?;
        }
        if wants("scale") {
            scale().await?;
        }
        if wants("memory") {
            memory()?;
        }
        anyhow::Ok(())
    }
    .await;
    env.cleanup(redis, postgres).await;
    result
}
