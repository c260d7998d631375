//! The store's SQL: the named statements of `queries.sql`, the table migrations
//! (run by `migrate.rs`), and reading a row back into a [`Record`].

use tokio_postgres::Row;

use crate::{Record, StoreError, Timestamp};

/// The table layout this code writes. Bump it and add a step to [`MIGRATIONS`].
pub(super) const SCHEMA_VERSION: i32 = 2;
/// Migration steps; step `i` upgrades version `i` to `i + 1`.
pub(super) const MIGRATIONS: [&str; 2] = [include_str!("v1.sql"), include_str!("v2.sql")];
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
