//! The near cache over the store: round trips counted, never an expired copy, invalidation.

use std::sync::Arc;

use super::sessions::{Profile, profiles};
use super::{MINUTE, clock, key, now, w};
use crate::testing::delegate::{Delegate, Overrides};
use crate::testing::{Counter, hammer, total, unique_namespace, unique_user};
use crate::{
    DynStore, Migrations, Precondition, Scope, SessionError, SessionKey, Sessions, StoreError, Timestamp, Write,
};

/// Counts the loads and writes that reach the store: how many round trips a session
/// operation cost.
#[derive(Default)]
struct Counting {
    loads: std::sync::atomic::AtomicU64,
    writes: std::sync::atomic::AtomicU64,
}

impl Counting {
    fn trips(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.loads.load(SeqCst), self.writes.load(SeqCst))
    }
}

#[async_trait::async_trait]
impl Overrides for Counting {
    async fn load(
        &self,
        inner: &dyn crate::Store,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<crate::Record>, StoreError> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        inner.load(key, now).await
    }
    async fn write(
        &self,
        inner: &dyn crate::Store,
        key: &SessionKey,
        w: Write<'_>,
        pre: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        inner.write(key, w, pre, now).await
    }
}

fn bump(c: &mut Counter) -> Result<(), SessionError> {
    c.n += 1;
    Ok(())
}

/// With a near cache, an update of a key this process wrote last is one compare-and-set
/// and no load; after a conflict the key is loaded first for a while; two instances with caches of their own, racing on the same keys,
/// count every update (a stale copy fails its compare-and-set and is reloaded).
pub async fn near_cache_counts_exactly(store: DynStore) {
    let ns = unique_namespace("nearcount");
    let counting = Arc::new(Delegate::new(store.clone(), Counting::default()));
    let one = Sessions::<Counter>::builder(counting.clone() as DynStore)
        .namespace(ns.as_str())
        .near_cache(crate::store::near_cache::CacheConfig::default())
        .build()
        .unwrap();
    let k = key(&ns, Scope::Chat(-1));
    one.update(&k, bump).await.unwrap();
    assert_eq!(counting.trips(), (1, 1), "the first update loads and creates");
    for _ in 0..9 {
        one.update(&k, bump).await.unwrap();
    }
    assert_eq!(counting.trips(), (1, 10), "every later update is one compare-and-set, no load");
    let stats = one.near_cache().expect("a cache of its own").stats();
    assert_eq!((stats.hits, stats.misses), (9, 1));
    // An update that changes nothing checks the cached version with a load.
    one.update(&k, |_| Ok::<_, SessionError>(())).await.unwrap();
    assert_eq!(counting.trips(), (2, 10), "nothing written; the copy was checked");

    // Another writer moves the key on behind the cache's back: the stale copy's
    // compare-and-set fails, the key is loaded, the update lands once.
    let r = store.load(&k, Timestamp::now()).await.unwrap().expect("stored");
    store.write(&k, w(br#"{"n":100}"#), Precondition::Version(r.version), Timestamp::now()).await.unwrap();
    one.update(&k, bump).await.unwrap();
    assert_eq!(counting.trips(), (3, 12), "failed CAS, load, CAS");
    one.update(&k, bump).await.unwrap();
    assert_eq!(counting.trips(), (4, 13), "a key that just met a conflict is loaded first");
    assert_eq!(one.get(&k).await.unwrap(), Some(Counter { n: 102 }));

    let build = || {
        Sessions::<Counter>::builder(store.clone())
            .namespace(ns.as_str())
            .near_cache(crate::store::near_cache::CacheConfig::default())
            .build()
            .unwrap()
    };
    let (a, b) = (build(), build());
    let keys: Vec<SessionKey> = (0..4).map(|i| key(&ns, Scope::Chat(i))).collect();
    let (ra, rb) = tokio::join!(hammer(&a, &keys, 32, 150), hammer(&b, &keys, 32, 150));
    ra.unwrap();
    rb.unwrap();
    // (Keys this contended are loaded first for a while after each conflict, so the
    // hits here depend on timing; the path itself is counted above.)
    assert_eq!(total(&a, &keys).await.unwrap(), 2 * 32 * 150, "every update of both cached instances counted");
}

/// An expired record is never served from a near cache, not even to a reader that
/// opted into stale reads; within the staleness bound a cached read may miss another
/// writer, and without the opt-in it never does.
pub async fn near_cache_never_serves_expired(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("nearexp");
    let cached = profiles(&store, &ns, &c)
        .ttl(crate::Ttl::idle(MINUTE))
        .near_cache(crate::store::near_cache::CacheConfig::default())
        .stale_reads(60 * MINUTE)
        .build()
        .unwrap();
    let plain = profiles(&store, &ns, &c).ttl(crate::Ttl::idle(MINUTE)).build().unwrap();
    let k = key(&ns, Scope::User(unique_user()));
    let visit = |p: &mut Profile| {
        p.visits += 1;
        Ok::<_, SessionError>(p.visits)
    };
    assert_eq!(cached.update(&k, visit).await.unwrap(), 1);
    c.advance(2 * MINUTE);
    assert_eq!(cached.get(&k).await.unwrap(), None, "expired: not served from the cache");
    assert_eq!(cached.update(&k, visit).await.unwrap(), 1, "an update starts over, not from the copy");

    // Another writer (not through this cache): a stale read may miss it, a plain read
    // never does, and an update lands on top of it.
    let r = store.load(&k, now(&c)).await.unwrap().expect("stored");
    let expires = Some(now(&c).saturating_add(MINUTE));
    let other = Write::new(br#"{"name":"other","visits":50}"#, 1, expires);
    store.write(&k, other, Precondition::Version(r.version), now(&c)).await.unwrap();
    assert_eq!(cached.get(&k).await.unwrap().map(|p| p.visits), Some(1), "a stale read within its bound");
    assert_eq!(plain.get(&k).await.unwrap().map(|p| p.visits), Some(50), "the store's record");
    assert_eq!(cached.update(&k, visit).await.unwrap(), 51, "the update saw the other write");
    c.advance(61 * MINUTE);
    cached.update(&k, visit).await.unwrap();
    c.advance(30 * MINUTE / 60); // 30 s: live, and the copy is within the bound again
    assert_eq!(cached.get(&k).await.unwrap().map(|p| p.visits), Some(1));

    // The record itself (not only the session's TTL) past its expiry.
    let near = cached.near_cache().expect("own cache");
    let t = now(&c);
    assert!(near.cached(&k, t, None).is_some(), "cached while live");
    assert!(near.cached(&k, t.saturating_add(2 * MINUTE), None).is_none(), "never past expires_at");
}

/// Deletes and forget-user through a session's store (its cache) invalidate the
/// cached records, so even a stale read never brings them back; a schema migration by
/// newer code elsewhere is never overwritten from a cached copy.
pub async fn near_cache_invalidation(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("nearinv");
    let s = profiles(&store, &ns, &c)
        .near_cache(crate::store::near_cache::CacheConfig::default())
        .stale_reads(60 * MINUTE)
        .build()
        .unwrap();
    let visit = |p: &mut Profile| {
        p.visits += 1;
        Ok::<_, SessionError>(())
    };
    let user = unique_user();
    let (k1, k2, k3) =
        (key(&ns, Scope::User(user)), key(&ns, Scope::ChatUser { chat: 3, user }), key(&ns, Scope::Chat(9)));
    for k in [&k1, &k2, &k3] {
        s.update(k, visit).await.unwrap();
        assert!(s.get(k).await.unwrap().is_some());
    }
    assert!(s.store().delete(&k3, Precondition::Any, now(&c)).await.unwrap());
    assert_eq!(s.get(&k3).await.unwrap(), None, "deleted through the store: not served");
    s.update(&k3, visit).await.unwrap();
    assert!(s.delete(&k3).await.unwrap());
    assert_eq!(s.get(&k3).await.unwrap(), None, "deleted by the sessions: not served");
    assert_eq!(s.store().forget_user(user, now(&c)).await.unwrap(), 2);
    for k in [&k1, &k2] {
        assert_eq!(s.get(k).await.unwrap(), None, "{k} forgotten: not served");
    }
    // An erasure that went to the store another way is reached with invalidate_user.
    s.update(&k1, visit).await.unwrap();
    store.forget_user(user, now(&c)).await.unwrap();
    s.near_cache().expect("own cache").invalidate_user(user);
    assert_eq!(s.get(&k1).await.unwrap(), None, "invalidated by user");

    // Newer code migrates the record to schema 2: this (schema 1) process's cached
    // copy must not be written over it.
    let k4 = key(&ns, Scope::User(unique_user()));
    s.update(&k4, visit).await.unwrap();
    let newer = profiles(&store, &ns, &c).migrations(Migrations::new().step(Ok)).build().unwrap();
    newer.update(&k4, visit).await.unwrap();
    let migrated = store.load(&k4, now(&c)).await.unwrap().expect("stored");
    assert_eq!(migrated.schema_version, 2);
    match s.update(&k4, visit).await {
        Err(SessionError::NewerSchema { found: 2, supported: 1, .. }) => {}
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(store.load(&k4, now(&c)).await.unwrap(), Some(migrated), "untouched");
}
