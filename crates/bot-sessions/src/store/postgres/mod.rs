//! The PostgreSQL store (feature `postgres`): one row per session, compare-and-set in
//! one statement, a pool that recovers from killed connections and server restarts.
//!
//! # Table
//!
//! `schema.table` (default `public.bot_sessions`; set with `?schema=&table=` in the URL)
//! holds `key` (primary key, byte order), `namespace`, `user_id`, `value` (bytea),
//! `version`, `schema_version`, `created_at`, `updated_at`, `expires_at` (unix ms,
//! null: never), `recent` (the last 16 versions the row held, which resolve a write
//! whose answer was lost), with indexes on `(namespace, key)` for scans, on `expires_at` for
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
//! A backend runs the statements pipelined on its connection one after another, each
//! commit waiting for its own WAL flush; so when more than `pool_size` compare-and-sets
//! are in flight, the waiting ones share one statement and one commit (each still its
//! own compare-and-set; at most [`PostgresConfig::batch_in_flight`] such statements at
//! once; see [`PostgresConfig::batch_writes`]).
//!
//! Connections come from a URL ([`PostgresStore::connect`]) or from a
//! [`tokio_postgres::Config`] built in code ([`PostgresStore::connect_pg_config`]), over
//! TLS as [`PostgresTls`] says (libpq's `sslmode`, `sslrootcert`, `sslcert`,
//! `sslkey`; rustls, no OpenSSL).
//!
//! # Faults
//!
//! A connection the server closed (`pg_terminate_backend`, a restart) or that did not
//! answer in time is closed and dropped, and the next operation that picks its slot
//! opens a new one, so the store heals by itself. Replacement is bounded: at most 4
//! connection attempts at a time, and after a failed one the store waits
//! ([`PostgresConfig::reconnect_delay`], doubling up to
//! [`PostgresConfig::reconnect_delay_max`]) before the next, one attempt at a time;
//! meanwhile an operation uses any other live connection, or waits for the next
//! attempt (its own or another operation's) within its time, and fails (retryable,
//! with what the last attempt said) only when that runs out. Every operation runs
//! under [`PostgresConfig::op_timeout`]. A read whose connection is lost is sent again
//! on another one within that time. A failure before a statement was sent (no
//! connection could be opened) is a retryable error,
//! and so are the server's own refusals (serialization failure, lock not available,
//! ...): the statement's implicit transaction rolled back. A write or delete whose
//! answer never came (the timeout, a connection lost after it was sent) may have
//! committed: that is [`StoreError::Ambiguous`], which [`Sessions`](crate::Sessions)
//! resolves by loading the key and comparing versions. A statement that runs out of
//! time is cancelled on the server at once (a cancel request, after its connection is
//! closed), so timeouts do not leave server backends working (or holding locks) for
//! callers that left; the server's `statement_timeout`
//! ([`PostgresConfig::statement_timeout`], twice the operation timeout by default) is
//! the safety net for a lost cancel request.
//!
//! # Secrets
//!
//! A password in the URL (user info or `password=`) never appears in an error, a log
//! line or a `Debug` output: URLs are printed through one redaction shared by every
//! backend, and the store's `Debug` shows its settings, not its URL.
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

mod batch;
mod config;
mod conn;
mod error;
mod migrate;
mod notify;
mod reconnect;
mod sql;
mod tls;

use std::sync::Arc;

/// The tokio-postgres this store is built on, for [`PostgresStore::connect_pg_config`]
/// (its `Config` must come from this version).
pub use tokio_postgres;
use tokio_postgres::types::ToSql;

pub use config::PostgresConfig;
use conn::{Connections, Op, Settings};
use error::pg_err;
use sql::{Q, record_of};
pub use tls::{PostgresTls, RootCerts, SslMode};

use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

const BACKEND: &str = "postgres";

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
/// // Managed databases: TLS with the provider's CA, the host name checked.
/// let tls = PostgresStore::connect(
///     "postgres://bot:PASSWORD@db.example.com/bot?sslmode=verify-full&sslrootcert=/etc/bot/db-ca.pem",
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    conns: Arc<Connections>,
    /// Compare-and-set writes that wait at the same moment share a statement (when
    /// [`PostgresConfig::batch_writes`]).
    batch: Option<Arc<batch::Batcher>>,
    config: PostgresConfig,
    /// The name of the background purge's advisory lock.
    purge_lock: String,
    /// End notices: `NOTIFY` and `LISTEN` on a connection of their own.
    notices: crate::store::notify::Notices,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("config", &self.config).finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database a `postgres://` or `postgresql://` URL names
    /// (`postgres://USER[:PASSWORD]@HOST:PORT/DB[?schema=S&table=T&pool_size=N&sslmode=M&...]`),
    /// creating or upgrading the table.
    ///
    /// The URL takes libpq's TLS options `sslmode` (`disable`, `prefer` (default),
    /// `require`, `verify-ca`, `verify-full`), `sslrootcert=PATH` (or `system`),
    /// `sslcert=PATH` and `sslkey=PATH` (see [`PostgresTls`]), and the driver's own
    /// (`application_name`, `connect_timeout`, `channel_binding`, ...).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a malformed URL, an invalid schema or table name, a
    /// setting out of range (see [`PostgresConfig`]) or a TLS file that cannot be read;
    /// a [`StoreError::Backend`] when the database cannot be reached (retryable), TLS
    /// is refused (a certificate that does not verify, a server without TLS under
    /// `require` or stricter: not retryable), or the table cannot be created or is
    /// newer than this code (not retryable). A password in the URL never appears in an
    /// error.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresConfig::default()).await
    }

    /// Connects with explicit settings; `schema`, `table`, `pool_size`,
    /// `connect_timeout` and the TLS options in the URL win over `config`.
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`].
    pub async fn connect_with(url: &str, mut config: PostgresConfig) -> Result<Self, StoreError> {
        let url = config::split_url(url, &mut config)?;
        let pg = config::parse_url(&url)?;
        Self::connect_pg_config(pg, config).await
    }

    /// Connects with a [`tokio_postgres::Config`] built in code (hosts, user,
    /// password, database, `application_name`, ...) instead of a URL.
    ///
    /// TLS follows `config.tls`; its `mode` left unset takes the driver
    /// configuration's `ssl_mode` (`prefer` unless set). A `connect_timeout` set on
    /// `pg` wins over `config.connect_timeout`; keepalives are turned on, and
    /// `application_name` is `bot-sessions` unless set.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use bot_sessions::store::postgres::{PostgresConfig, PostgresStore, SslMode, tokio_postgres};
    ///
    /// # async fn demo() -> Result<(), bot_sessions::StoreError> {
    /// let mut pg = tokio_postgres::Config::new();
    /// pg.host("db.internal").port(5432).user("bot").password("from-a-secret-store").dbname("bot");
    /// let config = PostgresConfig::default()
    ///     .schema("sessions")
    ///     .ssl_mode(SslMode::VerifyFull)
    ///     .ssl_root_cert("/etc/bot/db-ca.pem");
    /// let store = PostgresStore::connect_pg_config(pg, config).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`].
    pub async fn connect_pg_config(
        mut pg: tokio_postgres::Config,
        mut config: PostgresConfig,
    ) -> Result<Self, StoreError> {
        config::apply(&mut pg, &mut config)?;
        config.check()?;
        let tls = tls::configure(&config.tls, &mut pg)?;
        let table = format!("\"{}\".\"{}\"", config.schema, config.table);
        let statements = sql::statements(&table)?;
        let settings = Settings {
            pool_size: config.pool_size,
            op_timeout: config.op_timeout,
            statement_timeout_ms: config.statement_timeout_ms(),
            reconnect_delay: config.reconnect_delay,
            reconnect_delay_max: config.reconnect_delay_max,
        };
        let listener = notify::PgNotices::new(pg.clone(), tls.clone(), &config.schema, &config.table);
        let notices = crate::store::notify::Notices::with_transport(listener);
        let conns = Arc::new(Connections::new(pg, tls, statements, settings));
        let batches = config.batch_in_flight;
        let batch = config
            .batch_writes
            .then(|| batch::Batcher::new(batch::Statements(conns.clone()), config.pool_size, batches));
        let purge_lock = format!("bot-sessions-purge:{}.{}", config.schema, config.table);
        let store = PostgresStore { conns, batch, config, purge_lock, notices };
        migrate::migrate(&store.conns, &store.config.schema, &store.config.table, store.config.op_timeout).await?;
        Ok(store)
    }

    /// The checks of [`PostgresStore::connect`] that need no server: the URL and
    /// settings.
    pub(crate) fn check_url(url: &str) -> Result<(), StoreError> {
        settings(url, PostgresConfig::default()).map(drop)
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

/// What [`PostgresStore::connect_with`] works out from `url` before it connects: the
/// driver's settings and the checked settings (TLS files are read only at connect).
fn settings(url: &str, mut config: PostgresConfig) -> Result<(tokio_postgres::Config, PostgresConfig), StoreError> {
    let url = config::split_url(url, &mut config)?;
    let mut pg = config::parse_url(&url)?;
    config::apply(&mut pg, &mut config)?;
    config.check()?;
    sql::statements(&format!("\"{}\".\"{}\"", config.schema, config.table))?;
    Ok((pg, config))
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
    fn notices(&self) -> Option<crate::store::notify::Notices> {
        Some(self.notices.clone())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

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
        let version = super::sql_version(BACKEND, text, write.version)?;
        let schema = i64::from(write.schema_version);
        let expires = write.expires_at.map(Timestamp::as_millis);
        let now_ms = now.as_millis();
        let op = Op::Write(text);
        let rows = match precondition {
            Precondition::Version(v) => {
                let Some(v) = stored_version(v) else { return Err(conflict(text)) };
                let params: [&(dyn ToSql + Sync); 7] = [&text, &write.value, &schema, &now_ms, &expires, &v, &version];
                let Some(batcher) = &self.batch else {
                    let rows = self.query(op, Q::CompareAndSet, &params).await?;
                    return if rows.is_empty() { Err(conflict(text)) } else { Ok(write.version) };
                };
                let cas = batch::Cas {
                    key: text.to_owned(),
                    value: write.value.to_vec(),
                    schema,
                    now: now_ms,
                    expires,
                    expected: v,
                    version,
                };
                let deadline = tokio::time::Instant::now() + self.config.op_timeout;
                match batcher.submit(cas, deadline).await {
                    batch::Outcome::Written => return Ok(write.version),
                    batch::Outcome::Conflict => return Err(conflict(text)),
                    batch::Outcome::Failed(e) => return Err(e),
                    batch::Outcome::Alone => self.query(op, Q::CompareAndSet, &params).await?,
                }
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

    /// The row's `recent` column (see `v2.sql`), when it ends with its version.
    async fn recent_versions(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Vec<u64>>, StoreError> {
        let text = key.as_str();
        let rows = self.query(Op::Read(Some(text)), Q::RecentVersions, &[&text, &now.as_millis()]).await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let version: i64 = row.try_get(0).map_err(|e| pg_err(Some(text), e))?;
        let recent: Option<Vec<i64>> = row.try_get(1).map_err(|e| pg_err(Some(text), e))?;
        let recent = recent.unwrap_or_else(|| vec![version]);
        if recent.last() != Some(&version) {
            return Ok(None);
        }
        Ok(recent.into_iter().map(u64::try_from).collect::<Result<Vec<_>, _>>().ok())
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

    async fn namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        let rows = self.query(Op::Read(None), Q::Namespaces, &[&now.as_millis()]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: &str = row.try_get(0).map_err(|e| pg_err(None, e))?;
            match Namespace::new_unchecked_reserved(name) {
                Ok(ns) => out.push(ns),
                Err(e) => tracing::warn!(table = %self.table(), error = %e, "namespaces skips a bad namespace name"),
            }
        }
        Ok(out)
    }
}
