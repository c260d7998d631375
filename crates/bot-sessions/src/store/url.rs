//! Opening a store from a URL, as the demo bot and the operator tool take it.
//!
//! | URL | store | feature |
//! | --- | --- | --- |
//! | `memory://` | [`MemoryStore`](super::memory::MemoryStore) | always |
//! | `sqlite://PATH` (`sqlite://./bot.db`, `sqlite:///var/lib/bot.db`) | `SqliteStore` | `sqlite` |
//! | `redis[s]://HOST:PORT[/DB][?prefix=P&cluster=true&sslrootcert=PATH&wait=replicas:N&require_durable=true]` | `RedisStore` (see `RedisConfig` for every option) | `redis` |
//! | `postgres://USER[:PASSWORD]@HOST:PORT/DB[?schema=S&table=T&sslmode=M&sslrootcert=PATH]` | `PostgresStore` | `postgres` |
//!
//! Every URL also takes `purge_interval=SECS` (default 60) or `purge_interval=off`: a
//! store opened here purges expired records in the background (see
//! [`spawn_purger`](super::spawn_purger)) until it is dropped.
//!
//! Every URL also takes `open_retry=SECS` (default 10, at most 3600; `0`: one attempt):
//! while opening fails in a way that may pass (the server refuses connections or is
//! starting up, a connection is reset), [`open`] tries again with a growing pause
//! (50 ms doubling to 2 s, jittered) until that time has passed, so a bot that starts
//! while its database restarts comes up. A failure that will not pass (a malformed
//! URL, a refused certificate, a wrong password) is returned at once.
//!
//! A password in a URL never appears in an error of [`open`] (nor of any backend's
//! connect): URLs are printed with their secrets masked.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{DEFAULT_PURGE_INTERVAL, DynStore, StoreError, redact_url, spawn_purger};

/// How long [`open`] keeps trying by default (`open_retry` in the URL).
pub const DEFAULT_OPEN_RETRY: Duration = Duration::from_secs(10);
/// The longest `open_retry` accepted.
const MAX_OPEN_RETRY_SECS: u64 = 3600;
/// The first pause between attempts to open.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between attempts to open.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// What [`open`] reports when the time to open ran out: the last attempt's error.
#[derive(Debug, thiserror::Error)]
#[error("gave up opening the store after {attempts} attempts in {spent:?} (open_retry={budget_secs}): {last}")]
struct GaveUp {
    attempts: u32,
    spent: Duration,
    budget_secs: u64,
    #[source]
    last: StoreError,
}

/// Opens the store a URL names.
///
/// # Errors
///
/// [`StoreError::Config`] for an unknown scheme, a scheme whose feature is off, a
/// malformed URL or an `open_retry` out of range; backend errors when the store cannot
/// be created, or (retryable) cannot be reached within `open_retry`.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = bot_sessions::store::open("memory://").await?;
/// assert!(bot_sessions::store::open("ftp://nope").await.is_err());
/// # Ok::<(), bot_sessions::StoreError>(())
/// # }).unwrap();
/// ```
pub async fn open(url: &str) -> Result<DynStore, StoreError> {
    let (url, purge) = take_purge_interval(url)?;
    let (url, retry_for) = take_open_retry(&url)?;
    let store = open_retrying(&url, retry_for).await?;
    if let Some(every) = purge {
        spawn_purger(&store, every);
    }
    Ok(store)
}

/// Opens `url`, trying again after retryable failures until `retry_for` has passed
/// (an attempt under way then still finishes: each is bounded by the backend's own
/// connect and operation timeouts).
async fn open_retrying(url: &str, retry_for: Duration) -> Result<DynStore, StoreError> {
    let start = Instant::now();
    let deadline = start.checked_add(retry_for).unwrap_or(start);
    let mut pause = FIRST_PAUSE;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let e = match open_backend(url).await {
            Ok(store) => return Ok(store),
            Err(e) if e.is_retryable() && !retry_for.is_zero() => e,
            Err(e) => return Err(e),
        };
        let wait = pause.mul_f64(rand::random_range(0.5..=1.0));
        if Instant::now() + wait >= deadline {
            let backend = match &e {
                StoreError::Backend { backend, .. } => *backend,
                _ => "store",
            };
            let gave_up = GaveUp { attempts, spent: start.elapsed(), budget_secs: retry_for.as_secs(), last: e };
            return Err(StoreError::backend(backend, None, true, gave_up));
        }
        tracing::warn!(error = %e, attempts, retry_in = ?wait, "cannot open the session store yet; trying again");
        tokio::time::sleep(wait).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Takes `open_retry` out of the URL's query: how long [`open`] keeps trying.
fn take_open_retry(url: &str) -> Result<(String, Duration), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), DEFAULT_OPEN_RETRY));
    };
    let mut retry_for = DEFAULT_OPEN_RETRY;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("open_retry", secs)) => {
                let secs: u64 = secs.parse().ok().filter(|s| *s <= MAX_OPEN_RETRY_SECS).ok_or_else(|| {
                    StoreError::Config(format!(
                        "open_retry must be whole seconds from 0 to {MAX_OPEN_RETRY_SECS}, not `{secs}`"
                    ))
                })?;
                retry_for = Duration::from_secs(secs);
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, retry_for))
}

/// Takes `purge_interval` out of the URL's query: `Some(interval)`, or `None` for `off`.
fn take_purge_interval(url: &str) -> Result<(String, Option<Duration>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Some(DEFAULT_PURGE_INTERVAL)));
    };
    let mut purge = Some(DEFAULT_PURGE_INTERVAL);
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("purge_interval", "off")) => purge = None,
            Some(("purge_interval", secs)) => {
                let secs: u64 = secs.parse().ok().filter(|s| (1..=86_400 * 7).contains(s)).ok_or_else(|| {
                    StoreError::Config(format!(
                        "purge_interval must be `off` or whole seconds from 1 to 604800, not `{secs}`"
                    ))
                })?;
                purge = Some(Duration::from_secs(secs));
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, purge))
}

/// The backend a URL (without `purge_interval`) names, before anything is opened.
enum Backend<'a> {
    Memory,
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite(&'a str),
    Redis,
    Postgres,
}

/// Reads the scheme; an unknown one, or one whose feature is off, is a config error.
fn backend_of(url: &str) -> Result<Backend<'_>, StoreError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        // Not echoed: without `://` there is no telling where a password would be.
        StoreError::Config("the store URL has no scheme (memory://, sqlite://PATH, redis://, postgres://)".to_owned())
    })?;
    // The feature a recognised scheme needs, when it is off.
    let (backend, off) = match scheme {
        "memory" => (Backend::Memory, None),
        "sqlite" => (Backend::Sqlite(rest), (!cfg!(feature = "sqlite")).then_some("sqlite")),
        "redis" | "rediss" => (Backend::Redis, (!cfg!(feature = "redis")).then_some("redis")),
        "postgres" | "postgresql" => (Backend::Postgres, (!cfg!(feature = "postgres")).then_some("postgres")),
        // `redact_url` shows no part of a URL whose scheme is not a scheme.
        other => {
            return Err(StoreError::Config(format!(
                "store URL `{}` has an unknown scheme{} (memory, sqlite, redis, postgres)",
                redact_url(url),
                if super::redact::is_scheme(other) { format!(" `{other}`") } else { String::new() }
            )));
        }
    };
    match off {
        Some(feature) => Err(feature_off(url, feature)),
        None => Ok(backend),
    }
}

async fn open_backend(url: &str) -> Result<DynStore, StoreError> {
    match backend_of(url)? {
        Backend::Memory => Ok(Arc::new(super::memory::MemoryStore::without_sweeper())),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite(rest) => Ok(Arc::new(super::sqlite::SqliteStore::open(rest).await?)),
        #[cfg(feature = "redis")]
        Backend::Redis => Ok(Arc::new(super::redis::RedisStore::connect(url).await?)),
        #[cfg(feature = "postgres")]
        Backend::Postgres => Ok(Arc::new(super::postgres::PostgresStore::connect(url).await?)),
        // A backend whose feature is off: `backend_of` refused it already.
        #[allow(unreachable_patterns)]
        _ => Err(feature_off(url, "its backend's")),
    }
}

/// Reads a URL as [`open`] does (scheme, `purge_interval`, the backend's settings and
/// address) without opening a file or connecting: the parsing half of `open`, which the
/// fuzz target `store_url` drives (see `testing::fuzz`).
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn check(url: &str) -> Result<(), StoreError> {
    let (url, _) = take_purge_interval(url)?;
    let (url, _) = take_open_retry(&url)?;
    match backend_of(&url)? {
        Backend::Memory => Ok(()),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite(rest) => super::sqlite::SqliteStore::check_location(rest),
        #[cfg(feature = "redis")]
        Backend::Redis => super::redis::RedisStore::check_url(&url),
        #[cfg(feature = "postgres")]
        Backend::Postgres => super::postgres::PostgresStore::check_url(&url),
        // A backend whose feature is off: `backend_of` refused it already.
        #[allow(unreachable_patterns)]
        _ => Ok(()),
    }
}

fn feature_off(url: &str, feature: &str) -> StoreError {
    StoreError::Config(format!("store URL `{}` needs bot-sessions' `{feature}` feature, which is off", redact_url(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_interval_is_taken_out_of_the_query() {
        let (url, every) = take_purge_interval("sqlite://x.db?table=t&purge_interval=5").unwrap();
        assert_eq!((url.as_str(), every), ("sqlite://x.db?table=t", Some(Duration::from_secs(5))));
        let (url, every) = take_purge_interval("redis://h:1?purge_interval=off").unwrap();
        assert_eq!((url.as_str(), every), ("redis://h:1", None));
        let (url, every) = take_purge_interval("memory://").unwrap();
        assert_eq!((url.as_str(), every), ("memory://", Some(DEFAULT_PURGE_INTERVAL)));
        for bad in ["0", "-1", "soon", "999999999999999999999"] {
            let err = take_purge_interval(&format!("memory://?purge_interval={bad}")).unwrap_err();
            assert!(err.to_string().contains("purge_interval"), "{bad}: {err}");
        }
    }

    #[test]
    fn open_retry_is_taken_out_of_the_query_and_checked() {
        let (url, retry) = take_open_retry("redis://h:1?prefix=p&open_retry=0").unwrap();
        assert_eq!((url.as_str(), retry), ("redis://h:1?prefix=p", Duration::ZERO));
        let (url, retry) = take_open_retry("postgres://u@h/db?open_retry=3600&table=t").unwrap();
        assert_eq!((url.as_str(), retry), ("postgres://u@h/db?table=t", Duration::from_secs(3600)));
        assert_eq!(take_open_retry("memory://").unwrap().1, DEFAULT_OPEN_RETRY);
        for bad in ["3601", "-1", "", "soon", "1.5"] {
            let err = take_open_retry(&format!("memory://?open_retry={bad}")).unwrap_err();
            assert!(matches!(err, StoreError::Config(_)) && err.to_string().contains("open_retry"), "{bad}: {err}");
        }
    }
}
