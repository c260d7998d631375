//! The model-based test must catch the bugs it was written for. Each mutant wraps the
//! memory store and brings one old bug back:
//!
//! - versions numbered per incarnation (1, 2, 3, ... again after a delete, a
//!   forget-user or an expiry), so a `Version` precondition taken on an earlier
//!   incarnation holds on a later one (ABA);
//! - forget-user that only reaches keys naming the user, not records that name the user
//!   as their owner.
//!
//! The runner must fail on each (with a shrunk case, printed), and pass on the same
//! wrapper with no mutation, and on one where another test's purge, with a clock
//! minutes ahead, keeps removing records (what a shared server does).
#![cfg(feature = "testing")]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::testing::model::{ModelConfig, Op, run_model};
use bot_sessions::{DynStore, Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};
use proptest::test_runner::TestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutation {
    None,
    /// Preconditions compare per-incarnation ordinals (the old `previous + 1`).
    IncarnationVersions,
    /// Forget-user deletes the keys naming the user, and ignores owners.
    ForgetIgnoresOwners,
    /// Not a bug: every third write is preceded by a purge ten minutes ahead, as
    /// another test with a clock of its own may run on a shared server.
    ForeignPurges,
}

#[derive(Debug)]
struct Mutant {
    inner: MemoryStore,
    mutation: Mutation,
    /// Per key: the ordinal (1, 2, 3, ... per incarnation) of each version written.
    ordinals: Mutex<HashMap<String, HashMap<u64, u64>>>,
    /// Every key written, for the user-key-only forget.
    keys: Mutex<BTreeMap<String, SessionKey>>,
    /// Writes so far, for the foreign purges.
    writes: AtomicU64,
}

impl Mutant {
    fn store(mutation: Mutation) -> DynStore {
        Arc::new(Mutant {
            inner: MemoryStore::without_sweeper(),
            mutation,
            ordinals: Mutex::default(),
            keys: Mutex::default(),
            writes: AtomicU64::new(0),
        })
    }

    /// The old compare-and-set: a `Version(v)` holds when `v` has the same ordinal as
    /// the live record's version, whichever incarnation `v` came from.
    fn translate(&self, key: &SessionKey, pre: Precondition, live: Option<u64>) -> Precondition {
        if self.mutation != Mutation::IncarnationVersions {
            return pre;
        }
        if let (Precondition::Version(v), Some(current)) = (pre, live) {
            let ordinals = self.ordinals.lock().unwrap();
            if let Some(map) = ordinals.get(key.as_str())
                && map.get(&v).is_some_and(|o| Some(o) == map.get(&current))
            {
                return Precondition::Version(current);
            }
        }
        pre
    }
}

#[async_trait::async_trait]
impl Store for Mutant {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.inner.load(key, now).await
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if self.mutation == Mutation::ForeignPurges && self.writes.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
            self.inner.purge_expired(now.saturating_add(Duration::from_secs(600))).await?;
        }
        let live = self.inner.load(key, now).await?.map(|r| r.version);
        let pre = self.translate(key, precondition, live);
        let version = self.inner.write(key, write, pre, now).await?;
        let mut ordinals = self.ordinals.lock().unwrap();
        let map = ordinals.entry(key.to_string()).or_default();
        let ordinal = live.map_or(1, |v| map.get(&v).copied().unwrap_or(0) + 1);
        map.insert(version, ordinal);
        drop(ordinals);
        self.keys.lock().unwrap().insert(key.to_string(), key.clone());
        Ok(version)
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        let live = self.inner.load(key, now).await?.map(|r| r.version);
        let pre = self.translate(key, precondition, live);
        self.inner.delete(key, pre, now).await
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        if self.mutation != Mutation::ForgetIgnoresOwners {
            return self.inner.forget_user(user_id, now).await;
        }
        let mine: Vec<SessionKey> =
            self.keys.lock().unwrap().values().filter(|k| k.user_id() == Some(user_id)).cloned().collect();
        let mut n = 0;
        for k in mine {
            n += u64::from(self.inner.delete(&k, Precondition::Any, now).await?);
        }
        Ok(n)
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        self.inner.scan(namespace, cursor, limit, now).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.count(namespace, now).await
    }
}

/// The default seed and twice the default cases, whatever the environment says: fewer
/// cases could miss a mutant. (The default 64 caught both on each of 40 seeds tried.)
fn config() -> ModelConfig {
    ModelConfig { cases: 128, ..ModelConfig::default() }
}

/// Runs the model on `mutation` and returns the shrunk case and the divergence.
fn caught(mutation: Mutation) -> (Vec<Op>, String) {
    match run_model(&Mutant::store(mutation), &config()) {
        Err(TestError::Fail(reason, ops)) => {
            let case: Vec<String> = ops.iter().enumerate().map(|(i, op)| format!("  #{i} {op:?}")).collect();
            println!("{mutation:?} caught; shrunk case:\n{}\n{}", case.join("\n"), reason.message());
            (ops, reason.message().to_string())
        }
        other => panic!("the model-based test did not catch {mutation:?}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_passes_the_unmutated_wrapper() {
    if let Err(e) = run_model(&Mutant::store(Mutation::None), &config()) {
        panic!("the wrapper without a mutation must pass: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_catches_versions_that_restart_per_incarnation() {
    let (ops, reason) = caught(Mutation::IncarnationVersions);
    // The shrunk case ends with a compare-and-set on a stale version that the store
    // let through: a write or a delete that the model refuses as a conflict.
    let last = ops.last().expect("a failing case has operations");
    assert!(matches!(last, Op::Write { .. } | Op::Delete { .. }), "{last:?}");
    assert!(reason.contains("the model expects Conflict"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_catches_forget_user_that_ignores_owners() {
    let (ops, reason) = caught(Mutation::ForgetIgnoresOwners);
    // The owned key (K3) was created with an owner, and forgetting that owner left it.
    assert!(ops.iter().any(|op| matches!(op, Op::Write { key: 3, owner: Some(_), .. })), "{ops:?}");
    assert!(reason.contains("forget"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_tolerates_purges_by_other_tests_clocks() {
    if let Err(e) = run_model(&Mutant::store(Mutation::ForeignPurges), &config()) {
        panic!("a purge by another test's clock is not a bug of the store: {e}");
    }
}
