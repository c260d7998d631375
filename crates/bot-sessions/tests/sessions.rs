//! The typed API over a store that counts (and can fail) its calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(feature = "msgpack")]
use bot_sessions::Codec;
use bot_sessions::session::RetryPolicy;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{
    Context, KeyError, KeyStrategy, Namespace, Page, Precondition, Record, Scope, SessionError, SessionKey, Sessions,
    Store, StoreError, Timestamp, Write,
};

/// Delegates to a memory store, counting calls; can be told to fail or to conflict.
#[derive(Default)]
struct Probe {
    inner: MemoryStore,
    loads: AtomicUsize,
    writes: AtomicUsize,
    down: AtomicBool,
    always_conflict: AtomicBool,
}

impl Probe {
    fn check(&self, key: &SessionKey) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::backend("probe", Some(key.as_str()), true, "connection refused"));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for Probe {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.check(key)?;
        self.inner.load(key, now).await
    }
    async fn write(&self, key: &SessionKey, w: Write<'_>, p: Precondition, now: Timestamp) -> Result<u64, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.check(key)?;
        if self.always_conflict.load(Ordering::SeqCst) {
            return Err(StoreError::Conflict { key: key.to_string() });
        }
        self.inner.write(key, w, p, now).await
    }
    async fn delete(&self, key: &SessionKey, p: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        self.check(key)?;
        self.inner.delete(key, p, now).await
    }
    async fn forget_user(&self, user: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.forget_user(user, now).await
    }
    async fn scan(&self, ns: &Namespace, c: Option<&str>, l: usize, now: Timestamp) -> Result<Page, StoreError> {
        self.inner.scan(ns, c, l, now).await
    }
    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }
    async fn count(&self, ns: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.count(ns, now).await
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

fn carts(probe: &Arc<Probe>) -> Sessions<Cart> {
    Sessions::<Cart>::builder(probe.clone()).namespace("cart").key(KeyStrategy::ChatUser).build().unwrap()
}

#[tokio::test]
async fn a_lazy_session_that_is_never_read_costs_nothing() {
    let probe = Arc::new(Probe::default());
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
    let probe = Arc::new(Probe::default());
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
    let probe = Arc::new(Probe::default());
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
    let probe = Arc::new(Probe::default());
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
    let probe = Arc::new(Probe::default());
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
    store
        .write(&key, Write::new(&v1, 1, None), Precondition::Absent, Timestamp::now())
        .await
        .unwrap();
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
