//! The workloads, each producing report rows: the update at several concurrencies and
//! key skews, read-mostly, unread lazy sessions, interactive clicks, memory per live
//! session, the cost of purging expired sessions, and the update from two processes.

use std::time::{Duration, Instant};

use crate::backends::Env;
use crate::harness::{Cpu, Mix, Sample, WARMUP_ROUND, cpu_seconds, round_start, run_cell_from};
use crate::keys::{Dist, KEYS, TWO_PROCESS_KEYS};
use crate::report::Row;
use crate::subject::{Action, Subject};

/// How long and how often each cell runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// `--quick`.
    pub quick: bool,
    /// Time of one cell in one round.
    pub cell: Duration,
    /// Rounds (subjects interleaved within a round, so drift hits them alike).
    pub rounds: usize,
    /// Before a workload's first cell, each subject runs this long unmeasured (the
    /// first cell of a run would otherwise also measure page faults, the allocator
    /// growing and the CPU's clock rising, and only for the subject that runs first).
    pub warmup: Duration,
    /// Concurrencies of the update workload.
    pub concurrency: &'static [usize],
}

impl Plan {
    /// The short run (CI) or the full one. The quick run's cells are three rounds of
    /// 50 ms rather than one of 150 ms: the same time, but a burst of noise (another
    /// process, a slow phase of the machine) then falls on every subject's share of a
    /// cell instead of on one subject's whole cell.
    pub fn new(quick: bool) -> Self {
        if quick {
            Plan {
                quick,
                cell: Duration::from_millis(50),
                rounds: 3,
                warmup: Duration::from_millis(50),
                concurrency: &[1, 8, 64, 256],
            }
        } else {
            Plan {
                quick,
                cell: Duration::from_millis(800),
                rounds: 3,
                warmup: Duration::from_millis(200),
                concurrency: &[1, 8, 64, 256],
            }
        }
    }
}

fn row_of(workload: &str, s: &Subject, dist: Option<Dist>, concurrency: usize, sample: &Sample) -> Row {
    let mut row = Row::new(workload, &s.name, s.backend, s.role, concurrency);
    row.keys = dist.map(|d| d.label().to_owned());
    row.ops_per_s = sample.ops_per_s();
    row.p50_us = sample.percentile_us(0.50);
    row.p99_us = sample.percentile_us(0.99);
    row.errors = sample.errors;
    if let Some(e) = &sample.first_error {
        row.note = format!("first error: {}", e.chars().take(160).collect::<String>());
    }
    row
}

/// Runs `mix` over `subjects` for every (dist, concurrency), rounds interleaved, and
/// counts lost updates from each subject's total before and after its cells.
async fn cells(
    plan: &Plan,
    workload: &str,
    subjects: &[Subject],
    dists: &[Dist],
    concurrency: &[usize],
    mix: Mix,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut warm = false;
    for &dist in dists {
        for &c in concurrency {
            if !warm {
                // Its own stretch of draws, apart from every measured round's.
                for s in subjects {
                    run_cell_from(&s.op, c, plan.warmup, dist, KEYS, mix, round_start(WARMUP_ROUND)).await;
                }
                warm = true;
            }
            // Each subject's keys are its own: what the store holds before the first
            // round and after the last counts every round's updates.
            let mut before = Vec::with_capacity(subjects.len());
            for s in subjects {
                before.push((s.total)().await.ok());
            }
            let mut samples: Vec<Sample> = vec![Sample::default(); subjects.len()];
            for round in 0..plan.rounds {
                for (i, s) in subjects.iter().enumerate() {
                    samples[i].merge(run_cell_from(&s.op, c, plan.cell, dist, KEYS, mix, round_start(round)).await);
                }
            }
            let mut applied = Vec::with_capacity(subjects.len());
            for (s, before) in subjects.iter().zip(before) {
                let after = (s.total)().await.ok();
                applied.push(before.zip(after).map(|(b, a)| a.saturating_sub(b)));
            }
            for (i, s) in subjects.iter().enumerate() {
                let mut row = row_of(workload, s, Some(dist), c, &samples[i]);
                row.lost_updates = applied[i].map(|a| samples[i].acked_updates as i64 - a as i64);
                eprintln!(
                    "  {workload:<11} {:<30} {:<7} c={c:<3} {:>10.0} ops/s  p50 {:>8.1} us  p99 {:>9.1} us  lost {:?}{}",
                    s.name,
                    dist.label(),
                    row.ops_per_s,
                    row.p50_us,
                    row.p99_us,
                    row.lost_updates,
                    if row.errors > 0 { format!("  errors {}", row.errors) } else { String::new() }
                );
                rows.push(row);
            }
        }
    }
    rows
}

/// The update at every concurrency, uniform and Zipf-skewed keys. A subject with a
/// near cache (`+cache`) first updates every key once: the cache is for a process that
/// has handled its chats before, and the short cells of `--quick` would otherwise
/// measure little but its first misses.
pub async fn update(plan: &Plan, subjects: &[Subject]) -> Vec<Row> {
    for s in subjects.iter().filter(|s| s.name.ends_with("+cache")) {
        seed("update", s).await;
    }
    cells(plan, "update", subjects, &[Dist::Uniform, Dist::Zipf], plan.concurrency, Mix::Update).await
}

/// One update of every key of `s`, 16 at a time.
async fn seed(workload: &str, s: &Subject) {
    let mut set = tokio::task::JoinSet::new();
    for lane in 0..16 {
        let op = s.op.clone();
        set.spawn(async move {
            for k in (lane..KEYS).step_by(16) {
                op(Action::Update, k).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        if let Ok(Err(e)) | Err(e) = r.map_err(anyhow::Error::from) {
            eprintln!("  {workload}: seeding {} failed: {e:#}", s.name);
        }
    }
}

/// Read-mostly (90 % reads, 10 % updates) at 64 tasks, after one update of every key;
/// then handlers handed a lazy session they never read.
pub async fn read_mostly(plan: &Plan, subjects: &[Subject]) -> Vec<Row> {
    for s in subjects {
        seed("read-mostly", s).await;
    }
    let mut rows = cells(plan, "read-mostly", subjects, &[Dist::Uniform], &[64], Mix::ReadMostly).await;
    rows.extend(cells(plan, "lazy-unread", subjects, &[Dist::Uniform], &[64], Mix::LazyUnread).await);
    for r in rows.iter_mut().filter(|r| r.workload == "lazy-unread") {
        r.lost_updates = None;
    }
    rows
}

/// Interactive clicks at 64 tasks (see [`crate::interactive`]).
pub async fn clicks(plan: &Plan, subjects: &[Subject]) -> Vec<Row> {
    let mut rows = cells(plan, "click", subjects, &[Dist::Uniform], &[64], Mix::Update).await;
    for r in &mut rows {
        r.lost_updates = None;
    }
    rows
}

/// The two-process update: two child processes of this binary update the same
/// [`TWO_PROCESS_KEYS`] keys of the same instance at once, `tasks` tasks each; the
/// parent counts what both acknowledged against the final sum.
pub async fn two_process(plan: &Plan, env: &Env, backend: &str, subjects: &[Subject], tasks: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for s in subjects {
        let before = (s.total)().await.ok();
        let started = Instant::now();
        let cpu_before = cpu_seconds(Cpu::Children);
        let result =
            crate::child::run_update_pair(env, backend, &s.name, tasks, plan.cell * plan.rounds as u32 * 2).await;
        let elapsed = started.elapsed();
        let cpu = cpu_seconds(Cpu::Children) - cpu_before;
        let after = (s.total)().await.ok();
        let mut row = Row::new("two-process", &s.name, s.backend, s.role, tasks);
        row.keys = Some(format!("uniform/{TWO_PROCESS_KEYS}"));
        let result_acked = result.as_ref().map_or(0, |r| r.acked);
        match result {
            Ok(r) => {
                row.ops_per_s = r.ops_per_s;
                row.p50_us = r.p50_us.unwrap_or(f64::NAN);
                row.p99_us = r.p99_us.unwrap_or(f64::NAN);
                row.errors = r.errors;
                if let (Some(b), Some(a)) = (before, after) {
                    row.lost_updates = Some(r.acked as i64 - a.saturating_sub(b) as i64);
                }
                if let Some(e) = r.first_error {
                    row.note = format!("first error: {}", e.chars().take(160).collect::<String>());
                }
            }
            Err(e) => row.note = format!("failed: {e:#}"),
        }
        eprintln!(
            "  two-process {:<30} {:>10.0} ops/s  p50 {:>8.1} us  p99 {:>9.1} us  cpu {:>6.1} us/update  lost {:?} ({:.1} s) {}",
            s.name,
            row.ops_per_s,
            row.p50_us,
            row.p99_us,
            cpu * 1e6 / result_acked.max(1) as f64,
            row.lost_updates,
            elapsed.as_secs_f64(),
            row.note
        );
        rows.push(row);
    }
    rows
}
