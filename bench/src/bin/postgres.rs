//! PostgreSQL store benchmark (issue 4), one run, 64 concurrent tasks:
//!
//! - `Sessions::update` on the PostgreSQL store (pool of 16);
//! - raw tokio-postgres: 16 connections (each shared by the tasks that pick it, so
//!   queries pipeline), the same optimistic read-modify-write by hand: SELECT value and
//!   version, JSON decode/encode, `UPDATE … WHERE version = $v` (INSERT … ON CONFLICT DO
//!   NOTHING on create), retry on conflict, on a table of the same layout
//!   (goal: `Sessions::update` >= 0.85x);
//! - teloxide 0.17 `PostgresStorage` (sqlx pool of 16) doing the same logical update:
//!   `get_dialogue`, change, `update_dialogue` (a blind upsert; goal: >= 1.0x of it).
//!
//! Needs a server (default `postgres://postgres@127.0.0.1:5432/test`, or
//! `BENCH_POSTGRES_URL`); works in the schema `bot_sessions_bench`.

use std::sync::Arc;

use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};
use bot_sessions::{Namespace, Scope, SessionError, SessionKey, Sessions, Timestamp};
use bot_sessions_bench::{Bench, Op, compare, op};
use teloxide::dispatching::dialogue::{PostgresStorage, Storage, serializer::Json};
use teloxide::types::ChatId;
use tokio_postgres::{Client, NoTls, Statement};

const TASKS: usize = 64;
const OPS: usize = 100;
const KEYS: usize = 1_024;
const ROUNDS: usize = 9;
const POOL: usize = 16;
const SCHEMA: &str = "bot_sessions_bench";

fn key_of(t: usize, i: usize) -> usize {
    (t * 7919 + i * 31) % KEYS
}

fn url() -> String {
    std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn keys(ns: &str) -> Arc<Vec<SessionKey>> {
    let ns = Namespace::new(ns).unwrap();
    Arc::new((0..KEYS).map(|k| SessionKey::new(ns.clone(), Scope::Chat(k as i64))).collect())
}

fn sessions_op(store: PostgresStore) -> Op {
    let sessions = Sessions::<Bench>::builder_with_initial(store, Bench::seeded).namespace("bench").build().unwrap();
    let keys = keys("bench");
    op(move |t, i| {
        let (sessions, keys) = (sessions.clone(), keys.clone());
        async move {
            sessions
                .update(&keys[key_of(t, i)], |b| {
                    b.count += 1;
                    Ok::<_, SessionError>(())
                })
                .await?;
            Ok(())
        }
    })
}

struct Raw {
    clients: Vec<(Client, Statement, Statement, Statement)>,
    keys: Vec<String>,
}

async fn raw_op() -> anyhow::Result<Op> {
    // The same table layout as the store's, in a table of its own.
    let _ = PostgresStore::connect_with(&url(), PostgresConfig::default().schema(SCHEMA).table("raw")).await?;
    let table = format!("{SCHEMA}.raw");
    let mut clients = Vec::new();
    for _ in 0..POOL {
        let (client, conn) = tokio_postgres::connect(&url(), NoTls).await?;
        tokio::spawn(conn);
        let load = client
            .prepare(&format!(
                "SELECT value, version FROM {table} WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)"
            ))
            .await?;
        let update = client
            .prepare(&format!(
                "UPDATE {table} SET value = $2, version = version + 1, schema_version = 1, updated_at = $3 \
                 WHERE key = $1 AND version = $4 AND (expires_at IS NULL OR expires_at > $3)"
            ))
            .await?;
        let insert = client
            .prepare(&format!(
                "INSERT INTO {table} (key, namespace, value, version, schema_version, created_at, updated_at) \
                 VALUES ($1, 'raw', $2, 1, 1, $3, $3) ON CONFLICT (key) DO NOTHING"
            ))
            .await?;
        clients.push((client, load, update, insert));
    }
    let keys = keys("raw").iter().map(|k| k.to_string()).collect();
    let raw = Arc::new(Raw { clients, keys });
    Ok(op(move |t, i| {
        let raw = raw.clone();
        async move {
            let (client, load, update, insert) = &raw.clients[t % POOL];
            let key = &raw.keys[key_of(t, i)];
            loop {
                let now = Timestamp::now().as_millis();
                let row = client.query_opt(load, &[key, &now]).await?;
                let (mut v, version): (Bench, Option<i64>) = match &row {
                    Some(r) => (serde_json::from_slice(r.get::<_, &[u8]>(0))?, Some(r.get(1))),
                    None => (Bench::seeded(), None),
                };
                v.count += 1;
                let bytes = serde_json::to_vec(&v)?;
                let n = match version {
                    Some(ver) => client.execute(update, &[key, &bytes, &now, &ver]).await?,
                    None => client.execute(insert, &[key, &bytes, &now]).await?,
                };
                if n == 1 {
                    return Ok(());
                }
            }
        }
    }))
}

/// The store's own load and compare-and-set, without the `Sessions` layer.
fn store_op(store: PostgresStore) -> Op {
    use bot_sessions::{Precondition, Store, Write};
    let keys = keys("store");
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
                match store.write(k, Write { value: &bytes, schema_version: 1, expires_at: None }, pre, now).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    })
}

fn teloxide_op(storage: Arc<PostgresStorage<Json>>) -> Op {
    op(move |t, i| {
        let storage = storage.clone();
        async move {
            let chat = ChatId(key_of(t, i) as i64);
            let mut v: Bench = storage.clone().get_dialogue(chat).await?.unwrap_or_else(Bench::seeded);
            v.count += 1;
            storage.update_dialogue(chat, v).await?;
            Ok(())
        }
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let store = PostgresStore::connect_with(&url(), PostgresConfig::default().schema(SCHEMA).pool_size(POOL)).await?;
    let teloxide = PostgresStorage::open(&url(), POOL as u32, Json).await?;
    let contenders = [
        ("raw tokio-postgres: SELECT + UPDATE WHERE version", raw_op().await?),
        ("bot-sessions postgres Sessions::update", sessions_op(store.clone())),
        ("bot-sessions PostgresStore load + write (no Sessions layer)", store_op(store)),
        ("teloxide 0.17 PostgresStorage get+update", teloxide_op(teloxide)),
    ];
    compare(
        "PostgreSQL update (load, change one field, save) at 64 tasks",
        &contenders,
        "raw tokio-postgres: SELECT + UPDATE WHERE version",
        TASKS,
        OPS,
        ROUNDS,
    )
    .await?;
    Ok(())
}
