//! Small shared pieces: parsing keys and namespaces from the command line, formatting
//! times, walking namespaces.

use std::time::{Duration, UNIX_EPOCH};

use bot_sessions::{Namespace, Record, SessionKey, Timestamp};

use crate::error::{CliError, CliResult};
use crate::store::Opened;

/// Sessions per scan page.
pub const PAGE: usize = 1000;

/// Parses a key in its textual form (reserved namespaces like `_quarantine` included).
pub fn key(text: &str) -> CliResult<SessionKey> {
    text.parse::<SessionKey>().map_err(|e| CliError::Usage(format!("{e}")))
}

/// Parses a namespace name (reserved ones included, so `_quarantine` can be listed).
pub fn namespace(name: &str) -> CliResult<Namespace> {
    let probe = format!("{name}/chat:0");
    match probe.parse::<SessionKey>() {
        Ok(k) if k.namespace().as_str() == name => Ok(k.namespace().clone()),
        _ => Namespace::new(name).map_err(|e| CliError::Usage(e.to_string())),
    }
}

/// The namespaces a command walks: the one named, or every namespace of the store.
pub async fn namespaces(store: &Opened, named: Option<&str>) -> CliResult<Vec<Namespace>> {
    match named {
        Some(n) => Ok(vec![namespace(n)?]),
        None => store.store.namespaces(store.now()).await.map_err(|e| store.err(&e)),
    }
}

/// The last millisecond RFC 3339 can write (9999-12-31T23:59:59.999Z).
const LAST_DATE_MS: i64 = 253_402_300_799_999;

/// A time as RFC 3339 UTC to the second (`2025-11-21T22:10:03Z`); one that is no such
/// date (before 1970 or after 9999, which the formatter refuses) is shown as such, by
/// its Unix milliseconds: `@-5 ms (not a date)`.
pub fn time(t: Timestamp) -> String {
    let ms = t.as_millis();
    match u64::try_from(ms) {
        Ok(after_epoch) if ms <= LAST_DATE_MS => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(after_epoch)).to_string()
        }
        _ => format!("@{ms} ms (not a date)"),
    }
}

/// An expiry for a table: a time, or `never`.
pub fn expiry(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "never".into(), time)
}

/// The message of a key that holds nothing.
pub fn not_found(store: &Opened, key: &SessionKey) -> CliError {
    CliError::Failed(format!("store {}: no session under key `{key}`", store.name))
}

/// Loads a key's live record.
pub async fn load(store: &Opened, key: &SessionKey) -> CliResult<Option<Record>> {
    store.store.load(key, store.now()).await.map_err(|e| store.err(&e))
}

/// Prints rows as a table whose columns are as wide as their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints one JSON object on its own line.
pub fn json_line(value: &serde_json::Value) {
    println!("{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_time_is_shown_without_a_panic() {
        assert_eq!(time(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(time(Timestamp(LAST_DATE_MS)), "9999-12-31T23:59:59Z");
        assert_eq!(time(Timestamp(LAST_DATE_MS + 1)), "@253402300800000 ms (not a date)");
        assert_eq!(time(Timestamp(-5)), "@-5 ms (not a date)");
        for ms in [i64::MIN, i64::MAX, -1, 400_000_000_000_000] {
            assert!(time(Timestamp(ms)).ends_with("(not a date)"));
        }
    }
}
