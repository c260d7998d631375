//! The reference model: a `BTreeMap` of records that answers every operation as the
//! store contract says.

use std::collections::BTreeMap;

use crate::{Precondition, Record, SessionKey, Timestamp};

/// A concrete operation: the generated one with its precondition, version, value and
/// times resolved.
#[derive(Debug, Clone)]
pub(super) enum Step {
    Load(usize),
    Write {
        key: usize,
        value: Vec<u8>,
        schema: u32,
        expires_at: Option<Timestamp>,
        version: u64,
        owner: Option<i64>,
        pre: Precondition,
    },
    Delete {
        key: usize,
        pre: Precondition,
    },
    Forget(i64),
    Purge,
    Count,
    Scan {
        page: usize,
    },
}

/// What an operation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Loaded(Option<Record>),
    Written(u64),
    Deleted(bool),
    Conflict,
    Forgot(u64),
    /// After a purge: every key loaded, and the namespace's count.
    Purged(Vec<Option<Record>>, u64),
    Counted(u64),
    Scanned(Vec<(usize, Record)>),
}

/// The reference model: the records of the case's keys, expired ones included until
/// something removes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Model {
    pub(super) records: BTreeMap<usize, Record>,
}

pub(super) fn expired(record: &Record, now: Timestamp) -> bool {
    matches!(record.expires_at, Some(at) if at <= now)
}

pub(super) fn holds(pre: Precondition, live: Option<u64>) -> bool {
    match pre {
        Precondition::Any => true,
        Precondition::Absent => live.is_none(),
        Precondition::Version(v) => live == Some(v),
    }
}

impl Model {
    pub(super) fn live(&self, key: usize, now: Timestamp) -> Option<&Record> {
        self.records.get(&key).filter(|r| !expired(r, now))
    }

    pub(super) fn live_count(&self, now: Timestamp) -> u64 {
        self.records.values().filter(|r| !expired(r, now)).count() as u64
    }

    /// What `step` must answer at `now`, and the model after it.
    pub(super) fn apply(&self, step: &Step, now: Timestamp, keys: &[SessionKey]) -> (Outcome, Model) {
        let mut next = self.clone();
        let outcome = match step {
            Step::Load(k) => Outcome::Loaded(self.live(*k, now).cloned()),
            Step::Write { key, value, schema, expires_at, version, owner, pre } => {
                let live = self.live(*key, now);
                if holds(*pre, live.map(|r| r.version)) {
                    let record = Record {
                        value: value.clone(),
                        version: *version,
                        schema_version: *schema,
                        created_at: live.map_or(now, |r| r.created_at),
                        updated_at: now,
                        expires_at: *expires_at,
                        user_id: match live {
                            Some(r) => r.user_id,
                            None => keys[*key].user_id().or(*owner),
                        },
                    };
                    next.records.insert(*key, record);
                    Outcome::Written(*version)
                } else {
                    Outcome::Conflict
                }
            }
            Step::Delete { key, pre } => {
                let live = self.live(*key, now).map(|r| r.version);
                if holds(*pre, live) {
                    next.records.remove(key);
                    Outcome::Deleted(live.is_some())
                } else {
                    Outcome::Conflict
                }
            }
            Step::Forget(user) => {
                let n = self.records.values().filter(|r| r.user_id == Some(*user) && !expired(r, now)).count();
                next.records.retain(|_, r| r.user_id != Some(*user));
                Outcome::Forgot(n as u64)
            }
            Step::Purge => {
                next.records.retain(|_, r| !expired(r, now));
                let loads = (0..keys.len()).map(|k| next.live(k, now).cloned()).collect();
                Outcome::Purged(loads, next.live_count(now))
            }
            Step::Count => Outcome::Counted(self.live_count(now)),
            Step::Scan { .. } => {
                let mut items: Vec<(usize, Record)> =
                    self.records.iter().filter(|(_, r)| !expired(r, now)).map(|(k, r)| (*k, r.clone())).collect();
                items.sort_by(|a, b| keys[a.0].as_str().cmp(keys[b.0].as_str()));
                Outcome::Scanned(items)
            }
        };
        (outcome, next)
    }
}
