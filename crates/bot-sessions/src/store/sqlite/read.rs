//! Reading: point loads on the load threads; scans, counts and the namespace list on
//! the blocking pool, each with an idle read connection.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use super::connection::Shared;
use super::row::{record, sqlite_error};
use super::schema::Sql;
use super::{BACKEND, SqliteStore};
use crate::{Namespace, Page, Record, SessionKey, StoreError, Timestamp};

impl SqliteStore {
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

    /// The live record of `key`: read in the caller's thread when that cannot wait
    /// (see [`QuickReads`](super::reader::QuickReads)), otherwise on a load thread.
    pub(super) async fn load_record(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        let quick = self.shared.quick.try_run(|conn| load_row(conn, &self.shared.sql, key.as_str(), now));
        let found = match quick {
            Some(found) => found,
            None => {
                let (owned, sql) = (key.clone(), self.shared.sql.clone());
                #[cfg(test)]
                let threads = self.shared.readers.threads.clone();
                self.shared
                    .loads
                    .run(move |conn| {
                        #[cfg(test)]
                        threads.lock().unwrap_or_else(|p| p.into_inner()).push(std::thread::current().id());
                        load_row(conn, &sql, owned.as_str(), now)
                    })
                    .await
                    .ok_or_else(|| {
                        StoreError::backend(BACKEND, Some(key.as_str()), false, "the sqlite load threads stopped")
                    })?
            }
        }
        .map_err(|e| sqlite_error(Some(key.as_str()), &e, e.to_string()))?;
        found.transpose().map_err(|reason| StoreError::Corrupt { key: key.to_string(), reason })
    }

    /// A page of `namespace`'s live records after `cursor`; corrupt rows are skipped and reported.
    pub(super) async fn scan_page(
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

    /// Live records; corrupt rows are reported, not counted.
    pub(super) async fn count_live(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
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

    /// The namespaces that have a live record.
    pub(super) async fn live_namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
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

/// The live row of `key`, parsed (the inner error: a corrupt row).
fn load_row(
    conn: &Connection,
    sql: &Sql,
    key: &str,
    now: Timestamp,
) -> rusqlite::Result<Option<Result<Record, String>>> {
    conn.prepare_cached(&sql.load)?.query_row(params![key, now.as_millis()], |row| record(row, 0)).optional()
}
