//! Expiry cost: a store holding N sessions of which 10 % have expired; one purge, timed.
//! Its cost should grow with the expired sessions, not with N (bot-sessions keeps an
//! expiry index on every backend). tower-sessions' `delete_expired` on SQLite, the one
//! peer with a purge, runs beside it; teloxide's storages have no expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_sessions::{DynStore, Namespace, Precondition, Scope, SessionKey, Timestamp, Write};

use crate::report::Row;
use crate::subject::Role;

const HOUR: i64 = 3_600_000;

/// Writes `n` records into `store` (64 writers), every tenth expiring at `t0 + 1 h`,
/// the rest in 1,000 days.
async fn fill(store: &DynStore, n: u64, t0: Timestamp) -> anyhow::Result<()> {
    let ns = Namespace::new("expiry")?;
    let value = Arc::new(serde_json::to_vec(&crate::Bench::seeded())?);
    let mut set = tokio::task::JoinSet::new();
    for lane in 0..64u64 {
        let (store, ns, value) = (store.clone(), ns.clone(), value.clone());
        set.spawn(async move {
            for k in (lane..n).step_by(64) {
                let key = SessionKey::new(ns.clone(), Scope::Chat(k as i64));
                let expires = if k % 10 == 0 { t0.0 + HOUR } else { t0.0 + 1_000 * 24 * HOUR };
                store.write(&key, Write::new(&value, 1, Some(Timestamp(expires))), Precondition::Any, t0).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

fn row(subject: &str, backend: &str, role: Role, n: u64, purged: u64, took: Duration) -> Row {
    let mut row = Row::new("expiry", subject, backend, role, 1);
    row.sessions = Some(n);
    row.ops_per_s = purged as f64 / took.as_secs_f64().max(1e-9);
    row.p50_us = took.as_secs_f64() * 1e6;
    row.p99_us = row.p50_us;
    let expected = n / 10;
    row.note = format!("purged {purged} of {n} ({expected} expired) in {:.1} ms", took.as_secs_f64() * 1e3);
    if purged != expected {
        row.errors = 1;
    }
    row
}

/// bot-sessions' purge on `store` (opened fresh, empty) with `n` sessions.
pub async fn ours(name: &str, backend: &str, store: DynStore, n: u64) -> anyhow::Result<Row> {
    let t0 = Timestamp::now();
    fill(&store, n, t0).await?;
    let began = Instant::now();
    let purged = store.purge_expired(Timestamp(t0.0 + 2 * HOUR)).await?;
    let took = began.elapsed();
    Ok(row(name, backend, Role::Ours, n, purged, took))
}

/// tower-sessions' `delete_expired` on a fresh SQLite file with `n` sessions, every
/// tenth expired an hour ago.
pub async fn tower_sqlite(path: &std::path::Path, n: u64) -> anyhow::Result<Row> {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use tower_sessions_core::session::{Id, Record};
    use tower_sessions_core::{ExpiredDeletion as _, SessionStore as _};
    // synchronous OFF only so the fill (one transaction per save) does not take
    // minutes; the purge is one DELETE either way.
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off);
    let store = tower_sessions_sqlx_store::SqliteStore::new(SqlitePoolOptions::new().connect_with(options).await?);
    store.migrate().await?;
    let data: std::collections::HashMap<String, serde_json::Value> =
        [("bench".to_owned(), serde_json::to_value(crate::Bench::seeded())?)].into();
    let now = time::OffsetDateTime::now_utc();
    let mut set = tokio::task::JoinSet::new();
    for lane in 0..16u64 {
        let (store, data) = (store.clone(), data.clone());
        set.spawn(async move {
            for k in (lane..n).step_by(16) {
                let expiry_date =
                    if k % 10 == 0 { now - time::Duration::hours(1) } else { now + time::Duration::days(1000) };
                store.save(&Record { id: Id(k as i128 + 1), data: data.clone(), expiry_date }).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let began = Instant::now();
    store.delete_expired().await?;
    let took = began.elapsed();
    // delete_expired does not say how many: count what is left.
    let left: (i64,) =
        sqlx::query_as("SELECT count(*) FROM tower_sessions").fetch_one(&store_pool(path).await?).await?;
    Ok(row("tower-sessions/SqliteStore", "sqlite", Role::Peer, n, n - left.0 as u64, took))
}

async fn store_pool(path: &std::path::Path) -> anyhow::Result<sqlx::SqlitePool> {
    Ok(sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path)).await?)
}
