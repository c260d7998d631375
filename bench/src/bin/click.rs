//! Interactive clicks on memory in detail (issue 25: a click >= 0.6x `Sessions::update`).
//! The subjects are the report's own (`bot_sessions_bench::interactive`), so this
//! measures what the report's `click` section measures.
//!
//! 1. `compare [--rounds N]`: signed clicks, unsigned clicks and the baseline
//!    (`Sessions::update` of the same value) on memory, interleaved rounds at 1 and 64
//!    tasks; the median of each and the ratios to the baseline.
//! 2. `count click|unsigned|baseline N`: N operations one after another on a
//!    current-thread runtime, inside `measured` (never inlined), for callgrind:
//!    `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*'
//!    target/release/click count click 20000`, then divide by N.
//!
//! `cargo run --release --bin click [compare|count ..]` (default: `compare`, 5 rounds).

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::DynStore;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions_bench::harness::{Mix, parse_rounds, round_start, run_cell_from};
use bot_sessions_bench::interactive::{clicks, data_sessions};
use bot_sessions_bench::keys::{Dist, KEYS};
use bot_sessions_bench::subject::{Action, Subject};

const CELL: Duration = Duration::from_millis(300);
const LIVE: usize = 2_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn subject(name: &str) -> anyhow::Result<Subject> {
    let store: DynStore = Arc::new(MemoryStore::new());
    Ok(match name {
        "click" => clicks("click", "memory", store, true, LIVE).await?,
        "unsigned" => clicks("click (unsigned)", "memory", store, false, LIVE).await?,
        "baseline" => data_sessions("memory", store)?,
        other => anyhow::bail!("no subject {other}"),
    })
}

async fn compare(rounds: usize) -> anyhow::Result<()> {
    let subjects = [subject("click").await?, subject("unsigned").await?, subject("baseline").await?];
    println!("| tasks | click k/s | unsigned k/s | Sessions::update k/s | click/update | unsigned/update |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for tasks in [1, 64] {
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
        let mut p50: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
        for r in 0..rounds {
            for (i, s) in subjects.iter().enumerate() {
                let sample = run_cell_from(&s.op, tasks, CELL, Dist::Uniform, KEYS, Mix::Update, round_start(r)).await;
                if sample.errors > 0 {
                    eprintln!("  {}: {} errors, first {:?}", s.name, sample.errors, sample.first_error);
                }
                rates[i].push(sample.ops_per_s());
                p50[i].push(sample.percentile_us(0.5));
            }
        }
        let r: Vec<f64> = rates.into_iter().map(median).collect();
        let p: Vec<f64> = p50.into_iter().map(median).collect();
        println!(
            "| {tasks} | {:.0} (p50 {:.2} us) | {:.0} (p50 {:.2} us) | {:.0} (p50 {:.2} us) | {:.2} | {:.2} |",
            r[0] / 1e3,
            p[0],
            r[1] / 1e3,
            p[1],
            r[2] / 1e3,
            p[2],
            r[0] / r[2],
            r[1] / r[2]
        );
    }
    Ok(())
}

async fn ops(s: &Subject, n: usize) -> anyhow::Result<()> {
    for i in 0..n {
        (s.op)(Action::Update, i % KEYS).await?;
    }
    Ok(())
}

/// The part callgrind collects (a plain function: an async one's body is its future).
#[inline(never)]
fn measured(rt: &tokio::runtime::Runtime, s: &Subject, n: usize) -> anyhow::Result<()> {
    rt.block_on(ops(s, n))
}

fn count(name: &str, n: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let s = rt.block_on(subject(name))?;
    // Warm: every key clicked once, so the measured part sees the steady state.
    rt.block_on(ops(&s, KEYS))?;
    measured(&rt, &s, n)?;
    println!("{name}: {n} ops");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("count") => {
            let [_, name, n] = &args[..] else { anyhow::bail!("count click|unsigned|baseline N") };
            let n: usize = n.parse()?;
            count(name, n)
        }
        Some("sizes") => tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
            let store: DynStore = Arc::new(MemoryStore::new());
            let (manager, _) = bot_sessions_bench::interactive::manager(store, true)?;
            let ctx = bot_sessions_bench::interactive::opener();
            let fut = manager.route(&ctx);
            println!("route future: {} bytes", std::mem::size_of_val(&fut));
            drop(fut);
            Ok(())
        }),
        None | Some("compare") | Some("--rounds") => {
            let rounds = match args.iter().position(|a| a == "--rounds") {
                Some(i) => parse_rounds(args.get(i + 1).map(String::as_str))?,
                None => 5,
            };
            eprintln!("load average {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(compare(rounds))
        }
        Some(other) => anyhow::bail!("unknown argument {other:?}"),
    }
}
