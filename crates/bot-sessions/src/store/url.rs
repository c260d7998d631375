//! Opening a store from a URL, as the demo bot and the operator tool take it.
//!
//! | URL | store | feature |
//! | --- | --- | --- |
//! | `memory://` | [`MemoryStore`](super::memory::MemoryStore) | always |
//! | `sqlite://PATH` (`sqlite://./bot.db`, `sqlite:///var/lib/bot.db`) | `SqliteStore` | `sqlite` |
//! | `redis://HOST:PORT[/DB][?prefix=P]` | `RedisStore` | `redis` |
//! | `postgres://USER@HOST:PORT/DB[?schema=S&table=T]` | `PostgresStore` | `postgres` |

use std::sync::Arc;

use super::{DynStore, StoreError};

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
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        StoreError::Config(format!("store URL `{url}` has no scheme (memory://, sqlite://PATH, ...)"))
    })?;
    match scheme {
        "memory" => Ok(Arc::new(super::memory::MemoryStore::new())),
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
