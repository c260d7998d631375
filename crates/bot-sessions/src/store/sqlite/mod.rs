//! The SQLite store (feature `sqlite`): sessions in one local file, no server to run.
//!
//! - **WAL** journal: readers never wait for the writer, and several processes can
//!   share the file.
//! - **One writer per store** (a dedicated thread with its own connection) applies
//!   every mutation inside `BEGIN IMMEDIATE`, batching concurrent writes into one
//!   transaction (group commit) while checking each one's precondition; a write is
//!   acknowledged only after its batch committed. Across processes, SQLite's write lock
//!   serializes the writers and compare-and-set catches lost races.
//! - **Reads** run on a small pool of separate connections. A point load is a few
//!   microseconds of local I/O and runs on the calling task; scans and counts, which
//!   can touch many rows, run on tokio's blocking pool.
//! - **Schema**: the store creates its table and indexes (user id for
//!   [`forget_user`](Store::forget_user), expiry for
//!   [`purge_expired`](Store::purge_expired), namespace for scans) and records the
//!   table's schema version in `bot_sessions_schema`, upgrading in order on open. A
//!   table written by newer code is refused, untouched.
//! - **Durability**: see [`Durability`].
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
//! # drop(store);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), bot_sessions::StoreError>(())
//! # }).unwrap();
//! ```

mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use self::schema::{Sql, TableName, UpgradeError};
use self::writer::{Op, Writer};
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
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteOptions {
    table: String,
    durability: Durability,
    busy_timeout: Duration,
    max_batch: usize,
    max_idle_readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            table: SqliteOptions::DEFAULT_TABLE.into(),
            durability: Durability::default(),
            busy_timeout: Duration::from_secs(5),
            max_batch: 256,
            max_idle_readers: 8,
        }
    }
}

impl SqliteOptions {
    /// The table name used unless [`table`](Self::table) says otherwise.
    pub const DEFAULT_TABLE: &'static str = "bot_sessions";

    /// The table that holds the sessions (default `bot_sessions`). Several stores with
    /// different tables can share one file. Validated on [`open`](Self::open): 1 to 64
    /// characters from `[A-Za-z0-9_]`, not starting with a digit or `sqlite_`.
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
    /// with a retryable error (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The most writes committed in one transaction (default 256; at least 1, which
    /// turns group commit off).
    pub fn max_batch(mut self, writes: usize) -> Self {
        self.max_batch = writes.max(1);
        self
    }

    /// How many idle read connections are kept open (default 8). More are opened
    /// while more reads run at once, and closed afterwards.
    pub fn max_idle_readers(mut self, connections: usize) -> Self {
        self.max_idle_readers = connections;
        self
    }

    /// Opens (creating if needed) the database file at `path`, creates or upgrades the
    /// table, and starts the writer thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for an invalid table name, a table written by newer code
    /// or a file that cannot use WAL; [`StoreError::Backend`] when the file cannot be
    /// opened or the schema cannot be written (retryable if another process held the
    /// lock past the busy timeout).
    pub async fn open(self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || self.open_blocking(path))
            .await
            .map_err(|e| StoreError::backend(BACKEND, None, false, e))?
    }

    fn open_blocking(self, path: PathBuf) -> Result<SqliteStore, StoreError> {
        let table = TableName::new(&self.table)?;
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
        let writer = Writer::spawn(conn, sql.clone(), self.max_batch, self.busy_timeout)?;
        let readers =
            Readers { path, busy_timeout: self.busy_timeout, max_idle: self.max_idle_readers, idle: Mutex::default() };
        // Open one reader now so a broken file shows up here rather than on first use.
        let first = readers.connect().map_err(err)?;
        readers.put(first);
        Ok(SqliteStore { shared: Arc::new(Shared { sql, writer, readers, table: table.as_str().to_owned() }) })
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

    /// Runs `f` on an idle (or new) read connection.
    fn with<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> rusqlite::Result<R> {
        let conn = self.take()?;
        let out = f(&conn);
        self.put(conn);
        out
    }
}

#[derive(Debug)]
struct Shared {
    sql: Arc<Sql>,
    writer: Writer,
    readers: Readers,
    table: String,
}

/// A [`Store`] in an SQLite file. See the [module docs](self) for how it works.
///
/// Cheap to clone; the clones share the writer thread and the read connections.
/// Dropping the last clone waits for the writes still queued to commit, then closes
/// the file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

impl SqliteStore {
    /// Opens the database at `location` with default settings, optionally followed by
    /// `?` and settings: `table=NAME`, `durability=normal|full`, `busy_timeout_ms=N`,
    /// `max_batch=N`. This is what [`store::open`](crate::store::open) calls with what
    /// follows `sqlite://` (so `sqlite://./bot.db?durability=full`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for an unknown or malformed setting; otherwise as
    /// [`SqliteOptions::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let path = std::env::temp_dir().join(format!("bot-sessions-open-doc-{}.db", std::process::id()));
    /// let url = format!("sqlite://{}?durability=full&table=sessions", path.display());
    /// let store = bot_sessions::store::open(&url).await?;
    /// assert!(bot_sessions::store::open("sqlite://./x.db?colour=blue").await.is_err());
    /// # drop(store);
    /// # for ext in ["", "-wal", "-shm"] { std::fs::remove_file(format!("{}{ext}", path.display())).ok(); }
    /// # Ok::<(), bot_sessions::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        let (path, options) = parse_location(location)?;
        options.open(path).await
    }

    /// Settings to open a store with.
    pub fn builder() -> SqliteOptions {
        SqliteOptions::default()
    }

    /// The table the sessions live in.
    pub fn table(&self) -> &str {
        &self.shared.table
    }

    async fn mutate(&self, op: Op, now: Timestamp) -> Result<u64, StoreError> {
        self.shared.writer.submit(op, now).await
    }

    /// Runs a read that may touch many rows on the blocking pool.
    async fn read_many<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &Sql) -> rusqlite::Result<Result<R, StoreError>> + Send + 'static,
    ) -> Result<R, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.readers.with(|conn| f(conn, &shared.sql)))
            .await
            .map_err(|e| StoreError::backend(BACKEND, None, false, e))?
            .map_err(|e| sqlite_error(None, &e, e.to_string()))?
    }
}

fn parse_location(location: &str) -> Result<(&str, SqliteOptions), StoreError> {
    let (path, query) = location.split_once('?').unwrap_or((location, ""));
    let mut options = SqliteOptions::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let bad = |why: &str| StoreError::Config(format!("sqlite setting `{pair}` in `{location}`: {why}"));
        let (name, value) = pair.split_once('=').ok_or_else(|| bad("expected NAME=VALUE"))?;
        let number = || value.parse::<u64>().map_err(|_| bad("expected a whole number"));
        options = match name {
            "table" => options.table(value),
            "durability" => match value {
                "normal" => options.durability(Durability::Normal),
                "full" => options.durability(Durability::Full),
                _ => return Err(bad("expected `normal` or `full`")),
            },
            "busy_timeout_ms" => options.busy_timeout(Duration::from_millis(number()?)),
            "max_batch" => options.max_batch(usize::try_from(number()?).unwrap_or(usize::MAX)),
            _ => return Err(bad("unknown setting (table, durability, busy_timeout_ms, max_batch)")),
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

/// Reads one record from a row of `value, version, schema_version, created_at,
/// updated_at, expires_at, user_id` starting at column `at`.
fn record(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Result<Record, String>> {
    let version: i64 = row.get(at + 1)?;
    let schema_version: i64 = row.get(at + 2)?;
    let Ok(version) = u64::try_from(version) else { return Ok(Err(format!("negative version {version}"))) };
    let Ok(schema_version) = u32::try_from(schema_version) else {
        return Ok(Err(format!("schema version {schema_version} out of range")));
    };
    Ok(Ok(Record {
        value: row.get(at)?,
        version,
        schema_version,
        created_at: Timestamp(row.get(at + 3)?),
        updated_at: Timestamp(row.get(at + 4)?),
        expires_at: row.get::<_, Option<i64>>(at + 5)?.map(Timestamp),
        user_id: row.get(at + 6)?,
    }))
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        let shared = &self.shared;
        let found = shared
            .readers
            .with(|conn| {
                conn.prepare_cached(&shared.sql.load)?
                    .query_row(params![key.as_str(), now.as_millis()], |row| record(row, 0))
                    .optional()
            })
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

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.mutate(Op::ForgetUser { user_id }, now).await
    }

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
        self.read_many(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.scan)?;
            let mut rows = stmt.query(params![namespace, cursor, now.as_millis(), fetch])?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                let text: String = row.get(0)?;
                let key = match text.parse::<SessionKey>() {
                    Ok(key) => key,
                    Err(e) => return Ok(Err(StoreError::Corrupt { key: text, reason: e.to_string() })),
                };
                match record(row, 1)? {
                    Ok(record) => items.push((key, record)),
                    Err(reason) => return Ok(Err(StoreError::Corrupt { key: text, reason })),
                }
            }
            let more = items.len() > limit;
            items.truncate(limit);
            let next = if more { items.last().map(|(k, _)| k.to_string()) } else { None };
            Ok(Ok(Page { items, next }))
        })
        .await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.mutate(Op::Purge, now).await
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        let namespace = namespace.map(|n| n.as_str().to_owned());
        self.read_many(move |conn, sql| {
            let n: i64 = match &namespace {
                Some(ns) => {
                    conn.prepare_cached(&sql.count_namespace)?.query_row(params![now.as_millis(), ns], |r| r.get(0))?
                }
                None => conn.prepare_cached(&sql.count)?.query_row([now.as_millis()], |r| r.get(0))?,
            };
            Ok(Ok(u64::try_from(n).unwrap_or(0)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_with_settings() {
        let (path, o) = parse_location("./bot.db").unwrap();
        assert_eq!(path, "./bot.db");
        assert_eq!(o.table, SqliteOptions::DEFAULT_TABLE);
        let (path, o) =
            parse_location("/var/lib/bot.db?table=s1&durability=full&busy_timeout_ms=250&max_batch=1").unwrap();
        assert_eq!(path, "/var/lib/bot.db");
        assert_eq!(
            (o.table.as_str(), o.durability, o.busy_timeout, o.max_batch),
            ("s1", Durability::Full, Duration::from_millis(250), 1)
        );
        for bad in ["x.db?durability=sometimes", "x.db?busy_timeout_ms=soon", "x.db?nope=1", "x.db?table"] {
            assert!(matches!(parse_location(bad), Err(StoreError::Config(_))), "{bad}");
        }
    }
}
