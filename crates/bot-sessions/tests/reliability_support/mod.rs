//! What the reliability tests share: the crash soak's writer child and its parent loop
//! (`soak`), fake servers that never answer or answer garbage (`fake_server`), a
//! Redis server of the test's own (`redis_server`), and small helpers.
#![allow(dead_code)]

pub mod fake_server;
#[cfg(feature = "redis")]
pub mod redis_server;
pub mod reset_proxy;
#[cfg(unix)]
pub mod soak;

use std::future::Future;
use std::time::Duration;

/// The environment variable that selects the soak's length: `long` runs
/// [`LONG_KILLS`] kills per backend instead of [`SHORT_KILLS`]; a number runs that many.
pub const SOAK_ENV: &str = "BOT_SESSIONS_SOAK";
/// Kills per backend (and per SQLite durability mode) in the normal test suite.
pub const SHORT_KILLS: usize = 50;
/// Kills per backend with `BOT_SESSIONS_SOAK=long`.
pub const LONG_KILLS: usize = 500;

/// How many kills the soak runs: [`SHORT_KILLS`] unless [`SOAK_ENV`] says otherwise.
pub fn soak_kills() -> usize {
    match std::env::var(SOAK_ENV) {
        Ok(v) if v == "long" => LONG_KILLS,
        Ok(v) if v.is_empty() || v == "short" => SHORT_KILLS,
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{SOAK_ENV} must be `short`, `long` or a number, not {v:?}")),
        Err(_) => SHORT_KILLS,
    }
}

/// A random seed, or the one in `BOT_SESSIONS_SOAK_SEED` (printed by every soak, so a
/// failing run can be replayed).
pub fn seed() -> u64 {
    match std::env::var("BOT_SESSIONS_SOAK_SEED") {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("BOT_SESSIONS_SOAK_SEED must be a u64, not {v:?}")),
        Err(_) => rand::random(),
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A fresh empty directory under the target's temp dir.
pub fn temp_dir(what: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "reliability-{what}-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Polls `ready` every 20 ms until it is true; panics with `what` after `limit` (a
/// failure detector for something that should happen, never a timing assertion).
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !ready().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The PostgreSQL server the tests share (override with `BOT_SESSIONS_POSTGRES_URL`).
pub fn postgres_url() -> String {
    std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The Redis server the tests share (override with `BOT_SESSIONS_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// `url` with `name=value` appended to its query.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    format!("{url}{}{name}={value}", if url.contains('?') { '&' } else { '?' })
}

/// A table name of this run's own (`rel_<what>_<random>`), for the shared PostgreSQL.
pub fn unique_table(what: &str) -> String {
    format!("rel_{what}_{:012x}", rand::random::<u64>() >> 16)
}
