//! The SQLite store (feature `sqlite`): sessions in one local file, no server to run.
//!
//! - **WAL** journal: readers never wait for the writer, and several processes can
//!   share the file.
//! - **One writer per store** (a dedicated thread with its own connection) applies
//!   every mutation inside `BEGIN IMMEDIATE`, batching concurrent writes into one
//!   transaction (group commit) while checking each one's precondition; a write is
//!   acknowledged only after its batch committed. Across processes, SQLite's write lock
//!   serializes the writers and compare-and-set catches lost races.
//! - **In order**: the writer applies what it is handed in the order it was handed it,
//!   so the store is a [`Pipeline`] (on by default,
//!   [`SqliteOptions::pipelined_updates`]): [`Sessions`](crate::Sessions) then releases
//!   a key once an update's write is queued, and the next update of the key
//!   compare-and-sets over the queued version, in the same transaction when the writer
//!   is busy ([`SqliteStore::write_transactions`] counts the transactions).
//! - **Nothing that can wait runs on an async worker thread**: SQLite calls block
//!   (waiting out another process's lock, syncing the disk). Only what cannot wait runs
//!   in the caller's thread, because two thread hand-offs cost several times a small
//!   read or write: a point load on an idle *quick* connection with no busy timeout,
//!   and, with [`Durability::Normal`], a write or delete that finds the writer idle and
//!   the file's write lock free on the first try (its own transaction on the writer's
//!   connection). Anything else, and whatever found the file busy, goes to the threads:
//!   point loads to a few dedicated load threads
//!   ([`load_threads`](SqliteOptions::load_threads)), each with its own read-only
//!   connection that waits; writes to the writer thread, which also runs the WAL
//!   checkpoints (never part of a commit); scans and counts, which can take long, to
//!   tokio's blocking pool with a small pool of read-only connections.
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

mod connection;
mod notify;
mod options;
mod read;
mod reader;
mod row;
mod schema;
mod writer;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use self::connection::Shared;
use self::options::parse_location;
pub use self::options::{Durability, SqliteOptions};
// For the fuzz targets (`testing::fuzz`, which needs Redis too).
#[cfg(all(feature = "testing", feature = "redis"))]
pub(crate) use self::row::parse_record;
use self::writer::Op;
use crate::store::{Pipeline, Queued};
use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

const BACKEND: &str = "sqlite";

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
    /// `max_batch=N`, `max_idle_readers=N`, `load_threads=N`, `purge_batch=N`,
    /// `near_cache=on|off`, `pipelined=on|off` (ranges as on [`SqliteOptions`]). This is
    /// what [`store::open`](crate::store::open) calls with
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

    /// How many write transactions this store's writer has committed since it was
    /// opened (batches of writes and deletes, and writes applied in the caller's
    /// thread; not purges): with several writes per transaction (group commit, and
    /// the queued updates of one key that [`Pipeline`] lets share one), fewer than
    /// the writes.
    pub fn write_transactions(&self) -> u64 {
        self.shared.writer.commits()
    }

    async fn mutate(&self, op: Op, now: Timestamp) -> Result<u64, StoreError> {
        self.shared.writer.submit(op, now).await
    }
}

/// Every mutation goes through the one writer thread, which applies what is queued in
/// order (see the [module docs](self)).
impl Pipeline for SqliteStore {
    fn enqueue(&self, key: &SessionKey, write: Write<'_>, precondition: Precondition, now: Timestamp) -> Queued {
        self.shared.writer.enqueue(write_op(key, write, precondition), now)
    }
}

fn write_op(key: &SessionKey, write: Write<'_>, precondition: Precondition) -> Op {
    Op::Write {
        key: key.clone(),
        value: write.value.to_vec(),
        schema_version: write.schema_version,
        expires_at: write.expires_at,
        version: write.version,
        owner: write.owner,
        precondition,
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn default_near_cache(&self) -> Option<crate::store::near_cache::CacheConfig> {
        self.shared.near_cache
    }

    fn pipeline(&self) -> Option<&dyn Pipeline> {
        self.shared.pipelined.then_some(self as &dyn Pipeline)
    }

    fn notices(&self) -> Option<crate::store::notify::Notices> {
        Some(self.shared.notices.clone())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.load_record(key, now).await
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.mutate(write_op(key, write, precondition), now).await
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
        self.scan_page(namespace, cursor, limit, now).await
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
        self.count_live(namespace, now).await
    }

    async fn namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        self.live_namespaces(now).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::Scope;

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

    /// Scans and counts run their SQLite calls on the blocking pool, never on the async
    /// worker that awaits them (a load used to run on the caller's thread, where a busy
    /// or slow file stalled the whole runtime). A load runs in the caller's thread only
    /// on a quick connection, which never waits for a lock; with none free, it goes to
    /// a load thread.
    #[tokio::test]
    async fn reads_that_may_wait_never_run_on_the_async_worker() {
        let path = temp_path("reads");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let worker = std::thread::current().id();
        let ns = Namespace::new("reads").unwrap();
        let key = SessionKey::new(ns.clone(), Scope::Chat(1));
        let t = Timestamp::now();
        store.write(&key, Write::new(b"{}", 1, None), Precondition::Absent, t).await.unwrap();
        assert!(store.load(&key, t).await.unwrap().is_some());
        assert!(store.shared.readers.threads.lock().unwrap().is_empty(), "the load took a quick connection");
        // Every quick connection in use: the load waits on a load thread.
        let taken = store.shared.quick.take();
        assert!(!taken.is_empty());
        assert!(store.load(&key, t).await.unwrap().is_some());
        assert_eq!(store.scan(&ns, None, 10, t).await.unwrap().items.len(), 1);
        assert_eq!(store.count(Some(&ns), t).await.unwrap(), 1);
        let threads = store.shared.readers.threads.lock().unwrap().clone();
        assert_eq!(threads.len(), 3, "three reads");
        assert!(threads.iter().all(|t| *t != worker), "a read ran on the async worker");
        drop(taken);
        store.close().await;
        remove(&path);
    }
}
