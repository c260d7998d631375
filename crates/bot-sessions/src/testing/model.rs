//! A model-based test of the [`Store`](crate::Store) contract over whole key lifetimes.
//!
//! [`operations`] generates random sequences of operations by three interleaved clients
//! on a small key space (three keys of two users, and one key without a user that a
//! write can give an owner with [`Write::with_owner`]), so that lifetimes overlap: keys
//! are created, updated, expired, deleted, forgotten and created again while clients
//! still hold versions of earlier incarnations. Each operation runs against the store
//! under test and against a small reference model (a `BTreeMap` of records), and every
//! result must be the same: the value, version, schema version, `user_id`,
//! `created_at`, `updated_at` and `expires_at` of each loaded or scanned record, each
//! `Conflict`, each count. A divergence fails with proptest's shrunk sequence and a
//! trace of what the store answered.
//!
//! [`run_model`] drives proptest's [`TestRunner`] and returns its result (so a test can
//! show that a broken store fails); [`model_lifetimes`] is the conformance entry point,
//! which panics with the shrunk case. The generated sequences come from a fixed seed,
//! so every backend runs the same ones.
//!
//! # Time
//!
//! Time is a manual clock passed to every call, never a sleep. Each case starts it at
//! the real current time; it only moves forward, by the generated `advance` steps
//! (at most [`MAX_LEAD`] ahead of the real time) and by catching up with the real time
//! when that has passed it, so a backend's own expiry (Redis' `PEXPIREAT` at
//! `expires_at` plus a grace) or a background purger working by the real time never
//! removes a record the model still holds live.
//!
//! # Shared servers
//!
//! Every case works in a fresh namespace with fresh user ids, and removes its records
//! at the end. `purge_expired` is global, so its count is not compared; what is
//! compared is what the purge leaves in this case's namespace (every key is loaded
//! and the namespace counted right after it). Another test on the same server may
//! purge with a clock of its own that is ahead of this one and so remove one of this
//! case's records before its `expires_at` in this case's time (the conformance
//! `expiry` property purges three minutes ahead). To tell that from a bug, each write
//! with an expiry is preceded by a *canary* record, in a namespace of its own, that
//! expires [`CANARY_LAG`] after the record would: this case's own purges never reach a
//! canary, so a canary that is gone means a foreign purge ran at least that far
//! ahead. A divergence that disappears when records whose canaries are gone (and that
//! a load finds gone) are taken out of the model is tolerated and noted in the trace;
//! so is an unconditional write that, by the record a load finds, created a new record
//! over one whose canary is gone. Any other divergence fails.
//!
//! The case's own purges run at most [`MAX_LEAD`] ahead of the real time, so they
//! never remove a record that a test on a clock of its own (starting at the real time,
//! with expiries of a minute or more) still holds live.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use super::{unique_namespace, unique_user};
use crate::{DynStore, Namespace, Precondition, Record, Scope, SessionKey, StoreError, Timestamp, Write};

/// How many clients interleave their operations.
pub const CLIENTS: usize = 3;
/// How many keys a case works on: see [`key_of`].
pub const KEYS: usize = 4;
/// How many users a case has: users 0 and 1 own keys, user 2 can only own the
/// user-less key through [`Write::with_owner`].
pub const USERS: usize = 3;
/// How far the case's clock may run ahead of the real time.
pub const MAX_LEAD: Duration = Duration::from_secs(45);
/// How long after its record a canary expires (see the module docs).
pub const CANARY_LAG: Duration = Duration::from_secs(60);

/// The expiry delays a write can ask for, in milliseconds.
const TTLS_MS: [u64; 4] = [1_000, 2_000, 5_000, 30_000];
/// The clock steps a case can take, in milliseconds: below, at and past the delays.
const STEPS_MS: [u64; 6] = [1, 999, 1_000, 2_000, 5_000, 31_000];

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
    /// [`Precondition::Absent`].
    Absent,
    /// [`Precondition::Any`].
    Any,
    /// What this client last saw of this key (the usual read-modify-write: load, then
    /// write back): [`Precondition::Version`] of the version it last loaded, scanned or
    /// wrote (the key may have ended and been created again since), or
    /// [`Precondition::Absent`] when it found the key absent, deleted it, or never
    /// looked.
    Latest,
    /// [`Precondition::Version`] with a version this client saw earlier for this key
    /// (from a load, a scan or its own write; possibly of an earlier incarnation),
    /// picked from its history by the index; version 0 when it saw none.
    Seen(Index),
    /// [`Precondition::Version`] with an arbitrary number.
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
        /// The user named by [`Write::with_owner`].
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
fn pre(absent: u32, unconditional: u32) -> impl Strategy<Value = Pre> {
    prop_oneof![
        absent => Just(Pre::Absent),
        unconditional => Just(Pre::Any),
        5 => Just(Pre::Latest),
        2 => any::<Index>().prop_map(Pre::Seen),
        1 => prop_oneof![Just(0u64), Just(1), Just(2), any::<u64>()].prop_map(Pre::Guess),
    ]
}

fn op() -> impl Strategy<Value = Op> {
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

/// How many cases [`run_model`] runs, how long they are, and the seed of the
/// generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// Generated cases (each on a fresh namespace).
    pub cases: u32,
    /// The most operations in one case.
    pub max_ops: usize,
    /// The generator's seed: the same seed generates the same sequences.
    pub seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { cases: 64, max_ops: 40, seed: 0x5e55_1045 }
    }
}

impl ModelConfig {
    /// The defaults (64 cases of up to 40 operations, a fixed seed), overridden by
    /// `BOT_SESSIONS_MODEL_CASES`, `BOT_SESSIONS_MODEL_OPS` and
    /// `BOT_SESSIONS_MODEL_SEED` when they are set.
    ///
    /// # Panics
    ///
    /// When one of those variables is set but is not a number (tests only).
    pub fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str) -> Option<T> {
            let text = std::env::var(name).ok()?;
            Some(text.trim().parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
        }
        let d = Self::default();
        ModelConfig {
            cases: var("BOT_SESSIONS_MODEL_CASES").unwrap_or(d.cases),
            max_ops: var("BOT_SESSIONS_MODEL_OPS").unwrap_or(d.max_ops),
            seed: var("BOT_SESSIONS_MODEL_SEED").unwrap_or(d.seed),
        }
    }

    fn runner(&self) -> TestRunner {
        let config = Config {
            cases: self.cases,
            failure_persistence: None,
            rng_algorithm: RngAlgorithm::ChaCha,
            max_shrink_iters: 4096,
            verbose: 0,
            ..Config::default()
        };
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
    }
}

/// Runs the model-based test on `store`: `config.cases` generated sequences, each on a
/// fresh namespace, shrinking the first failing one. Returns proptest's verdict: the
/// shrunk sequence and its divergence on failure.
///
/// Inside a tokio runtime it must be a multi-threaded one (it blocks in place and
/// drives the store's futures on the runtime's handle); outside one it starts its own.
///
/// # Panics
///
/// When called on a current-thread tokio runtime, or when no runtime can be started.
pub fn run_model(store: &DynStore, config: &ModelConfig) -> Result<(), TestError<Vec<Op>>> {
    let strategy = operations(config.max_ops);
    let mut runner = config.runner();
    let mut drive = |handle: &tokio::runtime::Handle| {
        runner.run(&strategy, |ops| handle.block_on(run_case(store, &ops)).map_err(TestCaseError::fail))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            assert!(
                handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread,
                "run_model needs a multi-threaded tokio runtime (#[tokio::test(flavor = \"multi_thread\")])"
            );
            tokio::task::block_in_place(|| drive(&handle))
        }
        Err(_) => {
            let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"));
            drive(rt.handle())
        }
    }
}

/// The conformance property: [`run_model`] with [`ModelConfig::from_env`] passes.
///
/// # Panics
///
/// With the shrunk failing sequence and the store's divergence from the model.
pub async fn model_lifetimes(store: DynStore) {
    let config = ModelConfig::from_env();
    match run_model(&store, &config) {
        Ok(()) => {}
        Err(TestError::Fail(reason, ops)) => panic!(
            "the store diverged from the model (seed {}, {} cases of up to {} ops); shrunk case:\n{}\n{}",
            config.seed,
            config.cases,
            config.max_ops,
            ops.iter().enumerate().map(|(i, op)| format!("  #{i} {op:?}")).collect::<Vec<_>>().join("\n"),
            reason.message()
        ),
        Err(TestError::Abort(reason)) => panic!("the model-based test was aborted: {}", reason.message()),
    }
}

/// A concrete operation: the generated one with its precondition, version, value and
/// times resolved.
#[derive(Debug, Clone)]
enum Step {
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
enum Outcome {
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
struct Model {
    records: BTreeMap<usize, Record>,
}

fn expired(record: &Record, now: Timestamp) -> bool {
    matches!(record.expires_at, Some(at) if at <= now)
}

fn holds(pre: Precondition, live: Option<u64>) -> bool {
    match pre {
        Precondition::Any => true,
        Precondition::Absent => live.is_none(),
        Precondition::Version(v) => live == Some(v),
    }
}

impl Model {
    fn live(&self, key: usize, now: Timestamp) -> Option<&Record> {
        self.records.get(&key).filter(|r| !expired(r, now))
    }

    fn live_count(&self, now: Timestamp) -> u64 {
        self.records.values().filter(|r| !expired(r, now)).count() as u64
    }

    /// What `step` must answer at `now`, and the model after it.
    fn apply(&self, step: &Step, now: Timestamp, keys: &[SessionKey]) -> (Outcome, Model) {
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

/// Short names for the versions, users and times of one case, for readable traces.
struct Labels {
    start: Timestamp,
    users: [i64; USERS],
    versions: HashMap<u64, usize>,
}

impl Labels {
    fn version(&mut self, v: u64) -> String {
        let n = self.versions.len();
        format!("v{}", self.versions.entry(v).or_insert(n + 1))
    }

    fn user(&self, u: Option<i64>) -> String {
        match u {
            None => "-".into(),
            Some(u) => self.users.iter().position(|x| *x == u).map_or(u.to_string(), |i| format!("U{i}")),
        }
    }

    fn time(&self, t: Timestamp) -> String {
        format!("+{}ms", t.0 - self.start.0)
    }

    fn record(&mut self, r: &Record) -> String {
        format!(
            "{{{:?} {} schema={} user={} created={} updated={} expires={}}}",
            String::from_utf8_lossy(&r.value),
            self.version(r.version),
            r.schema_version,
            self.user(r.user_id),
            self.time(r.created_at),
            self.time(r.updated_at),
            r.expires_at.map_or("-".into(), |t| self.time(t)),
        )
    }

    fn precondition(&mut self, p: Precondition) -> String {
        match p {
            Precondition::Absent => "absent".into(),
            Precondition::Any => "any".into(),
            Precondition::Version(v) if self.versions.contains_key(&v) => self.version(v),
            Precondition::Version(v) => format!("version({v})"),
        }
    }

    fn outcome(&mut self, o: &Outcome) -> String {
        let opt = |l: &mut Self, r: &Option<Record>| r.as_ref().map_or("absent".into(), |r| l.record(r));
        match o {
            Outcome::Loaded(r) => format!("loaded {}", opt(self, r)),
            Outcome::Written(v) => format!("written {}", self.version(*v)),
            Outcome::Deleted(b) => format!("deleted {b}"),
            Outcome::Conflict => "Conflict".into(),
            Outcome::Forgot(n) => format!("forgot {n}"),
            Outcome::Purged(loads, n) => {
                let loads: Vec<String> =
                    loads.iter().enumerate().map(|(k, r)| format!("K{k}={}", opt(self, r))).collect();
                format!("purged; then {} count={n}", loads.join(" "))
            }
            Outcome::Counted(n) => format!("count {n}"),
            Outcome::Scanned(items) => {
                let items: Vec<String> = items.iter().map(|(k, r)| format!("K{k}={}", self.record(r))).collect();
                format!("scanned [{}]", items.join(" "))
            }
        }
    }
}

/// One case in progress.
struct Case<'a> {
    store: &'a DynStore,
    ns: Namespace,
    canary_ns: Namespace,
    users: [i64; USERS],
    keys: Vec<SessionKey>,
    now: Timestamp,
    model: Model,
    /// Per client, per key: every version the client saw, oldest first.
    seen: Vec<Vec<Vec<u64>>>,
    /// Per client, per key: the version it last saw, `None` if it last saw the key
    /// absent (or never looked).
    last: Vec<Vec<Option<u64>>>,
    canaries: Vec<SessionKey>,
    labels: Labels,
    trace: Vec<String>,
}

/// Runs one generated sequence on `store` against the model, in a fresh namespace with
/// fresh users, and removes what it wrote. `Err` describes the first divergence, with
/// a trace of the operations before it.
///
/// # Errors
///
/// The divergence, as text.
pub async fn run_case(store: &DynStore, ops: &[Op]) -> Result<(), String> {
    let ns = unique_namespace("model");
    let users = [unique_user(), unique_user(), unique_user()];
    let keys: Vec<SessionKey> = (0..KEYS).map(|k| key_of(&ns, &users, k)).collect();
    let start = Timestamp::now();
    let mut case = Case {
        store,
        canary_ns: unique_namespace("model-canary"),
        ns,
        users,
        keys,
        now: start,
        model: Model::default(),
        seen: vec![vec![Vec::new(); KEYS]; CLIENTS],
        last: vec![vec![None; KEYS]; CLIENTS],
        canaries: Vec::new(),
        labels: Labels { start, users, versions: HashMap::new() },
        trace: Vec::new(),
    };
    let result = case.run(ops).await;
    case.clean_up().await;
    result.map_err(|divergence| format!("{divergence}\nnamespace {}, trace:\n{}", case.ns, case.trace.join("\n")))
}

impl Case<'_> {
    async fn run(&mut self, ops: &[Op]) -> Result<(), String> {
        for (i, op) in ops.iter().enumerate() {
            // Never behind the real time (see the module docs).
            self.now = self.now.max(Timestamp::now());
            if let Op::Advance { ms } = op {
                let lead = Timestamp::now().saturating_add(MAX_LEAD);
                self.now = self.now.max(self.now.saturating_add(Duration::from_millis(*ms)).min(lead));
                self.trace.push(format!("  #{i} {op:?} -> now {}", self.labels.time(self.now)));
                continue;
            }
            let Some(step) = self.resolve(i, op) else { continue };
            let now = self.now;
            if let Step::Write { expires_at: Some(at), version, .. } = &step {
                // Before the record, so no foreign purge can fall between the two.
                self.plant_canary(*version, *at, now)
                    .await
                    .map_err(|e| format!("op #{i}: canary write failed: {e}"))?;
            }
            let actual = self
                .execute(&step, now)
                .await
                .map_err(|e| format!("op #{i} {op:?} at {}: the store failed: {e}", self.labels.time(now)))?;
            let (mut expected, mut next) = self.model.apply(&step, now, &self.keys);
            if actual != expected
                && let Some((tolerated, gone)) = self.foreign_purge(&step, now, &actual).await?
            {
                let gone: Vec<String> = gone.iter().map(|k| format!("K{k}")).collect();
                self.trace
                    .push(format!("     (foreign purge of {} tolerated: their canaries are gone)", gone.join(" ")));
                (expected, next) = tolerated;
            }
            let line = format!(
                "  #{i} {op:?}{} at {} -> {}",
                self.step_detail(&step),
                self.labels.time(now),
                self.labels.outcome(&actual)
            );
            self.trace.push(line);
            if actual != expected {
                return Err(format!(
                    "DIVERGENCE at op #{i} {op:?} (at {}): the model expects {}, the store answered {}",
                    self.labels.time(now),
                    self.labels.outcome(&expected),
                    self.labels.outcome(&actual)
                ));
            }
            if let Some(purged_first) = self.silent_foreign_purge(&step, now).await? {
                self.trace.push("     (foreign purge before this write tolerated: its canary is gone)".into());
                next = purged_first;
            }
            self.model = next;
            self.remember(op, &actual);
        }
        Ok(())
    }

    /// The generated operation made concrete at this point of the case (`None` for a
    /// clock step, which the caller handles).
    fn resolve(&self, i: usize, op: &Op) -> Option<Step> {
        let pre = |client: usize, key: usize, p: &Pre| match p {
            Pre::Absent => Precondition::Absent,
            Pre::Any => Precondition::Any,
            Pre::Guess(v) => Precondition::Version(*v),
            Pre::Latest => self.last[client][key].map_or(Precondition::Absent, Precondition::Version),
            Pre::Seen(idx) => {
                let history = &self.seen[client][key];
                Precondition::Version(if history.is_empty() { 0 } else { *idx.get(history) })
            }
        };
        Some(match op {
            Op::Load { key, .. } => Step::Load(*key),
            Op::Write { client, key, pre: p, ttl_ms, owner, schema } => {
                let expires_at = ttl_ms.map(|ms| self.now.saturating_add(Duration::from_millis(ms)));
                Step::Write {
                    key: *key,
                    version: crate::new_version(),
                    value: format!("c{client}#{i}").into_bytes(),
                    schema: *schema,
                    expires_at,
                    owner: owner.map(|u| self.users[u]),
                    pre: pre(*client, *key, p),
                }
            }
            Op::Delete { client, key, pre: p } => Step::Delete { key: *key, pre: pre(*client, *key, p) },
            Op::ForgetUser { user } => Step::Forget(self.users[*user]),
            Op::Purge => Step::Purge,
            Op::Count => Step::Count,
            Op::Scan { page, .. } => Step::Scan { page: *page },
            Op::Advance { .. } => return None,
        })
    }

    fn step_detail(&mut self, step: &Step) -> String {
        match step {
            Step::Write { pre, version, .. } => {
                let pre = self.labels.precondition(*pre);
                format!(" [{pre}, proposes {}]", self.labels.version(*version))
            }
            Step::Delete { pre, .. } => format!(" [{}]", self.labels.precondition(*pre)),
            _ => String::new(),
        }
    }

    /// Runs `step` on the store. `Err` for any error but a conflict, and for a scan
    /// that breaks the paging contract.
    async fn execute(&self, step: &Step, now: Timestamp) -> Result<Outcome, String> {
        let store = self.store;
        let conflict = |e: StoreError| if e.is_conflict() { Ok(Outcome::Conflict) } else { Err(e.to_string()) };
        match step {
            Step::Load(k) => {
                // Behind a near cache, a load is what a session would start an update
                // from: the cached record when there is one. Every client writes
                // through the same cache, so it must hold exactly the stored record.
                if let Some(record) = store.as_near_cache().and_then(|c| c.cached(&self.keys[*k], now, None)) {
                    return Ok(Outcome::Loaded(Some(record)));
                }
                store.load(&self.keys[*k], now).await.map(Outcome::Loaded).map_err(|e| e.to_string())
            }
            Step::Write { key, value, schema, expires_at, version, owner, pre } => {
                let write = Write {
                    value: value.as_slice(),
                    schema_version: *schema,
                    expires_at: *expires_at,
                    version: *version,
                    owner: None,
                }
                .with_owner(*owner);
                store.write(&self.keys[*key], write, *pre, now).await.map(Outcome::Written).or_else(conflict)
            }
            Step::Delete { key, pre } => {
                store.delete(&self.keys[*key], *pre, now).await.map(Outcome::Deleted).or_else(conflict)
            }
            Step::Forget(user) => store.forget_user(*user, now).await.map(Outcome::Forgot).map_err(|e| e.to_string()),
            Step::Purge => {
                store.purge_expired(now).await.map_err(|e| e.to_string())?;
                let mut loads = Vec::with_capacity(self.keys.len());
                for k in &self.keys {
                    loads.push(store.load(k, now).await.map_err(|e| e.to_string())?);
                }
                let n = store.count(Some(&self.ns), now).await.map_err(|e| e.to_string())?;
                Ok(Outcome::Purged(loads, n))
            }
            Step::Count => store.count(Some(&self.ns), now).await.map(Outcome::Counted).map_err(|e| e.to_string()),
            Step::Scan { page } => self.scan(*page, now).await.map(Outcome::Scanned),
        }
    }

    /// Pages through the namespace, checking the paging contract on the way.
    async fn scan(&self, limit: usize, now: Timestamp) -> Result<Vec<(usize, Record)>, String> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut last: Option<String> = None;
        for _ in 0..=KEYS + 1 {
            let page = self.store.scan(&self.ns, cursor.as_deref(), limit, now).await.map_err(|e| e.to_string())?;
            if page.items.len() > limit {
                return Err(format!("a scan page of limit {limit} held {} items", page.items.len()));
            }
            for (key, record) in page.items {
                if last.as_deref().is_some_and(|l| l >= key.as_str()) {
                    return Err(format!("scan returned {key} after {last:?}: not in ascending order"));
                }
                last = Some(key.to_string());
                let index = self
                    .keys
                    .iter()
                    .position(|k| *k == key)
                    .ok_or_else(|| format!("scan returned a foreign key {key}"))?;
                items.push((index, record));
            }
            match page.next {
                None => return Ok(items),
                Some(next) => cursor = Some(next),
            }
        }
        Err(format!("a scan of at most {KEYS} records in pages of {limit} did not end"))
    }

    /// Records what a client learnt from an operation's answer.
    fn remember(&mut self, op: &Op, outcome: &Outcome) {
        let mut saw = |client: usize, key: usize, version: Option<u64>| {
            if let Some(v) = version {
                self.seen[client][key].push(v);
            }
            self.last[client][key] = version;
        };
        match (op, outcome) {
            (Op::Load { client, key }, Outcome::Loaded(r)) => saw(*client, *key, r.as_ref().map(|r| r.version)),
            (Op::Write { client, key, .. }, Outcome::Written(v)) => saw(*client, *key, Some(*v)),
            (Op::Delete { client, key, .. }, Outcome::Deleted(_)) => saw(*client, *key, None),
            (Op::Scan { client, .. }, Outcome::Scanned(items)) => {
                for key in 0..KEYS {
                    saw(*client, key, items.iter().find(|(k, _)| *k == key).map(|(_, r)| r.version));
                }
            }
            _ => {}
        }
    }

    fn canary_key(&self, version: u64) -> SessionKey {
        SessionKey::new(self.canary_ns.clone(), Scope::Custom { id: version.to_string(), user: None })
    }

    async fn plant_canary(&mut self, version: u64, expires_at: Timestamp, now: Timestamp) -> Result<(), StoreError> {
        let key = self.canary_key(version);
        let write = Write::new(b"canary", 1, Some(expires_at.saturating_add(CANARY_LAG)));
        self.store.write(&key, write, Precondition::Any, now).await?;
        self.canaries.push(key);
        Ok(())
    }

    /// When a divergence is explained by another test's purge (see the module docs):
    /// the outcome and model without the records that such a purge removed, and their
    /// keys.
    ///
    /// Candidates are the live records with an expiry whose canary is gone. One the
    /// operation did not touch is gone if a load now finds it absent; for those it did
    /// touch (its key, or the records of the user it forgot) every combination is tried,
    /// fewest removals first.
    async fn foreign_purge(
        &self,
        step: &Step,
        now: Timestamp,
        actual: &Outcome,
    ) -> Result<Option<((Outcome, Model), Vec<usize>)>, String> {
        let mut model = self.model.clone();
        let mut gone = Vec::new();
        let mut touched = Vec::new();
        for (k, r) in &self.model.records {
            if r.expires_at.is_none() || expired(r, now) {
                continue;
            }
            let canary = self.store.load(&self.canary_key(r.version), now).await.map_err(|e| e.to_string())?;
            if canary.is_some() {
                continue;
            }
            let touches = match step {
                Step::Load(key) | Step::Write { key, .. } | Step::Delete { key, .. } => key == k,
                Step::Forget(user) => r.user_id == Some(*user),
                Step::Purge | Step::Count | Step::Scan { .. } => false,
            };
            if touches {
                touched.push(*k);
            } else if self.store.load(&self.keys[*k], now).await.map_err(|e| e.to_string())?.is_none() {
                model.records.remove(k);
                gone.push(*k);
            }
        }
        let mut subsets: Vec<u32> = (0..1u32 << touched.len()).collect();
        subsets.sort_by_key(|s| s.count_ones());
        for subset in subsets {
            let mut candidate = model.clone();
            let mut removed = gone.clone();
            for (bit, k) in touched.iter().enumerate() {
                if subset & (1 << bit) != 0 {
                    candidate.records.remove(k);
                    removed.push(*k);
                }
            }
            if removed.is_empty() {
                continue;
            }
            let (outcome, next) = candidate.apply(step, now, &self.keys);
            if outcome == *actual {
                removed.sort_unstable();
                return Ok(Some(((outcome, next), removed)));
            }
        }
        Ok(None)
    }

    /// The one foreign purge that changes no outcome: of the live record that an
    /// unconditional write then replaced, so the write created a new record (a new
    /// `created_at` and owner) instead of updating it. When the replaced record's
    /// canary is gone, a load tells which happened: the model after a purge first, if
    /// that is what the store holds.
    async fn silent_foreign_purge(&self, step: &Step, now: Timestamp) -> Result<Option<Model>, String> {
        let Step::Write { key, pre: Precondition::Any, .. } = step else { return Ok(None) };
        let Some(replaced) = self.model.live(*key, now).filter(|r| r.expires_at.is_some()) else { return Ok(None) };
        if self.store.load(&self.canary_key(replaced.version), now).await.map_err(|e| e.to_string())?.is_some() {
            return Ok(None);
        }
        let mut purged = self.model.clone();
        purged.records.remove(key);
        let (_, purged_first) = purged.apply(step, now, &self.keys);
        let stored = self.store.load(&self.keys[*key], now).await.map_err(|e| e.to_string())?;
        Ok((stored.is_some() && stored.as_ref() == purged_first.records.get(key)).then_some(purged_first))
    }

    /// Removes what the case wrote (best effort: a shared server should not fill up).
    async fn clean_up(&self) {
        let now = self.now;
        for k in self.keys.iter().chain(&self.canaries) {
            let _ = self.store.delete(k, Precondition::Any, now).await;
        }
        for u in self.users {
            let _ = self.store.forget_user(u, now).await;
        }
    }
}
