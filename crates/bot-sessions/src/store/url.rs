//! Opening a store from a URL, as the demo bot and the operator tool take it.
//!
//! | URL | store | feature |
//! | --- | --- | --- |
//! | `memory://` | [`MemoryStore`](super::memory::MemoryStore) | always |
//! | `sqlite://PATH` (`sqlite://./bot.db`, `sqlite:///var/lib/bot.db`) | `SqliteStore` | `sqlite` |
//! | `redis://HOST:PORT[/DB][?prefix=P]` | `RedisStore` | `redis` |
//! | `postgres://USER@HOST:PORT/DB[?schema=S&table=T]` | `PostgresStore` | `postgres` |
//!
//! Every URL also takes `purge_interval=SECS` (default 60) or `purge_interval=off`: a
//! store opened here purges expired records in the background (see
//! [`spawn_purger`](super::spawn_purger)) until it is dropped.

use std::sync::Arc;
use std::time::Duration;

use super::{DEFAULT_PURGE_INTERVAL, DynStore, StoreError, spawn_purger};

/// Opens the store a URL names.
///
/// # Errors
///
/// [`StoreError::Config`] for an unknown scheme, a scheme whose feature is off, or a
/// malformed URL; backend errors when the store cannot be reached or created.
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
    let store = open_backend(&url).await?;
    if let Some(every) = purge {
        spawn_purger(&store, every);
    }
    Ok(store)
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

async fn open_backend(url: &str) -> Result<DynStore, StoreError> {
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        StoreError::Config(format!("store URL `{url}` has no scheme (memory://, sqlite://PATH, ...)"))
    })?;
    match scheme {
        "memory" => Ok(Arc::new(super::memory::MemoryStore::without_sweeper())),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(super::sqlite::SqliteStore::open(rest).await?)),
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => Err(feature_off(url, "sqlite")),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Ok(Arc::new(super::redis::RedisStore::connect(url).await?)),
        #[cfg(not(feature = "redis"))]
        "redis" | "rediss" => Err(feature_off(url, "redis")),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(super::postgres::PostgresStore::connect(url).await?)),
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(feature_off(url, "postgres")),
        other => Err(StoreError::Config(format!(
            "store URL `{url}` has unknown scheme `{other}` (memory, sqlite, redis, postgres)"
        ))),
    }
}

#[cfg_attr(all(feature = "sqlite", feature = "redis", feature = "postgres"), allow(dead_code))]
fn feature_off(url: &str, feature: &str) -> StoreError {
    StoreError::Config(format!("store URL `{url}` needs bot-sessions' `{feature}` feature, which is off"))
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
}
