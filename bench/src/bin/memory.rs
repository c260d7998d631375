//! The memory store and interactive clicks in detail (issue 25), with more rounds than
//! the report gives them; the subjects are the report's own
//! (`bot_sessions_bench::backends::memory`, `bot_sessions_bench::interactive`), so both
//! measure the same thing (all but the sketch of part 4, which the report does not run):
//!
//! 1. `update`: `bot-sessions/memory`, `raw/dashmap` and `teloxide/InMemStorage` at
//!    1, 8, 64 and 256 tasks, uniform and Zipf keys; the median of several interleaved
//!    rounds, ours against raw and against teloxide. Lost updates are counted.
//! 2. `click`: interactive clicks on memory (signed ids) against `Sessions::update` on
//!    the same store, 64 tasks.
//! 3. `memory`: memory per live session at 10^4 (data, interactive), as the report
//!    measures it (child processes).
//! 4. `sketch`: a design the library does not have (`bot_sessions_bench::sketch`:
//!    typed values updated under the map shard's write lock), with and without
//!    serializing for the size limit, beside `bot-sessions/memory` and `teloxide/InMemStorage` at 1, 8 and
//!    64 tasks: what the one-task goal against teloxide would take.
//! 5. `spin SUBJECT TASKS uniform|zipf SECONDS`: one subject alone, for a profiler
//!    (`perf record -g -- target/release/memory spin bot-sessions/memory 1 uniform 10`).
//!
//! `cargo run --release --bin memory [update|click|memory|sketch]... [--rounds N]`
//! (default: the first three, 5 rounds).

use std::time::Duration;

use bot_sessions::DynStore;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions_bench::backends::{Env, memory};
use bot_sessions_bench::harness::{Mix, parse_rounds, round_start, run_cell, run_cell_from};
use bot_sessions_bench::keys::{Dist, KEYS};
use bot_sessions_bench::subject::Subject;

const CELL: Duration = Duration::from_millis(400);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs every subject `rounds` times at `tasks` tasks over `dist`, interleaved; returns
/// the median ops/s of each, and prints lost updates.
async fn compare(subjects: &[Subject], tasks: usize, dist: Dist, rounds: usize) -> Vec<f64> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    for r in 0..rounds {
        for (i, s) in subjects.iter().enumerate() {
            let before = (s.total)().await.ok();
            let sample = run_cell_from(&s.op, tasks, CELL, dist, KEYS, Mix::Update, round_start(r)).await;
            let after = (s.total)().await.ok();
            if let (Some(b), Some(a)) = (before, after)
                && a > 0
                && a - b != sample.acked_updates
            {
                eprintln!("  LOST UPDATES: {} acked {} applied {}", s.name, sample.acked_updates, a - b);
            }
            if sample.errors > 0 {
                eprintln!("  {} errors, first {:?}", s.name, sample.first_error);
            }
            rates[i].push(sample.ops_per_s());
        }
    }
    rates.into_iter().map(median).collect()
}

/// The report's memory subjects named `names`, in that order (an error for a name that
/// is not one: the tables index them by position).
fn memory_subjects(names: &[&str]) -> anyhow::Result<Vec<Subject>> {
    let all = memory::subjects();
    names
        .iter()
        .map(|n| all.iter().find(|s| s.name == *n).cloned().ok_or_else(|| anyhow::anyhow!("no subject {n}")))
        .collect()
}

async fn update(rounds: usize) -> anyhow::Result<()> {
    let subjects = memory_subjects(&["bot-sessions/memory", "raw/dashmap", "teloxide/InMemStorage"])?;
    println!("| update | ours M/s | raw M/s | teloxide M/s | ours/raw | ours/teloxide |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for dist in [Dist::Uniform, Dist::Zipf] {
        for tasks in [1, 8, 64, 256] {
            let r = compare(&subjects, tasks, dist, rounds).await;
            println!(
                "| {} c={tasks} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                dist.label(),
                r[0] / 1e6,
                r[1] / 1e6,
                r[2] / 1e6,
                r[0] / r[1],
                r[0] / r[2]
            );
        }
    }
    Ok(())
}

async fn sketch(rounds: usize) -> anyhow::Result<()> {
    let mut subjects = memory_subjects(&["bot-sessions/memory", "teloxide/InMemStorage"])?;
    subjects.push(bot_sessions_bench::sketch::typed_entry(false));
    subjects.push(bot_sessions_bench::sketch::typed_entry(true));
    println!(
        "| update | ours M/s | teloxide M/s | sketch M/s | sketch+size M/s | ours/teloxide | sketch/teloxide | sketch+size/teloxide |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for dist in [Dist::Uniform, Dist::Zipf] {
        for tasks in [1, 8, 64] {
            let r = compare(&subjects, tasks, dist, rounds).await;
            println!(
                "| {} c={tasks} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                dist.label(),
                r[0] / 1e6,
                r[1] / 1e6,
                r[2] / 1e6,
                r[3] / 1e6,
                r[0] / r[1],
                r[2] / r[1],
                r[3] / r[1]
            );
        }
    }
    Ok(())
}

async fn click(rounds: usize) -> anyhow::Result<()> {
    let store: DynStore = std::sync::Arc::new(MemoryStore::new());
    let subjects = vec![
        bot_sessions_bench::interactive::clicks("click", "memory", store.clone(), true, 2_000).await?,
        bot_sessions_bench::interactive::data_sessions("memory", store)?,
    ];
    let r = compare(&subjects, 64, Dist::Uniform, rounds).await;
    println!(
        "| click c=64 | click {:.2} M/s | Sessions::update {:.2} M/s | {:.2} |",
        r[0] / 1e6,
        r[1] / 1e6,
        r[0] / r[1]
    );
    Ok(())
}

async fn memory_per_session() -> anyhow::Result<()> {
    let env = Env::from_env();
    for subject in ["bot-sessions/memory", "bot-sessions/memory interactive", "teloxide/InMemStorage"] {
        let b = bot_sessions_bench::child::memory_per_session(&env, subject, 10_000).await?;
        println!("| memory {subject} 10^4 | {b:.0} bytes/session |");
    }
    Ok(())
}

async fn spin(args: &[String]) -> anyhow::Result<()> {
    let [subject, tasks, dist, secs] = args else {
        anyhow::bail!("spin SUBJECT TASKS uniform|zipf SECONDS");
    };
    let dist = if dist == "zipf" { Dist::Zipf } else { Dist::Uniform };
    let duration = Duration::from_secs_f64(secs.parse()?);
    let s = if subject == "click" {
        let store: DynStore = std::sync::Arc::new(MemoryStore::new());
        bot_sessions_bench::interactive::clicks("click", "memory", store, true, 2_000).await?
    } else if subject == "baseline" {
        let store: DynStore = std::sync::Arc::new(MemoryStore::new());
        bot_sessions_bench::interactive::data_sessions("memory", store)?
    } else if subject == "noop" {
        Subject {
            name: "noop".into(),
            backend: "memory",
            role: bot_sessions_bench::subject::Role::Raw,
            op: bot_sessions_bench::subject::op(|_, _| async { Ok(()) }),
            total: bot_sessions_bench::subject::total(0, |_| async { Ok(0) }),
        }
    } else {
        let mut all: Vec<Subject> = memory::subjects()
            .into_iter()
            .chain([bot_sessions_bench::sketch::typed_entry(false), bot_sessions_bench::sketch::typed_entry(true)])
            .collect();
        match all.iter().position(|s| s.name == *subject) {
            Some(i) => all.swap_remove(i),
            None => {
                let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
                anyhow::bail!("no subject {subject}: one of click, baseline, noop, {}", names.join(", "));
            }
        }
    };
    let sample = run_cell(&s.op, tasks.parse()?, duration, dist, KEYS, Mix::Update).await;
    println!("{subject}: {:.2} M/s, {} ops, {} errors", sample.ops_per_s() / 1e6, sample.ops, sample.errors);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return bot_sessions_bench::child::main(&args[1..]).await;
    }
    if args.first().map(String::as_str) == Some("sizes") {
        let sessions =
            bot_sessions::Sessions::builder_with_initial(MemoryStore::new(), bot_sessions_bench::Bench::seeded)
                .namespace("bench")
                .build()?;
        let key = bot_sessions_bench::backends::session_keys("bench")[0].clone();
        let fut = sessions.update(&key, |b| {
            b.count += 1;
            Ok::<_, bot_sessions::SessionError>(())
        });
        println!("update future: {} bytes", std::mem::size_of_val(&fut));
        drop(fut);
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("spin") {
        return spin(&args[1..]).await;
    }
    let mut rounds = 5;
    let mut parts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = parse_rounds(it.next().map(String::as_str))?,
            p @ ("update" | "click" | "memory" | "sketch") => parts.push(p.to_owned()),
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    if parts.is_empty() {
        parts = vec!["update".into(), "click".into(), "memory".into()];
    }
    eprintln!("load average {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    for p in parts {
        match p.as_str() {
            "update" => update(rounds).await?,
            "click" => click(rounds).await?,
            "sketch" => sketch(rounds).await?,
            _ => memory_per_session().await?,
        }
    }
    Ok(())
}
