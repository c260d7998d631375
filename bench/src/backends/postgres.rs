//! PostgreSQL: bot-sessions' `PostgresStore` (pool of 16), raw tokio-postgres (16
//! connections, SELECT then `UPDATE ... WHERE version = $v`, INSERT ... ON CONFLICT DO
//! NOTHING on create, on a table of the store's layout), teloxide's `PostgresStorage`
//! (sqlx pool of 16, blind upsert), tower-sessions' sqlx `PostgresStore` (pool of 16,
//! blind upsert). Tables live in the run's schema; teloxide's fixed table
//! `teloxide_dialogues` in the database's default schema gets the run's chat ids.

use std::sync::Arc;

use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};
use bot_sessions::{Sessions, Timestamp};
use teloxide::dispatching::dialogue::{PostgresStorage, serializer::Json};
use tokio_postgres::{Client, NoTls, Statement};

use super::{Env, session_keys};
use crate::subject::{Action, Role, Subject, op, total};
use crate::{Bench, bump_json, count_json};

/// Connections (or pool size) of every PostgreSQL subject.
pub const POOL: usize = 16;

/// The pool of an instance: 4 for the two-process update, whose parent and two
/// children each open every subject (the server's default limit is 100 connections,
/// shared with whatever else runs).
pub fn pool_for(instance: &str) -> usize {
    if instance == "tp" { 4 } else { POOL }
}

struct Raw {
    clients: Vec<(Client, Statement, Statement, Statement)>,
    keys: Vec<String>,
}

async fn raw(env: &Env, instance: &str) -> anyhow::Result<Subject> {
    let url = &env.postgres_url;
    // The same table layout as the store's, in a table of its own.
    let table = format!("raw_{instance}");
    drop(PostgresStore::connect_with(url, PostgresConfig::default().schema(env.pg_schema()).table(&table)).await?);
    let table = format!("{}.{table}", env.pg_schema());
    let pool = pool_for(instance);
    let mut clients = Vec::new();
    for _ in 0..pool {
        let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
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
    let keys = session_keys("raw").iter().map(|k| k.to_string()).collect();
    let raw = Arc::new(Raw { clients, keys });
    let r2 = raw.clone();
    Ok(Subject {
        name: "raw/tokio-postgres".into(),
        backend: "postgres",
        role: Role::Raw,
        op: op(move |action, k| {
            let raw = raw.clone();
            async move {
                let (client, load, update, insert) = &raw.clients[k % raw.clients.len()];
                let key = &raw.keys[k];
                loop {
                    let now = Timestamp::now().as_millis();
                    let row = client.query_opt(load, &[key, &now]).await?;
                    let (value, version): (Option<&[u8]>, Option<i64>) = match &row {
                        Some(r) => (Some(r.get(0)), Some(r.get(1))),
                        None => (None, None),
                    };
                    match action {
                        Action::Update => {}
                        Action::Read => {
                            std::hint::black_box(count_json(value)?);
                            return Ok(());
                        }
                        Action::LazyUnread => return Ok(()),
                    }
                    let bytes = bump_json(value)?;
                    let n = match version {
                        Some(ver) => client.execute(update, &[key, &bytes, &now, &ver]).await?,
                        None => client.execute(insert, &[key, &bytes, &now]).await?,
                    };
                    if n == 1 {
                        return Ok(());
                    }
                }
            }
        }),
        total: total(crate::keys::KEYS, move |k| {
            let raw = r2.clone();
            async move {
                let (client, load, _, _) = &raw.clients[k % raw.clients.len()];
                let row = client.query_opt(load, &[&raw.keys[k], &Timestamp::now().as_millis()]).await?;
                count_json(row.as_ref().map(|r| r.get::<_, &[u8]>(0)))
            }
        }),
    })
}

/// bot-sessions' store of `instance` (with [`PostgresConfig::batch_writes`] as given:
/// the `cache` binary compares it off and on).
pub async fn store(env: &Env, instance: &str, batch_writes: bool) -> anyhow::Result<PostgresStore> {
    Ok(PostgresStore::connect_with(
        &env.postgres_url,
        PostgresConfig::default()
            .schema(env.pg_schema())
            .table(format!("sessions_{instance}"))
            .pool_size(pool_for(instance))
            .batch_writes(batch_writes),
    )
    .await?)
}

/// The PostgreSQL subjects of `instance`.
pub async fn subjects(env: &Env, instance: &str) -> anyhow::Result<Vec<Subject>> {
    let url = &env.postgres_url;
    let store = store(env, instance, true).await?;
    let teloxide = PostgresStorage::open(url, pool_for(instance) as u32, Json).await?;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(pool_for(instance) as u32).connect(url).await?;
    let tower = tower_sessions_sqlx_store::PostgresStore::new(pool)
        .with_schema_name(env.pg_schema())
        .and_then(|s| s.with_table_name(format!("tower_{instance}")))
        .map_err(anyhow::Error::msg)?;
    tower.migrate().await?;
    let id_base = env.id_base(instance);
    let mut subjects = vec![
        super::ours(
            "bot-sessions/postgres",
            "postgres",
            Sessions::builder_with_initial(store.clone(), Bench::seeded).namespace("bench").build()?,
        ),
        raw(env, instance).await?,
        super::teloxide("teloxide/PostgresStorage", "postgres", teloxide, id_base),
        super::tower("tower-sessions/PostgresStore", "postgres", tower, id_base),
    ];
    if super::with_near_cache(instance) {
        subjects.insert(1, super::ours_cached("postgres", Arc::new(store))?);
    }
    Ok(subjects)
}

/// Drops the run's schema and deletes the run's rows of `teloxide_dialogues`.
pub async fn cleanup(env: &Env) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(&env.postgres_url, NoTls).await?;
    tokio::spawn(conn);
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", env.pg_schema())).await?;
    let first = super::INSTANCES.iter().map(|i| env.id_base(i)).min().unwrap_or(0);
    let last = super::INSTANCES.iter().map(|i| env.id_base(i)).max().unwrap_or(0) + crate::keys::KEYS as i64;
    client.execute("DELETE FROM teloxide_dialogues WHERE chat_id >= $1 AND chat_id < $2", &[&first, &last]).await.ok();
    Ok(())
}
