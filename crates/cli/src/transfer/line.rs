//! One exported session: a JSON line with the key, the exact bytes (base64) and every
//! piece of metadata.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bot_sessions::{Record, SessionKey, Timestamp};
use serde::{Deserialize, Serialize};

/// How far a line's times may be ahead of this machine's clock (clocks of two machines
/// differ a little); a write is never stamped later than now (see `put`).
pub const SKEW_MS: i64 = 5 * 60 * 1000;

/// A line's times must be a possible history: after 1970, created before (or when) it
/// was updated, and not in the future (beyond [`SKEW_MS`]). A time in the future would
/// be the `now` of a write, and a store judges expiry by that `now`: a live session
/// would look expired there and be replaced.
fn check_times(key: &SessionKey, line: &Line, now: Timestamp) -> Result<(), String> {
    let (created, updated) = (line.created_at, line.updated_at);
    if created < 0 || updated < 0 {
        return Err(format!("times of `{key}` are before 1970 (created_at {created}, updated_at {updated})"));
    }
    if created > updated {
        return Err(format!("created_at {created} of `{key}` is after its updated_at {updated}"));
    }
    if updated > now.as_millis().saturating_add(SKEW_MS) {
        return Err(format!(
            "updated_at {updated} of `{key}` is in the future (this machine's clock says {})",
            now.as_millis()
        ));
    }
    Ok(())
}

/// The export line format (field order is the output order).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// The textual key.
    pub key: String,
    /// The stored bytes, base64 (standard alphabet, padded).
    pub value: String,
    /// The record's version.
    pub version: u64,
    /// The data's schema version.
    pub schema_version: u32,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    /// Unix milliseconds; `null`: never.
    pub expires_at: Option<i64>,
    /// The user indexed for forget-user.
    pub user_id: Option<i64>,
}

impl Line {
    /// The line of a record.
    pub fn of(key: &SessionKey, r: &Record) -> Self {
        Line {
            key: key.to_string(),
            value: STANDARD.encode(&r.value),
            version: r.version,
            schema_version: r.schema_version,
            created_at: r.created_at.as_millis(),
            updated_at: r.updated_at.as_millis(),
            expires_at: r.expires_at.map(Timestamp::as_millis),
            user_id: r.user_id,
        }
    }

    /// Parses one line into a key and a record, checking its times against `now`.
    ///
    /// # Errors
    ///
    /// What is wrong with the line (truncated JSON, a bad key, bad base64, a version 0,
    /// times that make no sense: before 1970, `created_at` after `updated_at`, later
    /// than `now` by more than [`SKEW_MS`]).
    pub fn parse(bytes: &[u8], now: Timestamp) -> Result<(SessionKey, Record), String> {
        let line: Line = serde_json::from_slice(bytes).map_err(|e| format!("not a session line: {e}"))?;
        let key = line.key.parse::<SessionKey>().map_err(|e| e.to_string())?;
        let value = STANDARD.decode(&line.value).map_err(|e| format!("value of `{key}` is not base64: {e}"))?;
        if line.version == 0 || line.version > i64::MAX as u64 {
            return Err(format!("version {} of `{key}` is outside 1..=2^63-1", line.version));
        }
        check_times(&key, &line, now)?;
        let record = Record {
            value,
            version: line.version,
            schema_version: line.schema_version,
            created_at: Timestamp(line.created_at),
            updated_at: Timestamp(line.updated_at),
            expires_at: line.expires_at.map(Timestamp),
            user_id: line.user_id,
        };
        Ok((key, record))
    }
}
