//! The generator: random operation sequences of three clients over four keys, with
//! preconditions, values, expiries and clock steps ([`operations`]).

use std::fmt;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;

use crate::{Namespace, Scope, SessionKey};

/// How many clients interleave their operations.
pub const CLIENTS: usize = 3;
/// How many keys a case works on: see [`key_of`].
pub const KEYS: usize = 4;
/// How many users a case has: users 0 and 1 own keys, user 2 can only own the
/// user-less key through [`Write::with_owner`](crate::Write::with_owner).
pub const USERS: usize = 3;
/// How far the case's clock may run ahead of the real time.
pub const MAX_LEAD: Duration = Duration::from_secs(45);
/// How long after its record a canary expires (see the module docs).
pub const CANARY_LAG: Duration = Duration::from_secs(60);

/// The expiry delays a write can ask for, in milliseconds.
pub(super) const TTLS_MS: [u64; 4] = [1_000, 2_000, 5_000, 30_000];
/// The clock steps a case can take, in milliseconds: below, at and past the delays.
pub(super) const STEPS_MS: [u64; 6] = [1, 999, 1_000, 2_000, 5_000, 31_000];

/// The key `index` (below [`KEYS`]) of a case: a user-in-chat key of user 0, a user
/// key of user 1, a custom key of user 0, and a custom key without a user (indexed
/// under the owner its creating write names, if any).
///
/// # Panics
///
/// For an index of [`KEYS`] or more.
pub fn key_of(ns: &Namespace, users: &[i64; USERS], index: usize) -> SessionKey {
    let scope = match index {
        0 => Scope::ChatUser { chat: -1007, user: users[0] },
        1 => Scope::User(users[1]),
        2 => Scope::Custom { id: "cart".into(), user: Some(users[0]) },
        3 => Scope::Custom { id: "menu".into(), user: None },
        _ => panic!("key index {index} out of range"),
    };
    SessionKey::new(ns.clone(), scope)
}

/// The precondition of a generated write or delete.
#[derive(Clone, Copy)]
pub enum Pre {
    /// [`Precondition::Absent`](crate::Precondition::Absent).
    Absent,
    /// [`Precondition::Any`](crate::Precondition::Any).
    Any,
    /// What this client last saw of this key (the usual read-modify-write: load, then
    /// write back): [`Precondition::Version`](crate::Precondition::Version) of the version it last loaded, scanned or
    /// wrote (the key may have ended and been created again since), or
    /// [`Precondition::Absent`](crate::Precondition::Absent) when it found the key absent, deleted it, or never
    /// looked.
    Latest,
    /// [`Precondition::Version`](crate::Precondition::Version) with a version this client saw earlier for this key
    /// (from a load, a scan or its own write; possibly of an earlier incarnation),
    /// picked from its history by the index; version 0 when it saw none.
    Seen(Index),
    /// [`Precondition::Version`](crate::Precondition::Version) with an arbitrary number.
    Guess(u64),
}

impl fmt::Debug for Pre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pre::Absent => f.write_str("absent"),
            Pre::Any => f.write_str("any"),
            Pre::Latest => f.write_str("latest"),
            Pre::Seen(_) => f.write_str("seen"),
            Pre::Guess(v) => write!(f, "version({v})"),
        }
    }
}

/// One generated operation. `client`, `key` and `user` index the case's clients,
/// [`key_of`] and users.
#[derive(Clone)]
pub enum Op {
    /// Load a key.
    Load {
        /// Who loads (and remembers the version).
        client: usize,
        /// Which key.
        key: usize,
    },
    /// Write a key.
    Write {
        /// Who writes (and remembers the version on success).
        client: usize,
        /// Which key.
        key: usize,
        /// The precondition.
        pre: Pre,
        /// Expiry delay from the case's `now`, in milliseconds; `None` never expires.
        ttl_ms: Option<u64>,
        /// The user named by [`Write::with_owner`](crate::Write::with_owner).
        owner: Option<usize>,
        /// The schema version written.
        schema: u32,
    },
    /// Delete a key.
    Delete {
        /// Who deletes.
        client: usize,
        /// Which key.
        key: usize,
        /// The precondition.
        pre: Pre,
    },
    /// Forget a user.
    ForgetUser {
        /// Which user.
        user: usize,
    },
    /// Move the clock forward.
    Advance {
        /// By how many milliseconds.
        ms: u64,
    },
    /// Purge expired records (globally), then load every key and count.
    Purge,
    /// Count the namespace.
    Count,
    /// Scan the whole namespace.
    Scan {
        /// Who scans (and remembers the versions).
        client: usize,
        /// The page size.
        page: usize,
    },
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = |o: &Option<usize>| o.map_or("-".to_string(), |u| format!("U{u}"));
        let ttl = |t: &Option<u64>| t.map_or("-".to_string(), |ms| format!("{ms}ms"));
        match self {
            Op::Load { client, key } => write!(f, "c{client} load K{key}"),
            Op::Write { client, key, pre, ttl_ms, owner: o, schema } => {
                write!(f, "c{client} write K{key} if {pre:?} ttl={} owner={} schema={schema}", ttl(ttl_ms), owner(o))
            }
            Op::Delete { client, key, pre } => write!(f, "c{client} delete K{key} if {pre:?}"),
            Op::ForgetUser { user } => write!(f, "forget U{user}"),
            Op::Advance { ms } => write!(f, "advance {ms}ms"),
            Op::Purge => f.write_str("purge"),
            Op::Count => f.write_str("count"),
            Op::Scan { client, page } => write!(f, "c{client} scan page={page}"),
        }
    }
}

/// Preconditions; `absent` and `unconditional` weigh [`Pre::Absent`] and [`Pre::Any`]
/// (writes and deletes use different mixes).
pub(super) fn pre(absent: u32, unconditional: u32) -> impl Strategy<Value = Pre> {
    prop_oneof![
        absent => Just(Pre::Absent),
        unconditional => Just(Pre::Any),
        5 => Just(Pre::Latest),
        2 => any::<Index>().prop_map(Pre::Seen),
        1 => prop_oneof![Just(0u64), Just(1), Just(2), any::<u64>()].prop_map(Pre::Guess),
    ]
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    // Most operations on two keys, so their lifetimes are long and crowded.
    let key = proptest::sample::select(vec![0usize, 0, 0, 1, 2, 3, 3, 3]);
    let ttl = proptest::option::weighted(0.5, proptest::sample::select(TTLS_MS.to_vec()));
    let owner = proptest::option::of(0..USERS);
    prop_oneof![
        3 => (client.clone(), key.clone()).prop_map(|(client, key)| Op::Load { client, key }),
        6 => (client.clone(), key.clone(), pre(1, 1), ttl, owner, 1u32..=3).prop_map(
            |(client, key, pre, ttl_ms, owner, schema)| Op::Write { client, key, pre, ttl_ms, owner, schema }
        ),
        3 => (client.clone(), key, pre(1, 2)).prop_map(|(client, key, pre)| Op::Delete { client, key, pre }),
        1 => (0..USERS).prop_map(|user| Op::ForgetUser { user }),
        2 => proptest::sample::select(STEPS_MS.to_vec()).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Purge),
        1 => Just(Op::Count),
        1 => (client, 1usize..=3).prop_map(|(client, page)| Op::Scan { client, page }),
    ]
}

/// Sequences of 1 to `max_ops` operations.
pub fn operations(max_ops: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..=max_ops.max(1))
}
