//! Expiry: expired records are absent everywhere, before and after a purge.

use std::time::Duration;

use super::{MINUTE, assert_conflict, clock, key, now, w};
use crate::testing::{unique_namespace, unique_user};
use crate::{DynStore, Precondition, Scope, Write};

/// Expired records are absent everywhere, before and after a purge.
pub async fn expiry(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("ttl");
    let user = unique_user();
    let short = key(&ns, Scope::ChatUser { chat: 1, user });
    let long = key(&ns, Scope::ChatUser { chat: 2, user });
    let forever = key(&ns, Scope::Chat(3));
    let t0 = now(&c);
    let at = |d| Some(t0.saturating_add(d));
    store.write(&short, Write::new(b"s", 1, at(MINUTE)), Precondition::Absent, t0).await.unwrap();
    store.write(&long, Write::new(b"l", 1, at(60 * MINUTE)), Precondition::Absent, t0).await.unwrap();
    store.write(&forever, w(b"f"), Precondition::Absent, t0).await.unwrap();
    let short_version = store.load(&short, t0).await.unwrap().expect("short is live").version;

    let just_before = t0.saturating_add(MINUTE - Duration::from_millis(1));
    assert!(store.load(&short, just_before).await.unwrap().is_some(), "live until its expiry instant");
    c.set(t0.saturating_add(MINUTE));
    let t1 = now(&c);
    assert_eq!(store.load(&short, t1).await.unwrap(), None, "expired at expires_at, before any purge");
    assert_eq!(store.count(Some(&ns), t1).await.unwrap(), 2, "count skips the expired record");
    let page = store.scan(&ns, None, 10, t1).await.unwrap();
    assert_eq!(page.items.len(), 2, "scan skips the expired record");
    assert!(page.items.iter().all(|(k, _)| k != &short));
    let on_expired = store.write(&short, w(b"x"), Precondition::Version(short_version), t1).await;
    assert_conflict(on_expired, "CAS on an expired record");
    assert!(!store.delete(&short, Precondition::Any, t1).await.unwrap(), "deleting an expired record finds nothing");

    // The expired record is gone for good; a new one starts over.
    store.write(&short, Write::new(b"s2", 1, at(2 * MINUTE)), Precondition::Absent, t1).await.unwrap();
    let r = store.load(&short, t1).await.unwrap().expect("re-created");
    assert_ne!(r.version, short_version, "a record created over an expired one has a new version");
    assert_eq!(r.created_at, t1, "a record created over an expired one is new");

    c.set(t0.saturating_add(3 * MINUTE));
    let t2 = now(&c);
    let purged = store.purge_expired(t2).await.unwrap();
    assert!(purged >= 1, "purge removes at least our expired record, got {purged}");
    assert_eq!(store.load(&short, t2).await.unwrap(), None);
    assert!(store.load(&long, t2).await.unwrap().is_some(), "purge keeps live records");
    assert!(store.load(&forever, t2).await.unwrap().is_some(), "purge keeps records without expiry");
    assert_eq!(store.count(Some(&ns), t2).await.unwrap(), 2);
    // Expired records are still absent at an earlier `now`? No: purge removed them for
    // good, which is what an operator expects.
    assert_eq!(store.load(&short, t0).await.unwrap(), None, "purged records do not come back");
}
