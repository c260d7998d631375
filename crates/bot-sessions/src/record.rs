//! What a backend stores for one session.

use crate::Timestamp;

/// One stored session: the encoded value and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The value as the codec encoded it.
    pub value: Vec<u8>,
    /// 1 when created, +1 on every write. Compare-and-set compares this.
    pub version: u64,
    /// The schema version of the data (for migrations).
    pub schema_version: u32,
    /// When the record was first written.
    pub created_at: Timestamp,
    /// When the record was last written.
    pub updated_at: Timestamp,
    /// When the record stops existing; `None` never expires.
    pub expires_at: Option<Timestamp>,
}

impl Record {
    /// Whether the record is expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now.is_expired(self.expires_at)
    }
}

/// What a caller writes; the store fills in the version and the timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write<'a> {
    /// The encoded value.
    pub value: &'a [u8],
    /// The schema version of `value`.
    pub schema_version: u32,
    /// When the record expires, if ever.
    pub expires_at: Option<Timestamp>,
}

/// The condition under which a write or delete goes ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Only if no live record exists (an expired one counts as absent).
    Absent,
    /// Only if the live record has exactly this version (compare-and-set).
    Version(u64),
    /// Unconditionally.
    Any,
}

impl Precondition {
    /// Whether a live record of version `current` (`None`: absent) satisfies this.
    pub fn holds(self, current: Option<u64>) -> bool {
        match (self, current) {
            (Precondition::Any, _) | (Precondition::Absent, None) => true,
            (Precondition::Version(v), Some(c)) => v == c,
            _ => false,
        }
    }
}

impl Record {
    /// The record that results from applying `write` at `now` over `previous` (the live
    /// record, if any): the version and timestamps every backend must assign.
    pub fn next(previous: Option<&Record>, write: &Write<'_>, now: Timestamp) -> Record {
        Self::next_into(previous, write, now, Vec::new())
    }

    /// [`Record::next`], reusing `buffer`'s allocation for the value.
    pub fn next_into(previous: Option<&Record>, write: &Write<'_>, now: Timestamp, mut buffer: Vec<u8>) -> Record {
        buffer.clear();
        buffer.extend_from_slice(write.value);
        Record {
            value: buffer,
            version: previous.map_or(1, |p| p.version + 1),
            schema_version: write.schema_version,
            created_at: previous.map_or(now, |p| p.created_at),
            updated_at: now,
            expires_at: write.expires_at,
        }
    }
}
