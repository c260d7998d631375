#![cfg(feature = "testing")]
//! The conformance suite on the memory store, plus what only the memory store has.

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{DynStore, Namespace, Precondition, Scope, SessionKey, Store, Timestamp, Write};

async fn store() -> DynStore {
    Arc::new(MemoryStore::new())
}

bot_sessions::conformance_tests!(store, near_cache);

#[tokio::test]
async fn sweeper_purges_and_stops_with_the_store() {
    let store = MemoryStore::with_sweeper(Duration::from_millis(5)).unwrap();
    let ns = Namespace::new("sweep").unwrap();
    let now = Timestamp::now();
    for i in 0..100 {
        let k = SessionKey::new(ns.clone(), Scope::Chat(i));
        let expires_at = Some(Timestamp(now.as_millis() - 1 + (i % 2) * 3_600_000));
        store.write(&k, Write::new(b"x", 1, expires_at), Precondition::Any, now).await.unwrap();
    }
    assert_eq!(store.len(), 100);
    // Poll until the sweeper has run (bounded), rather than sleeping a fixed time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.len() != 50 {
        assert!(tokio::time::Instant::now() < deadline, "sweeper did not purge: {} left", store.len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.count(Some(&ns), Timestamp::now()).await.unwrap(), 50);
}

#[tokio::test]
async fn the_sweeper_stops_when_the_store_is_dropped() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let store = MemoryStore::with_sweeper(Duration::from_millis(1)).unwrap();
    assert_eq!(metrics.num_alive_tasks(), before + 1, "the sweeper runs");
    let clone = store.clone();
    drop(store);
    drop(clone);
    // Bounded poll: the task notices at its next tick.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() != before {
        assert!(tokio::time::Instant::now() < deadline, "the sweeper outlived its store");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn sweeper_needs_a_runtime() {
    assert!(MemoryStore::with_sweeper(Duration::from_secs(1)).is_err());
}

/// An expiry pushed back by writes (an idle TTL) leaves the record's entry in the expiry
/// index where it was: a purge that reaches that early entry keeps the record and files
/// it at its expiry, and the purge after its expiry removes it. An expiry brought
/// forward, or dropped, moves or removes the entry at once.
#[tokio::test]
async fn purges_follow_expiries_that_writes_moved() {
    let store = MemoryStore::without_sweeper();
    let ns = Namespace::new("refile").unwrap();
    let (idle, fixed, cleared) = (
        SessionKey::new(ns.clone(), Scope::Chat(1)),
        SessionKey::new(ns.clone(), Scope::Chat(2)),
        SessionKey::new(ns.clone(), Scope::Chat(3)),
    );
    let t = |ms: i64| Timestamp(1_000_000 + ms);
    let write = |value: &'static [u8], expires: Option<i64>| Write::new(value, 1, expires.map(t));
    // Pushed back five times: from t(100) to t(150).
    let mut v = store.write(&idle, write(b"0", Some(100)), Precondition::Absent, t(0)).await.unwrap();
    for i in 1..=5 {
        let w = write(b"1", Some(100 + i * 10));
        v = store.write(&idle, w, Precondition::Version(v), t(i)).await.unwrap();
    }
    // Brought forward: from t(1000) to t(130).
    let f = store.write(&fixed, write(b"2", Some(1000)), Precondition::Absent, t(0)).await.unwrap();
    store.write(&fixed, write(b"3", Some(130)), Precondition::Version(f), t(1)).await.unwrap();
    // Expiry dropped: from t(110) to never.
    let c = store.write(&cleared, write(b"4", Some(110)), Precondition::Absent, t(0)).await.unwrap();
    store.write(&cleared, write(b"5", None), Precondition::Version(c), t(1)).await.unwrap();

    assert_eq!(store.purge_expired(t(120)).await.unwrap(), 0, "nothing is due at t(120)");
    assert_eq!(store.count(Some(&ns), t(120)).await.unwrap(), 3);
    assert_eq!(store.purge_expired(t(130)).await.unwrap(), 1, "the expiry brought forward");
    assert!(store.load(&fixed, t(130)).await.unwrap().is_none());
    assert_eq!(store.purge_expired(t(149)).await.unwrap(), 0, "filed again at t(150), not due yet");
    assert_eq!(store.load(&idle, t(149)).await.unwrap().map(|r| r.value), Some(b"1".to_vec()));
    // Pushed back once more after the purge filed it again.
    store.write(&idle, write(b"6", Some(200)), Precondition::Version(v), t(149)).await.unwrap();
    assert_eq!(store.purge_expired(t(150)).await.unwrap(), 0);
    assert_eq!(store.purge_expired(t(200)).await.unwrap(), 1, "due at last");
    assert_eq!(store.len(), 1, "the record without an expiry stays");
    assert_eq!(store.purge_expired(t(1_000_000)).await.unwrap(), 0);
    assert_eq!(store.load(&cleared, t(1_000_000)).await.unwrap().map(|r| r.value), Some(b"5".to_vec()));
    // Created again after its purge: filed afresh.
    store.write(&idle, write(b"7", Some(300)), Precondition::Absent, t(250)).await.unwrap();
    assert_eq!(store.purge_expired(t(299)).await.unwrap(), 0);
    assert_eq!(store.purge_expired(t(300)).await.unwrap(), 1);
}
