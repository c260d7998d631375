//! Data sessions that announce their expiry: the `on_expire` hook runs once per expired
//! record, whoever finds it (a sweep, a purge, a handler's load), in however many
//! `Sessions` or OS processes share the store. Time moves with a `ManualClock`; nothing
//! sleeps to wait for an outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bot_sessions::session::{Expired, RetryPolicy, SweepReport};
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{
    Clock, DynStore, ManualClock, Namespace, Page, Precondition, Record, Scope, SessionError, SessionKey, Sessions,
    Store, StoreError, Timestamp, Ttl, Write,
};

const IDLE: Duration = Duration::from_secs(30 * 60);
const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Form {
    name: Option<String>,
}

/// Every hook call, by key, counted when the hook is called (not when its future
/// runs), so the count is final as soon as the call that claimed returns.
#[derive(Default)]
struct Calls {
    by_key: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    last: Mutex<Vec<(String, Option<Form>, bot_sessions::session::Meta)>>,
}

impl Calls {
    fn record(&self, e: &Expired<Form>) {
        *self.by_key.lock().unwrap().entry(e.key.to_string()).or_default() += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        self.last.lock().unwrap().push((e.key.to_string(), e.value.as_ref().ok().cloned(), e.meta));
    }
    fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
    fn of(&self, key: &SessionKey) -> usize {
        self.by_key.lock().unwrap().get(key.as_str()).copied().unwrap_or(0)
    }
}

fn forms(store: DynStore, clock: &ManualClock, calls: &Arc<Calls>) -> Sessions<Form> {
    let calls = calls.clone();
    Sessions::<Form>::builder(store)
        .namespace("form")
        .ttl(Ttl::idle(IDLE))
        .clock(Arc::new(clock.clone()))
        .on_expire(move |e| {
            calls.record(&e);
            async {}
        })
        .build()
        .unwrap()
}

fn key(user: i64) -> SessionKey {
    SessionKey::new(Namespace::new("form").unwrap(), Scope::User(user))
}

async fn fill(sessions: &Sessions<Form>, user: i64) {
    name(sessions, user, &format!("user {user}")).await;
}

async fn name(sessions: &Sessions<Form>, user: i64, name: &str) {
    sessions
        .update(&key(user), |f| {
            f.name = Some(name.to_owned());
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
}

/// What the next delete suffers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Applied, reply lost.
    LostReply,
    /// Not applied, reply lost.
    NotSent,
}

/// A memory store whose scans can wait for each other (so two sweeps certainly see the
/// same expired records) and whose deletes can lose their reply.
struct Gate {
    inner: MemoryStore,
    scan_barrier: Option<tokio::sync::Barrier>,
    scans: AtomicUsize,
    deletes: Mutex<Vec<Fault>>,
}

impl Gate {
    fn new(parties: Option<usize>) -> Self {
        Gate {
            inner: MemoryStore::new(),
            scan_barrier: parties.map(tokio::sync::Barrier::new),
            scans: AtomicUsize::new(0),
            deletes: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl Store for Gate {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.inner.load(key, now).await
    }
    async fn write(&self, key: &SessionKey, w: Write<'_>, p: Precondition, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.write(key, w, p, now).await
    }
    async fn delete(&self, key: &SessionKey, p: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        let fault = self.deletes.lock().unwrap().pop();
        let lost = || StoreError::ambiguous("gate", key.as_str(), "reply lost");
        match fault {
            Some(Fault::LostReply) => {
                self.inner.delete(key, p, now).await?;
                Err(lost())
            }
            Some(Fault::NotSent) => Err(lost()),
            None => self.inner.delete(key, p, now).await,
        }
    }
    async fn forget_user(&self, user: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.forget_user(user, now).await
    }
    async fn scan(&self, ns: &Namespace, c: Option<&str>, l: usize, now: Timestamp) -> Result<Page, StoreError> {
        let page = self.inner.scan(ns, c, l, now).await?;
        self.scans.fetch_add(1, Ordering::SeqCst);
        if let Some(b) = &self.scan_barrier {
            b.wait().await; // both sweeps hold the same page before either claims
        }
        Ok(page)
    }
    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }
    async fn count(&self, ns: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.count(ns, now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sweeps_racing_announce_each_expired_record_exactly_once() {
    // Two `Sessions` on one store stand for two processes (no shared state but the store).
    let store: Arc<Gate> = Arc::new(Gate::new(Some(2)));
    let clock = ManualClock::new(1_000_000);
    let calls = Arc::new(Calls::default());
    let a = forms(store.clone(), &clock, &calls);
    let b = forms(store.clone(), &clock, &calls);
    for user in 0..60 {
        fill(&a, user).await;
    }
    // Every fifth session is written again before it expires; the rest expire.
    clock.advance(20 * MINUTE);
    for user in (0..60).step_by(5) {
        name(&b, user, "renewed").await;
    }
    clock.advance(15 * MINUTE);
    let now = clock.now();
    let (ra, rb) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { a.sweep_expired(now).await.unwrap() }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { b.sweep_expired(now).await.unwrap() }
        }),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(store.scans.load(Ordering::SeqCst), 2, "one page each, seen by both before any claim");
    assert_eq!(ra.expired + rb.expired, 48, "{ra:?} {rb:?}");
    assert_eq!(ra.lost + rb.lost, 48, "both saw every expired record; each lost what the other won");
    assert_eq!((ra.unknown + rb.unknown, ra.errors + rb.errors), (0, 0));
    assert_eq!(calls.total(), 48, "one hook call per expired record");
    for user in 0..60 {
        let expected = usize::from(user % 5 != 0);
        assert_eq!(calls.of(&key(user)), expected, "user {user}");
    }
    // Renewed sessions live on; the others are gone for good; nothing is announced twice.
    let store2: DynStore = store.clone();
    let c = Sessions::<Form>::builder(store2).namespace("form").clock(Arc::new(clock.clone())).build().unwrap();
    assert_eq!(c.get(&key(5)).await.unwrap().unwrap().name.as_deref(), Some("renewed"));
    assert_eq!(c.get(&key(1)).await.unwrap(), None);
    assert_eq!(store.inner.count(None, now).await.unwrap(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handlers_and_a_sweep_racing_announce_each_record_once() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(0);
    let calls = Arc::new(Calls::default());
    let a = forms(store.clone(), &clock, &calls);
    let b = forms(store.clone(), &clock, &calls);
    for user in 0..100 {
        fill(&a, user).await;
    }
    clock.advance(IDLE);
    let now = clock.now();
    // Process A's handlers touch every expired session while process B sweeps.
    let sweep = tokio::spawn({
        let b = b.clone();
        async move { b.sweep_expired(now).await.unwrap() }
    });
    let mut handlers = Vec::new();
    for user in 0..100 {
        let a = a.clone();
        handlers.push(tokio::spawn(async move {
            a.update(&key(user), |f| {
                let fresh = f.name.is_none();
                f.name = Some("again".into());
                Ok::<_, SessionError>(fresh)
            })
            .await
            .unwrap()
        }));
    }
    for h in handlers {
        assert!(h.await.unwrap(), "a handler never sees the expired value");
    }
    let report = sweep.await.unwrap();
    assert_eq!(calls.total(), 100, "once per record ({report:?} by the sweep)");
    assert!((0..100).all(|u| calls.of(&key(u)) == 1));
    // The new sessions are live; a later sweep finds nothing.
    let again = a.sweep_expired(clock.now()).await.unwrap();
    assert_eq!((again.expired, calls.total()), (0, 100));
}

#[tokio::test]
async fn the_hook_gets_the_last_value_and_its_times() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(10_000);
    let calls = Arc::new(Calls::default());
    let forms = forms(store.clone(), &clock, &calls);
    fill(&forms, 7).await;
    clock.advance(MINUTE);
    fill(&forms, 7).await; // unchanged: nothing written, expiry not moved
    name(&forms, 7, "Ada").await;
    // A second session whose bytes do not decode (written by someone else).
    let bad = key(8);
    let expires = Some(Timestamp(10_000).saturating_add(IDLE + Duration::from_secs(3600)));
    store.write(&bad, Write::new(b"{not json", 1, expires), Precondition::Any, Timestamp(10_000)).await.unwrap();

    clock.advance(IDLE);
    let report = forms.sweep_expired(clock.now()).await.unwrap();
    assert_eq!(report.expired, 2, "{report:?}");
    let last = calls.last.lock().unwrap().clone();
    let (k, value, meta) = last.iter().find(|(k, ..)| k == key(7).as_str()).unwrap();
    assert_eq!((k.as_str(), value.clone()), (key(7).as_str(), Some(Form { name: Some("Ada".into()) })));
    assert_eq!((meta.created_at, meta.updated_at), (Timestamp(10_000), Timestamp(70_000)));
    assert_eq!(meta.expires_at, Some(Timestamp(70_000).saturating_add(IDLE)), "the session's own expiry, no grace");
    let (_, value, _) = last.iter().find(|(k, ..)| k == bad.as_str()).unwrap();
    assert_eq!(value, &None, "an undecodable last value is announced as an error");
}

#[tokio::test]
async fn a_renewed_session_never_fires() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(0);
    let calls = Arc::new(Calls::default());
    let forms = forms(store, &clock, &calls);
    fill(&forms, 1).await;
    for _ in 0..10 {
        clock.advance(IDLE - MINUTE);
        forms
            .update(&key(1), |f| {
                f.name.get_or_insert_default().push('.');
                Ok::<_, SessionError>(())
            })
            .await
            .unwrap();
        let r = forms.sweep_expired(clock.now()).await.unwrap();
        assert_eq!(r, SweepReport::default());
    }
    assert_eq!(calls.total(), 0);
    clock.advance(IDLE);
    assert_eq!(forms.sweep_expired(clock.now()).await.unwrap().expired, 1);
    assert_eq!(calls.total(), 1);
}

#[tokio::test]
async fn an_expired_session_waits_out_the_grace_period_for_its_hook() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(0);
    let calls = Arc::new(Calls::default());
    let grace = Duration::from_secs(3600);
    let calls2 = calls.clone();
    let forms = Sessions::<Form>::builder(store.clone())
        .namespace("form")
        .ttl(Ttl::idle(IDLE))
        .clock(Arc::new(clock.clone()))
        .expiry_grace(grace)
        .on_expire(move |e| {
            calls2.record(&e);
            async {}
        })
        .build()
        .unwrap();
    fill(&forms, 1).await;
    fill(&forms, 2).await;
    clock.advance(IDLE);
    let now = clock.now();
    // Gone for the typed API (meta, list), still in the store for the hook.
    assert_eq!(forms.meta(&key(1)).await.unwrap(), None);
    assert!(forms.list_page(None, 10).await.unwrap().sessions.is_empty());
    assert!(store.load(&key(1), now).await.unwrap().is_some());
    // After the grace period the store forgets it, unannounced.
    clock.advance(grace);
    assert!(store.load(&key(1), clock.now()).await.unwrap().is_none());
    assert_eq!(forms.purge_expired(clock.now()).await.unwrap().expired, 0);
    assert_eq!(calls.total(), 0);
}

#[tokio::test]
async fn purge_expired_announces_then_purges() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(0);
    let calls = Arc::new(Calls::default());
    let forms = forms(store.clone(), &clock, &calls);
    for user in 0..5 {
        fill(&forms, user).await;
    }
    // A record of another namespace, already past its store-level expiry.
    let other = SessionKey::new(Namespace::new("other").unwrap(), Scope::Chat(1));
    store.write(&other, Write::new(b"1", 1, Some(Timestamp(1))), Precondition::Any, Timestamp(0)).await.unwrap();
    clock.advance(IDLE);
    let report = forms.purge_expired(clock.now()).await.unwrap();
    assert_eq!((report.expired, report.purged, calls.total()), (5, 1, 5), "{report:?}");
}

#[tokio::test]
async fn a_handler_that_meets_an_expired_session_announces_it() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(0);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let forms = Sessions::<Form>::builder(store.clone())
        .namespace("form")
        .ttl(Ttl::idle(IDLE))
        .clock(Arc::new(clock.clone()))
        .on_expire(move |e: Expired<Form>| {
            let tx = tx.clone();
            // The hook may use the sessions itself: it runs outside the key's lock.
            async move { drop(tx.send(e)) }
        })
        .build()
        .unwrap();
    fill(&forms, 3).await;
    clock.advance(IDLE);
    assert_eq!(forms.get(&key(3)).await.unwrap(), None);
    let e = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.unwrap().unwrap();
    assert_eq!((e.key, e.value.unwrap().name), (key(3), Some("user 3".into())));
    assert_eq!(forms.sweep_expired(clock.now()).await.unwrap().expired, 0, "already claimed");
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn turning_the_hook_on_or_off_never_moves_an_expiry() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(0);
    let calls = Arc::new(Calls::default());
    let plain = Sessions::<Form>::builder(store.clone())
        .namespace("form")
        .ttl(Ttl::idle(IDLE))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let hooked = forms(store.clone(), &clock, &calls);
    fill(&plain, 1).await; // written without a grace period
    fill(&hooked, 2).await; // written with one
    clock.advance(IDLE - MINUTE);
    for s in [&plain, &hooked] {
        for user in [1, 2] {
            let meta = s.meta(&key(user)).await.unwrap().unwrap();
            assert_eq!(meta.expires_at, Some(Timestamp(0).saturating_add(IDLE)), "user {user}");
        }
    }
    assert_eq!(hooked.sweep_expired(clock.now()).await.unwrap().expired, 0, "nothing expired early");
    clock.advance(MINUTE);
    assert_eq!(plain.get(&key(2)).await.unwrap(), None, "expired for a process without the hook too");
    assert_eq!(calls.total(), 0, "a process without the hook claims without announcing");
}

#[tokio::test]
async fn a_guard_held_past_the_expiry_does_not_revive_the_session() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(0);
    let calls = Arc::new(Calls::default());
    let forms = forms(store, &clock, &calls);
    fill(&forms, 1).await;
    let mut guard = forms.open(&key(1)).await.unwrap();
    guard.name = Some("late".into());
    clock.advance(IDLE);
    match guard.commit().await {
        Err(SessionError::Store(StoreError::Conflict { .. })) => {}
        other => panic!("expected a conflict, as without a grace period: {other:?}"),
    }
    assert_eq!(forms.sweep_expired(clock.now()).await.unwrap().expired, 1);
    assert_eq!(calls.total(), 1);
}

#[tokio::test]
async fn a_lost_reply_to_a_claim_never_runs_the_hook_twice() {
    // Applied but the reply lost: unknown whose delete removed it, so not announced
    // (at most once). Not applied: the record is still there, the claim is sent again.
    for (fault, expired, unknown) in [(Fault::LostReply, 0, 1), (Fault::NotSent, 1, 0)] {
        let store = Arc::new(Gate::new(None));
        let clock = ManualClock::new(0);
        let calls = Arc::new(Calls::default());
        let calls2 = calls.clone();
        let forms = Sessions::<Form>::builder(store.clone())
            .namespace("form")
            .ttl(Ttl::idle(IDLE))
            .clock(Arc::new(clock.clone()))
            .retry(RetryPolicy { max_attempts: 4, ..RetryPolicy::default() })
            .on_expire(move |e| {
                calls2.record(&e);
                async {}
            })
            .build()
            .unwrap();
        fill(&forms, 1).await;
        clock.advance(IDLE);
        store.deletes.lock().unwrap().push(fault);
        let r = forms.sweep_expired(clock.now()).await.unwrap();
        assert_eq!((r.expired, r.unknown, calls.total()), (expired, unknown, expired as usize), "{fault:?}: {r:?}");
        assert!(store.inner.load(&key(1), clock.now()).await.unwrap().is_none(), "{fault:?}: claimed");
        assert_eq!(forms.sweep_expired(clock.now()).await.unwrap(), SweepReport::default());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_announces_and_stops_with_its_sessions() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(0);
    let calls = Arc::new(Calls::default());
    let forms = forms(store, &clock, &calls);
    assert!(matches!(forms.spawn_sweeper(Duration::ZERO), Err(SessionError::Config(_))));
    let sweeper = forms.spawn_sweeper(Duration::from_millis(1)).unwrap();
    fill(&forms, 1).await;
    clock.advance(IDLE);
    // Bounded poll for the background task (a hang, not a timing assertion).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while calls.total() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the sweeper did not announce");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(forms);
    while !sweeper.is_finished() {
        assert!(tokio::time::Instant::now() < deadline, "the sweeper outlived its sessions");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(calls.total(), 1);
}

#[test]
fn an_expiry_grace_out_of_range_is_a_config_error() {
    let store = MemoryStore::new();
    for grace in [Duration::ZERO, Duration::from_millis(999), Duration::from_secs(367 * 24 * 3600)] {
        let built = Sessions::<Form>::builder(store.clone())
            .namespace("form")
            .on_expire(|_| async {})
            .expiry_grace(grace)
            .build();
        assert!(matches!(built, Err(SessionError::Config(_))), "{grace:?}");
    }
    let ok = Sessions::<Form>::builder(store).namespace("form").expiry_grace(Duration::from_secs(1)).build();
    assert!(ok.is_ok());
}

/// Two OS processes sweep one SQLite file at once: every expired record is announced
/// by exactly one of them (each child prints the keys it announced).
#[cfg(all(feature = "sqlite", unix))]
#[tokio::test]
async fn two_processes_announce_each_expired_record_once() {
    use bot_sessions::testing::{Counter, process};
    use std::io::Read as _;

    const DB: &str = "BOT_SESSIONS_EXPIRY_DB";
    const T0: &str = "BOT_SESSIONS_EXPIRY_T0";
    let later = |t0: i64| t0 + i64::try_from((IDLE + MINUTE).as_millis()).unwrap();
    let open = |url: String, at: i64, out: Option<Arc<Mutex<Vec<String>>>>| async move {
        let store = bot_sessions::store::open(&url).await.unwrap();
        let mut b = Sessions::<Form>::builder(store.clone())
            .namespace("form")
            .ttl(Ttl::idle(IDLE))
            .clock(Arc::new(ManualClock::new(at)));
        if let Some(out) = out {
            b = b.on_expire(move |e| {
                out.lock().unwrap().push(e.key.to_string());
                async {}
            });
        }
        let barrier = Sessions::<Counter>::builder(store).namespace("barrier").build().unwrap();
        (b.build().unwrap(), barrier)
    };
    if let Some(role) = process::child_role() {
        let url = std::env::var(DB).unwrap();
        let sweep_at = later(std::env::var(T0).unwrap().parse().unwrap());
        let out = Arc::new(Mutex::new(Vec::new()));
        let (forms, barrier) = open(url, sweep_at, Some(out.clone())).await;
        let ns = Namespace::new("barrier").unwrap();
        process::barrier(&barrier, &ns, 2, Duration::from_secs(120)).await.unwrap();
        let report = forms.sweep_expired(Timestamp(sweep_at)).await.unwrap();
        eprintln!("child {role}: {report:?}");
        for k in out.lock().unwrap().iter() {
            println!("EXPIRED {k}");
        }
        return;
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("session-expiry");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("expiry-{}-{:016x}.db", std::process::id(), rand::random::<u64>()));
    // The background purger is off, and the times are today's, so nothing but the
    // sweeps removes a record.
    let url = format!("sqlite://{}?purge_interval=off", path.display());
    let t0 = Timestamp::now().as_millis();
    {
        // Seed with a hook-enabled `Sessions` so the records carry the grace period.
        let (forms, _) = open(url.clone(), t0, Some(Arc::default())).await;
        for user in 0..200 {
            fill(&forms, user).await;
        }
    }
    let children: Vec<_> = (0..2)
        .map(|i| {
            let env = [(DB, url.as_str()), (T0, &t0.to_string())];
            process::spawn_child("two_processes_announce_each_expired_record_once", &i.to_string(), &env).unwrap()
        })
        .collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for mut child in children {
        let mut stdout = String::new();
        child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        assert!(child.wait().unwrap().success(), "child failed");
        // (libtest may print its "test ... " banner on the line of the first one.)
        for line in stdout.lines().filter_map(|l| process::tagged(l, "EXPIRED ")) {
            *seen.entry(line.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 200, "every expired record was announced");
    assert!(seen.values().all(|&n| n == 1), "and only once: {seen:?}");
    let _ = std::fs::remove_file(&path);
}
