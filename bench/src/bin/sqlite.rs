//! SQLite store benchmark (issue 3), one run, 64 concurrent tasks, the same
//! read-modify-write (load, JSON decode, bump one field, JSON encode, save) everywhere:
//!
//! - `Sessions::update` on `SqliteStore` with durability normal (and full, for the
//!   comparison with teloxide, whose defaults sync every commit);
//! - (a) a raw rusqlite loop: one shared connection (WAL, synchronous=NORMAL), each
//!   update its own `BEGIN IMMEDIATE` / `SELECT` / UPSERT / `COMMIT` — goal >= 1.0x;
//! - (b) teloxide's `SqliteStorage` with its defaults: `get_dialogue` then
//!   `update_dialogue` (a blind write, no compare-and-set) — goal >= 3x.
//!
//! Every contender has its own fresh file in a scratch directory that is removed at the
//! end. Run: `cargo run --release --bin sqlite` from `bench/`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use bot_sessions::Sessions;
use bot_sessions::store::sqlite::{Durability, SqliteStore};
use bot_sessions_bench::{Bench, Op, compare, key_of, op, sessions_update};
use rusqlite::{OptionalExtension, params};
use teloxide::dispatching::dialogue::serializer::Json;
use teloxide::dispatching::dialogue::{SqliteStorage, Storage};
use teloxide::types::ChatId;

const TASKS: usize = 64;
const OPS: usize = 250;
const ROUNDS: usize = 5;

fn bump(bytes: Option<&[u8]>) -> anyhow::Result<Vec<u8>> {
    let mut v: Bench = match bytes {
        Some(b) => serde_json::from_slice(b)?,
        None => Bench::seeded(),
    };
    v.count += 1;
    Ok(serde_json::to_vec(&v)?)
}

fn raw_op(path: &Path) -> anyhow::Result<Op> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL);",
    )?;
    let conn = Arc::new(Mutex::new(conn));
    Ok(op(move |t, i| {
        let conn = conn.clone();
        async move {
            let key = format!("bench/chat:{}", key_of(t, i));
            // The fastest a hand-written loop gets in one process: one connection, no
            // pool, the whole transaction under the mutex.
            let conn = conn.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let cur: Option<(Vec<u8>, i64)> = conn
                .prepare_cached("SELECT value, version FROM sessions WHERE key = ?1")?
                .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let next = bump(cur.as_ref().map(|(v, _)| v.as_slice()))?;
            conn.prepare_cached(
                "INSERT INTO sessions (key, value, version) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version",
            )?
            .execute(params![key, next, cur.map_or(1, |(_, v)| v + 1)])?;
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
    }))
}

/// teloxide's storage on a file it creates itself (its defaults: rollback journal,
/// synchronous FULL), or on a file switched to WAL beforehand. With its defaults and 64
/// tasks, SQLite answers "database is locked" now and then (a lock upgrade it does not
/// wait for); the op retries those, as a bot would have to, and counts them.
async fn teloxide_op(path: &Path, wal: bool, retries: Arc<AtomicU64>) -> anyhow::Result<Op> {
    if wal {
        rusqlite::Connection::open(path)?.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    }
    let path = path.to_str().context("non-UTF-8 scratch path")?;
    let storage = SqliteStorage::open(path, Json).await?;
    Ok(op(move |t, i| {
        let (storage, retries) = (storage.clone(), retries.clone());
        async move {
            let chat = ChatId(key_of(t, i) as i64);
            loop {
                let attempt = async {
                    let mut v: Bench = storage.clone().get_dialogue(chat).await?.unwrap_or_else(Bench::seeded);
                    v.count += 1;
                    storage.clone().update_dialogue(chat, v).await
                };
                match attempt.await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.to_string().contains("database is locked") => {
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }))
}

async fn sessions_op(path: &Path, durability: Durability) -> anyhow::Result<Op> {
    let store = SqliteStore::builder().durability(durability).open(path).await?;
    Ok(sessions_update(Sessions::builder_with_initial(store, Bench::seeded).namespace("bench").build()?))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::temp_dir().join(format!("bot-sessions-bench-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let locked = Arc::new(AtomicU64::new(0));
    let contenders = [
        ("raw rusqlite (BEGIN IMMEDIATE per update, NORMAL)", raw_op(&dir.join("raw.db"))?),
        ("bot-sessions sqlite (durability normal)", sessions_op(&dir.join("normal.db"), Durability::Normal).await?),
        ("bot-sessions sqlite (durability full)", sessions_op(&dir.join("full.db"), Durability::Full).await?),
        ("teloxide SqliteStorage (its defaults)", teloxide_op(&dir.join("teloxide.db"), false, locked.clone()).await?),
        (
            "teloxide SqliteStorage (file in WAL)",
            teloxide_op(&dir.join("teloxide-wal.db"), true, locked.clone()).await?,
        ),
    ];
    let result = compare(
        "SQLite update: load, JSON, bump, save",
        &contenders,
        "raw rusqlite (BEGIN IMMEDIATE per update, NORMAL)",
        TASKS,
        OPS,
        ROUNDS,
    )
    .await;
    if let Ok(rates) = &result {
        let rate = |name: &str| rates.iter().find(|(n, _)| n.starts_with(name)).map_or(f64::NAN, |(_, r)| *r);
        let ours = rate("bot-sessions sqlite (durability normal)");
        println!("\nbot-sessions (normal) vs raw rusqlite: {:.2}x (goal >= 1.0x)", ours / rate("raw rusqlite"));
        println!("bot-sessions (normal) vs teloxide: {:.2}x (goal >= 3x)", ours / rate("teloxide"));
        println!(
            "bot-sessions (full) vs teloxide: {:.2}x (both sync on commit)",
            rate("bot-sessions sqlite (durability full)") / rate("teloxide")
        );
    }
    println!("teloxide attempts retried after `database is locked`: {}", locked.load(Ordering::Relaxed));
    drop(contenders);
    std::fs::remove_dir_all(&dir).ok();
    result.map(|_| ())
}
