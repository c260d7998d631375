//! One write or delete inside the batch's open transaction: the stored row's head as
//! the precondition sees it, and what an unconditional write keeps of a corrupt row.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use super::super::BACKEND;
use super::super::row::type_name;
use super::super::schema::Sql;
use super::{Op, Settings};
use crate::{Precondition, Record, SessionKey, StoreError, Timestamp, Write};

/// Applies one request inside the open transaction. The outer error is an SQLite
/// failure (the batch is redone without this request's neighbours); the inner one is
/// the request's own outcome (a failed precondition, a corrupt row).
pub(super) fn apply_one(
    conn: &Connection,
    settings: &Settings,
    op: &Op,
    now: Timestamp,
) -> rusqlite::Result<Result<u64, StoreError>> {
    let sql = &settings.sql;
    match op {
        Op::Write { key, value, schema_version, expires_at, version, owner, precondition } => {
            let write = Write {
                value: &[],
                schema_version: *schema_version,
                expires_at: *expires_at,
                version: *version,
                owner: *owner,
            };
            let previous = match head(conn, sql, key, now)? {
                Head::Missing | Head::Expired => None,
                Head::Live(previous) => Some(previous),
                // Only an unconditional write may replace a row it cannot read; it keeps
                // whatever of the row's creation and owner still parses.
                Head::Corrupt { reason, salvage } if *precondition == Precondition::Any => {
                    settings.corruption.report(key.as_str(), &reason, "overwritten by an unconditional write");
                    Some(salvage.into_record(key, &write, now))
                }
                Head::Corrupt { reason, .. } => return Ok(Err(corrupt(key, &reason))),
            };
            if !precondition.holds(previous.as_ref().map(|r| r.version)) {
                return Ok(Err(StoreError::Conflict { key: key.to_string() }));
            }
            let next = Record::next(previous.as_ref(), key, &write, now);
            let version = match crate::store::sql_version(BACKEND, key.as_str(), next.version) {
                Ok(version) => version,
                Err(e) => return Ok(Err(e)),
            };
            conn.prepare_cached(&sql.upsert)?.execute(params![
                key.as_str(),
                key.namespace().as_str(),
                next.user_id,
                value,
                version,
                schema_version,
                next.created_at.as_millis(),
                next.updated_at.as_millis(),
                next.expires_at.map(Timestamp::as_millis),
            ])?;
            Ok(Ok(next.version))
        }
        Op::Delete { key, precondition } => {
            let (exists, live) = match head(conn, sql, key, now)? {
                Head::Missing => (false, None),
                Head::Expired => (true, None),
                Head::Live(r) => (true, Some(r.version)),
                Head::Corrupt { reason, .. } if *precondition == Precondition::Any => {
                    settings.corruption.report(key.as_str(), &reason, "deleted by an unconditional delete");
                    conn.prepare_cached(&sql.delete)?.execute([key.as_str()])?;
                    // Not known to be expired: it counts as a live record.
                    return Ok(Ok(1));
                }
                Head::Corrupt { reason, .. } => return Ok(Err(corrupt(key, &reason))),
            };
            if !precondition.holds(live) {
                return Ok(Err(StoreError::Conflict { key: key.to_string() }));
            }
            if exists {
                // Under `Absent` this only drops an expired leftover.
                conn.prepare_cached(&sql.delete)?.execute([key.as_str()])?;
            }
            Ok(Ok(u64::from(live.is_some())))
        }
        Op::ForgetUser { user_id } => {
            let mut stmt = conn.prepare_cached(&sql.forget_user)?;
            let mut rows = stmt.query([user_id])?;
            let mut n = 0u64;
            while let Some(row) = rows.next()? {
                let live = match row.get_ref(1)? {
                    ValueRef::Null => true,
                    ValueRef::Integer(at) => !now.is_expired(Some(Timestamp(at))),
                    other => {
                        let key = String::from_utf8_lossy(row.get_ref(0)?.as_bytes().unwrap_or_default()).into_owned();
                        let reason = format!("expires_at is {}, not an integer", type_name(other));
                        settings.corruption.report(&key, &reason, "erased by forget-user, counted as live");
                        true
                    }
                };
                n += u64::from(live);
            }
            Ok(Ok(n))
        }
        // Purges never reach a batch (see `run`).
        Op::Purge { .. } => Ok(Err(StoreError::backend(BACKEND, None, false, "a purge was batched"))),
    }
}

/// The stored row under a key, as a write or delete sees it.
enum Head {
    /// No row.
    Missing,
    /// An expired row (absent to every precondition).
    Expired,
    /// A live row's metadata (the value is not read), as [`Record::next`] needs it.
    Live(Record),
    /// A row whose metadata does not parse (and is not known to be expired).
    Corrupt { reason: String, salvage: Salvage },
}

/// What still parses of a corrupt row.
struct Salvage {
    created_at: Option<Timestamp>,
    /// `Some` when the row's user id parses (`Some(None)`: no user).
    user_id: Option<Option<i64>>,
}

impl Salvage {
    /// The record an unconditional write over the corrupt row builds on: its creation
    /// time and indexed user when they parse, otherwise those of a new record.
    fn into_record(self, key: &SessionKey, write: &Write<'_>, now: Timestamp) -> Record {
        Record {
            value: Vec::new(),
            version: 0,
            schema_version: 0,
            created_at: self.created_at.unwrap_or(now),
            updated_at: now,
            expires_at: None,
            user_id: self.user_id.unwrap_or_else(|| write.indexed_user(key)),
        }
    }
}

fn head(conn: &Connection, sql: &Sql, key: &SessionKey, now: Timestamp) -> rusqlite::Result<Head> {
    conn.prepare_cached(&sql.head)?
        .query_row([key.as_str()], |row| {
            let int = |i: usize| match row.get_ref(i) {
                Ok(ValueRef::Integer(v)) => Ok(Some(v)),
                Ok(ValueRef::Null) => Ok(None),
                Ok(other) => Err(type_name(other)),
                Err(_) => Err("missing"),
            };
            let expires_at = match int(2) {
                Ok(at) => at.map(Timestamp),
                Err(t) => return Ok(Head::Corrupt { reason: format!("expires_at is {t}"), salvage: salvage(&int) }),
            };
            if now.is_expired(expires_at) {
                return Ok(Head::Expired);
            }
            let reason = match (int(0), int(1), int(3)) {
                (Ok(Some(version)), Ok(Some(created_at)), Ok(user_id)) => match u64::try_from(version) {
                    Ok(version) => {
                        let created_at = Timestamp(created_at);
                        return Ok(Head::Live(Record {
                            value: Vec::new(),
                            version,
                            schema_version: 0,
                            created_at,
                            updated_at: created_at,
                            expires_at,
                            user_id,
                        }));
                    }
                    Err(_) => format!("negative version {version}"),
                },
                (Ok(None), ..) => "version is NULL".to_owned(),
                (Err(t), ..) => format!("version is {t}"),
                (_, Ok(None), _) => "created_at is NULL".to_owned(),
                (_, Err(t), _) => format!("created_at is {t}"),
                (.., Err(t)) => format!("user_id is {t}"),
            };
            Ok(Head::Corrupt { reason, salvage: salvage(&int) })
        })
        .optional()
        .map(|found| found.unwrap_or(Head::Missing))
}

fn salvage(int: &dyn Fn(usize) -> Result<Option<i64>, &'static str>) -> Salvage {
    Salvage { created_at: int(1).ok().flatten().map(Timestamp), user_id: int(3).ok() }
}

fn corrupt(key: &SessionKey, reason: &str) -> StoreError {
    StoreError::Corrupt { key: key.to_string(), reason: reason.to_owned() }
}
