//! One case: its operations run against the store under test and the reference model,
//! compared result by result ([`run_case`]).

use std::collections::HashMap;
use std::time::Duration;

use super::generate::*;
use super::reference::*;
use crate::testing::{unique_namespace, unique_user};
use crate::{DynStore, Namespace, Precondition, Record, Scope, SessionKey, StoreError, Timestamp, Write};

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
