//! Opening the file (WAL, schema upgrades, the writer and load threads), the pool of
//! read connections, and what every handle of a store shares.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::options::{Durability, SqliteOptions};
use super::reader::{LoadThreads, QuickReads};
use super::row::{Corruption, sqlite_error};
use super::schema::{self, Sql, TableName, UpgradeError};
use super::writer::{self, Settings, Shutdown, Writer};
use super::{BACKEND, SqliteStore, notify};
use crate::StoreError;

impl SqliteOptions {
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
        schema::ensure_edit_trigger(&conn, &table).map_err(err)?;
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
        // One quick connection per core: no more loads than that run at once in callers' threads.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, MAX_QUICK_READS);
        let quick = (0..cores).map(|_| readers.connect_quick()).collect::<rusqlite::Result<Vec<_>>>().map_err(err)?;
        let settings = Settings {
            sql: sql.clone(),
            max_batch: self.max_batch,
            purge_batch: self.purge_batch,
            busy_timeout: self.busy_timeout,
            corruption: corruption.clone(),
            inline_writes: self.durability == Durability::Normal,
            commits: std::sync::atomic::AtomicU64::new(0),
        };
        let checkpointer = connect(&readers.path, self.busy_timeout).map_err(err)?;
        let writer = Writer::spawn(conn, checkpointer, settings)?;
        Ok(SqliteStore {
            shared: Arc::new(Shared {
                sql,
                writer,
                loads,
                quick: QuickReads::new(quick),
                readers,
                table: table.as_str().to_owned(),
                corruption,
                lease_holder: rand::random_range(1..=i64::MAX),
                notices,
                near_cache: self.near_cache,
                pipelined: self.pipelined,
            }),
        })
    }
}

/// The most connections for loads in callers' threads.
const MAX_QUICK_READS: usize = 8;

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

pub(super) fn connect(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // Bounded by `SqliteOptions::check`, so rusqlite's conversion cannot panic.
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

/// Idle read connections.
#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
    /// The threads reads ran on (tests check that none is an async worker).
    #[cfg(test)]
    pub(super) threads: Arc<Mutex<Vec<std::thread::ThreadId>>>,
}

impl Readers {
    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = connect(&self.path, self.busy_timeout)?;
        // Reads only: a bug here cannot write behind the writer's back.
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    /// A read connection that never waits for a lock (see [`QuickReads`]).
    fn connect_quick(&self) -> rusqlite::Result<Connection> {
        let conn = connect(&self.path, Duration::ZERO)?;
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
    pub(super) fn with<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> rusqlite::Result<R> {
        #[cfg(test)]
        self.threads.lock().unwrap_or_else(|p| p.into_inner()).push(std::thread::current().id());
        let conn = self.take()?;
        let out = f(&conn);
        self.put(conn);
        out
    }
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) sql: Arc<Sql>,
    pub(super) writer: Writer,
    pub(super) loads: LoadThreads,
    /// Connections for point loads in the caller's thread.
    pub(super) quick: QuickReads,
    pub(super) readers: Readers,
    pub(super) table: String,
    pub(super) corruption: Arc<Corruption>,
    /// This store's id in the purge lease table.
    pub(super) lease_holder: i64,
    /// End notices, through a table of their own polled by a thread of their own.
    pub(super) notices: crate::store::notify::Notices,
    /// The near cache [`Sessions`](crate::Sessions) on this store get by default.
    pub(super) near_cache: Option<crate::store::near_cache::CacheConfig>,
    /// Whether updates may build on queued writes ([`SqliteOptions::pipelined_updates`]).
    pub(super) pipelined: bool,
}

impl Shared {
    /// Everything closing the store involves, to run where blocking is fine: the writer
    /// commits its queue and closes its connection, the load threads end, then the
    /// read connections close. `None` once taken.
    pub(super) fn teardown(&mut self) -> Option<impl FnOnce() + Send + 'static> {
        let writer: Shutdown = self.writer.shutdown()?;
        let loads = self.loads.shutdown();
        let readers = std::mem::take(&mut *self.readers.idle.lock().unwrap_or_else(|p| p.into_inner()));
        let quick = self.quick.take();
        Some(move || {
            writer.run();
            if let Some(loads) = loads {
                loads.run();
            }
            drop(readers);
            drop(quick);
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
