//! The SQLite store (feature `sqlite`): sessions in one local file, no server to run.
//!
//! - **WAL** journal: readers never wait for the writer, and several processes can
//!   share the file.
//! - **One writer per store** (a dedicated thread with its own connection) applies
//!   every mutation inside `BEGIN IMMEDIATE`, batching concurrent writes into one
//!   transaction (group commit) while checking each one's precondition; a write is
//!   acknowledged only after its batch committed. Across processes, SQLite's write lock
//!   serializes the writers and compare-and-set catches lost races.
//! - **Reads** never run on an async worker thread: SQLite calls block (opening a
//!   connection, waiting out a lock, reading pages). Point loads go to a few dedicated
//!   load threads ([`load_threads`](SqliteOptions::load_threads)), each with its own
//!   read-only connection; scans and counts, which can take long, run on tokio's
//!   blocking pool with a small pool of read-only connections.
//! - **Purges** delete at most [`purge_batch`](SqliteOptions::purge_batch) records per
//!   transaction, with the writes queued meanwhile committed between two chunks, so a
//!   backlog after downtime never holds the write lock for all of it. The background
//!   purge ([`Store::purge_expired_background`], what a store opened by URL runs every
//!   minute) takes a lease in the table `<table>_purger` first, so only one process
//!   sharing the file purges at a time; the others skip the round.
//! - **Bad rows**: a value stored as TEXT (an operator's manual `UPDATE`) loads as its
//!   UTF-8 bytes, so the session type's decode policy decides. Metadata of the wrong
//!   type (a version that is text or negative, a timestamp that is not an integer) is
//!   a [`StoreError::Corrupt`] naming the key on load; scan and count skip such rows
//!   (logged with `tracing::warn!` and counted, see [`SqliteStore::corrupt_rows_seen`]);
//!   forget-user erases them with the rest of the user's records; an unconditional
//!   write or delete replaces or removes them.
//! - **Schema**: the store creates its table and indexes (user id for
//!   [`forget_user`](Store::forget_user), expiry for
//!   [`purge_expired`](Store::purge_expired), namespace for scans) and records the
//!   table's schema version in `bot_sessions_schema`, upgrading in order on open. A
//!   table written by newer code is refused, untouched.
//! - **Durability**: see [`Durability`].
//! - **Unknown outcomes**: only when `COMMIT` itself fails (other than busy) or the
//!   writer took a request and never answered is a write [`StoreError::Ambiguous`];
//!   every other failure happens before anything is applied or is rolled back.
//!
//! # Examples
//!
//! ```
//! use bot_sessions::store::sqlite::{Durability, SqliteStore};
//! use std::time::Duration;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let dir = std::env::temp_dir().join(format!("bot-sessions-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("bot.db");
//! let store = SqliteStore::builder()
//!     .table("sessions")
//!     .durability(Durability::Full)
//!     .busy_timeout(Duration::from_secs(10))
//!     .open(&path)
//!     .await?;
//! store.close().await;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), bot_sessions::StoreError>(())
//! # }).unwrap();
//! ```

mod notify;
mod reader;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use self::reader::LoadThreads;
use self::schema::{Sql, TableName, UpgradeError};
use self::writer::{Op, Settings, Shutdown, Writer};
use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

const BACKEND: &str = "sqlite";

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
    fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// Settings of a [`SqliteStore`]; start with [`SqliteStore::builder`].
///
/// Every setting is checked by [`open`](Self::open): a value out of its documented
/// range is a [`StoreError::Config`] there, never a panic or a failure later.
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteOptions {
    table: String,
    durability: Durability,
    busy_timeout: Duration,
    max_batch: usize,
    max_idle_readers: usize,
    load_threads: usize,
    purge_batch: usize,
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

    /// Checks every setting against its documented range.
    fn check(&self) -> Result<TableName, StoreError> {
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
        Ok(table)
    }

    /// Opens (creating if needed) the database file at `path`, creates or upgrades the
    /// table, and starts the writer thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for an invalid table name, a setting out of range, a
    /// table written by newer code or a file that cannot use WAL;
    /// [`StoreError::Backend`] when the file cannot be opened or the schema cannot be
    /// written (retryable if another process held the lock past the busy timeout).
    pub async fn open(self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let table = self.check()?;
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || self.open_blocking(table, path))
            .await
            .map_err(|e| StoreError::backend(BACKEND, None, false, e))?
    }

    fn open_blocking(self, table: TableName, path: PathBuf) -> Result<SqliteStore, StoreError> {
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Err(StoreError::Config(format!(
                "sqlite store needs a file path, not {path:?} (use memory:// for a store in memory)"
            )));
        }
        let shown = path.display().to_string();
        let err = |e: rusqlite::Error| sqlite_error(None, &e, format!("opening {shown}: {e}"));
        let mut conn = connect(&path, self.busy_timeout).map_err(err)?;
        let mode = enable_wal(&conn, self.busy_timeout).map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Config(format!(
                "{} cannot use the WAL journal (got `{mode}`); is it on a network file system?",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", self.durability.pragma()).map_err(err)?;
        match schema::upgrade(&mut conn, &table, schema::STEPS) {
            Ok(_) => {}
            Err(UpgradeError::Newer { found, known }) => {
                return Err(StoreError::Config(format!(
                    "table `{}` in {} has schema version {found}, newer than the {known} this code knows; \
                     it was left untouched",
                    table.as_str(),
                    path.display()
                )));
            }
            Err(UpgradeError::Sqlite(e)) => return Err(err(e)),
        }
        let sql = Arc::new(Sql::new(&table));
        let listener = notify::SqliteNotices::new(path.clone(), self.busy_timeout, table.as_str());
        let notices = crate::store::notify::Notices::with_transport(listener);
        let corruption = Arc::new(Corruption::default());
        let readers = Readers {
            path,
            busy_timeout: self.busy_timeout,
            max_idle: self.max_idle_readers,
            idle: Mutex::default(),
            #[cfg(test)]
            threads: Arc::default(),
        };
        // Open one reader now so a broken file shows up here rather than on first use.
        let first = readers.connect().map_err(err)?;
        readers.put(first);
        let connections =
            (0..self.load_threads).map(|_| readers.connect()).collect::<rusqlite::Result<Vec<_>>>().map_err(err)?;
        let loads = LoadThreads::spawn(connections)?;
        let settings = Settings {
            sql: sql.clone(),
            max_batch: self.max_batch,
            purge_batch: self.purge_batch,
            busy_timeout: self.busy_timeout,
            corruption: corruption.clone(),
        };
        let writer = Writer::spawn(conn, settings)?;
        Ok(SqliteStore {
            shared: Arc::new(Shared {
                sql,
                writer,
                loads,
                readers,
                table: table.as_str().to_owned(),
                corruption,
                lease_holder: rand::random_range(1..=i64::MAX),
                notices,
            }),
        })
    }
}

/// Switches the file to WAL and returns the journal mode it ends up in.
///
/// Switching needs an exclusive lock that SQLite does not wait for with its busy
/// timeout, so several processes opening a new file at once would fail: only switch
/// when the file is not in WAL yet, and retry a busy switch until the timeout.
fn enable_wal(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<String> {
    let deadline = std::time::Instant::now() + busy_timeout;
    loop {
        let current: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if current.eq_ignore_ascii_case("wal") {
            return Ok(current);
        }
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") || std::time::Instant::now() >= deadline => return Ok(mode),
            Err(e) if !writer::is_busy(&e) || std::time::Instant::now() >= deadline => return Err(e),
            // Busy, or another process is switching right now: look again shortly.
            Ok(_) | Err(_) => std::thread::sleep(Duration::from_millis(rand::random_range(1..=5))),
        }
    }
}

fn connect(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // Bounded by `SqliteOptions::check`, so rusqlite's conversion cannot panic.
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

/// Idle read connections.
#[derive(Debug)]
struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
    /// The threads reads ran on (tests check that none is an async worker).
    #[cfg(test)]
    threads: Arc<Mutex<Vec<std::thread::ThreadId>>>,
}

impl Readers {
    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = connect(&self.path, self.busy_timeout)?;
        // Reads only: a bug here cannot write behind the writer's back.
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn put(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    /// Runs `f` on an idle (or new) read connection. Blocking: call it on a blocking
    /// thread.
    fn with<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> rusqlite::Result<R> {
        #[cfg(test)]
        self.threads.lock().unwrap_or_else(|p| p.into_inner()).push(std::thread::current().id());
        let conn = self.take()?;
        let out = f(&conn);
        self.put(conn);
        out
    }
}

/// Rows whose metadata does not parse, as scans, counts and forget-user meet them.
#[derive(Debug, Default)]
pub(super) struct Corruption {
    seen: AtomicU64,
}

impl Corruption {
    /// Logs a corrupt row under `key` and what was done about it, and counts it.
    fn report(&self, key: &str, reason: &str, outcome: &str) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(backend = BACKEND, key, reason, "corrupt session record {outcome}");
    }

    /// Counts `n` corrupt rows that an aggregate skipped without naming them.
    fn report_many(&self, n: u64, outcome: &str) {
        if n > 0 {
            self.seen.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(backend = BACKEND, rows = n, "corrupt session records {outcome}");
        }
    }
}

#[derive(Debug)]
struct Shared {
    sql: Arc<Sql>,
    writer: Writer,
    loads: LoadThreads,
    readers: Readers,
    table: String,
    corruption: Arc<Corruption>,
    /// This store's id in the purge lease table.
    lease_holder: i64,
    /// End notices, through a table of their own polled by a thread of their own.
    notices: crate::store::notify::Notices,
}

impl Shared {
    /// Everything closing the store involves, to run where blocking is fine: the writer
    /// commits its queue and closes its connection, the load threads end, then the
    /// read connections close. `None` once taken.
    fn teardown(&mut self) -> Option<impl FnOnce() + Send + 'static> {
        let writer: Shutdown = self.writer.shutdown()?;
        let loads = self.loads.shutdown();
        let readers = std::mem::take(&mut *self.readers.idle.lock().unwrap_or_else(|p| p.into_inner()));
        Some(move || {
            writer.run();
            if let Some(loads) = loads {
                loads.run();
            }
            drop(readers);
        })
    }
}

impl Drop for Shared {
    /// Never blocks an async worker: inside a tokio runtime the teardown (waiting for
    /// the writer to commit what is queued, closing the file) goes to the blocking
    /// pool. If the runtime is shutting down and cannot take it, the writer thread is
    /// left to finish its queue on its own (it is signalled either way).
    fn drop(&mut self) {
        let Some(teardown) = self.teardown() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(teardown)),
            Err(_) => teardown(),
        }
    }
}

/// A [`Store`] in an SQLite file. See the [module docs](self) for how it works.
///
/// Cheap to clone; the clones share the writer thread and the read connections.
/// Dropping the last clone signals the writer, which commits the writes still queued
/// and closes the file; inside a tokio runtime that happens on the blocking pool, so
/// the drop itself never waits. [`close`](Self::close) waits for it.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

impl SqliteStore {
    /// Opens the database at `location` with default settings, optionally followed by
    /// `?` and settings: `table=NAME`, `durability=normal|full`, `busy_timeout_ms=N`,
    /// `max_batch=N`, `max_idle_readers=N`, `load_threads=N`, `purge_batch=N` (ranges as on
    /// [`SqliteOptions`]). This is what [`store::open`](crate::store::open) calls with
    /// what follows `sqlite://` (so `sqlite://./bot.db?durability=full`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for an unknown, malformed or out-of-range setting;
    /// otherwise as [`SqliteOptions::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let path = std::env::temp_dir().join(format!("bot-sessions-open-doc-{}.db", std::process::id()));
    /// let url = format!("sqlite://{}?durability=full&table=sessions", path.display());
    /// let store = bot_sessions::store::open(&url).await?;
    /// assert!(bot_sessions::store::open("sqlite://./x.db?colour=blue").await.is_err());
    /// assert!(bot_sessions::store::open("sqlite://./x.db?max_batch=99999999999").await.is_err());
    /// # drop(store);
    /// # for ext in ["", "-wal", "-shm"] { std::fs::remove_file(format!("{}{ext}", path.display())).ok(); }
    /// # Ok::<(), bot_sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        let (path, options) = parse_location(location)?;
        options.open(path).await
    }

    /// The checks of [`SqliteStore::open`] that need no file: the location's settings.
    pub(crate) fn check_location(location: &str) -> Result<(), StoreError> {
        parse_location(location)?.1.check().map(drop)
    }

    /// Settings to open a store with.
    pub fn builder() -> SqliteOptions {
        SqliteOptions::default()
    }

    /// The table the sessions live in.
    pub fn table(&self) -> &str {
        &self.shared.table
    }

    /// How many corrupt rows (metadata that does not parse) this store has met while
    /// scanning, counting, forgetting users or overwriting them since it was opened;
    /// each one is also logged with `tracing::warn!`. Loads report theirs as
    /// [`StoreError::Corrupt`] instead.
    pub fn corrupt_rows_seen(&self) -> u64 {
        self.shared.corruption.seen.load(Ordering::Relaxed)
    }

    /// Closes the store if this is its last handle, waiting (on the blocking pool)
    /// until the writer committed what is queued and the file is closed; with other
    /// handles alive it only drops this one.
    pub async fn close(self) {
        if let Some(mut shared) = Arc::into_inner(self.shared)
            && let Some(teardown) = shared.teardown()
        {
            // The rest of `shared` has nothing left that blocks.
            drop(shared);
            if let Err(e) = tokio::task::spawn_blocking(teardown).await {
                tracing::error!(error = %e, "closing the sqlite store failed");
            }
        }
    }

    async fn mutate(&self, op: Op, now: Timestamp) -> Result<u64, StoreError> {
        self.shared.writer.submit(op, now).await
    }

    /// Runs a read on the blocking pool; SQLite errors name `key` if given.
    async fn read<R: Send + 'static>(
        &self,
        key: Option<String>,
        f: impl FnOnce(&Connection, &Shared) -> rusqlite::Result<Result<R, StoreError>> + Send + 'static,
    ) -> Result<R, StoreError> {
        let shared = self.shared.clone();
        let outcome = tokio::task::spawn_blocking(move || shared.readers.with(|conn| f(conn, &shared)))
            .await
            .map_err(|e| StoreError::backend(BACKEND, key.as_deref(), false, e))?;
        outcome.map_err(|e| sqlite_error(key.as_deref(), &e, e.to_string()))?
    }
}

/// The settings a `sqlite://` URL takes.
const KNOWN_SETTINGS: [&str; 7] =
    ["table", "durability", "busy_timeout_ms", "max_batch", "max_idle_readers", "load_threads", "purge_batch"];

fn parse_location(location: &str) -> Result<(&str, SqliteOptions), StoreError> {
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
            _ => {
                return Err(bad(
                    "unknown setting (table, durability, busy_timeout_ms, max_batch, max_idle_readers, load_threads, \
                     purge_batch)",
                ));
            }
        };
    }
    Ok((path, options))
}

/// Maps an SQLite error: busy and locked databases are worth retrying, the rest is not.
fn sqlite_error(key: Option<&str>, e: &rusqlite::Error, message: String) -> StoreError {
    use rusqlite::ErrorCode;
    let retryable = matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked));
    StoreError::backend(BACKEND, key, retryable, message)
}

/// SQLite's name for the type of a stored value.
fn type_name(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    }
}

/// Reads one record from a row of `value, version, schema_version, created_at,
/// updated_at, expires_at, user_id` starting at column `at`. The outer error is
/// SQLite's; the inner one says which column does not parse (the row is corrupt).
fn record(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Result<Record, String>> {
    let mut columns = [ValueRef::Null; 7];
    for (i, column) in columns.iter_mut().enumerate() {
        *column = row.get_ref(at + i)?;
    }
    Ok(parse_record(columns))
}

/// A record from its seven columns (see [`record`]), or what does not parse.
///
/// The value is whatever bytes are stored: a BLOB as it is, TEXT as its UTF-8 bytes
/// (an operator's manual `UPDATE ... SET value = '...'`), so the session type's
/// decode policy gets to judge them.
pub(crate) fn parse_record(columns: [ValueRef<'_>; 7]) -> Result<Record, String> {
    let [value, version, schema_version, created_at, updated_at, expires_at, user_id] = columns;
    let optional = |column: ValueRef<'_>, name: &str| match column {
        ValueRef::Integer(v) => Ok(Some(v)),
        ValueRef::Null => Ok(None),
        other => Err(format!("{name} is {}, not an integer", type_name(other))),
    };
    let required = |column: ValueRef<'_>, name: &str| optional(column, name)?.ok_or(format!("{name} is NULL"));
    let value = match value {
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => bytes.to_vec(),
        other => return Err(format!("value is {}, not bytes", type_name(other))),
    };
    let version = required(version, "version")?;
    let schema_version = required(schema_version, "schema_version")?;
    Ok(Record {
        value,
        version: u64::try_from(version).map_err(|_| format!("negative version {version}"))?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| format!("schema version {schema_version} out of range"))?,
        created_at: Timestamp(required(created_at, "created_at")?),
        updated_at: Timestamp(required(updated_at, "updated_at")?),
        expires_at: optional(expires_at, "expires_at")?.map(Timestamp),
        user_id: optional(user_id, "user_id")?,
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn notices(&self) -> Option<crate::store::notify::Notices> {
        Some(self.shared.notices.clone())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        let (owned, sql) = (key.clone(), self.shared.sql.clone());
        #[cfg(test)]
        let threads = self.shared.readers.threads.clone();
        let found = self
            .shared
            .loads
            .run(move |conn| {
                #[cfg(test)]
                threads.lock().unwrap_or_else(|p| p.into_inner()).push(std::thread::current().id());
                conn.prepare_cached(&sql.load)?
                    .query_row(params![owned.as_str(), now.as_millis()], |row| record(row, 0))
                    .optional()
            })
            .await
            .ok_or_else(|| StoreError::backend(BACKEND, Some(key.as_str()), false, "the sqlite load threads stopped"))?
            .map_err(|e| sqlite_error(Some(key.as_str()), &e, e.to_string()))?;
        found.transpose().map_err(|reason| StoreError::Corrupt { key: key.to_string(), reason })
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let op = Op::Write {
            key: key.clone(),
            value: write.value.to_vec(),
            schema_version: write.schema_version,
            expires_at: write.expires_at,
            version: write.version,
            owner: write.owner,
            precondition,
        };
        self.mutate(op, now).await
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self.mutate(Op::Delete { key: key.clone(), precondition }, now).await? == 1)
    }

    /// Deletes every row indexed under `user_id`, corrupt ones included (an erasure
    /// leaves nothing behind; a row whose expiry does not parse counts as live and is
    /// reported).
    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.mutate(Op::ForgetUser { user_id }, now).await
    }

    /// Lists live records; a row that does not parse is skipped and reported (see
    /// [`SqliteStore::corrupt_rows_seen`]), so a page may hold fewer than `limit`
    /// records while `next` says there are more.
    async fn scan(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        if limit == 0 {
            return Ok(Page::default());
        }
        let namespace = namespace.as_str().to_owned();
        let cursor = cursor.unwrap_or_default().to_owned();
        // One row more than asked says whether there is a next page.
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        self.read(None, move |conn, shared| {
            let mut stmt = conn.prepare_cached(&shared.sql.scan)?;
            let mut rows = stmt.query(params![namespace, cursor, now.as_millis(), fetch])?;
            let mut items = Vec::new();
            let (mut seen, mut last, mut more) = (0usize, None::<String>, false);
            while let Some(row) = rows.next()? {
                if seen == limit {
                    more = true;
                    break;
                }
                seen += 1;
                // Keys are TEXT; anything else sorts after every text key, so the scan
                // ends there (and skips it).
                let ValueRef::Text(text) = row.get_ref(0)? else {
                    shared.corruption.report("(not text)", "the key is not TEXT", "skipped by a scan");
                    last = None;
                    continue;
                };
                let text = String::from_utf8_lossy(text).into_owned();
                last = Some(text.clone());
                let parsed = text.parse::<SessionKey>().map_err(|e| e.to_string());
                match parsed.and_then(|key| record(row, 1).map_err(|e| e.to_string())?.map(|r| (key, r))) {
                    Ok(item) => items.push(item),
                    Err(reason) => shared.corruption.report(&text, &reason, "skipped by a scan"),
                }
            }
            let next = if more { last } else { None };
            Ok(Ok(Page { items, next }))
        })
        .await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.mutate(Op::Purge { lease_holder: None }, now).await
    }

    /// Purges only while holding the lease in `<table>_purger` (taken or renewed in
    /// each chunk's transaction, released at the end): while another store, in this
    /// process or another, holds a live lease, this round is skipped (`Ok(0)`).
    async fn purge_expired_background(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.mutate(Op::Purge { lease_holder: Some(self.shared.lease_holder) }, now).await
    }

    /// Counts live records; rows whose metadata does not parse are not counted (they
    /// are reported, see [`SqliteStore::corrupt_rows_seen`]).
    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        let namespace = namespace.map(|n| n.as_str().to_owned());
        self.read(None, move |conn, shared| {
            let pair = |r: &rusqlite::Row<'_>| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?));
            let (good, bad) = match &namespace {
                Some(ns) => {
                    conn.prepare_cached(&shared.sql.count_namespace)?.query_row(params![now.as_millis(), ns], pair)?
                }
                None => conn.prepare_cached(&shared.sql.count)?.query_row([now.as_millis()], pair)?,
            };
            shared.corruption.report_many(u64::try_from(bad).unwrap_or(0), "skipped by a count");
            Ok(Ok(u64::try_from(good).unwrap_or(0)))
        })
        .await
    }

    async fn namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        self.read(None, move |conn, shared| {
            let mut stmt = conn.prepare_cached(&shared.sql.namespaces)?;
            let mut rows = stmt.query([now.as_millis()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let ValueRef::Text(text) = row.get_ref(0)? else { continue };
                match Namespace::new_unchecked_reserved(&String::from_utf8_lossy(text)) {
                    Ok(ns) => out.push(ns),
                    Err(e) => shared.corruption.report("(namespace)", &e.to_string(), "skipped by namespaces"),
                }
            }
            Ok(Ok(out))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scope;

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
        assert!(o.check().is_ok());
        for bad in
            ["x.db?durability=sometimes", "x.db?busy_timeout_ms=soon", "x.db?nope=1", "x.db?table", "x.db?max_batch=-1"]
        {
            assert!(matches!(parse_location(bad), Err(StoreError::Config(_))), "{bad}");
        }
        // Parsed, but out of range: refused when the store opens.
        let (_, o) =
            parse_location("x.db?max_batch=18446744073709551615&busy_timeout_ms=18446744073709551615").unwrap();
        assert!(matches!(o.check(), Err(StoreError::Config(m)) if m.contains("busy_timeout")));
    }

    fn columns<'a>(value: ValueRef<'a>, version: ValueRef<'a>) -> [ValueRef<'a>; 7] {
        use ValueRef::{Integer, Null};
        [value, version, Integer(1), Integer(10), Integer(20), Null, Integer(5)]
    }

    #[test]
    fn text_values_are_their_bytes_and_bad_metadata_is_named() {
        use ValueRef::{Blob, Integer, Null, Real, Text};
        let r = parse_record(columns(Text(b"abc"), Integer(7))).unwrap();
        assert_eq!((r.value.as_slice(), r.version, r.user_id), (&b"abc"[..], 7, Some(5)));
        assert_eq!(parse_record(columns(Blob(b"\x00\xff"), Integer(1))).unwrap().value, b"\x00\xff");
        for (cols, reason) in [
            (columns(Integer(42), Integer(1)), "value is INTEGER"),
            (columns(Null, Integer(1)), "value is NULL"),
            (columns(Blob(b""), Text(b"7")), "version is TEXT"),
            (columns(Blob(b""), Integer(-1)), "negative version"),
            (columns(Blob(b""), Null), "version is NULL"),
            (columns(Blob(b""), Real(1.0)), "version is REAL"),
        ] {
            let err = parse_record(cols).unwrap_err();
            assert!(err.contains(reason), "{err} lacks {reason}");
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "bot-sessions-unit-{name}-{}-{:016x}.db",
            std::process::id(),
            rand::random::<u64>()
        ))
    }

    fn remove(path: &Path) {
        for ext in ["", "-wal", "-shm"] {
            std::fs::remove_file(format!("{}{ext}", path.display())).ok();
        }
    }

    /// Loads, scans and counts run their SQLite calls on the blocking pool, never on
    /// the async worker that awaits them (a load used to run on the caller's thread,
    /// where a busy or slow file stalled the whole runtime).
    #[tokio::test]
    async fn reads_never_run_on_the_async_worker() {
        let path = temp_path("reads");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let worker = std::thread::current().id();
        let ns = Namespace::new("reads").unwrap();
        let key = SessionKey::new(ns.clone(), Scope::Chat(1));
        let t = Timestamp::now();
        store.write(&key, Write::new(b"{}", 1, None), Precondition::Absent, t).await.unwrap();
        assert!(store.load(&key, t).await.unwrap().is_some());
        assert_eq!(store.scan(&ns, None, 10, t).await.unwrap().items.len(), 1);
        assert_eq!(store.count(Some(&ns), t).await.unwrap(), 1);
        let threads = store.shared.readers.threads.lock().unwrap().clone();
        assert_eq!(threads.len(), 3, "three reads");
        assert!(threads.iter().all(|t| *t != worker), "a read ran on the async worker");
        store.close().await;
        remove(&path);
    }
}
