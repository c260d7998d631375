//! What this binary does when it runs itself as a child process (`--child ...`), and
//! the parent's side of each: the memory a live session costs, measured from outside
//! as the child's resident set (`/proc/PID/status`), and the two-process update.
//!
//! Protocol: the child prints one line when it is ready and waits for a line on stdin
//! before it goes on, so the parent can read the child's memory between the steps, or
//! start two children at the same moment.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::Bench;
use crate::backends::Env;
use crate::harness::{Mix, run_cell};
use crate::keys::{Dist, TWO_PROCESS_KEYS};

/// The subjects of the memory-per-session workload.
pub const MEMORY_SUBJECTS: &[(&str, crate::subject::Role)] = &[
    ("bot-sessions/memory", crate::subject::Role::Ours),
    ("bot-sessions/memory interactive", crate::subject::Role::Ours),
    ("raw/dashmap", crate::subject::Role::Raw),
    ("teloxide/InMemStorage", crate::subject::Role::Peer),
    ("tower-sessions/MemoryStore", crate::subject::Role::Peer),
];

/// What a child of the two-process update reports.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct UpdateResult {
    /// Acknowledged updates.
    pub acked: u64,
    /// Operations per second.
    pub ops_per_s: f64,
    /// Median latency (none when nothing succeeded).
    pub p50_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// Errors.
    pub errors: u64,
    /// The first error.
    pub first_error: Option<String>,
}

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Proc {
    fn spawn(env: &Env, args: &[String]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--child")
            .args(args)
            .env("BENCH_RUN", env.run.to_string())
            .env("BENCH_REDIS_URL", &env.redis_url)
            .env("BENCH_POSTGRES_URL", &env.postgres_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("child stdout")?).lines();
        Ok(Proc { child, stdin, stdout })
    }

    async fn expect(&mut self, what: &str) -> anyhow::Result<String> {
        let line = tokio::time::timeout(Duration::from_secs(300), self.stdout.next_line())
            .await
            .with_context(|| format!("child did not say {what} in time"))??
            .with_context(|| format!("child exited before {what}"))?;
        anyhow::ensure!(line.starts_with(what), "child said {line:?}, expected {what}");
        Ok(line[what.len()..].trim().to_owned())
    }

    async fn go(&mut self) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("child stdin closed")?;
        stdin.write_all(b"go\n").await?;
        stdin.flush().await?;
        Ok(())
    }

    fn rss_bytes(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("child already exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS in /proc/PID/status")?;
        Ok(kb * 1024)
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await??;
        anyhow::ensure!(status.success(), "child failed: {status}");
        Ok(())
    }
}

/// Resident bytes per session of `subject` holding `n` sessions: the child's RSS after
/// filling minus before, over `n`.
pub async fn memory_per_session(env: &Env, subject: &str, n: u64) -> anyhow::Result<f64> {
    let mut p = Proc::spawn(env, &["memory".into(), subject.into(), n.to_string()])?;
    p.expect("base").await?;
    let base = p.rss_bytes()?;
    p.go().await?;
    p.expect("full").await?;
    let full = p.rss_bytes()?;
    p.finish().await?;
    Ok(full.saturating_sub(base) as f64 / n as f64)
}

/// Two children updating the same keys of `backend`'s two-process instance at once.
pub async fn run_update_pair(
    env: &Env,
    backend: &str,
    subject: &str,
    tasks: usize,
    duration: Duration,
) -> anyhow::Result<UpdateResult> {
    let args = vec![
        "update".to_owned(),
        backend.to_owned(),
        subject.to_owned(),
        tasks.to_string(),
        duration.as_millis().to_string(),
    ];
    let mut a = Proc::spawn(env, &args)?;
    let mut b = Proc::spawn(env, &args)?;
    a.expect("ready").await?;
    b.expect("ready").await?;
    a.go().await?;
    b.go().await?;
    let ra: UpdateResult = serde_json::from_str(&a.expect("result").await?)?;
    let rb: UpdateResult = serde_json::from_str(&b.expect("result").await?)?;
    a.finish().await?;
    b.finish().await?;
    Ok(UpdateResult {
        acked: ra.acked + rb.acked,
        ops_per_s: ra.ops_per_s + rb.ops_per_s,
        p50_us: worse(ra.p50_us, rb.p50_us),
        p99_us: worse(ra.p99_us, rb.p99_us),
        errors: ra.errors + rb.errors,
        first_error: ra.first_error.or(rb.first_error),
    })
}

/// The larger of two latencies, where present.
fn worse(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

async fn wait_for_go() -> anyhow::Result<()> {
    let mut line = String::new();
    BufReader::new(tokio::io::stdin()).read_line(&mut line).await?;
    Ok(())
}

/// The child's side: `args` after `--child`.
pub async fn main(args: &[String]) -> anyhow::Result<()> {
    match args {
        [mode, backend, subject, tasks, millis] if mode == "update" => {
            let env = Env::from_env();
            let subjects = crate::backends::build(&env, backend, "tp").await?;
            let s = subjects.iter().find(|s| s.name == *subject).with_context(|| format!("no subject {subject}"))?;
            println!("ready");
            wait_for_go().await?;
            let sample = run_cell(
                &s.op,
                tasks.parse()?,
                Duration::from_millis(millis.parse()?),
                Dist::Uniform,
                TWO_PROCESS_KEYS,
                Mix::Update,
            )
            .await;
            let result = UpdateResult {
                acked: sample.acked_updates,
                ops_per_s: sample.ops_per_s(),
                p50_us: Some(sample.percentile_us(0.5)).filter(|v| v.is_finite()),
                p99_us: Some(sample.percentile_us(0.99)).filter(|v| v.is_finite()),
                errors: sample.errors,
                first_error: sample.first_error,
            };
            println!("result {}", serde_json::to_string(&result)?);
            wait_for_go().await
        }
        [mode, subject, n] if mode == "memory" => fill_memory(subject, n.parse()?).await,
        _ => anyhow::bail!("unknown child command {args:?}"),
    }
}

/// Builds the empty structure of `subject`, says `base`, fills `n` sessions on `go`,
/// says `full`, and waits for the parent to close stdin.
async fn fill_memory(subject: &str, n: u64) -> anyhow::Result<()> {
    use bot_sessions::store::memory::MemoryStore;
    use bot_sessions::{Namespace, Scope, SessionKey, Sessions};
    use tower_sessions_core::SessionStore as _;
    // The fills below keep what they build alive in these until the end.
    let mut keep: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    match subject {
        "bot-sessions/memory" => {
            let sessions = Sessions::builder_with_initial(MemoryStore::without_sweeper(), Bench::seeded)
                .namespace("bench")
                .build()?;
            let ns = Namespace::new("bench")?;
            println!("base");
            wait_for_go().await?;
            for k in 0..n {
                let key = SessionKey::new(ns.clone(), Scope::Chat(k as i64));
                sessions
                    .update(&key, |b| {
                        b.count += 1;
                        Ok::<_, bot_sessions::SessionError>(())
                    })
                    .await?;
            }
            keep.push(Box::new(sessions));
        }
        "bot-sessions/memory interactive" => {
            let store: bot_sessions::DynStore = Arc::new(MemoryStore::without_sweeper());
            let (manager, kind) = crate::interactive::manager(store, true)?;
            println!("base");
            wait_for_go().await?;
            for _ in 0..n {
                // The handle is dropped: what stays is the stored session and the
                // manager's expiry index entry.
                drop(manager.start(&kind, &crate::interactive::opener(), ()).await?);
            }
            keep.push(Box::new(manager));
        }
        "raw/dashmap" => {
            let map: crate::backends::memory::RawMap = Arc::default();
            println!("base");
            wait_for_go().await?;
            for k in 0..n {
                crate::backends::memory::raw_update(&map, &crate::backends::memory::raw_key(k as usize))?;
            }
            keep.push(Box::new(map));
        }
        "teloxide/InMemStorage" => {
            use teloxide::dispatching::dialogue::Storage as _;
            let storage = teloxide::dispatching::dialogue::InMemStorage::<Bench>::new();
            println!("base");
            wait_for_go().await?;
            for k in 0..n {
                let chat = teloxide::types::ChatId(k as i64);
                let mut v = storage.clone().get_dialogue(chat).await?.unwrap_or_else(Bench::seeded);
                v.count += 1;
                storage.clone().update_dialogue(chat, v).await?;
            }
            keep.push(Box::new(storage));
        }
        "tower-sessions/MemoryStore" => {
            use tower_sessions_core::session::{Id, Record};
            let store = tower_sessions_memory_store::MemoryStore::default();
            println!("base");
            wait_for_go().await?;
            let expiry = time::OffsetDateTime::now_utc() + time::Duration::days(1);
            for k in 0..n {
                let id = Id(k as i128 + 1);
                let mut v = match store.load(&id).await? {
                    Some(r) => serde_json::from_value(r.data["bench"].clone())?,
                    None => Bench::seeded(),
                };
                v.count += 1;
                let data = [("bench".to_owned(), serde_json::to_value(v)?)].into();
                store.save(&Record { id, data, expiry_date: expiry }).await?;
            }
            keep.push(Box::new(store));
        }
        other => anyhow::bail!("no memory subject {other}"),
    }
    println!("full");
    wait_for_go().await?;
    drop(keep);
    Ok(())
}
