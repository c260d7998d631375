//! What a backend stores for one session.

use crate::{SessionKey, Timestamp};

/// One stored session: the encoded value and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The value as the codec encoded it.
    pub value: Vec<u8>,
    /// The version the last writer proposed ([`Write::version`]): an opaque, random
    /// number that never repeats for a key, not even after the key was deleted,
    /// forgotten or expired and created again. Compare-and-set compares this.
    pub version: u64,
    /// The schema version of the data (for migrations).
    pub schema_version: u32,
    /// When the record was first written.
    pub created_at: Timestamp,
    /// When the record was last written.
    pub updated_at: Timestamp,
    /// When the record stops existing; `None` never expires.
    pub expires_at: Option<Timestamp>,
    /// The user the record is indexed under for
    /// [`forget_user`](crate::Store::forget_user): the key's user, or else the
    /// [`Write::owner`] of the write that created it. Fixed for the record's life.
    pub user_id: Option<i64>,
}

impl Record {
    /// Whether the record is expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now.is_expired(self.expires_at)
    }
}

/// A fresh record version: random, in `1..=i64::MAX` (so SQL backends store it as a
/// positive `BIGINT`). Not a secret: it only has to be unique per key.
///
/// Why random rather than "previous + 1": a counter restarts when a key is created
/// again, so a compare-and-set prepared against an earlier incarnation could succeed on
/// a later one (ABA) and overwrite it. 63 random bits never repeat in practice (two
/// versions of one key collide with probability 2^-63), need no state that outlives
/// the record (nothing is left behind after an erasure), and are chosen by the writer,
/// so after an unknown outcome the writer can load the key and see whether its write
/// landed.
pub fn new_version() -> u64 {
    // SplitMix64 over a per-thread counter seeded from the OS-seeded thread RNG: a
    // bijection of the counter, so one thread never repeats a value within 2^64 draws,
    // and threads start at random points. A few nanoseconds, where a draw from
    // `rand::rng()` costs several times that on the hot path of every save.
    // Zero stands for "not seeded yet" (a constant initializer: no lazy-init check on
    // every draw); a state that wraps to zero is seeded afresh, which is as good.
    thread_local! {
        static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    loop {
        let z = STATE.with(|s| {
            let state = match s.get() {
                0 => rand::random(),
                state => state,
            };
            let next = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            s.set(next);
            next
        });
        let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let version = (z ^ (z >> 31)) & (i64::MAX as u64);
        if version != 0 {
            return version;
        }
    }
}

/// What a caller writes; the store fills in the timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write<'a> {
    /// The encoded value.
    pub value: &'a [u8],
    /// The schema version of `value`.
    pub schema_version: u32,
    /// When the record expires, if ever.
    pub expires_at: Option<Timestamp>,
    /// The version the record gets if the write goes ahead; [`Write::new`] draws a
    /// fresh one ([`new_version`]). Never reuse a version for the same key.
    pub version: u64,
    /// The user to index the record under when its key names none (an interactive
    /// session's opener), so forget-user reaches it. Ignored when the key has a user,
    /// and when the write overwrites a live record (the owner is fixed at creation).
    pub owner: Option<i64>,
}

impl<'a> Write<'a> {
    /// A write of `value` with a fresh version and no owner.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::Write;
    ///
    /// let a = Write::new(b"{}", 1, None);
    /// let b = Write::new(b"{}", 1, None);
    /// assert_ne!(a.version, b.version, "every write proposes its own version");
    /// ```
    pub fn new(value: &'a [u8], schema_version: u32, expires_at: Option<Timestamp>) -> Self {
        Write { value, schema_version, expires_at, version: new_version(), owner: None }
    }

    /// Sets the owner indexed for forget-user (see [`Write::owner`]).
    pub fn with_owner(mut self, owner: Option<i64>) -> Self {
        self.owner = owner;
        self
    }

    /// The user the record is indexed under if this write creates it: the key's user,
    /// else this write's owner, else the key's [owner](SessionKey::owner) (a session of
    /// a private chat).
    pub fn indexed_user(&self, key: &SessionKey) -> Option<i64> {
        key.user_id().or(self.owner).or_else(|| key.owner())
    }
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
    /// The record that results from applying `write` under `key` at `now` over
    /// `previous` (the live record, if any): the version, owner and timestamps every
    /// backend must assign.
    pub fn next(previous: Option<&Record>, key: &SessionKey, write: &Write<'_>, now: Timestamp) -> Record {
        Self::next_into(previous, key, write, now, Vec::new())
    }

    /// [`Record::next`], reusing `buffer`'s allocation for the value.
    pub fn next_into(
        previous: Option<&Record>,
        key: &SessionKey,
        write: &Write<'_>,
        now: Timestamp,
        mut buffer: Vec<u8>,
    ) -> Record {
        buffer.clear();
        buffer.extend_from_slice(write.value);
        Record {
            value: buffer,
            version: write.version,
            schema_version: write.schema_version,
            created_at: previous.map_or(now, |p| p.created_at),
            updated_at: now,
            expires_at: write.expires_at,
            user_id: previous.map_or_else(|| write.indexed_user(key), |p| p.user_id),
        }
    }
}
