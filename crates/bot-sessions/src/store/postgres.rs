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
//! answer in time is dropped, and the next operation that picks its slot opens a new
//! one, so the store heals by itself. Every operation runs under
//! [`PostgresConfig::op_timeout`]; connection faults, timeouts, serialization failures
//! and shutdowns are retryable errors.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

const BACKEND: &str = "postgres";
/// The table layout this code writes. Bump it and add a step to [`MIGRATIONS`].
const SCHEMA_VERSION: i32 = 1;
/// Migration steps; step `i` upgrades version `i` to `i + 1`.
const MIGRATIONS: [&str; 1] = [include_str!("postgres/v1.sql")];
const QUERIES: &str = include_str!("postgres/queries.sql");
/// Rows deleted per purge statement.
const PURGE_BATCH: i64 = 1000;

/// Settings of a [`PostgresStore`] beyond the connection URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// The schema of the table (default `public`); created if missing.
    pub schema: String,
    /// The table (default `bot_sessions`); created if missing.
    pub table: String,
    /// Connections held open, each shared by many tasks (default 16).
    pub pool_size: usize,
    /// Longest time one store operation may take, waiting for a connection included,
    /// before it fails with a retryable error (default 5 s).
    pub op_timeout: Duration,
    /// Timeout of one connection attempt (default 2 s).
    pub connect_timeout: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            schema: "public".into(),
            table: "bot_sessions".into(),
            pool_size: 16,
            op_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

impl PostgresConfig {
    /// Sets [`PostgresConfig::schema`].
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets [`PostgresConfig::table`].
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Sets [`PostgresConfig::pool_size`].
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// Sets [`PostgresConfig::op_timeout`].
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = d;
        self
    }

    /// Sets [`PostgresConfig::connect_timeout`].
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
}

/// The statements of `postgres/queries.sql`, by name.
#[derive(Debug, Clone, Copy)]
enum Q {
    Load,
    Create,
    Upsert,
    CompareAndSet,
    DeleteAny,
    DeleteVersion,
    DeleteAbsent,
    ForgetUser,
    Scan,
    Purge,
    CountNamespace,
    CountAll,
}

const STATEMENTS: [(Q, &str); 12] = [
    (Q::Load, "load"),
    (Q::Create, "create"),
    (Q::Upsert, "upsert"),
    (Q::CompareAndSet, "compare_and_set"),
    (Q::DeleteAny, "delete_any"),
    (Q::DeleteVersion, "delete_version"),
    (Q::DeleteAbsent, "delete_absent"),
    (Q::ForgetUser, "forget_user"),
    (Q::Scan, "scan"),
    (Q::Purge, "purge"),
    (Q::CountNamespace, "count_namespace"),
    (Q::CountAll, "count_all"),
];

/// The statement texts in [`STATEMENTS`] order, with the table name filled in.
fn statements(table: &str) -> Result<Vec<String>, StoreError> {
    let mut sections = std::collections::HashMap::new();
    for section in QUERIES.split("-- name: ").skip(1) {
        let (name, body) = section.split_once('\n').unwrap_or((section, ""));
        sections.insert(name.trim(), body.replace("{table}", table));
    }
    STATEMENTS
        .iter()
        .map(|(_, name)| {
            sections
                .remove(name)
                .ok_or_else(|| StoreError::Config(format!("postgres/queries.sql has no statement `{name}`")))
        })
        .collect()
}

/// One open connection and its prepared statements.
struct Conn {
    client: Client,
    prepared: Vec<Statement>,
}

impl Conn {
    fn statement(&self, q: Q) -> &Statement {
        // `prepared` holds one statement per entry of STATEMENTS, in order.
        &self.prepared[q as usize]
    }
}

/// A connection slot: the live connection, if any, and a gate so one task at a time
/// opens a new one.
#[derive(Default)]
struct Slot {
    conn: Mutex<Option<Arc<Conn>>>,
    opening: tokio::sync::Mutex<()>,
}

/// The shared connections.
struct Connections {
    pg: tokio_postgres::Config,
    sql: Vec<String>,
    slots: Box<[Slot]>,
    next: AtomicUsize,
}

impl Connections {
    fn current(slot: &Slot) -> Option<Arc<Conn>> {
        let conn = slot.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.as_ref().filter(|c| !c.client.is_closed()).cloned()
    }

    /// A live connection, opening one in the next slot if it has none.
    async fn get(&self) -> Result<Arc<Conn>, StoreError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[i];
        if let Some(c) = Self::current(slot) {
            return Ok(c);
        }
        let _opening = slot.opening.lock().await;
        if let Some(c) = Self::current(slot) {
            return Ok(c);
        }
        let c = Arc::new(self.open().await?);
        *slot.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    async fn open(&self) -> Result<Conn, StoreError> {
        let client = connect(&self.pg).await?;
        let mut prepared = Vec::with_capacity(self.sql.len());
        for sql in &self.sql {
            prepared.push(client.prepare(sql).await.map_err(|e| pg_err(None, e))?);
        }
        Ok(Conn { client, prepared })
    }

    /// Drops `conn` from its slot (it failed or hung), so the slot reconnects.
    fn evict(&self, conn: &Arc<Conn>) {
        for slot in self.slots.iter() {
            let mut cur = slot.conn.lock().unwrap_or_else(|p| p.into_inner());
            if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                *cur = None;
                return;
            }
        }
    }
}

/// Opens one connection and drives it on a task of its own.
async fn connect(pg: &tokio_postgres::Config) -> Result<Client, StoreError> {
    let (client, connection) = pg.connect(NoTls).await.map_err(|e| pg_err(None, e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

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
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Whether a PostgreSQL error may pass if the operation is tried again.
fn retryable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        // 08: connection exception; 40001/40P01: serialization failure, deadlock;
        // 53200/53300: out of memory, too many connections; 55P03: lock not available;
        // 57014: query canceled; 57P01-57P05: shutdown, crash, cannot connect now.
        return code.starts_with("08")
            || matches!(code, "40001" | "40P01" | "53200" | "53300" | "55P03" | "57014")
            || code.starts_with("57P");
    }
    // No SQLSTATE: an I/O failure or a timeout talking to the server is transient; a
    // conversion error is not.
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    let text = e.to_string();
    io || text.contains("timeout") || text.contains("connection") || text.contains("closed")
}

fn pg_err(key: Option<&str>, e: tokio_postgres::Error) -> StoreError {
    StoreError::backend(BACKEND, key, retryable(&e), e)
}

fn timeout_err(key: Option<&str>, after: Duration) -> StoreError {
    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer from postgres within {after:?}"));
    StoreError::backend(BACKEND, key, true, e)
}

/// A schema or table name that is safe to quote into SQL.
fn validate_identifier(what: &str, name: &str, max: usize) -> Result<(), StoreError> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if first_ok && rest_ok && name.len() <= max {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "postgres {what} name {name:?} must be 1 to {max} characters from a-z, 0-9 and `_`, not starting with a digit"
        )))
    }
}

/// Splits `schema`, `table` and `pool_size` off a URL's query; the rest stays for the
/// driver (`sslmode`, `application_name`, ...).
fn split_url(url: &str, config: &mut PostgresConfig) -> Result<String, StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_owned());
    };
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", v)) => config.schema = v.to_owned(),
            Some(("table", v)) => config.table = v.to_owned(),
            Some(("pool_size", v)) => {
                config.pool_size =
                    v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        StoreError::Config(format!("postgres pool_size `{v}` is not a positive integer"))
                    })?;
            }
            _ => rest.push(pair),
        }
    }
    Ok(if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) })
}

fn i64_of(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

fn record_of(key: &str, row: &tokio_postgres::Row, offset: usize) -> Result<Record, StoreError> {
    let corrupt = |e: tokio_postgres::Error| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() };
    let version: i64 = row.try_get(offset + 1).map_err(corrupt)?;
    let schema: i64 = row.try_get(offset + 2).map_err(corrupt)?;
    let bad =
        |what: &str, v: i64| StoreError::Corrupt { key: key.to_owned(), reason: format!("{what} {v} out of range") };
    Ok(Record {
        value: row.try_get(offset).map_err(corrupt)?,
        version: u64::try_from(version).map_err(|_| bad("version", version))?,
        schema_version: u32::try_from(schema).map_err(|_| bad("schema_version", schema))?,
        created_at: Timestamp(row.try_get(offset + 3).map_err(corrupt)?),
        updated_at: Timestamp(row.try_get(offset + 4).map_err(corrupt)?),
        expires_at: row.try_get::<_, Option<i64>>(offset + 5).map_err(corrupt)?.map(Timestamp),
        // TODO(issue 8): read the user_id column.
        user_id: None,
    })
}

impl PostgresStore {
    /// Connects to the database a `postgres://` or `postgresql://` URL names
    /// (`postgres://USER@HOST:PORT/DB[?schema=S&table=T&pool_size=N]`), creating or
    /// upgrading the table.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a malformed URL or an invalid schema or table name; a
    /// [`StoreError::Backend`] when the database cannot be reached (retryable) or the
    /// table cannot be created, or is newer than this code (not retryable).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresConfig::default()).await
    }

    /// Connects with explicit settings; `schema`, `table` and `pool_size` in the URL
    /// win over `config`.
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`].
    pub async fn connect_with(url: &str, mut config: PostgresConfig) -> Result<Self, StoreError> {
        let url = split_url(url, &mut config)?;
        validate_identifier("schema", &config.schema, 63)?;
        // Room for the index name suffixes within PostgreSQL's 63-byte identifiers.
        validate_identifier("table", &config.table, 40)?;
        if config.pool_size == 0 || config.op_timeout.is_zero() {
            return Err(StoreError::Config("postgres pool_size and op_timeout must be above zero".into()));
        }
        let mut pg = tokio_postgres::Config::from_str(&url)
            .map_err(|e| StoreError::Config(format!("postgres URL `{url}` is not valid: {e}")))?;
        pg.connect_timeout(config.connect_timeout);
        // Notice a peer that vanished without closing the connection.
        pg.keepalives_idle(Duration::from_secs(30));
        if pg.get_application_name().is_none() {
            pg.application_name("bot-sessions");
        }
        let table = format!("\"{}\".\"{}\"", config.schema, config.table);
        let sql = statements(&table)?;
        let slots = (0..config.pool_size).map(|_| Slot::default()).collect();
        let conns = Connections { pg, sql, slots, next: AtomicUsize::new(0) };
        let store = PostgresStore { conns: Arc::new(conns), config };
        store.timed(None, store.migrate()).await?;
        Ok(store)
    }

    /// The schema-qualified table name.
    pub fn table(&self) -> String {
        format!("{}.{}", self.config.schema, self.config.table)
    }

    /// Creates the schema and table, or upgrades them, under an advisory lock.
    async fn migrate(&self) -> Result<(), StoreError> {
        let (schema, name) = (&self.config.schema, &self.config.table);
        let table = format!("\"{schema}\".\"{name}\"");
        let meta = format!("\"{schema}\".\"{name}_schema\"");
        let mut client = connect(&self.conns.pg).await?;
        let tx = client.transaction().await.map_err(|e| pg_err(None, e))?;
        let lock_name = format!("bot-sessions:{schema}.{name}");
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&lock_name])
            .await
            .map_err(|e| pg_err(None, e))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS {meta} (
                 singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                 version integer NOT NULL
             );"
        ))
        .await
        .map_err(|e| pg_err(None, e))?;
        let found: Option<i32> = tx
            .query_opt(&format!("SELECT version FROM {meta}"), &[])
            .await
            .map_err(|e| pg_err(None, e))?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(|e| pg_err(None, e))?;
        let found = found.unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(StoreError::backend(
                BACKEND,
                None,
                false,
                format!("table {table} is at schema version {found}, newer than this code ({SCHEMA_VERSION})"),
            ));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
            tracing::info!(table = %table, from = i, "migrating the session table");
            tx.batch_execute(&step.replace("{table}", &table).replace("{name}", name))
                .await
                .map_err(|e| pg_err(None, e))?;
        }
        tx.execute(
            &format!(
                "INSERT INTO {meta} (singleton, version) VALUES (true, $1)
                 ON CONFLICT (singleton) DO UPDATE SET version = excluded.version"
            ),
            &[&SCHEMA_VERSION],
        )
        .await
        .map_err(|e| pg_err(None, e))?;
        tx.commit().await.map_err(|e| pg_err(None, e))
    }

    /// Runs `fut` under the operation timeout.
    async fn timed<T>(
        &self,
        key: Option<&str>,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.config.op_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(timeout_err(key, self.config.op_timeout)),
        }
    }

    /// Runs one statement on a shared connection and returns its rows.
    async fn query(&self, key: Option<&str>, q: Q, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let deadline = Instant::now() + self.config.op_timeout;
        let conn = match tokio::time::timeout_at(deadline, self.conns.get()).await {
            Ok(conn) => conn?,
            Err(_) => return Err(timeout_err(key, self.config.op_timeout)),
        };
        match tokio::time::timeout_at(deadline, conn.client.query(conn.statement(q), params)).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => {
                if e.is_closed() {
                    self.conns.evict(&conn);
                }
                Err(pg_err(key, e))
            }
            Err(_) => {
                self.conns.evict(&conn);
                Err(timeout_err(key, self.config.op_timeout))
            }
        }
    }
}

fn conflict(key: &str) -> StoreError {
    StoreError::Conflict { key: key.to_owned() }
}

fn count_of(rows: &[tokio_postgres::Row]) -> Result<u64, StoreError> {
    let n: i64 = match rows.first() {
        Some(row) => row.try_get(0).map_err(|e| pg_err(None, e))?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        let text = key.as_str();
        let rows = self.query(Some(text), Q::Load, &[&text, &now.as_millis()]).await?;
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
        let schema = i64::from(write.schema_version);
        let expires = write.expires_at.map(Timestamp::as_millis);
        let now_ms = now.as_millis();
        let rows = match precondition {
            Precondition::Version(v) => {
                let Some(v) = i64_of(v) else { return Err(conflict(text)) };
                let params: [&(dyn ToSql + Sync); 6] = [&text, &write.value, &schema, &now_ms, &expires, &v];
                self.query(Some(text), Q::CompareAndSet, &params).await?
            }
            Precondition::Absent | Precondition::Any => {
                let q = if precondition == Precondition::Absent { Q::Create } else { Q::Upsert };
                let ns = key.namespace().as_str();
                let user = key.user_id();
                let params: [&(dyn ToSql + Sync); 7] = [&text, &ns, &user, &write.value, &schema, &now_ms, &expires];
                self.query(Some(text), q, &params).await?
            }
        };
        let Some(row) = rows.first() else { return Err(conflict(text)) };
        let version: i64 = row.try_get(0).map_err(|e| pg_err(Some(text), e))?;
        u64::try_from(version).map_err(|_| StoreError::Corrupt {
            key: text.to_owned(),
            reason: format!("version {version} out of range"),
        })
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        let text = key.as_str();
        let now_ms = now.as_millis();
        match precondition {
            Precondition::Any => {
                let rows = self.query(Some(text), Q::DeleteAny, &[&text, &now_ms]).await?;
                match rows.first() {
                    Some(row) => row.try_get::<_, bool>(0).map_err(|e| pg_err(Some(text), e)),
                    None => Ok(false),
                }
            }
            Precondition::Version(v) => {
                let Some(v) = i64_of(v) else { return Err(conflict(text)) };
                let rows = self.query(Some(text), Q::DeleteVersion, &[&text, &v, &now_ms]).await?;
                if rows.is_empty() { Err(conflict(text)) } else { Ok(true) }
            }
            Precondition::Absent => {
                let rows = self.query(Some(text), Q::DeleteAbsent, &[&text, &now_ms]).await?;
                let live = match rows.first() {
                    Some(row) => row.try_get::<_, bool>(0).map_err(|e| pg_err(Some(text), e))?,
                    None => false,
                };
                if live { Err(conflict(text)) } else { Ok(false) }
            }
        }
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        let rows = self.query(None, Q::ForgetUser, &[&user_id, &now.as_millis()]).await?;
        count_of(&rows)
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        let ns = namespace.as_str();
        let from = cursor.unwrap_or("");
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1).saturating_add(1);
        let rows = self.query(None, Q::Scan, &[&ns, &from, &now.as_millis(), &fetch]).await?;
        let mut items = Vec::with_capacity(rows.len().min(limit));
        for row in rows.iter().take(limit) {
            let text: &str = row.try_get(0).map_err(|e| pg_err(None, e))?;
            let key = text
                .parse::<SessionKey>()
                .map_err(|e| StoreError::Corrupt { key: text.to_owned(), reason: e.to_string() })?;
            let record = record_of(text, row, 1)?;
            items.push((key, record));
        }
        let next = if rows.len() > limit { items.last().map(|(k, _)| k.to_string()) } else { None };
        Ok(Page { items, next })
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut purged = 0;
        loop {
            let n = count_of(&self.query(None, Q::Purge, &[&now.as_millis(), &PURGE_BATCH]).await?)?;
            purged += n;
            if n < PURGE_BATCH as u64 {
                return Ok(purged);
            }
        }
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        let now_ms = now.as_millis();
        let rows = match namespace {
            Some(ns) => self.query(None, Q::CountNamespace, &[&ns.as_str(), &now_ms]).await?,
            None => self.query(None, Q::CountAll, &[&now_ms]).await?,
        };
        count_of(&rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_is_there() {
        let sql = statements("\"s\".\"t\"").unwrap();
        assert_eq!(sql.len(), STATEMENTS.len());
        for (i, (q, name)) in STATEMENTS.iter().enumerate() {
            assert_eq!(*q as usize, i, "STATEMENTS is in enum order ({name})");
            assert!(sql[i].contains("\"s\".\"t\"") && !sql[i].contains("{table}"), "{name}");
        }
        assert!(sql[Q::Load as usize].starts_with("SELECT value"));
    }

    #[test]
    fn identifiers_are_validated() {
        assert!(validate_identifier("table", "bot_sessions", 40).is_ok());
        assert!(validate_identifier("table", "_t2", 40).is_ok());
        for bad in ["", "1abc", "Bot", "a-b", "a\"b", "a;drop table x", "ä", &"x".repeat(41)] {
            assert!(matches!(validate_identifier("table", bad, 40), Err(StoreError::Config(_))), "{bad:?}");
        }
    }

    #[test]
    fn options_are_split_off_the_url() {
        let mut c = PostgresConfig::default();
        let url = split_url("postgres://u@h:1/db?schema=s1&sslmode=disable&table=t1&pool_size=4", &mut c).unwrap();
        assert_eq!(url, "postgres://u@h:1/db?sslmode=disable");
        assert_eq!((c.schema.as_str(), c.table.as_str(), c.pool_size), ("s1", "t1", 4));
        assert!(split_url("postgres://h/db?pool_size=0", &mut c).is_err());
    }
}
