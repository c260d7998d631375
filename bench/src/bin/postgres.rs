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
use bot_sessions::{Sessions, Timestamp};
use bot_sessions_bench::{Bench, Op, compare, key_of, keys, op, sessions_update, store_update, teloxide_update};
use teloxide::dispatching::dialogue::{PostgresStorage, serializer::Json};
use tokio_postgres::{Client, NoTls, Statement};

const TASKS: usize = 64;
const OPS: usize = 100;
const ROUNDS: usize = 9;
const POOL: usize = 16;
const SCHEMA: &str = "bot_sessions_bench";

fn url() -> String {
    std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let store = PostgresStore::connect_with(&url(), PostgresConfig::default().schema(SCHEMA).pool_size(POOL)).await?;
    let teloxide = PostgresStorage::open(&url(), POOL as u32, Json).await?;
    let contenders = [
        ("raw tokio-postgres: SELECT + UPDATE WHERE version", raw_op().await?),
        (
            "bot-sessions postgres Sessions::update",
            sessions_update(Sessions::builder_with_initial(store.clone(), Bench::seeded).namespace("bench").build()?),
        ),
        ("bot-sessions PostgresStore load + write (no Sessions layer)", store_update(Arc::new(store), "store")),
        ("teloxide 0.17 PostgresStorage get+update", teloxide_update(teloxide)),
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
