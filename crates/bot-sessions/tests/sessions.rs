//! The typed API over a store that counts (and can fail) its calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[cfg(feature = "msgpack")]
use bot_sessions::Codec;
use bot_sessions::session::{MAX_LIST_PAGE, RetryPolicy};
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::testing::delegate::{Delegate, Overrides};
use bot_sessions::{
    Clock, Context, KeyError, KeyStrategy, ManualClock, Namespace, Precondition, Record, Scope, SessionError,
    SessionKey, Sessions, Store, StoreError, Timestamp, Ttl, Write,
};

/// Counts calls to a memory store; can be told to fail or to conflict.
#[derive(Default)]
struct Probe {
    loads: AtomicUsize,
    writes: AtomicUsize,
    down: AtomicBool,
    always_conflict: AtomicBool,
}

impl Probe {
    fn new() -> Arc<Delegate<Probe>> {
        Arc::new(Delegate::new(MemoryStore::default(), Probe::default()))
    }

    fn check(&self, key: &SessionKey) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::backend("probe", Some(key.as_str()), true, "connection refused"));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Overrides for Probe {
    async fn load(&self, inner: &dyn Store, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.check(key)?;
        inner.load(key, now).await
    }
    async fn write(
        &self,
        inner: &dyn Store,
        key: &SessionKey,
        w: Write<'_>,
        p: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.check(key)?;
        if self.always_conflict.load(Ordering::SeqCst) {
            return Err(StoreError::Conflict { key: key.to_string() });
        }
        inner.write(key, w, p, now).await
    }
    async fn delete(
        &self,
        inner: &dyn Store,
        key: &SessionKey,
        p: Precondition,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.check(key)?;
        inner.delete(key, p, now).await
    }
}

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Cart {
    items: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Prefs {
    lang: Option<String>,
}

fn carts(probe: &Arc<Delegate<Probe>>) -> Sessions<Cart> {
    Sessions::<Cart>::builder(probe.clone()).namespace("cart").key(KeyStrategy::ChatUser).build().unwrap()
}

#[tokio::test]
async fn a_lazy_session_that_is_never_read_costs_nothing() {
    let probe = Probe::new();
    let carts = carts(&probe);
    let key = carts.key(&Context::new().chat(1).user(2)).unwrap();
    let lazy = carts.lazy(&key);
    assert!(!lazy.is_loaded());
    lazy.commit().await.unwrap();
    assert_eq!((probe.loads.load(Ordering::SeqCst), probe.writes.load(Ordering::SeqCst)), (0, 0));

    let mut lazy = carts.lazy(&key);
    lazy.get().await.unwrap().items.push("tea".into());
    lazy.get().await.unwrap().items.push("milk".into());
    lazy.commit().await.unwrap();
    assert_eq!(probe.loads.load(Ordering::SeqCst), 1, "loaded once however often it is read");
    assert_eq!(probe.writes.load(Ordering::SeqCst), 1);
    assert_eq!(carts.get(&key).await.unwrap().unwrap().items, ["tea", "milk"]);
}

#[tokio::test]
async fn several_session_types_per_update() {
    let probe = Probe::new();
    let carts = carts(&probe);
    let prefs = Sessions::<Prefs>::builder(probe.clone()).namespace("prefs").key(KeyStrategy::User).build().unwrap();
    for chat in [10, 20] {
        let ctx = Context::new().chat(chat).user(7);
        let mut cart = carts.lazy(&carts.key(&ctx).unwrap());
        let mut pref = prefs.lazy(&prefs.key(&ctx).unwrap());
        cart.get().await.unwrap().items.push(format!("from {chat}"));
        pref.get().await.unwrap().lang = Some("de".into());
        cart.commit().await.unwrap();
        pref.commit().await.unwrap();
    }
    // Two carts (one per chat), one prefs record (per user); the second prefs commit
    // changed nothing and wrote nothing.
    assert_eq!(probe.writes.load(Ordering::SeqCst), 3);
    assert_eq!(probe.forget_user(7, Timestamp::now()).await.unwrap(), 3, "all of the user's sessions go");
}

#[tokio::test]
async fn a_guard_refuses_to_overwrite_another_process() {
    let store = Arc::new(MemoryStore::new());
    // Two `Sessions` on one store stand for two processes: no shared in-process lock.
    let a = Sessions::<Cart>::builder(store.clone()).namespace("cart").build().unwrap();
    let b = Sessions::<Cart>::builder(store.clone()).namespace("cart").build().unwrap();
    let key = SessionKey::new(a.namespace().clone(), Scope::Chat(1));
    let mut ga = a.open(&key).await.unwrap();
    let mut gb = b.open(&key).await.unwrap();
    ga.items.push("a".into());
    gb.items.push("b".into());
    ga.commit().await.unwrap();
    match gb.commit().await {
        Err(e @ SessionError::Store(StoreError::Conflict { .. })) => assert!(e.is_retryable()),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(a.get(&key).await.unwrap().unwrap().items, ["a"], "the first commit stands");
    // `update` re-runs instead.
    b.update(&key, |c| {
        c.items.push("b".into());
        Ok::<_, SessionError>(())
    })
    .await
    .unwrap();
    assert_eq!(a.get(&key).await.unwrap().unwrap().items, ["a", "b"]);
}

#[tokio::test]
async fn contention_is_bounded_and_reported() {
    let probe = Probe::new();
    probe.always_conflict.store(true, Ordering::SeqCst);
    let carts = Sessions::<Cart>::builder(probe.clone())
        .namespace("cart")
        .retry(RetryPolicy { max_attempts: 5, ..RetryPolicy::default() })
        .build()
        .unwrap();
    let key = SessionKey::new(carts.namespace().clone(), Scope::Chat(1));
    let mut runs = 0;
    let res = carts
        .update(&key, |c| {
            runs += 1;
            c.items.push("x".into());
            Ok::<_, SessionError>(())
        })
        .await;
    match res {
        Err(SessionError::Contention { key: k, attempts: 5 }) => assert_eq!(k, key.to_string()),
        other => panic!("expected contention, got {other:?}"),
    }
    assert_eq!(runs, 5, "the closure re-ran once per attempt");
}

#[tokio::test]
async fn a_backend_outage_is_a_retryable_error_and_writes_nothing() {
    let probe = Probe::new();
    let carts = carts(&probe);
    let key = carts.key(&Context::new().chat(1).user(1)).unwrap();
    probe.down.store(true, Ordering::SeqCst);
    let err = carts
        .update(&key, |c| {
            c.items.push("lost?".into());
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains(key.as_str()), "the error names the key: {err}");
    probe.down.store(false, Ordering::SeqCst);
    assert_eq!(carts.get(&key).await.unwrap(), None);
}

#[tokio::test]
async fn a_strategy_missing_its_id_is_a_typed_error() {
    let probe = Probe::new();
    let carts = carts(&probe);
    // A channel post: a chat but no user.
    match carts.key(&Context::new().chat(-1001)) {
        Err(SessionError::Key(KeyError::MissingUser { strategy: "chat_user" })) => {}
        other => panic!("expected MissingUser, got {other:?}"),
    }
}

#[test]
fn build_errors_are_typed() {
    let store = MemoryStore::new();
    assert!(matches!(Sessions::<Cart>::builder(store.clone()).build(), Err(SessionError::Config(_))));
    assert!(matches!(
        Sessions::<Cart>::builder(store.clone()).namespace("bad name").build(),
        Err(SessionError::Key(KeyError::InvalidNamespace { .. }))
    ));
    assert!(matches!(
        Sessions::<Cart>::builder(store).namespace("ok").max_size(0).build(),
        Err(SessionError::Config(_))
    ));
}

#[cfg(feature = "msgpack")]
#[tokio::test]
async fn messagepack_sessions_migrate_like_json() {
    let store = Arc::new(MemoryStore::new());
    let ns = Namespace::new("mp").unwrap();
    let key = SessionKey::new(ns.clone(), Scope::User(1));
    // A v1 record in MessagePack: {"item": "tea"}.
    let v1 = Codec::MessagePack.encode(&serde_json::json!({ "item": "tea" })).unwrap();
    store.write(&key, Write::new(&v1, 1, None), Precondition::Absent, Timestamp::now()).await.unwrap();
    let migrations =
        bot_sessions::Migrations::new().step(|mut v| Ok(serde_json::json!({ "items": [v["item"].take()] })));
    let carts = Sessions::<Cart>::builder(store.clone())
        .namespace("mp")
        .codec(Codec::MessagePack)
        .migrations(migrations)
        .build()
        .unwrap();
    carts
        .update(&key, |c| {
            c.items.push("milk".into());
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
    let r = store.load(&key, Timestamp::now()).await.unwrap().unwrap();
    assert_eq!(r.schema_version, 2);
    assert_eq!(Codec::MessagePack.decode::<Cart>(&r.value).unwrap().items, ["tea", "milk"]);
}

// --- listing, meta, a session's own TTL, set ---------------------------------------

fn clocked(probe: &Arc<Delegate<Probe>>, clock: &ManualClock, ttl: Ttl) -> Sessions<Cart> {
    Sessions::<Cart>::builder(probe.clone()).namespace("cart").ttl(ttl).clock(Arc::new(clock.clone())).build().unwrap()
}

fn chat(n: i64) -> SessionKey {
    SessionKey::new(Namespace::new("cart").unwrap(), Scope::Chat(n))
}

async fn add(carts: &Sessions<Cart>, key: &SessionKey, item: &str) {
    carts
        .update(key, |c| {
            c.items.push(item.into());
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn list_pages_through_every_live_session() {
    let probe = Probe::new();
    let clock = ManualClock::new(0);
    let carts = clocked(&probe, &clock, Ttl::idle(Duration::from_secs(60)));
    for n in 0..25 {
        add(&carts, &chat(n), &format!("item {n}")).await;
    }
    // Around them: one that expires, one that does not decode, one of another
    // namespace, one written by newer code.
    let expiring = chat(100);
    add(&carts, &expiring, "soon gone").await;
    clock.advance(Duration::from_secs(30));
    for n in 0..25 {
        add(&carts, &chat(n), "renewed").await;
    }
    let now = clock.now();
    probe.inner().write(&chat(50), Write::new(b"{oops", 1, None), Precondition::Any, now).await.unwrap();
    probe.inner().write(&chat(51), Write::new(b"{}", 9, None), Precondition::Any, now).await.unwrap();
    let elsewhere = SessionKey::new(Namespace::new("prefs").unwrap(), Scope::Chat(1));
    probe.inner().write(&elsewhere, Write::new(b"{}", 1, None), Precondition::Any, now).await.unwrap();
    clock.advance(Duration::from_secs(31));
    let writes = probe.writes.load(Ordering::SeqCst);

    let mut listed = Vec::new();
    let mut skipped = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = carts.list_page(cursor.as_deref(), 4).await.unwrap();
        pages += 1;
        assert!(page.sessions.len() + page.skipped.len() <= 4);
        listed.extend(page.sessions.into_iter().map(|s| (s.key, s.value, s.meta)));
        skipped.extend(page.skipped);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(pages >= 7, "{pages} pages of at most 4");
    let mut keys: Vec<_> = listed.iter().map(|(k, ..)| k.clone()).collect();
    assert!(keys.is_sorted_by(|a, b| a.as_str() < b.as_str()), "key order, each once");
    keys.sort_by_key(|k| k.to_string());
    let mut expected: Vec<_> = (0..25).map(chat).collect();
    expected.sort_by_key(|k| k.to_string());
    assert_eq!(keys, expected, "every live session, none expired, none of another namespace");
    for (key, value, meta) in &listed {
        assert_eq!(value.items.last().map(String::as_str), Some("renewed"), "{key}");
        assert_eq!((meta.created_at, meta.updated_at), (Timestamp(0), Timestamp(30_000)));
    }
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(matches!(&skipped[0], (k, SessionError::Decode { .. }) if *k == chat(50)), "{skipped:?}");
    assert!(matches!(&skipped[1], (k, SessionError::NewerSchema { found: 9, .. }) if *k == chat(51)));
    assert_eq!(probe.writes.load(Ordering::SeqCst), writes, "listing writes nothing");

    // One at a time: the same sessions, the two bad records as errors in between.
    let mut list = carts.list().page_size(3);
    let (mut ok, mut err) = (0, 0);
    while let Some(item) = list.next().await {
        match item {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert_eq!((ok, err), (25, 2));
    assert!(list.next().await.is_none(), "stays done");
    for limit in [0, MAX_LIST_PAGE + 1] {
        assert!(matches!(carts.list_page(None, limit).await, Err(SessionError::Config(_))), "{limit}");
    }
}

#[tokio::test]
async fn meta_reports_the_times_through_the_typed_api() {
    let probe = Probe::new();
    let clock = ManualClock::new(5_000);
    let idle = clocked(&probe, &clock, Ttl::idle(Duration::from_secs(60)));
    let key = chat(1);
    assert_eq!(idle.meta(&key).await.unwrap(), None);
    add(&idle, &key, "tea").await;
    let first = idle.meta(&key).await.unwrap().unwrap();
    assert_eq!(
        (first.created_at, first.updated_at, first.expires_at),
        (Timestamp(5_000), Timestamp(5_000), Some(Timestamp(65_000)))
    );
    assert_eq!(first.ttl, None);
    clock.advance(Duration::from_secs(10));
    add(&idle, &key, "milk").await;
    let second = idle.meta(&key).await.unwrap().unwrap();
    assert_eq!(
        (second.created_at, second.updated_at, second.expires_at),
        (Timestamp(5_000), Timestamp(15_000), Some(Timestamp(75_000)))
    );
    assert_ne!(first.version, second.version);
    // The guard sees the same, as loaded.
    let guard = idle.open(&key).await.unwrap();
    assert_eq!(guard.meta(), Some(&second));
    drop(guard);
    // An absolute TTL counts from creation.
    let absolute = clocked(&probe, &clock, Ttl::absolute(Duration::from_secs(60)));
    clock.advance(Duration::from_secs(10));
    add(&absolute, &key, "sugar").await;
    let third = absolute.meta(&key).await.unwrap().unwrap();
    assert_eq!((third.updated_at, third.expires_at), (Timestamp(25_000), Some(Timestamp(65_000))));
    clock.advance(Duration::from_secs(40));
    assert_eq!(absolute.meta(&key).await.unwrap(), None, "expired");
    let writes = probe.writes.load(Ordering::SeqCst);
    assert!(idle.meta(&chat(2)).await.unwrap().is_none());
    assert_eq!(probe.writes.load(Ordering::SeqCst), writes, "meta writes nothing");
}

#[tokio::test]
async fn a_session_keeps_its_own_ttl_across_updates() {
    let probe = Probe::new();
    let clock = ManualClock::new(0);
    let hour = Duration::from_secs(3600);
    let carts = clocked(&probe, &clock, Ttl::idle(hour));
    let (timed, plain) = (chat(1), chat(2));
    // A five-minute race for one session; the type's idle hour for the other.
    carts
        .update_with_ttl(&timed, |c, ttl| {
            assert_eq!(*ttl, None);
            c.items.push("go".into());
            *ttl = Some(Ttl::absolute(Duration::from_secs(300)));
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
    add(&carts, &plain, "go").await;
    for _ in 0..4 {
        clock.advance(Duration::from_secs(60));
        add(&carts, &timed, "step").await; // does not mention the TTL: it stays
        add(&carts, &plain, "step").await;
    }
    let meta = carts.meta(&timed).await.unwrap().unwrap();
    assert_eq!((meta.ttl, meta.expires_at), (Some(Ttl::absolute(Duration::from_secs(300))), Some(Timestamp(300_000))));
    // Existing records keep decoding: a plain one has no header; a timed one does.
    let raw = probe.inner().load(&plain, clock.now()).await.unwrap().unwrap();
    assert_eq!(serde_json::from_slice::<Cart>(&raw.value).unwrap().items.len(), 5);
    clock.advance(Duration::from_secs(60));
    assert_eq!(carts.get(&timed).await.unwrap(), None, "its own TTL ran out");
    assert_eq!(carts.get(&plain).await.unwrap().unwrap().items.len(), 5, "the type's TTL did not");

    // The guard: a week for this cart, then back to the type's hour.
    let week = Ttl::idle(Duration::from_secs(7 * 24 * 3600));
    let mut g = carts.open(&plain).await.unwrap();
    g.set_ttl(week);
    assert_eq!(g.ttl(), Some(week));
    g.commit().await.unwrap(); // only the TTL changed: that is a write
    clock.advance(2 * hour);
    let mut g = carts.open(&plain).await.unwrap();
    assert_eq!((g.ttl(), g.meta().unwrap().ttl), (Some(week), Some(week)));
    g.items.push("kept".into());
    g.clear_ttl();
    g.commit().await.unwrap();
    assert_eq!(carts.meta(&plain).await.unwrap().unwrap().ttl, None);
    clock.advance(hour);
    assert_eq!(carts.get(&plain).await.unwrap(), None, "the type's hour again");

    // A zero TTL is refused; an untouched initial value is not stored whatever its TTL.
    let mut g = carts.open(&chat(3)).await.unwrap();
    g.items.push("x".into());
    g.set_ttl(Ttl::idle(Duration::ZERO));
    assert!(matches!(g.commit().await, Err(SessionError::Config(_))));
    let writes = probe.writes.load(Ordering::SeqCst);
    let mut g = carts.open(&chat(3)).await.unwrap();
    g.set_ttl(week);
    g.commit().await.unwrap();
    assert_eq!(probe.writes.load(Ordering::SeqCst), writes);
    // A session that never expires although its type does.
    carts
        .update_with_ttl(&chat(4), |c, ttl| {
            c.items.push("keep".into());
            *ttl = Some(Ttl::None);
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
    clock.advance(1000 * hour);
    assert_eq!(carts.meta(&chat(4)).await.unwrap().unwrap().expires_at, None);
}

#[tokio::test]
async fn set_writes_a_whole_value_without_loading() {
    let probe = Probe::new();
    let clock = ManualClock::new(0);
    let carts = Sessions::<Cart>::builder(probe.clone())
        .namespace("cart")
        .ttl(Ttl::idle(Duration::from_secs(60)))
        .clock(Arc::new(clock.clone()))
        .max_size(64)
        .build()
        .unwrap();
    let key = chat(1);
    let cart = |items: &[&str]| Cart { items: items.iter().map(|s| s.to_string()).collect() };
    carts.set(&key, &cart(&["tea"])).await.unwrap();
    clock.advance(Duration::from_secs(30));
    carts.set(&key, &cart(&["milk"])).await.unwrap();
    assert_eq!((probe.loads.load(Ordering::SeqCst), probe.writes.load(Ordering::SeqCst)), (0, 2), "no load");
    let meta = carts.meta(&key).await.unwrap().unwrap();
    assert_eq!((meta.created_at, meta.expires_at), (Timestamp(0), Some(Timestamp(90_000))), "idle TTL restarted");
    assert_eq!(carts.get(&key).await.unwrap(), Some(cart(&["milk"])));
    // Too large: refused before anything is sent.
    let writes = probe.writes.load(Ordering::SeqCst);
    let big = cart(&[&"x".repeat(100)]);
    assert!(matches!(carts.set(&key, &big).await, Err(SessionError::TooLarge { .. })));
    assert_eq!(probe.writes.load(Ordering::SeqCst), writes);
    // Over bytes that do not decode: replaced, never read.
    probe.inner().write(&key, Write::new(b"{bad", 1, None), Precondition::Any, clock.now()).await.unwrap();
    carts.set(&key, &cart(&["fresh"])).await.unwrap();
    assert_eq!(carts.get(&key).await.unwrap(), Some(cart(&["fresh"])));
    // The initial value is stored as given (an explicit write; `delete` removes).
    carts.set(&key, &Cart::default()).await.unwrap();
    assert_eq!(carts.get(&key).await.unwrap(), Some(Cart::default()));
    // It drops the session's own TTL.
    carts
        .update_with_ttl(&key, |c, ttl| {
            c.items.push("timed".into());
            *ttl = Some(Ttl::absolute(Duration::from_secs(5)));
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
    carts.set(&key, &cart(&["untimed"])).await.unwrap();
    assert_eq!(carts.meta(&key).await.unwrap().unwrap().ttl, None);

    // With an absolute TTL the deadline stays that of the session's creation: one
    // metadata read, then compare-and-set.
    let race = clocked(&probe, &clock, Ttl::absolute(Duration::from_secs(60)));
    let key = chat(2);
    race.set(&key, &cart(&["a"])).await.unwrap();
    clock.advance(Duration::from_secs(40));
    let loads = probe.loads.load(Ordering::SeqCst);
    race.set(&key, &cart(&["b"])).await.unwrap();
    assert_eq!(probe.loads.load(Ordering::SeqCst), loads + 1);
    let meta = race.meta(&key).await.unwrap().unwrap();
    assert_eq!(meta.expires_at, Some(clock.now().saturating_add(Duration::from_secs(20))));
    clock.advance(Duration::from_secs(20));
    assert_eq!(race.get(&key).await.unwrap(), None);
    race.set(&key, &cart(&["c"])).await.unwrap(); // a new session, a new deadline
    assert_eq!(race.meta(&key).await.unwrap().unwrap().created_at, clock.now());
}
