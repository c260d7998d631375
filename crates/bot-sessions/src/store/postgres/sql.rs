//! The store's SQL: the named statements of `queries.sql`, the table migrations, and
//! reading a row back into a [`Record`].

use tokio_postgres::Row;

use super::conn::{BACKEND, Connections, Single, pg_err, timeout_err};
use crate::{Record, StoreError, Timestamp};

/// The table layout this code writes. Bump it and add a step to [`MIGRATIONS`].
pub(super) const SCHEMA_VERSION: i32 = 2;
/// Migration steps; step `i` upgrades version `i` to `i + 1`.
const MIGRATIONS: [&str; 2] = [include_str!("v1.sql"), include_str!("v2.sql")];
const QUERIES: &str = include_str!("queries.sql");

/// The statements of `queries.sql`, by name.
#[derive(Debug, Clone, Copy)]
pub(super) enum Q {
    Load,
    Create,
    Upsert,
    CompareAndSet,
    CompareAndSetMany,
    RecentVersions,
    DeleteAny,
    DeleteVersion,
    DeleteAbsent,
    ForgetUser,
    Scan,
    Purge,
    PurgeExclusive,
    CountNamespace,
    CountAll,
    Namespaces,
}

pub(super) const STATEMENTS: [(Q, &str); 16] = [
    (Q::Load, "load"),
    (Q::Create, "create"),
    (Q::Upsert, "upsert"),
    (Q::CompareAndSet, "compare_and_set"),
    (Q::CompareAndSetMany, "compare_and_set_many"),
    (Q::RecentVersions, "recent_versions"),
    (Q::DeleteAny, "delete_any"),
    (Q::DeleteVersion, "delete_version"),
    (Q::DeleteAbsent, "delete_absent"),
    (Q::ForgetUser, "forget_user"),
    (Q::Scan, "scan"),
    (Q::Purge, "purge"),
    (Q::PurgeExclusive, "purge_exclusive"),
    (Q::CountNamespace, "count_namespace"),
    (Q::CountAll, "count_all"),
    (Q::Namespaces, "namespaces"),
];

/// The statement texts in [`STATEMENTS`] order, with the table name (validated and
/// quoted) filled in.
pub(super) fn statements(table: &str) -> Result<Vec<String>, StoreError> {
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

/// Creates the schema and table, or upgrades them, in one transaction under an
/// advisory lock on the table's name, within `limit` (a migration still running then,
/// say waiting for another process's lock, is cancelled on the server). `schema` and
/// `name` are validated identifiers.
pub(super) async fn migrate(
    conns: &Connections,
    schema: &str,
    name: &str,
    limit: std::time::Duration,
) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + limit;
    let Single { mut client, driver } = match tokio::time::timeout_at(deadline, conns.open_single()).await {
        Ok(opened) => opened?,
        Err(_) => return Err(timeout_err(None, limit)),
    };
    let cancel = client.cancel_token();
    let result = match tokio::time::timeout_at(deadline, migrate_on(&mut client, schema, name)).await {
        Ok(result) => result,
        Err(_) => {
            conns.cancel(cancel);
            Err(timeout_err(None, limit))
        }
    };
    drop(client);
    if result.is_err() {
        driver.abort();
    }
    result
}

async fn migrate_on(client: &mut tokio_postgres::Client, schema: &str, name: &str) -> Result<(), StoreError> {
    let table = format!("\"{schema}\".\"{name}\"");
    let meta = format!("\"{schema}\".\"{name}_schema\"");
    {
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
}

/// Reads the record in `row` from column `offset` on: value, version, schema_version,
/// created_at, updated_at, expires_at, user_id. Metadata out of range (a version
/// below 1, a schema version outside `u32`, a column of the wrong type) is
/// [`StoreError::Corrupt`] naming `key`.
pub(super) fn record_of(key: &str, row: &Row, offset: usize) -> Result<Record, StoreError> {
    let corrupt = |e: tokio_postgres::Error| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() };
    let bad =
        |what: &str, v: i64| StoreError::Corrupt { key: key.to_owned(), reason: format!("{what} {v} is out of range") };
    let version: i64 = row.try_get(offset + 1).map_err(corrupt)?;
    let schema: i64 = row.try_get(offset + 2).map_err(corrupt)?;
    Ok(Record {
        value: row.try_get(offset).map_err(corrupt)?,
        version: u64::try_from(version).ok().filter(|v| *v >= 1).ok_or_else(|| bad("version", version))?,
        schema_version: u32::try_from(schema).map_err(|_| bad("schema_version", schema))?,
        created_at: Timestamp(row.try_get(offset + 3).map_err(corrupt)?),
        updated_at: Timestamp(row.try_get(offset + 4).map_err(corrupt)?),
        expires_at: row.try_get::<_, Option<i64>>(offset + 5).map_err(corrupt)?.map(Timestamp),
        user_id: row.try_get(offset + 6).map_err(corrupt)?,
    })
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
    fn no_statement_derives_a_version() {
        for (sql, (_, name)) in statements("t").unwrap().iter().zip(STATEMENTS) {
            let code: String = sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect();
            assert!(!code.contains("version + 1") && !code.contains("version = 1"), "{name}: {code}");
        }
    }
}
