//! How a PostgreSQL failure is reported: which errors are worth retrying, which mean
//! the connection broke, and the messages with the driver's causes spelled out.

use std::time::Duration;

use super::BACKEND;
use crate::StoreError;

/// A failed connection attempt, with the server's or the system's reason in its
/// message: tokio-postgres says only "db error" or "error connecting to server" at the
/// top, and keeps the reason (authentication failed, connection refused) in its source.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
struct ConnectFailed {
    detail: String,
    #[source]
    source: tokio_postgres::Error,
}

pub(super) fn connect_err(e: tokio_postgres::Error) -> StoreError {
    let retryable = retryable(&e);
    StoreError::backend(BACKEND, None, retryable, ConnectFailed { detail: with_causes(&e), source: e })
}

/// `e`'s message followed by its sources' (the driver's own errors say little at the
/// top). No source of the driver's echoes a password: its configuration errors name
/// the option, never the value.
pub(super) fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut detail = e.to_string();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !detail.ends_with(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        next = cause.source();
    }
    detail
}

/// Whether the error means the connection broke before the server's answer arrived:
/// closed, an I/O failure, a connection exception (SQLSTATE class 08) or the server
/// ending the session (57P01-57P05: terminated, shut down, crashed). Such a statement
/// may or may not have committed.
pub(super) fn connection_lost(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P")
        }
        // No SQLSTATE: the server did not answer (closed, I/O, a garbled message). The
        // parameters of this store's statements always convert, so it was not that.
        None => true,
    }
}

/// Whether a PostgreSQL error may pass if the operation is tried again.
pub(super) fn retryable(e: &tokio_postgres::Error) -> bool {
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

pub(super) fn pg_err(key: Option<&str>, e: tokio_postgres::Error) -> StoreError {
    StoreError::backend(BACKEND, key, retryable(&e), e)
}

pub(super) fn timed_out(after: Duration) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer from postgres within {after:?}"))
}

pub(super) fn timeout_err(key: Option<&str>, after: Duration) -> StoreError {
    StoreError::backend(BACKEND, key, true, timed_out(after))
}
