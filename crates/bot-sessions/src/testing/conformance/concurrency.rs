//! Concurrency: compare-and-set from many tasks, `Sessions` from many tasks and from several instances; every update counted.

use super::{key, w};
use crate::testing::{Counter, hammer, total, unique_namespace};
use crate::{DynStore, Precondition, Scope, SessionKey, Sessions, StoreError, Timestamp};

/// Raw compare-and-set from many tasks (no in-process lock): every increment lands.
pub async fn concurrent_compare_and_set(store: DynStore) {
    const TASKS: u64 = 16;
    const EACH: u64 = 40;
    let ns = unique_namespace("cas");
    let k = key(&ns, Scope::Chat(1));
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let (store, k) = (store.clone(), k.clone());
        handles.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for _ in 0..EACH {
                loop {
                    let t = Timestamp::now();
                    let cur = store.load(&k, t).await.unwrap();
                    let (n, pre) = match &cur {
                        None => (0u64, Precondition::Absent),
                        Some(r) => {
                            (String::from_utf8_lossy(&r.value).parse().unwrap(), Precondition::Version(r.version))
                        }
                    };
                    match store.write(&k, w((n + 1).to_string().as_bytes()), pre, t).await {
                        Ok(v) => {
                            versions.push(v);
                            break;
                        }
                        Err(StoreError::Conflict { .. }) => {}
                        Err(e) => panic!("unexpected store error: {e}"),
                    }
                    tokio::task::yield_now().await;
                }
            }
            versions
        }));
    }
    let mut versions = std::collections::HashSet::new();
    for h in handles {
        versions.extend(h.await.unwrap());
    }
    let r = store.load(&k, Timestamp::now()).await.unwrap().expect("counter exists");
    assert_eq!(String::from_utf8_lossy(&r.value), (TASKS * EACH).to_string(), "no increment lost");
    assert_eq!(versions.len() as u64, TASKS * EACH, "one distinct version per successful write");
    assert!(versions.contains(&r.version), "the last write's version is stored");
}

/// 64 tasks x 500 updates over 8 keys through `Sessions::update` sum exactly.
pub async fn sessions_concurrency(store: DynStore) {
    let sessions = Sessions::<Counter>::builder(store).namespace(unique_namespace("hammer").as_str()).build().unwrap();
    let keys: Vec<SessionKey> = (0..8).map(|i| key(sessions.namespace(), Scope::Chat(i))).collect();
    hammer(&sessions, &keys, 64, 500).await.unwrap();
    assert_eq!(total(&sessions, &keys).await.unwrap(), 64 * 500, "every update counted");
}

/// Two `Sessions` on one store share no in-process lock, like two processes: every
/// update must still land, through the store's compare-and-set and `update`'s retry.
pub async fn sessions_across_instances(store: DynStore) {
    let ns = unique_namespace("twins");
    let build = || Sessions::<Counter>::builder(store.clone()).namespace(ns.as_str()).build().unwrap();
    let (a, b) = (build(), build());
    let keys: Vec<SessionKey> = (0..4).map(|i| key(&ns, Scope::Chat(i))).collect();
    let (ra, rb) = tokio::join!(hammer(&a, &keys, 32, 150), hammer(&b, &keys, 32, 150));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(total(&a, &keys).await.unwrap(), 2 * 32 * 150, "every update of both instances counted");
}
