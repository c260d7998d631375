//! The operator tool's `copy` of 100,000 sessions SQLite -> Redis, against
//! `export | import` of the same sessions and against the raw read rate of the source
//! (a `Store::scan` of every page, what `copy` itself reads with).
//!
//! Needs the release binary: `cargo build --release -p bot-sessions-cli` at the repository
//! root (or `BOT_SESSIONS_BIN=path`), Redis on 127.0.0.1:6379 (`BOT_SESSIONS_REDIS_URL`).
//! Run: `cargo run --release --bin cli_copy [SESSIONS] [ROUNDS]` from bench/. The three
//! contenders alternate over the rounds; each copy/import goes to a fresh Redis prefix,
//! deleted afterwards.

use std::process::Command;
use std::time::{Duration, Instant};

use bot_sessions::{DynStore, Namespace, Precondition, Timestamp, Write};

fn bin() -> String {
    std::env::var("BOT_SESSIONS_BIN").unwrap_or_else(|_| "../target/release/bot-sessions".into())
}

fn redis_base() -> String {
    std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

async fn seed(store: &DynStore, n: usize) -> anyhow::Result<()> {
    let mut set = tokio::task::JoinSet::new();
    for t in 0..64 {
        let store = store.clone();
        set.spawn(async move {
            for i in (t..n).step_by(64) {
                let key = format!("bench{}/chat:{i}/user:{}", i % 4, i % 1000).parse()?;
                let value = format!("{{\"step\":\"email\",\"n\":{i},\"name\":\"user {i}\"}}");
                store
                    .write(&key, Write::new(value.as_bytes(), 1, None), Precondition::Absent, Timestamp::now())
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

async fn scan_all(store: &DynStore) -> anyhow::Result<usize> {
    let mut n = 0;
    let now = Timestamp::now();
    for ns in store.namespaces(now).await? {
        let ns: Namespace = ns;
        let mut cursor: Option<String> = None;
        loop {
            let page = store.scan(&ns, cursor.as_deref(), 1000, now).await?;
            n += page.items.len();
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(n)
}

fn shell(script: &str) -> anyhow::Result<()> {
    let out = Command::new("sh").arg("-c").arg(script).output()?;
    anyhow::ensure!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

fn drop_prefix(prefix: &str) {
    let base = redis_base();
    let _ = shell(&format!(
        "redis-cli -u '{base}' --scan --pattern '{prefix}*' | xargs -r -n 1000 redis-cli -u '{base}' del > /dev/null"
    ));
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let path = std::env::temp_dir().join(format!("cli-copy-bench-{}.db", std::process::id()));
    let src_url = format!("sqlite://{}", path.display());
    let store = bot_sessions::store::open(&format!("{src_url}?purge_interval=off")).await?;
    seed(&store, n).await?;
    println!("{n} sessions in {src_url}; {rounds} rounds; binary {}", bin());
    let (mut scan, mut copy, mut pipe) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let t = Instant::now();
        anyhow::ensure!(scan_all(&store).await? == n);
        scan.push(n as f64 / t.elapsed().as_secs_f64());

        let prefix = format!("clibench{}r{round}c:", std::process::id());
        let to = format!("{}?prefix={prefix}", redis_base());
        let t = Instant::now();
        shell(&format!("'{}' --store '{src_url}' copy --to '{to}' > /dev/null 2>&1", bin()))?;
        copy.push(n as f64 / t.elapsed().as_secs_f64());
        drop_prefix(&prefix);

        let prefix = format!("clibench{}r{round}p:", std::process::id());
        let to = format!("{}?prefix={prefix}", redis_base());
        let t = Instant::now();
        shell(&format!(
            "'{b}' --store '{src_url}' export 2>/dev/null | '{b}' --store '{to}' import > /dev/null 2>&1",
            b = bin()
        ))?;
        pipe.push(n as f64 / t.elapsed().as_secs_f64());
        drop_prefix(&prefix);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (scan, copy, pipe) = (median(scan), median(copy), median(pipe));
    println!("{:<36} {:>12}", "contender", "sessions/s");
    println!("{:<36} {:>12.0}", "raw read of the source (Store::scan)", scan);
    println!("{:<36} {:>12.0}   {:.2}x of the scan", "copy --to redis", copy, copy / scan);
    println!("{:<36} {:>12.0}   {:.2}x of the scan, copy is {:.2}x", "export | import", pipe, pipe / scan, copy / pipe);
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(())
}
