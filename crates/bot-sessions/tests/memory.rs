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
