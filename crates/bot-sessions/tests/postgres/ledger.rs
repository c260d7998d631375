//! A load that can tell exactly which updates landed: every `Sessions::update` appends
//! its own id to the session, so the stored lists say which updates were applied, and
//! how often. Every outcome is recorded: acknowledged, ambiguous (the store could not
//! tell), or failed (certainly not applied).
//!
//! The check, per key: no id is there twice (no update applied twice), every
//! acknowledged id is there, and every id there was acknowledged or ambiguous. So the
//! final length is exactly acknowledged + the ambiguous ones that landed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bot_sessions::session::RetryPolicy;
use bot_sessions::testing::unique_namespace;
use bot_sessions::{
    DynStore, Namespace, Page, Precondition, Record, Scope, SessionError, SessionKey, Sessions, Store, StoreError,
    Timestamp, Write,
};

/// The session: the ids of the updates applied to it, in order.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Entries {
    pub ids: Vec<u64>,
}

/// What the tasks saw.
#[derive(Debug, Default)]
pub struct Outcomes {
    pub acked: HashSet<u64>,
    pub ambiguous: HashSet<u64>,
    pub failed: HashSet<u64>,
}

/// Counters to wait on while the load runs.
#[derive(Debug, Default)]
pub struct Counts {
    pub acked: AtomicU64,
    pub ambiguous: AtomicU64,
    pub failed: AtomicU64,
}

/// A store that counts the ambiguous outcomes the store under it reports.
pub struct Counting {
    pub inner: DynStore,
    pub ambiguous: AtomicU64,
}

impl Counting {
    fn saw<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.as_ref().is_err_and(StoreError::is_ambiguous) {
            self.ambiguous.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
}

#[async_trait::async_trait]
impl Store for Counting {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.inner.load(key, now).await
    }
    async fn write(&self, key: &SessionKey, w: Write<'_>, p: Precondition, now: Timestamp) -> Result<u64, StoreError> {
        self.saw(self.inner.write(key, w, p, now).await)
    }
    async fn delete(&self, key: &SessionKey, p: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        self.saw(self.inner.delete(key, p, now).await)
    }
    async fn forget_user(&self, user: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.forget_user(user, now).await
    }
    async fn scan(&self, ns: &Namespace, c: Option<&str>, n: usize, now: Timestamp) -> Result<Page, StoreError> {
        self.inner.scan(ns, c, n, now).await
    }
    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }
    async fn count(&self, ns: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.count(ns, now).await
    }
}

/// Tasks appending ids to a few sessions until stopped.
pub struct Ledger {
    pub store: Arc<Counting>,
    pub keys: Vec<SessionKey>,
    pub counts: Arc<Counts>,
    outcomes: Arc<Mutex<Outcomes>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The `Sessions` of the ledger, with a retry policy of `attempts`.
pub fn sessions(store: DynStore, ns: &Namespace, attempts: u32) -> Sessions<Entries> {
    let retry = RetryPolicy {
        max_attempts: attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    Sessions::<Entries>::builder(store).namespace(ns.as_str()).retry(retry).build().expect("sessions build")
}

impl Ledger {
    /// Starts `tasks` tasks on 4 fresh keys of `store`; `Sessions` retries up to
    /// `attempts` times (also when it resolves an ambiguous outcome).
    pub fn start(store: DynStore, tasks: u64, attempts: u32) -> Ledger {
        let store = Arc::new(Counting { inner: store, ambiguous: AtomicU64::new(0) });
        let ns = unique_namespace("ledger");
        let keys: Vec<SessionKey> = (0..4).map(|i| SessionKey::new(ns.clone(), Scope::Chat(i))).collect();
        let sessions = sessions(store.clone(), &ns, attempts);
        let (counts, outcomes) = (Arc::new(Counts::default()), Arc::new(Mutex::new(Outcomes::default())));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|t| {
                let (sessions, keys, stop) = (sessions.clone(), keys.clone(), stop.clone());
                let (counts, outcomes) = (counts.clone(), outcomes.clone());
                tokio::spawn(async move {
                    let mut seq = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let id = (t << 32) | seq;
                        let key = &keys[((t + seq) % keys.len() as u64) as usize];
                        seq += 1;
                        let r = sessions
                            .update(key, |e| {
                                e.ids.push(id);
                                Ok::<_, SessionError>(())
                            })
                            .await;
                        let failed = {
                            let mut o = outcomes.lock().unwrap();
                            match r {
                                Ok(()) => {
                                    o.acked.insert(id);
                                    counts.acked.fetch_add(1, Ordering::SeqCst);
                                    false
                                }
                                Err(e) if e.is_ambiguous() => {
                                    o.ambiguous.insert(id);
                                    counts.ambiguous.fetch_add(1, Ordering::SeqCst);
                                    false
                                }
                                Err(e) => {
                                    assert!(e.is_retryable(), "a fault must give retryable or ambiguous errors: {e:?}");
                                    o.failed.insert(id);
                                    counts.failed.fetch_add(1, Ordering::SeqCst);
                                    true
                                }
                            }
                        };
                        if failed {
                            // Pace the retries of a server that is down.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Ledger { store, keys, counts, outcomes, stop, tasks }
    }

    pub fn acked(&self) -> u64 {
        self.counts.acked.load(Ordering::SeqCst)
    }

    pub fn ambiguous(&self) -> u64 {
        self.counts.ambiguous.load(Ordering::SeqCst)
    }

    pub fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::SeqCst)
    }

    /// Ambiguous outcomes the store reported (most of them `Sessions` resolved).
    pub fn store_ambiguous(&self) -> u64 {
        self.store.ambiguous.load(Ordering::SeqCst)
    }

    /// Waits until `n` more updates than now are acknowledged.
    pub async fn wait_for_progress(&self, n: u64, what: &str) {
        let target = self.acked() + n;
        super::wait_until(what, Duration::from_secs(60), || async { self.acked() >= target }).await;
    }

    /// Stops the tasks (a task that panicked fails the test here) and drops every
    /// handle to the store, so nothing more is sent; returns the keys and outcomes.
    pub async fn stop(self) -> (Vec<SessionKey>, Outcomes) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.expect("no ledger task panicked");
        }
        let outcomes = std::mem::take(&mut *self.outcomes.lock().unwrap());
        (self.keys, outcomes)
    }
}

/// Checks what `store` (a fresh store, once nothing in flight can land any more) holds
/// under `keys` against `outcomes`; returns how many ambiguous updates landed.
pub async fn check(store: DynStore, keys: &[SessionKey], outcomes: &Outcomes) -> u64 {
    let ns = keys[0].namespace().clone();
    let sessions = sessions(store, &ns, 1);
    let mut landed_ambiguous = 0;
    let mut stored_total = 0;
    let mut seen = HashMap::new();
    for key in keys {
        let ids = sessions.get(key).await.expect("the ledger loads").map_or_else(Vec::new, |e| e.ids);
        for id in &ids {
            if let Some(other) = seen.insert(*id, key.clone()) {
                panic!("update {id:x} applied twice (under {other} and {key})");
            }
            let (acked, ambiguous) = (outcomes.acked.contains(id), outcomes.ambiguous.contains(id));
            assert!(acked || ambiguous, "{key}: update {id:x} landed but was reported as failed");
            landed_ambiguous += u64::from(ambiguous);
        }
        stored_total += ids.len() as u64;
    }
    for id in &outcomes.acked {
        assert!(seen.contains_key(id), "acknowledged update {id:x} is missing");
    }
    assert_eq!(stored_total, outcomes.acked.len() as u64 + landed_ambiguous, "acked + ambiguous that landed");
    landed_ambiguous
}
