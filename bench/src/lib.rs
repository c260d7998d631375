//! The measuring harness every benchmark binary shares: run a workload on N tokio
//! tasks, alternate contenders over several rounds (so drift of a noisy machine hits
//! them all alike), and print throughput with ratios against a named baseline.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The store's own load and compare-and-set loop, without the `Sessions` layer: shows
/// what the typed layer costs on top of a backend.
pub fn store_update(store: bot_sessions::DynStore, ns: &str) -> Op {
    use bot_sessions::{Precondition, Timestamp, Write};
    let keys = keys(ns);
    op(move |t, i| {
        let (store, keys) = (store.clone(), keys.clone());
        async move {
            let k = &keys[key_of(t, i)];
            loop {
                let now = Timestamp::now();
                let cur = store.load(k, now).await?;
                let mut v: Bench = match &cur {
                    Some(r) => serde_json::from_slice(&r.value)?,
                    None => Bench::seeded(),
                };
                v.count += 1;
                let bytes = serde_json::to_vec(&v)?;
                let pre = cur.map_or(Precondition::Absent, |r| Precondition::Version(r.version));
                match store.write(k, Write::new(&bytes, 1, None), pre, now).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    })
}

/// A teloxide dialogue storage doing the same logical update: `get_dialogue`, bump,
/// `update_dialogue` (a blind write: teloxide has no compare-and-set).
pub fn teloxide_update<S>(storage: Arc<S>) -> Op
where
    S: teloxide::dispatching::dialogue::Storage<Bench> + Send + Sync + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    op(move |t, i| {
        let storage = storage.clone();
        async move {
            let chat = teloxide::types::ChatId(key_of(t, i) as i64);
            let mut v: Bench = storage.clone().get_dialogue(chat).await?.unwrap_or_else(Bench::seeded);
            v.count += 1;
            storage.update_dialogue(chat, v).await?;
            Ok(())
        }
    })
}
