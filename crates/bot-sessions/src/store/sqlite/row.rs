//! Rows: a record from its columns (or what does not parse), SQLite's errors, and the
//! count of corrupt rows met.

use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::types::ValueRef;

use super::BACKEND;
use crate::{Record, StoreError, Timestamp};

/// Maps an SQLite error: busy and locked databases are worth retrying, the rest is not.
pub(super) fn sqlite_error(key: Option<&str>, e: &rusqlite::Error, message: String) -> StoreError {
    use rusqlite::ErrorCode;
    let retryable = matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked));
    StoreError::backend(BACKEND, key, retryable, message)
}

/// SQLite's name for the type of a stored value.
pub(super) fn type_name(value: ValueRef<'_>) -> &'static str {
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
pub(super) fn record(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Result<Record, String>> {
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

/// Rows whose metadata does not parse, as scans, counts and forget-user meet them.
#[derive(Debug, Default)]
pub(super) struct Corruption {
    pub(super) seen: AtomicU64,
}

impl Corruption {
    /// Logs a corrupt row under `key` and what was done about it, and counts it.
    pub(super) fn report(&self, key: &str, reason: &str, outcome: &str) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(backend = BACKEND, key, reason, "corrupt session record {outcome}");
    }

    /// Counts `n` corrupt rows that an aggregate skipped without naming them.
    pub(super) fn report_many(&self, n: u64, outcome: &str) {
        if n > 0 {
            self.seen.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(backend = BACKEND, rows = n, "corrupt session records {outcome}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
