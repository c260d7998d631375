//! Listing: scans page by page, counts, namespaces.

use std::time::Duration;

use super::{MINUTE, clock, key, now, w};
use crate::testing::unique_namespace;
use crate::{DynStore, Precondition, Scope, Write};

/// Scans page through one namespace in key order, completely, without duplicates.
pub async fn scan_paging(store: DynStore) {
    let c = clock();
    let t = now(&c);
    let (ns, other) = (unique_namespace("scan"), unique_namespace("scan"));
    let mut expected = Vec::new();
    for i in 0..25 {
        let k = key(&ns, Scope::ChatUser { chat: i, user: i * 7 });
        store.write(&k, w(format!("{i}").as_bytes()), Precondition::Absent, t).await.unwrap();
        expected.push(k.to_string());
    }
    store.write(&key(&other, Scope::Chat(1)), w(b"o"), Precondition::Absent, t).await.unwrap();
    let gone = key(&ns, Scope::Chat(999));
    let write = Write::new(b"gone", 1, Some(t.saturating_add(MINUTE)));
    store.write(&gone, write, Precondition::Absent, t).await.unwrap();
    c.advance(2 * MINUTE);
    let t = now(&c);
    expected.sort();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.scan(&ns, cursor.as_deref(), 10, t).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 10, "a page holds at most `limit` items");
        for (k, r) in &page.items {
            assert_eq!(k.namespace(), &ns, "scan stays in its namespace");
            let loaded = store.load(k, t).await.unwrap().expect("scanned records are live");
            assert_eq!(&loaded, r, "scan returns the stored record");
            seen.push(k.to_string());
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "scan does not terminate");
    }
    assert_eq!(seen, expected, "every live key once, in ascending order");
    assert!(pages >= 3, "25 items in pages of 10 take at least 3 pages");
    let empty = store.scan(&unique_namespace("none"), None, 10, t).await.unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
}

/// Count per namespace and in all, live records only.
pub async fn count(store: DynStore) {
    let c = clock();
    let t = now(&c);
    let (a, b) = (unique_namespace("ca"), unique_namespace("cb"));
    for i in 0..3 {
        store.write(&key(&a, Scope::Chat(i)), w(b"a"), Precondition::Absent, t).await.unwrap();
    }
    store.write(&key(&b, Scope::Chat(1)), w(b"b"), Precondition::Absent, t).await.unwrap();
    assert_eq!(store.count(Some(&a), t).await.unwrap(), 3);
    assert_eq!(store.count(Some(&b), t).await.unwrap(), 1);
    // Other tests on a shared server add and delete records meanwhile: only ours are
    // certain to be there.
    assert!(store.count(None, t).await.unwrap() >= 4, "count(None) covers every namespace");
    store.delete(&key(&a, Scope::Chat(0)), Precondition::Any, t).await.unwrap();
    assert_eq!(store.count(Some(&a), t).await.unwrap(), 2);
}

/// `namespaces` lists every namespace with a live record, in byte order, and drops one
/// whose only record expired or was deleted.
pub async fn namespaces(store: DynStore) {
    let c = clock();
    let t = now(&c);
    let (a, b) = (unique_namespace("na"), unique_namespace("nb"));
    store.write(&key(&a, Scope::Chat(1)), w(b"a"), Precondition::Absent, t).await.unwrap();
    // Far in the future: other tests on a shared server purge with manual clocks moved
    // ahead (by hours or days), and would take a record that expires soon with them.
    let ttl = Duration::from_secs(10 * 365 * 86_400);
    let expiring = Write::new(b"b", 1, Some(t.saturating_add(ttl)));
    store.write(&key(&b, Scope::Chat(1)), expiring, Precondition::Absent, t).await.unwrap();
    let listed = store.namespaces(t).await.unwrap();
    assert!(listed.contains(&a) && listed.contains(&b), "{listed:?} lacks {a} or {b}");
    assert!(listed.windows(2).all(|p| p[0].as_str() < p[1].as_str()), "not in byte order: {listed:?}");
    let later = t.saturating_add(ttl + Duration::from_secs(1));
    let listed = store.namespaces(later).await.unwrap();
    assert!(listed.contains(&a) && !listed.contains(&b), "{b} has only an expired record: {listed:?}");
    store.delete(&key(&a, Scope::Chat(1)), Precondition::Any, later).await.unwrap();
    assert!(!store.namespaces(later).await.unwrap().contains(&a), "{a} has no record left");
}
