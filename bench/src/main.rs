//! `cargo run --release [-- --quick]`: every workload on every backend this machine
//! reaches, this project beside the raw baselines and the peers, in one run; writes
//! `target/bench-report/report.md`, `report.json` and SVG plots.
//!
//! Options: `--quick` (the short run, for CI: about two minutes), `--out DIR` (another
//! report directory), `--only BACKEND` (that backend's cells only, no memory-per-session
//! rows: for working on one backend; the ratios stay within the run). Environment: `BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379`), `BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`). A backend that does not answer is
//! skipped and named in the report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bot_sessions::DynStore;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions_bench::backends::{self, Env};
use bot_sessions_bench::report::{self, Report, Row};
use bot_sessions_bench::subject::Role;
use bot_sessions_bench::workloads::{self, Plan};
use bot_sessions_bench::{child, expiry, interactive};

fn usage() -> &'static str {
    "usage: bot-sessions-bench [--quick] [--out DIR] [--only memory|sqlite|redis|postgres]"
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child::main(&args[1..]).await;
    }
    let mut quick = false;
    let mut only: Option<String> = None;
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("bench-report");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => out = PathBuf::from(it.next().ok_or_else(|| anyhow::anyhow!("--out needs a directory"))?),
            "--only" => only = Some(it.next().ok_or_else(|| anyhow::anyhow!("--only needs a backend"))?.clone()),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?}\n{}", usage()),
        }
    }
    let env = Env::from_env();
    std::fs::create_dir_all(&env.dir)?;
    let (redis, postgres) = (env.redis_up().await, env.postgres_up().await);
    let result = run(Plan::new(quick), &env, redis, postgres, &out, only.as_deref()).await;
    env.cleanup(redis, postgres).await;
    result
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, load average {} at the start", load.join(" "))
}

async fn run(
    plan: Plan,
    env: &Env,
    redis: bool,
    postgres: bool,
    out: &std::path::Path,
    only: Option<&str>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let machine = machine();
    eprintln!("bench: {} run, {machine}", if plan.quick { "quick" } else { "full" });
    let mut status: Vec<(String, String)> =
        vec![("memory".into(), "in process".into()), ("sqlite".into(), format!("files in {}", env.dir.display()))];
    status.push((
        "redis".into(),
        if redis {
            format!("{} (prefix bsbench-{}-*)", env.redis_url, env.run)
        } else {
            format!("NOT REACHED at {}: skipped", env.redis_url)
        },
    ));
    status.push((
        "postgres".into(),
        if postgres {
            format!("{} (schema {})", redact(&env.postgres_url), env.pg_schema())
        } else {
            format!("NOT REACHED at {}: skipped", redact(&env.postgres_url))
        },
    ));
    let mut reachable = vec!["memory", "sqlite"];
    if redis {
        reachable.push("redis");
    }
    if postgres {
        reachable.push("postgres");
    }
    if let Some(only) = only {
        anyhow::ensure!(reachable.contains(&only), "--only {only}: not a reachable backend ({reachable:?})");
        reachable.retain(|b| *b == only);
    }
    let mut rows: Vec<Row> = Vec::new();

    for backend in &reachable {
        eprintln!("bench: update and read-mostly on {backend}");
        match backends::build(env, backend, "update").await {
            Ok(subjects) => rows.extend(workloads::update(&plan, &subjects).await),
            Err(e) => fail(&mut status, backend, "update", &e),
        }
        match backends::build(env, backend, "read").await {
            Ok(subjects) => rows.extend(workloads::read_mostly(&plan, &subjects).await),
            Err(e) => fail(&mut status, backend, "read-mostly", &e),
        }
    }

    eprintln!("bench: interactive clicks");
    let live = if plan.quick { 2_000 } else { 10_000 };
    for backend in &reachable {
        match click_subjects(env, backend, live).await {
            Ok(subjects) => rows.extend(workloads::clicks(&plan, &subjects).await),
            Err(e) => fail(&mut status, backend, "click", &e),
        }
    }

    eprintln!("bench: memory per live session (child processes)");
    for n in [10_000u64, 100_000, 1_000_000].into_iter().filter(|_| only.is_none_or(|b| b == "memory")) {
        for (subject, role) in child::MEMORY_SUBJECTS {
            let mut row = Row::new("memory", subject, "memory", *role, 1);
            row.sessions = Some(n);
            match child::memory_per_session(env, subject, n).await {
                Ok(b) => row.bytes_per_session = Some(b),
                Err(e) => row.note = format!("failed: {e:#}"),
            }
            eprintln!(
                "  memory {subject:<34} {n:>8} sessions: {:>8.0} bytes/session",
                row.bytes_per_session.unwrap_or(f64::NAN)
            );
            rows.push(row);
        }
    }

    eprintln!("bench: expiry");
    rows.extend(expiry_rows(&plan, env, &reachable).await);

    let tasks = if plan.quick { 8 } else { 32 };
    for backend in reachable.iter().filter(|b| **b != "memory") {
        eprintln!("bench: two-process update on {backend}");
        match backends::build(env, backend, "tp").await {
            Ok(subjects) => rows.extend(workloads::two_process(&plan, env, backend, &subjects, tasks).await),
            Err(e) => fail(&mut status, backend, "two-process", &e),
        }
    }

    report::fill_ratios(&mut rows);
    let report = Report {
        mode: if plan.quick { "quick" } else { "full" }.into(),
        started_unix,
        seconds: started.elapsed().as_secs_f64(),
        machine,
        backends: status,
        rows,
    };
    let plots = report::write(out, &report)?;
    eprintln!(
        "bench: done in {:.0} s: {} rows, {} plots in {}",
        report.seconds,
        report.rows.len(),
        plots.len(),
        out.display()
    );
    // The run proves something only if it ran: a workload that could not start, or a
    // bot-sessions row with errors or lost updates, fails it; so does a backend not
    // reached when `CI` is set (CI starts both servers and must measure them).
    let mut problems: Vec<String> = report
        .rows
        .iter()
        .filter(|r| r.role == Role::Ours && r.note.starts_with("failed"))
        .map(|r| format!("{} {} failed: {}", r.workload, r.subject, r.note))
        .collect();
    problems.extend(
        report
            .rows
            .iter()
            .filter(|r| r.role == Role::Ours && (r.errors > 0 || r.lost_updates.is_some_and(|l| l != 0)))
            .map(|r| {
                format!(
                    "{} {} c={}: {} errors, lost {:?} {}",
                    r.workload, r.subject, r.concurrency, r.errors, r.lost_updates, r.note
                )
            }),
    );
    problems.extend(
        report.backends.iter().filter(|(_, s)| s.contains("could not start")).map(|(b, s)| format!("{b}: {s}")),
    );
    if std::env::var_os("CI").is_some() {
        problems.extend(
            report.backends.iter().filter(|(_, s)| s.starts_with("NOT REACHED")).map(|(b, s)| format!("{b}: {s}")),
        );
    }
    if !problems.is_empty() {
        anyhow::bail!("the run found problems (the report is written):\n  {}", problems.join("\n  "));
    }
    Ok(())
}

fn fail(status: &mut [(String, String)], backend: &str, workload: &str, e: &anyhow::Error) {
    eprintln!("bench: {workload} on {backend} could not start: {e:#}");
    if let Some(s) = status.iter_mut().find(|(b, _)| b == backend) {
        s.1.push_str(&format!("; {workload} could not start: {e:#}"));
    }
}

/// The password of a URL, if any, never reaches the report.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if url[s + 3..at].contains(':') => {
            let user_end = url[s + 3..at].find(':').map_or(at, |i| s + 3 + i);
            format!("{}:***{}", &url[..user_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

async fn store_for(env: &Env, backend: &str, instance: &str) -> anyhow::Result<DynStore> {
    Ok(match backend {
        "memory" => Arc::new(MemoryStore::new()),
        "sqlite" => {
            let dir = env.dir.join(instance);
            std::fs::create_dir_all(&dir)?;
            Arc::new(bot_sessions::store::sqlite::SqliteStore::builder().open(dir.join("ours.db")).await?)
        }
        "redis" => Arc::new(
            bot_sessions::store::redis::RedisStore::connect(&format!(
                "{}/0?prefix={}",
                env.redis_url,
                env.redis_prefix(instance)
            ))
            .await?,
        ),
        "postgres" => Arc::new(
            bot_sessions::store::postgres::PostgresStore::connect_with(
                &env.postgres_url,
                bot_sessions::store::postgres::PostgresConfig::default()
                    .schema(env.pg_schema())
                    .table(format!("sessions_{instance}"))
                    .pool_size(backends::postgres::POOL),
            )
            .await?,
        ),
        other => anyhow::bail!("unknown backend {other}"),
    })
}

async fn click_subjects(
    env: &Env,
    backend: &'static str,
    live: usize,
) -> anyhow::Result<Vec<bot_sessions_bench::subject::Subject>> {
    let store = store_for(env, backend, "click").await?;
    let mut subjects = vec![
        interactive::clicks(&format!("bot-sessions/{backend} click"), backend, store.clone(), true, live).await?,
        interactive::data_sessions(backend, store)?,
    ];
    if backend == "memory" {
        let unsigned = store_for(env, backend, "click").await?;
        subjects.insert(
            1,
            interactive::clicks("bot-sessions/memory click (unsigned ids)", backend, unsigned, false, live).await?,
        );
    }
    Ok(subjects)
}

async fn expiry_rows(plan: &Plan, env: &Env, reachable: &[&str]) -> Vec<Row> {
    let mut rows = Vec::new();
    for backend in reachable {
        let sizes: &[u64] = match (*backend, plan.quick) {
            ("memory", _) => &[10_000, 1_000_000],
            ("sqlite", true) => &[10_000, 100_000],
            ("sqlite", false) => &[10_000, 1_000_000],
            (_, true) => &[10_000],
            (_, false) => &[10_000, 100_000],
        };
        for &n in sizes {
            let instance = format!("expiry{n}");
            let result = async {
                let store: DynStore = match *backend {
                    "memory" => Arc::new(MemoryStore::without_sweeper()),
                    _ => store_for(env, backend, &instance).await?,
                };
                expiry::ours(&format!("bot-sessions/{backend}"), backend, store, n).await
            }
            .await;
            push_expiry(&mut rows, backend, n, result);
            if *backend == "sqlite" {
                let path = env.dir.join(format!("tower-expiry-{n}.db"));
                push_expiry(&mut rows, backend, n, expiry::tower_sqlite(&path, n).await);
            }
        }
    }
    rows
}

fn push_expiry(rows: &mut Vec<Row>, backend: &str, n: u64, result: anyhow::Result<Row>) {
    let row = result.unwrap_or_else(|e| {
        let mut r = Row::new("expiry", "?", backend, bot_sessions_bench::subject::Role::Ours, 1);
        r.sessions = Some(n);
        r.note = format!("failed: {e:#}");
        r
    });
    eprintln!("  expiry {:<30} {:<8} {n:>8} sessions: {}", row.subject, row.backend, row.note);
    rows.push(row);
}
