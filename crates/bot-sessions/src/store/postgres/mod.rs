//! The PostgreSQL store (feature `postgres`): one row per session, compare-and-set in
//! one statement, a pool that recovers from killed connections and server restarts.
//!
//! # Table
//!
//! `schema.table` (default `public.bot_sessions`; set with `?schema=&table=` in the URL)
//! holds `key` (primary key, byte order), `namespace`, `user_id`, `value` (bytea),
//! `version`, `schema_version`, `created_at`, `updated_at`, `expires_at` (unix ms,
//! null: never), with indexes on `(namespace, key)` for scans, on `expires_at` for
//! purges and on `user_id` for forget-user. The SQL is in `postgres/*.sql`.
//!
//! `version` is the one the writer proposed ([`Write::version`]), stored as given;
//! `user_id` is [`Write::indexed_user`] of the write that created the row (the key's
//! user, or the write's owner), kept by every later write to the live row.
//!
//! Schema and table names come from configuration, so they are validated (lowercase
//! letters, digits and `_`, starting with a letter or `_`) and quoted before they are
//! put into a statement; values always travel as parameters.
//!
//! # Schema migrations
//!
//! The store creates and upgrades its table itself, in one transaction that first
//! takes a transaction-scoped advisory lock on the table's name, so processes starting
//! at the same time migrate one after the other. The applied version is kept in
//! `schema.table_schema`; a table newer than the code is refused.
//!
//! # Connections
//!
//! Every store operation is one statement, so connections need not be checked out: the
//! store keeps [`PostgresConfig::pool_size`] connections and shares each among the
//! tasks that pick it (round robin), and tokio-postgres pipelines their statements.
//! With exclusive checkout, 16 connections would cap a bot at 16 statements in flight;
//! shared, they carry as many as the tasks issue, on as few server backends. Every
//! connection has its statements prepared once, when it is opened.
//!
//! # Faults
//!
//! A connection the server closed (`pg_terminate_backend`, a restart) or that did not
//! answer in time is closed and dropped, and the next operation that picks its slot
//! opens a new one, so the store heals by itself. Every operation runs under
//! [`PostgresConfig::op_timeout`]. A failure before a statement was sent (no connection
//! could be opened) is a retryable error, and so are the server's own refusals
//! (serialization failure, lock not available, ...): the statement's implicit
//! transaction rolled back. A write or delete whose answer never came (the timeout, a
//! connection lost after it was sent) may have committed: that is
//! [`StoreError::Ambiguous`], which [`Sessions`](crate::Sessions) resolves by loading
//! the key and comparing versions. A statement whose caller gave up is cancelled by the
//! server after twice the operation timeout (`statement_timeout`).
//!
//! # Bad stored data
//!
//! A row whose metadata is out of range (a version below 1, a schema version outside
//! `u32`) is [`StoreError::Corrupt`] naming its key on `load`, can be overwritten or
//! deleted with [`Precondition::Any`], and is skipped with a warning by `scan` and
//! `count` (`scan` also skips a row whose key does not parse; `count`, which does not
//! read keys, counts it). Forget-user deletes every row of the user whatever its metadata (an erasure
//! reaches everything), and purges delete expired rows whatever their metadata.
//!
//! # Background purge
//!
//! [`Store::purge_expired_background`] purges in batches of 1000 rows, each batch one
//! statement that first takes the transaction-scoped advisory lock named
//! `bot-sessions-purge:SCHEMA.TABLE` (hashed with `hashtextextended(name, 0)`) with
//! `pg_try_advisory_xact_lock`; when another process holds it, the round ends there.
//! So one process purges at a time, and no lock outlives a batch.
//! [`Store::purge_expired`] (an operator's purge) does not take the lock.

mod config;
mod conn;
mod sql;

use std::sync::Arc;

use tokio_postgres::types::ToSql;

pub use config::PostgresConfig;
use conn::{Connections, Op, pg_err};
use sql::{Q, record_of};

use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

/// Rows deleted per purge statement.
const PURGE_BATCH: i64 = 1000;

/// A store in a PostgreSQL table, safe for many bot processes at once.
///
/// # Examples
///
/// ```no_run
/// use bot_sessions::store::postgres::PostgresStore;
///
/// # async fn demo() -> Result<(), bot_sessions::StoreError> {
/// let store = PostgresStore::connect("postgres://bot@127.0.0.1:5432/bot?schema=sessions&table=telegram").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    conns: Arc<Connections>,
    config: PostgresConfig,
    /// The name of the background purge's advisory lock.
    purge_lock: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("config", &self.config).finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database a `postgres://` or `postgresql://` URL names
    /// (`postgres://USER@HOST:PORT/DB[?schema=S&table=T&pool_size=N]`), creating or
    /// upgrading the table.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a malformed URL, an invalid schema or table name, or
    /// a setting out of range (see [`PostgresConfig`]); a [`StoreError::Backend`] when
    /// the database cannot be reached (retryable) or the table cannot be created, or
    /// is newer than this code (not retryable). A password in the URL never appears in
    /// an error.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresConfig::default()).await
    }

    /// Connects with explicit settings; `schema`, `table`, `pool_size` and
    /// `connect_timeout` in the URL win over `config`.
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`].
    pub async fn connect_with(url: &str, mut config: PostgresConfig) -> Result<Self, StoreError> {
        let url = config::split_url(url, &mut config)?;
        let pg = config::driver_config(&url, &mut config)?;
        config.check()?;
        let table = format!("\"{}\".\"{}\"", config.schema, config.table);
        let statements = sql::statements(&table)?;
        let conns =
            Connections::new(pg, statements, config.pool_size, config.op_timeout, config.statement_timeout_ms());
        let purge_lock = format!("bot-sessions-purge:{}.{}", config.schema, config.table);
        let store = PostgresStore { conns: Arc::new(conns), config, purge_lock };
        let migrate = sql::migrate(store.conns.driver_config(), &store.config.schema, &store.config.table);
        match tokio::time::timeout(store.config.op_timeout, migrate).await {
            Ok(migrated) => migrated?,
            Err(_) => return Err(conn::timeout_err(None, store.config.op_timeout)),
        }
        Ok(store)
    }

    /// The schema-qualified table name.
    pub fn table(&self) -> String {
        format!("{}.{}", self.config.schema, self.config.table)
    }

    async fn query(
        &self,
        op: Op<'_>,
        q: Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.conns.query(op, q, params).await
    }
}

fn conflict(key: &str) -> StoreError {
    StoreError::Conflict { key: key.to_owned() }
}

/// A version as the `version` column holds it: `1..=i64::MAX`.
fn stored_version(v: u64) -> Option<i64> {
    i64::try_from(v).ok().filter(|v| *v >= 1)
}

fn bool_of(key: &str, row: Option<&tokio_postgres::Row>) -> Result<bool, StoreError> {
    match row {
        Some(row) => row.try_get(0).map_err(|e| pg_err(Some(key), e)),
        None => Ok(false),
    }
}

/// Column `i` of the first row as a count.
fn count_at(rows: &[tokio_postgres::Row], i: usize) -> Result<u64, StoreError> {
    let n: i64 = match rows.first() {
        Some(row) => row.try_get(i).map_err(|e| pg_err(None, e))?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

impl PostgresStore {
    /// Purge batches until one comes back short; with `exclusive`, each batch only
    /// while it holds the purge lock, ending the round when another process has it.
    async fn purge(&self, now: Timestamp, exclusive: bool) -> Result<u64, StoreError> {
        let now_ms = now.as_millis();
        let mut purged = 0;
        loop {
            let n = if exclusive {
                let params: [&(dyn ToSql + Sync); 3] = [&now_ms, &PURGE_BATCH, &self.purge_lock];
                let rows = self.query(Op::Read(None), Q::PurgeExclusive, &params).await?;
                let held = match rows.first() {
                    Some(row) => row.try_get(0).map_err(|e| pg_err(None, e))?,
                    None => false,
                };
                if !held {
                    tracing::debug!(table = %self.table(), "another process is purging; skipping this round");
                    return Ok(purged);
                }
                count_at(&rows, 1)?
            } else {
                count_at(&self.query(Op::Read(None), Q::Purge, &[&now_ms, &PURGE_BATCH]).await?, 0)?
            };
            purged += n;
            if n < PURGE_BATCH.unsigned_abs() {
                return Ok(purged);
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        let text = key.as_str();
        let rows = self.query(Op::Read(Some(text)), Q::Load, &[&text, &now.as_millis()]).await?;
        rows.first().map(|row| record_of(text, row, 0)).transpose()
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let text = key.as_str();
        let version = super::sql_version(conn::BACKEND, text, write.version)?;
        let schema = i64::from(write.schema_version);
        let expires = write.expires_at.map(Timestamp::as_millis);
        let now_ms = now.as_millis();
        let op = Op::Write(text);
        let rows = match precondition {
            Precondition::Version(v) => {
                let Some(v) = stored_version(v) else { return Err(conflict(text)) };
                let params: [&(dyn ToSql + Sync); 7] = [&text, &write.value, &schema, &now_ms, &expires, &v, &version];
                self.query(op, Q::CompareAndSet, &params).await?
            }
            Precondition::Absent | Precondition::Any => {
                let q = if precondition == Precondition::Absent { Q::Create } else { Q::Upsert };
                let ns = key.namespace().as_str();
                let user = write.indexed_user(key);
                let params: [&(dyn ToSql + Sync); 8] =
                    [&text, &ns, &user, &write.value, &schema, &now_ms, &expires, &version];
                self.query(op, q, &params).await?
            }
        };
        if rows.is_empty() { Err(conflict(text)) } else { Ok(write.version) }
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        let text = key.as_str();
        let now_ms = now.as_millis();
        let op = Op::Write(text);
        match precondition {
            Precondition::Any => {
                let rows = self.query(op, Q::DeleteAny, &[&text, &now_ms]).await?;
                bool_of(text, rows.first())
            }
            Precondition::Version(v) => {
                let Some(v) = stored_version(v) else { return Err(conflict(text)) };
                let rows = self.query(op, Q::DeleteVersion, &[&text, &v, &now_ms]).await?;
                if rows.is_empty() { Err(conflict(text)) } else { Ok(true) }
            }
            Precondition::Absent => {
                let rows = self.query(op, Q::DeleteAbsent, &[&text, &now_ms]).await?;
                if bool_of(text, rows.first())? { Err(conflict(text)) } else { Ok(false) }
            }
        }
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        let rows = self.query(Op::Read(None), Q::ForgetUser, &[&user_id, &now.as_millis()]).await?;
        count_at(&rows, 0)
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
        let ns = namespace.as_str();
        let now_ms = now.as_millis();
        let mut from = cursor.unwrap_or("").to_owned();
        let mut items = Vec::with_capacity(limit.min(1024));
        // Rows that do not read back are skipped, so a page is fetched again from the
        // last row seen until it is full or the namespace ends.
        loop {
            let want = limit - items.len();
            let fetch = i64::try_from(want).unwrap_or(i64::MAX - 1).saturating_add(1);
            let rows = self.query(Op::Read(None), Q::Scan, &[&ns, &from, &now_ms, &fetch]).await?;
            let more = rows.len() > want;
            for row in rows.iter().take(want) {
                let text: &str = row.try_get(0).map_err(|e| pg_err(None, e))?;
                from.clear();
                from.push_str(text);
                let parsed = text
                    .parse::<SessionKey>()
                    .map_err(|e| StoreError::Corrupt { key: text.to_owned(), reason: e.to_string() })
                    .and_then(|key| Ok((key, record_of(text, row, 1)?)));
                match parsed {
                    Ok(item) => items.push(item),
                    Err(e) => tracing::warn!(error = %e, "scan skips a session row that does not read back"),
                }
            }
            if !more {
                return Ok(Page { items, next: None });
            }
            if items.len() == limit {
                return Ok(Page { items, next: Some(from) });
            }
        }
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge(now, false).await
    }

    async fn purge_expired_background(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge(now, true).await
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        let now_ms = now.as_millis();
        let rows = match namespace {
            Some(ns) => self.query(Op::Read(None), Q::CountNamespace, &[&ns.as_str(), &now_ms]).await?,
            None => self.query(Op::Read(None), Q::CountAll, &[&now_ms]).await?,
        };
        let bad = count_at(&rows, 1)?;
        if bad > 0 {
            tracing::warn!(
                table = %self.table(),
                namespace = namespace.map(Namespace::as_str),
                rows = bad,
                "count skips session rows whose metadata is out of range"
            );
        }
        count_at(&rows, 0)
    }
}
