//! SQLite: bot-sessions' `SqliteStore` (durability normal), a raw rusqlite loop (one
//! connection, WAL, synchronous NORMAL, `BEGIN IMMEDIATE`/SELECT/UPSERT/COMMIT per
//! update), teloxide's `SqliteStorage` with its defaults and on a file switched to WAL,
//! tower-sessions' sqlx `SqliteStore`. Each on its own file of the instance.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use bot_sessions::Sessions;
use bot_sessions::store::sqlite::SqliteStore;
use rusqlite::{OptionalExtension, params};
use teloxide::dispatching::dialogue::SqliteStorage;
use teloxide::dispatching::dialogue::serializer::Json;

use super::Env;
use crate::subject::{Action, Role, Subject, op, total};
use crate::{Bench, bump_json, count_json};

fn file(env: &Env, instance: &str, name: &str) -> anyhow::Result<PathBuf> {
    let dir = env.dir.join(instance);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(name))
}

/// The raw rusqlite subject on `path`.
pub fn raw(path: &Path) -> anyhow::Result<Subject> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 10000;
         CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL);",
    )?;
    let conn = Arc::new(Mutex::new(conn));
    let c2 = conn.clone();
    let key = |k: usize| format!("bench/chat:{k}");
    Ok(Subject {
        name: "raw/rusqlite".into(),
        backend: "sqlite",
        role: Role::Raw,
        op: op(move |action, k| {
            let conn = conn.clone();
            async move {
                let key = key(k);
                // The fastest a hand-written loop gets in one process: one connection,
                // no pool, the whole transaction under the mutex.
                let conn = conn.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                let load = |conn: &rusqlite::Connection| -> anyhow::Result<Option<(Vec<u8>, i64)>> {
                    Ok(conn
                        .prepare_cached("SELECT value, version FROM sessions WHERE key = ?1")?
                        .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?)
                };
                match action {
                    Action::Update => {
                        conn.execute_batch("BEGIN IMMEDIATE")?;
                        let done = (|| {
                            let cur = load(&conn)?;
                            let next = bump_json(cur.as_ref().map(|(v, _)| v.as_slice()))?;
                            conn.prepare_cached(
                                "INSERT INTO sessions (key, value, version) VALUES (?1, ?2, ?3)
                                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version",
                            )?
                            .execute(params![key, next, cur.map_or(1, |(_, v)| v + 1)])?;
                            anyhow::Ok(())
                        })();
                        match done {
                            Ok(()) => conn.execute_batch("COMMIT")?,
                            Err(e) => {
                                conn.execute_batch("ROLLBACK")?;
                                return Err(e);
                            }
                        }
                    }
                    Action::Read => {
                        std::hint::black_box(count_json(load(&conn)?.as_ref().map(|(v, _)| v.as_slice()))?);
                    }
                    Action::LazyUnread => {}
                }
                Ok(())
            }
        }),
        total: total(crate::keys::KEYS, move |k| {
            let conn = c2.clone();
            async move {
                let conn = conn.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                let v: Option<Vec<u8>> = conn
                    .prepare_cached("SELECT value FROM sessions WHERE key = ?1")?
                    .query_row([format!("bench/chat:{k}")], |r| r.get(0))
                    .optional()?;
                count_json(v.as_deref())
            }
        }),
    })
}

/// bot-sessions' store on `path` (durability normal and its near cache: the defaults).
pub async fn ours(path: &Path) -> anyhow::Result<Subject> {
    ours_on(SqliteStore::builder().open(path).await?)
}

/// Ours on an open `store` (a clone kept by the caller reads its counters).
pub fn ours_on(store: SqliteStore) -> anyhow::Result<Subject> {
    Ok(super::ours(
        "bot-sessions/sqlite",
        "sqlite",
        Sessions::builder_with_initial(store, Bench::seeded).namespace("bench").build()?,
    ))
}

/// bot-sessions' store on `path` without the near cache the SQLite store gives its
/// sessions by default: every update loads its key first (what the default saves).
pub async fn ours_uncached(path: &Path) -> anyhow::Result<Subject> {
    let store = SqliteStore::builder().without_near_cache().open(path).await?;
    Ok(super::ours(
        "bot-sessions/sqlite-nocache",
        "sqlite",
        Sessions::builder_with_initial(store, Bench::seeded).namespace("bench").build()?,
    ))
}

/// teloxide's storage on `path`, with its defaults (rollback journal, synchronous
/// FULL) or on a file switched to WAL beforehand.
pub async fn teloxide(path: &Path, wal: bool) -> anyhow::Result<Subject> {
    if wal {
        rusqlite::Connection::open(path)?.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    }
    let storage = SqliteStorage::open(path.to_str().context("non-UTF-8 scratch path")?, Json).await?;
    let name = if wal { "teloxide/SqliteStorage+WAL" } else { "teloxide/SqliteStorage" };
    Ok(super::teloxide(name, "sqlite", storage, 0))
}

/// tower-sessions' sqlx store on `path` (sqlx's defaults: WAL, a pool of 10).
pub async fn tower(path: &Path) -> anyhow::Result<Subject> {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
    let pool = SqlitePoolOptions::new().connect_with(options).await?;
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
    store.migrate().await?;
    Ok(super::tower("tower-sessions/SqliteStore", "sqlite", store, 0))
}

/// The SQLite subjects of `instance`.
pub async fn subjects(env: &Env, instance: &str) -> anyhow::Result<Vec<Subject>> {
    Ok(vec![
        ours(&file(env, instance, "ours.db")?).await?,
        ours_uncached(&file(env, instance, "ours-nocache.db")?).await?,
        raw(&file(env, instance, "raw.db")?)?,
        teloxide(&file(env, instance, "teloxide.db")?, false).await?,
        teloxide(&file(env, instance, "teloxide-wal.db")?, true).await?,
        tower(&file(env, instance, "tower.db")?).await?,
    ])
}
