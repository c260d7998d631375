//! The store's settings: the builder, their ranges, and the `sqlite://` URL's form of
//! them.

use std::time::Duration;

use super::schema::TableName;
use crate::StoreError;
use crate::store::near_cache::CacheConfig;

/// How hard a commit works to survive a crash, set with [`SqliteOptions::durability`].
///
/// With either setting a write that returned `Ok` survives the *process* being killed
/// (even with `SIGKILL`) and the file stays consistent: the commit is in the WAL, in the
/// operating system's cache, before it is acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `PRAGMA synchronous = NORMAL` (the default). The WAL is synced to disk at
    /// checkpoints, not on every commit. Risk: an operating-system crash or a power
    /// loss can lose the last acknowledged commits (those since the last checkpoint);
    /// the database stays consistent, it just moves back in time. The fast choice for
    /// sessions that a user can redo.
    #[default]
    Normal,
    /// `PRAGMA synchronous = FULL`. The WAL is synced (`fsync`) on every commit before
    /// any write in it is acknowledged, so acknowledged writes also survive a power
    /// loss, provided the disk honours `fsync`. Group commit pays one sync per batch,
    /// not one per write, but each batch waits for the disk.
    Full,
}

impl Durability {
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// Settings of a [`SqliteStore`](super::SqliteStore); start with
/// [`SqliteStore::builder`](super::SqliteStore::builder).
///
/// Every setting is checked by [`open`](Self::open): a value out of its documented
/// range is a [`StoreError::Config`] there, never a panic or a failure later.
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteOptions {
    pub(super) table: String,
    pub(super) durability: Durability,
    pub(super) busy_timeout: Duration,
    pub(super) max_batch: usize,
    pub(super) max_idle_readers: usize,
    pub(super) load_threads: usize,
    pub(super) purge_batch: usize,
    pub(super) near_cache: Option<CacheConfig>,
    pub(super) pipelined: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            table: SqliteOptions::DEFAULT_TABLE.into(),
            durability: Durability::default(),
            busy_timeout: Duration::from_secs(5),
            max_batch: 256,
            max_idle_readers: 8,
            load_threads: 4,
            purge_batch: 500,
            near_cache: Some(SqliteOptions::DEFAULT_NEAR_CACHE),
            pipelined: true,
        }
    }
}

impl SqliteOptions {
    /// The table name used unless [`table`](Self::table) says otherwise.
    pub const DEFAULT_TABLE: &'static str = "bot_sessions";
    /// The largest [`busy_timeout`](Self::busy_timeout): one hour.
    pub const MAX_BUSY_TIMEOUT: Duration = Duration::from_secs(3600);
    /// The largest [`max_batch`](Self::max_batch): 4096 writes per transaction.
    pub const MAX_BATCH: usize = 4096;
    /// The largest [`max_idle_readers`](Self::max_idle_readers): 256 connections.
    pub const MAX_IDLE_READERS: usize = 256;
    /// The largest [`load_threads`](Self::load_threads): 64 threads.
    pub const MAX_LOAD_THREADS: usize = 64;
    /// The largest [`purge_batch`](Self::purge_batch): 100,000 records per transaction.
    pub const MAX_PURGE_BATCH: usize = 100_000;
    /// The bounds of the near cache each [`Sessions`](crate::Sessions) on this store
    /// gets by default: 10,000 records, 16 MiB. The sessions a bot is busy with, not
    /// every session it holds: a key that fell out costs one load, as without a cache.
    pub const DEFAULT_NEAR_CACHE: CacheConfig = CacheConfig::new(10_000, 16 << 20);

    /// The table that holds the sessions (default `bot_sessions`). Several stores with
    /// different tables can share one file. Validated on [`open`](Self::open): 1 to 64
    /// characters from `[A-Za-z0-9_]`, not starting with a digit or `sqlite_`, not
    /// ending in `_purger` (the suffix of the table's purge-lease table).
    pub fn table(mut self, name: &str) -> Self {
        name.clone_into(&mut self.table);
        self
    }

    /// What an acknowledged write survives (default [`Durability::Normal`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How long to wait for another process that holds the write lock before failing
    /// with a retryable error (default 5 s; at most [`MAX_BUSY_TIMEOUT`](Self::MAX_BUSY_TIMEOUT),
    /// whole milliseconds count).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The most writes committed in one transaction (default 256; from 1, which turns
    /// group commit off, to [`MAX_BATCH`](Self::MAX_BATCH)).
    pub fn max_batch(mut self, writes: usize) -> Self {
        self.max_batch = writes;
        self
    }

    /// How many idle read connections are kept open (default 8; at most
    /// [`MAX_IDLE_READERS`](Self::MAX_IDLE_READERS)). More are opened while more reads
    /// run at once, and closed afterwards.
    pub fn max_idle_readers(mut self, connections: usize) -> Self {
        self.max_idle_readers = connections;
        self
    }

    /// How many threads serve point loads, each with its own read-only connection
    /// (default 4; from 1 to [`MAX_LOAD_THREADS`](Self::MAX_LOAD_THREADS)). A load
    /// waiting out another process's lock holds up one of them.
    pub fn load_threads(mut self, threads: usize) -> Self {
        self.load_threads = threads;
        self
    }

    /// The most expired records one purge transaction deletes (default 500; from 1 to
    /// [`MAX_PURGE_BATCH`](Self::MAX_PURGE_BATCH)). A purge runs chunk after chunk, and
    /// the writes queued meanwhile are committed between two chunks.
    pub fn purge_batch(mut self, records: usize) -> Self {
        self.purge_batch = records;
        self
    }

    /// The [near cache](crate::store::near_cache) each [`Sessions`](crate::Sessions)
    /// built on this store puts in front of it (default
    /// [`DEFAULT_NEAR_CACHE`](Self::DEFAULT_NEAR_CACHE)): an update of a key this
    /// process wrote last skips its load and goes straight to the compare-and-set, one
    /// SQLite transaction instead of two.
    ///
    /// On by default because an SQLite file is most often one bot process's: its
    /// cached copies are then always current. Another process writing the same keys
    /// (or the operator tool) stays safe, since every write is a compare-and-set on the
    /// record's version: a stale copy fails it, and the update loads and runs again at
    /// once (a key that meets such a conflict is loaded for a second before the cache
    /// serves it again). A [`Sessions`](crate::Sessions) can still choose its own
    /// ([`near_cache`](crate::session::SessionsBuilder::near_cache)) or none
    /// ([`without_near_cache`](crate::session::SessionsBuilder::without_near_cache)).
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::store::{near_cache::CacheConfig, sqlite::SqliteStore};
    ///
    /// let small = SqliteStore::builder().near_cache(CacheConfig::default().max_entries(1_000));
    /// let none = SqliteStore::builder().without_near_cache();
    /// # let _ = (small, none);
    /// ```
    pub fn near_cache(mut self, config: CacheConfig) -> Self {
        self.near_cache = Some(config);
        self
    }

    /// Pipelined updates of one key (on by default; the URL's `pipelined=on|off`): an
    /// update lets its key go once its write is queued in the writer thread, and the
    /// next update of the key runs on the queued value and compare-and-sets over the
    /// queued version, so a hot chat's updates can share one transaction instead of
    /// one commit each. Nothing returns before its own write and every write it built
    /// on are committed; a failed write fails the chain built on it, and each of those
    /// updates runs again on the committed value (see [`Store::pipeline`](crate::Store::pipeline)).
    ///
    /// Turn it off to make every update of a key wait for the previous one's commit
    /// (the behaviour of the other backends), e.g. to compare the two.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), bot_sessions::StoreError> {
    /// use bot_sessions::store::sqlite::SqliteStore;
    ///
    /// let store = SqliteStore::builder().pipelined_updates(false).open("bot.db").await?;
    /// // The same through a URL:
    /// let same = bot_sessions::store::open("sqlite://bot.db?pipelined=off").await?;
    /// # let _ = (store, same);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pipelined_updates(mut self, on: bool) -> Self {
        self.pipelined = on;
        self
    }

    /// No near cache by default: every update on this store loads its key first
    /// (the URL's `near_cache=off`). See [`near_cache`](Self::near_cache).
    pub fn without_near_cache(mut self) -> Self {
        self.near_cache = None;
        self
    }

    /// Checks every setting against its documented range.
    pub(super) fn check(&self) -> Result<TableName, StoreError> {
        let table = TableName::new(&self.table)?;
        let out_of_range = |name: &str, value: &dyn std::fmt::Debug, range: &str| {
            Err(StoreError::Config(format!("sqlite setting {name} = {value:?} is out of range ({range})")))
        };
        if self.busy_timeout > Self::MAX_BUSY_TIMEOUT {
            return out_of_range("busy_timeout", &self.busy_timeout, "at most 1 hour");
        }
        if !(1..=Self::MAX_BATCH).contains(&self.max_batch) {
            return out_of_range("max_batch", &self.max_batch, "1 to 4096");
        }
        if self.max_idle_readers > Self::MAX_IDLE_READERS {
            return out_of_range("max_idle_readers", &self.max_idle_readers, "0 to 256");
        }
        if !(1..=Self::MAX_LOAD_THREADS).contains(&self.load_threads) {
            return out_of_range("load_threads", &self.load_threads, "1 to 64");
        }
        if !(1..=Self::MAX_PURGE_BATCH).contains(&self.purge_batch) {
            return out_of_range("purge_batch", &self.purge_batch, "1 to 100000");
        }
        if let Some(config) = &self.near_cache {
            config.check()?;
        }
        Ok(table)
    }
}

/// The settings a `sqlite://` URL takes.
const KNOWN_SETTINGS: [&str; 9] = [
    "table",
    "durability",
    "busy_timeout_ms",
    "max_batch",
    "max_idle_readers",
    "load_threads",
    "purge_batch",
    "near_cache",
    "pipelined",
];

pub(super) fn parse_location(location: &str) -> Result<(&str, SqliteOptions), StoreError> {
    let (path, query) = location.split_once('?').unwrap_or((location, ""));
    let mut options = SqliteOptions::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        // The path and this setting are shown, never the rest of the query: a URL
        // written for another backend may carry a password there.
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let known = KNOWN_SETTINGS.contains(&name);
        let shown = if known { pair } else { name };
        let bad = |why: &str| StoreError::Config(format!("sqlite setting `{shown}` of `{path}`: {why}"));
        if !pair.contains('=') {
            return Err(bad("expected NAME=VALUE"));
        }
        let number = || value.parse::<u64>().map_err(|_| bad("expected a whole number"));
        // Too large for this machine is as out of range as too large for the setting,
        // which `SqliteOptions::check` reports when the store opens.
        let count = || number().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        options = match name {
            "table" => options.table(value),
            "durability" => match value {
                "normal" => options.durability(Durability::Normal),
                "full" => options.durability(Durability::Full),
                _ => return Err(bad("expected `normal` or `full`")),
            },
            "busy_timeout_ms" => options.busy_timeout(Duration::from_millis(number()?)),
            "max_batch" => options.max_batch(count()?),
            "max_idle_readers" => options.max_idle_readers(count()?),
            "load_threads" => options.load_threads(count()?),
            "purge_batch" => options.purge_batch(count()?),
            "near_cache" => match value {
                "on" => options.near_cache(SqliteOptions::DEFAULT_NEAR_CACHE),
                "off" => options.without_near_cache(),
                _ => return Err(bad("expected `on` or `off`")),
            },
            "pipelined" => match value {
                "on" => options.pipelined_updates(true),
                "off" => options.pipelined_updates(false),
                _ => return Err(bad("expected `on` or `off`")),
            },
            _ => {
                return Err(bad(
                    "unknown setting (table, durability, busy_timeout_ms, max_batch, max_idle_readers, load_threads, \
                     purge_batch, near_cache, pipelined)",
                ));
            }
        };
    }
    Ok((path, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_with_settings() {
        let (path, o) = parse_location("./bot.db").unwrap();
        assert_eq!(path, "./bot.db");
        assert_eq!(o.table, SqliteOptions::DEFAULT_TABLE);
        let (path, o) = parse_location(
            "/var/lib/bot.db?table=s1&durability=full&busy_timeout_ms=250&max_batch=1&max_idle_readers=2&purge_batch=9\
             &load_threads=3",
        )
        .unwrap();
        assert_eq!(path, "/var/lib/bot.db");
        assert_eq!(
            (o.table.as_str(), o.durability, o.busy_timeout, o.max_batch, o.max_idle_readers, o.purge_batch),
            ("s1", Durability::Full, Duration::from_millis(250), 1, 2, 9)
        );
        assert_eq!(o.load_threads, 3);
        assert!(o.pipelined, "pipelined updates are on by default");
        assert!(o.check().is_ok());
        assert!(!parse_location("x.db?pipelined=off").unwrap().1.pipelined);
        assert!(parse_location("x.db?pipelined=on").unwrap().1.pipelined);
        for bad in [
            "x.db?durability=sometimes",
            "x.db?pipelined=yes",
            "x.db?busy_timeout_ms=soon",
            "x.db?nope=1",
            "x.db?table",
            "x.db?max_batch=-1",
        ] {
            assert!(matches!(parse_location(bad), Err(StoreError::Config(_))), "{bad}");
        }
        // Parsed, but out of range: refused when the store opens.
        let (_, o) =
            parse_location("x.db?max_batch=18446744073709551615&busy_timeout_ms=18446744073709551615").unwrap();
        assert!(matches!(o.check(), Err(StoreError::Config(m)) if m.contains("busy_timeout")));
    }
}
