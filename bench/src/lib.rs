//! The measuring harness every benchmark binary shares: run a workload on N tokio
//! tasks, alternate contenders over several rounds (so drift of a noisy machine hits
//! them all alike), and print throughput with ratios against a named baseline.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One contender: a name and an operation run `ops_per_task` times on each task.
pub type Op = Arc<dyn Fn(usize, usize) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send + Sync>;

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
