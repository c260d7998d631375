//! The store conformance suite: one function per property of the store contract
//! (DESIGN.md), each taking a fresh handle to the backend under test.
//!
//! Every property works in its own random namespace with random user ids and moves time
//! with a [`ManualClock`] that starts at the real current time (so backends with native
//! expiry never see a past deadline). Functions panic on a violated property: they are
//! test code. Run them all with [`conformance_tests!`](crate::conformance_tests).

use std::sync::Arc;
use std::time::Duration;

pub use super::model::model_lifetimes;
use super::{Counter, hammer, total, unique_namespace, unique_user};
use crate::{
    DecodePolicy, DynStore, ManualClock, Migrations, Namespace, Precondition, Scope, SessionError, SessionKey,
    Sessions, StoreError, Timestamp, Write,
};

const MINUTE: Duration = Duration::from_secs(60);

fn key(ns: &Namespace, scope: Scope) -> SessionKey {
    SessionKey::new(ns.clone(), scope)
}

fn w(value: &[u8]) -> Write<'_> {
    Write::new(value, 1, None)
}

fn clock() -> ManualClock {
    ManualClock::starting_now()
}

fn now(c: &ManualClock) -> Timestamp {
    crate::Clock::now(c)
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict { key }) => assert!(!key.is_empty(), "{what}: conflict must name the key"),
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

/// Create, read, update (version and timestamps), delete.
pub async fn crud(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("crud");
    let k = key(&ns, Scope::ChatUser { chat: -100, user: unique_user() });
    let t0 = now(&c);
    assert_eq!(store.load(&k, t0).await.unwrap(), None, "fresh key is absent");

    let one = w(b"one");
    assert_eq!(store.write(&k, one, Precondition::Absent, t0).await.unwrap(), one.version, "the proposed version");
    let r = store.load(&k, t0).await.unwrap().expect("created record loads");
    assert_eq!((r.value.as_slice(), r.version, r.schema_version), (&b"one"[..], one.version, 1));
    assert_eq!((r.created_at, r.updated_at, r.expires_at), (t0, t0, None));
    assert_eq!(r.user_id, k.user_id(), "indexed under the key's user");

    c.advance(Duration::from_millis(1500));
    let t1 = now(&c);
    let two = Write::new(b"two", 3, Some(t1.saturating_add(MINUTE)));
    assert_eq!(store.write(&k, two, Precondition::Version(one.version), t1).await.unwrap(), two.version);
    let r = store.load(&k, t1).await.unwrap().expect("updated record loads");
    assert_eq!((r.value.as_slice(), r.version, r.schema_version), (&b"two"[..], two.version, 3));
    assert_eq!((r.created_at, r.updated_at), (t0, t1), "created_at is kept, updated_at moves");
    assert_eq!(r.expires_at, Some(t1.saturating_add(MINUTE)));

    let three = w(b"three");
    assert_eq!(store.write(&k, three, Precondition::Any, t1).await.unwrap(), three.version);
    assert_eq!(store.load(&k, t1).await.unwrap().map(|r| r.value), Some(b"three".to_vec()));
    let four = w(b"four");
    assert_eq!(store.write(&k, four, Precondition::Any, t1).await.unwrap(), four.version, "Any takes its version too");

    assert!(store.delete(&k, Precondition::Any, t1).await.unwrap(), "delete reports a live record");
    assert_eq!(store.load(&k, t1).await.unwrap(), None);
    assert!(!store.delete(&k, Precondition::Any, t1).await.unwrap(), "second delete finds nothing");
    let again = w(b"again");
    assert_eq!(store.write(&k, again, Precondition::Absent, t1).await.unwrap(), again.version);
    assert_eq!(store.load(&k, t1).await.unwrap().map(|r| r.created_at), Some(t1), "a re-created record is new");
}

/// A version never repeats for a key: a precondition taken on one incarnation never
/// holds on a later one, whether the key was deleted, forgotten or expired between.
pub async fn versions_never_repeat(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("aba");
    let user = unique_user();
    let k = key(&ns, Scope::ChatUser { chat: 1, user });
    let t = now(&c);

    // Each way a key ends, then the key is created again; the stale version is refused
    // for a write and for a delete, and the new incarnation is untouched.
    // TTLs of hours: the `expiry` property purges a few minutes ahead of real time on a
    // shared server, which must not take these records while they are checked.
    const HOURS: Duration = Duration::from_secs(6 * 3600);
    for ending in ["delete", "forget-user", "expiry"] {
        let t = now(&c);
        let first = Write::new(b"first", 1, Some(t.saturating_add(HOURS)));
        store.write(&k, first, Precondition::Absent, t).await.unwrap();
        let stale = Precondition::Version(first.version);
        match ending {
            "delete" => assert!(store.delete(&k, stale, t).await.unwrap()),
            "forget-user" => assert_eq!(store.forget_user(user, t).await.unwrap(), 1),
            _ => c.advance(HOURS + MINUTE),
        }
        let t = now(&c);
        let second = Write::new(b"second", 1, Some(t.saturating_add(HOURS)));
        store.write(&k, second, Precondition::Absent, t).await.unwrap();
        assert_ne!(first.version, second.version, "{ending}: a new incarnation has a new version");
        assert_conflict(store.write(&k, w(b"stale"), stale, t).await, &format!("{ending}: stale CAS write"));
        assert_conflict(store.delete(&k, stale, t).await, &format!("{ending}: stale CAS delete"));
        let r = store.load(&k, t).await.unwrap().expect("the new incarnation survives");
        assert_eq!((r.value.as_slice(), r.version), (&b"second"[..], second.version), "{ending}: untouched");
        store.delete(&k, Precondition::Any, t).await.unwrap();
    }

    // Every write proposes its own version, and the store keeps exactly that one.
    let mut seen = std::collections::HashSet::new();
    let mut pre = Precondition::Absent;
    for i in 0..50u32 {
        let text = i.to_string();
        let write = w(text.as_bytes());
        assert_eq!(store.write(&k, write, pre, t).await.unwrap(), write.version);
        assert!(seen.insert(write.version), "version {} repeated", write.version);
        pre = Precondition::Version(write.version);
    }
}

/// A record whose key names no user is indexed under the owner its creating write
/// named (an interactive session's opener), so forget-user reaches it.
pub async fn forget_user_reaches_owned_records(store: DynStore) {
    let c = clock();
    let t = now(&c);
    let ns = unique_namespace("owned");
    let (user, other) = (unique_user(), unique_user());
    let owned = key(&ns, Scope::Custom { id: "menu-1".into(), user: None });
    let unowned = key(&ns, Scope::Custom { id: "menu-2".into(), user: None });
    let created = w(b"opened").with_owner(Some(user));
    store.write(&owned, created, Precondition::Absent, t).await.unwrap();
    store.write(&unowned, w(b"anyone"), Precondition::Absent, t).await.unwrap();
    assert_eq!(store.load(&owned, t).await.unwrap().and_then(|r| r.user_id), Some(user));

    // Later writes keep the owner fixed at creation.
    let moved = w(b"clicked").with_owner(Some(other));
    store.write(&owned, moved, Precondition::Version(created.version), t).await.unwrap();
    assert_eq!(store.load(&owned, t).await.unwrap().and_then(|r| r.user_id), Some(user), "owner fixed");
    assert_eq!(store.forget_user(other, t).await.unwrap(), 0, "a later write's owner is not indexed");

    assert_eq!(store.forget_user(user, t).await.unwrap(), 1);
    assert_eq!(store.load(&owned, t).await.unwrap(), None, "the owned record is erased");
    assert!(store.load(&unowned, t).await.unwrap().is_some(), "a record without owner stays");

    // Re-created without an owner, the key is no longer the user's.
    store.write(&owned, w(b"fresh"), Precondition::Absent, t).await.unwrap();
    assert_eq!(store.forget_user(user, t).await.unwrap(), 0);
    assert!(store.load(&owned, t).await.unwrap().is_some());
    // An owned record that expired and was re-created by someone else is theirs.
    let k = key(&ns, Scope::Custom { id: "menu-3".into(), user: None });
    store
        .write(&k, Write::new(b"a", 1, Some(t.saturating_add(MINUTE))).with_owner(Some(user)), Precondition::Absent, t)
        .await
        .unwrap();
    c.advance(2 * MINUTE);
    let t = now(&c);
    store.write(&k, w(b"b").with_owner(Some(other)), Precondition::Absent, t).await.unwrap();
    assert_eq!(store.forget_user(user, t).await.unwrap(), 0, "the expired incarnation was the user's, not this one");
    assert_eq!(store.forget_user(other, t).await.unwrap(), 1);
}

/// Values are opaque bytes: empty, binary, and large ones come back exactly.
pub async fn values_round_trip(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("bytes");
    let big: Vec<u8> = (0..256 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let cases: [&[u8]; 4] = [b"", b"\x00\xff\x00binary\xc3\x28", "ünïcødé ✓".as_bytes(), &big];
    for (i, value) in cases.into_iter().enumerate() {
        let k = key(&ns, Scope::Chat(i as i64));
        store.write(&k, w(value), Precondition::Absent, now(&c)).await.unwrap();
        let back = store.load(&k, now(&c)).await.unwrap().expect("written value loads").value;
        assert_eq!(back, value, "value {i} round-trips");
    }
}

/// A failed precondition is a conflict and changes nothing.
pub async fn preconditions(store: DynStore) {
    let c = clock();
    let t = now(&c);
    let ns = unique_namespace("pre");
    let k = key(&ns, Scope::User(unique_user()));
    assert_conflict(store.write(&k, w(b"x"), Precondition::Version(1), t).await, "CAS on an absent key");
    assert_conflict(store.delete(&k, Precondition::Version(1), t).await, "CAS delete of an absent key");
    assert_eq!(store.load(&k, t).await.unwrap(), None, "failed writes create nothing");

    let v1 = w(b"v1");
    store.write(&k, v1, Precondition::Absent, t).await.unwrap();
    let wrong = v1.version ^ 1;
    assert_conflict(store.write(&k, w(b"dup"), Precondition::Absent, t).await, "create over a live record");
    assert_conflict(store.write(&k, w(b"stale"), Precondition::Version(wrong), t).await, "CAS with a wrong version");
    assert_conflict(store.write(&k, w(b"stale"), Precondition::Version(0), t).await, "CAS with version 0");
    assert_conflict(store.delete(&k, Precondition::Version(wrong), t).await, "CAS delete with a wrong version");
    assert_conflict(store.delete(&k, Precondition::Absent, t).await, "delete-if-absent of a live record");
    let r = store.load(&k, t).await.unwrap().expect("record survives failed writes");
    assert_eq!((r.value.as_slice(), r.version), (&b"v1"[..], v1.version), "nothing changed");

    let v2 = w(b"v2");
    assert_eq!(store.write(&k, v2, Precondition::Version(v1.version), t).await.unwrap(), v2.version);
    assert_conflict(store.write(&k, w(b"v3"), Precondition::Version(v1.version), t).await, "CAS with the old version");
    assert!(store.delete(&k, Precondition::Version(v2.version), t).await.unwrap(), "CAS delete with the right version");
    assert_eq!(store.load(&k, t).await.unwrap(), None);
}

/// [`Store::write_over`](crate::Store::write_over) is the compare-and-set on the known
/// record's version: the result is [`Record::next`](crate::Record::next) of it (creation
/// time and owner kept), the expiry index follows a set, kept or dropped expiry, and a
/// record written since, deleted, or deleted and created again refuses it. (Expiries
/// are ten years out, so no other test's purge with a clock moved ahead removes them.)
pub async fn write_over_known_records(store: DynStore) {
    let c = clock();
    let t0 = now(&c);
    let ns = unique_namespace("over");
    let user = unique_user();
    let k = key(&ns, Scope::ChatUser { chat: 1, user });
    store.write(&k, w(b"v1"), Precondition::Absent, t0).await.unwrap();
    let r1 = store.load(&k, t0).await.unwrap().expect("created");
    c.advance(Duration::from_millis(1500));
    let t1 = now(&c);
    let exp = Some(t0.saturating_add(Duration::from_secs(10 * 365 * 24 * 3600)));
    let after = exp.map(|e| e.saturating_add(Duration::from_millis(1))).unwrap_or(t1);

    let v2 = Write::new(b"v2", 2, exp);
    assert_eq!(store.write_over(&k, v2, &r1, t1).await.unwrap(), v2.version);
    let r2 = store.load(&k, t1).await.unwrap().expect("written");
    assert_eq!(r2, crate::Record::next(Some(&r1), &k, &v2, t1), "created_at and owner kept, the rest new");
    assert_eq!(store.count(Some(&ns), t1).await.unwrap(), 1);
    assert_eq!(store.count(Some(&ns), after).await.unwrap(), 0, "the expiry set by write_over counts");
    assert_eq!(store.load(&k, after).await.unwrap(), None, "expires at the new expiry");
    assert_conflict(store.write_over(&k, w(b"stale"), &r1, t1).await, "over a record written since");

    let v3 = Write::new(b"v3", 1, exp);
    store.write_over(&k, v3, &r2, t1).await.unwrap();
    let r3 = store.load(&k, t1).await.unwrap().expect("written");
    assert_eq!(r3, crate::Record::next(Some(&r2), &k, &v3, t1), "the same expiry kept");
    assert_eq!(store.count(Some(&ns), after).await.unwrap(), 0);

    let v4 = w(b"v4");
    store.write_over(&k, v4, &r3, t1).await.unwrap();
    let r4 = store.load(&k, after).await.unwrap().expect("no expiry any more");
    assert_eq!(r4, crate::Record::next(Some(&r3), &k, &v4, t1));
    assert_eq!(store.count(Some(&ns), after).await.unwrap(), 1, "the dropped expiry left the expiry index");

    assert!(store.delete(&k, Precondition::Any, t1).await.unwrap());
    assert_conflict(store.write_over(&k, w(b"x"), &r4, t1).await, "over a deleted record");
    assert_eq!(store.load(&k, t1).await.unwrap(), None, "a refused write_over creates nothing");
    store.write(&k, w(b"new"), Precondition::Absent, t1).await.unwrap();
    assert_conflict(store.write_over(&k, w(b"x"), &r4, t1).await, "over a record created again");
    assert_eq!(store.load(&k, t1).await.unwrap().expect("re-created").value, b"new");

    // A key without a user keeps the owner its creating write named.
    let owner = unique_user();
    let userless = key(&ns, Scope::Chat(2));
    let create = Write { owner: Some(owner), ..w(b"o1") };
    store.write(&userless, create, Precondition::Absent, t1).await.unwrap();
    let o1 = store.load(&userless, t1).await.unwrap().expect("created");
    store.write_over(&userless, w(b"o2"), &o1, t1).await.unwrap();
    assert_eq!(store.load(&userless, t1).await.unwrap().expect("written").user_id, Some(owner));
    assert_eq!(store.forget_user(owner, t1).await.unwrap(), 1, "forget-user still reaches it");
    assert_eq!(store.load(&userless, t1).await.unwrap(), None);
}

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

/// Forget-user removes every record of one user in every namespace, and nothing else.
pub async fn forget_user(store: DynStore) {
    let c = clock();
    let t = now(&c);
    let (a, b) = (unique_namespace("fa"), unique_namespace("fb"));
    let (user, other) = (unique_user(), unique_user());
    let mine = [
        key(&a, Scope::User(user)),
        key(&a, Scope::ChatUser { chat: 5, user }),
        key(&b, Scope::TopicUser { chat: 5, topic: 9, user }),
        SessionKey::with_bot(b.clone(), Some(77), Scope::Custom { id: "cart/1".into(), user: Some(user) }),
    ];
    let theirs =
        [key(&a, Scope::User(other)), key(&a, Scope::Chat(5)), key(&b, Scope::Custom { id: "x".into(), user: None })];
    for k in mine.iter().chain(&theirs) {
        store.write(k, w(b"v"), Precondition::Absent, t).await.unwrap();
    }
    // An expired record of the user goes too, but is not counted.
    let stale = key(&b, Scope::ChatUser { chat: 6, user });
    let write = Write::new(b"old", 1, Some(t.saturating_add(MINUTE)));
    store.write(&stale, write, Precondition::Absent, t).await.unwrap();
    c.advance(2 * MINUTE);
    let t = now(&c);

    assert_eq!(store.forget_user(user, t).await.unwrap(), mine.len() as u64, "counts the live records it removed");
    for k in &mine {
        assert_eq!(store.load(k, t).await.unwrap(), None, "{k} forgotten");
    }
    for k in &theirs {
        assert!(store.load(k, t).await.unwrap().is_some(), "{k} kept");
    }
    assert_eq!(store.forget_user(user, t).await.unwrap(), 0, "nothing left to forget");
    // The user can come back.
    store.write(&mine[0], w(b"new"), Precondition::Absent, t).await.unwrap();
    assert_eq!(store.forget_user(user, t).await.unwrap(), 1);
}

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

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Profile {
    name: String,
    #[serde(default)]
    visits: u32,
}

fn profiles(store: &DynStore, ns: &Namespace, clock: &ManualClock) -> crate::session::SessionsBuilder<Profile> {
    Sessions::<Profile>::builder(store.clone()).namespace(ns.as_str()).clock(Arc::new(clock.clone()))
}

/// Writes only what changed: an untouched default is never stored, an unchanged value
/// is not rewritten, and setting the session to none deletes it.
pub async fn writes_only_changes(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("lazy");
    let s = profiles(&store, &ns, &c).build().unwrap();
    let k = key(&ns, Scope::User(unique_user()));
    s.update(&k, |p| Ok::<_, SessionError>(p.visits)).await.unwrap();
    assert_eq!(store.load(&k, now(&c)).await.unwrap(), None, "an untouched default is not stored");
    let guard = s.open(&k).await.unwrap();
    guard.commit().await.unwrap();
    assert_eq!(store.load(&k, now(&c)).await.unwrap(), None, "an untouched guard writes nothing");

    s.update(&k, |p| {
        p.name = "Ada".into();
        Ok::<_, SessionError>(())
    })
    .await
    .unwrap();
    let written = store.load(&k, now(&c)).await.unwrap().map(|r| r.version);
    assert!(written.is_some(), "a changed value is stored");
    s.update(&k, |p| {
        p.name = "Ada".into();
        Ok::<_, SessionError>(())
    })
    .await
    .unwrap();
    assert_eq!(store.load(&k, now(&c)).await.unwrap().map(|r| r.version), written, "same value: no write");

    let failed: Result<(), SessionError> = s
        .update(&k, |p| {
            p.name = "changed".into();
            Err(SessionError::Config("handler refused".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(s.get(&k).await.unwrap().map(|p| p.name), Some("Ada".into()), "Err writes nothing");

    s.update_option(&k, |slot| {
        *slot = None;
        Ok::<_, SessionError>(())
    })
    .await
    .unwrap();
    assert_eq!(store.load(&k, now(&c)).await.unwrap(), None, "none deletes");
}

/// Idle TTL is refreshed by writes (and by reads when asked); absolute TTL is not.
pub async fn session_ttl(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("sttl");
    let idle = profiles(&store, &ns, &c).ttl(crate::Ttl::idle(10 * MINUTE)).build().unwrap();
    let k = key(&ns, Scope::User(unique_user()));
    let bump = |p: &mut Profile| {
        p.visits += 1;
        Ok::<_, SessionError>(())
    };
    idle.update(&k, bump).await.unwrap();
    c.advance(9 * MINUTE);
    idle.update(&k, bump).await.unwrap();
    c.advance(9 * MINUTE);
    assert_eq!(idle.get(&k).await.unwrap().map(|p| p.visits), Some(2), "a write pushed the idle expiry back");
    c.advance(MINUTE);
    assert_eq!(idle.get(&k).await.unwrap(), None, "10 idle minutes after the last write it is gone");

    let reread = profiles(&store, &ns, &c).ttl(crate::Ttl::idle_refreshed_on_read(10 * MINUTE)).build().unwrap();
    let k2 = key(&ns, Scope::User(unique_user()));
    reread.update(&k2, bump).await.unwrap();
    for _ in 0..3 {
        c.advance(9 * MINUTE);
        assert!(reread.get(&k2).await.unwrap().is_some(), "each read refreshes");
    }
    c.advance(10 * MINUTE);
    assert_eq!(reread.get(&k2).await.unwrap(), None);

    // A deploy shortens the absolute TTL: a session older than the new limit is over,
    // and the next update starts a new one that stays visible.
    let k4 = key(&ns, Scope::User(unique_user()));
    let long = profiles(&store, &ns, &c).ttl(crate::Ttl::absolute(60 * MINUTE)).build().unwrap();
    long.update(&k4, bump).await.unwrap();
    c.advance(20 * MINUTE);
    let short = profiles(&store, &ns, &c).ttl(crate::Ttl::absolute(10 * MINUTE)).build().unwrap();
    assert_eq!(short.get(&k4).await.unwrap(), None, "past the shortened TTL");
    short.update(&k4, bump).await.unwrap();
    assert_eq!(short.get(&k4).await.unwrap().map(|p| p.visits), Some(1), "the new session is not born expired");

    let absolute = profiles(&store, &ns, &c).ttl(crate::Ttl::absolute(10 * MINUTE)).build().unwrap();
    let k3 = key(&ns, Scope::User(unique_user()));
    absolute.update(&k3, bump).await.unwrap();
    c.advance(9 * MINUTE);
    absolute.update(&k3, bump).await.unwrap();
    c.advance(MINUTE);
    assert_eq!(absolute.get(&k3).await.unwrap(), None, "absolute TTL counts from creation");
    absolute.update(&k3, bump).await.unwrap();
    assert_eq!(absolute.get(&k3).await.unwrap().map(|p| p.visits), Some(1), "an expired session starts over");
}

async fn plant(store: &DynStore, k: &SessionKey, value: &[u8], schema_version: u32) -> u64 {
    store.write(k, Write::new(value, schema_version, None), Precondition::Any, Timestamp::now()).await.unwrap()
}

/// Undecodable bytes under each policy: fail leaves them, reset replaces them,
/// quarantine keeps them aside (listable, and erased by forget-user).
pub async fn undecodable_policies(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("bad");
    let user = unique_user();
    let garbage: &[u8] = b"\x00not json at all\xff";

    let k = key(&ns, Scope::ChatUser { chat: 1, user });
    plant(&store, &k, garbage, 1).await;
    let fail = profiles(&store, &ns, &c).build().unwrap();
    match fail.update(&k, |p| Ok::<_, SessionError>(p.visits)).await {
        Err(SessionError::Decode { key, .. }) => assert_eq!(key, k.to_string(), "the error names the key"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(store.load(&k, now(&c)).await.unwrap().map(|r| r.value), Some(garbage.to_vec()), "fail: untouched");

    let reset = profiles(&store, &ns, &c).on_decode_error(DecodePolicy::Reset).build().unwrap();
    let visits = reset
        .update(&k, |p| {
            p.visits += 1;
            Ok::<_, SessionError>(p.visits)
        })
        .await
        .unwrap();
    assert_eq!(visits, 1, "reset starts from the initial value");
    assert_eq!(reset.get(&k).await.unwrap().map(|p| p.visits), Some(1));

    let k2 = key(&ns, Scope::ChatUser { chat: 2, user });
    plant(&store, &k2, garbage, 1).await;
    let quarantine = profiles(&store, &ns, &c).on_decode_error(DecodePolicy::Quarantine).build().unwrap();
    quarantine
        .update(&k2, |p| {
            p.name = "fresh".into();
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
    assert_eq!(quarantine.get(&k2).await.unwrap().map(|p| p.name), Some("fresh".into()));
    let kept = quarantine.quarantined().await.unwrap();
    assert_eq!(kept.len(), 1, "one quarantined record in this namespace: {kept:?}");
    assert_eq!((kept[0].original.as_str(), kept[0].value.as_slice()), (k2.as_str(), garbage), "bytes kept as stored");
    assert_eq!(store.forget_user(user, now(&c)).await.unwrap(), 3, "two sessions and the quarantined copy");
    assert!(quarantine.quarantined().await.unwrap().is_empty(), "forget-user erases quarantine too");
}

/// A record written by newer code is an error and stays untouched; so does a record
/// whose migration fails; an older record is migrated and written back.
pub async fn schema_versions(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("schema");
    let migrations = Migrations::new().step(|mut v| {
        // v1 stored {"full_name": ..}; v2 calls it "name". v1 "boom" cannot migrate.
        if v["full_name"] == "boom" {
            return Err("cannot migrate boom".into());
        }
        let name = v["full_name"].take();
        Ok(serde_json::json!({ "name": name }))
    });
    let s = profiles(&store, &ns, &c).migrations(migrations).build().unwrap();

    let newer = key(&ns, Scope::User(unique_user()));
    let v = plant(&store, &newer, br#"{"name":"x","visits":1,"future":true}"#, 3).await;
    match s.update(&newer, |p| Ok::<_, SessionError>(p.visits)).await {
        Err(SessionError::NewerSchema { key, found: 3, supported: 2 }) => assert_eq!(key, newer.to_string()),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(store.load(&newer, now(&c)).await.unwrap().map(|r| (r.version, r.schema_version)), Some((v, 3)));

    let broken = key(&ns, Scope::User(unique_user()));
    plant(&store, &broken, br#"{"full_name":"boom"}"#, 1).await;
    match s.get(&broken).await {
        Err(SessionError::Migration { key, from: 1, .. }) => assert_eq!(key, broken.to_string()),
        other => panic!("expected a migration error, got {other:?}"),
    }
    let r = store.load(&broken, now(&c)).await.unwrap().expect("kept");
    assert_eq!((r.value.as_slice(), r.schema_version), (&br#"{"full_name":"boom"}"#[..], 1), "untouched");

    // A migration whose result does not fit the type is a migration error, even under
    // the reset policy: the old record is kept.
    let misfit = key(&ns, Scope::User(unique_user()));
    plant(&store, &misfit, br#"{"full_name":42}"#, 1).await;
    let reset = profiles(&store, &ns, &c)
        .migrations(Migrations::new().step(|mut v| Ok(serde_json::json!({ "name": v["full_name"].take() }))))
        .on_decode_error(DecodePolicy::Reset)
        .build()
        .unwrap();
    match reset.update(&misfit, |p| Ok::<_, SessionError>(p.visits)).await {
        Err(SessionError::Migration { key, from: 1, .. }) => assert_eq!(key, misfit.to_string()),
        other => panic!("expected a migration error, got {other:?}"),
    }
    let r = store.load(&misfit, now(&c)).await.unwrap().expect("kept");
    assert_eq!((r.value.as_slice(), r.schema_version), (&br#"{"full_name":42}"#[..], 1), "untouched");

    let old = key(&ns, Scope::User(unique_user()));
    plant(&store, &old, br#"{"full_name":"Ada"}"#, 1).await;
    assert_eq!(s.get(&old).await.unwrap().map(|p| p.name), Some("Ada".into()), "migrated on load");
    s.update(&old, |_| Ok::<_, SessionError>(())).await.unwrap();
    let r = store.load(&old, now(&c)).await.unwrap().expect("kept");
    assert_eq!(r.schema_version, 2, "written back at the current schema on the next save");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&r.value).unwrap()["name"], "Ada");
}

/// An oversized value is refused before any write.
pub async fn size_limit(store: DynStore) {
    let c = clock();
    let ns = unique_namespace("size");
    let s = profiles(&store, &ns, &c).max_size(64).build().unwrap();
    let k = key(&ns, Scope::User(unique_user()));
    s.update(&k, |p| {
        p.name = "short".into();
        Ok::<_, SessionError>(())
    })
    .await
    .unwrap();
    let before = store.load(&k, now(&c)).await.unwrap().expect("stored").version;
    let res = s
        .update(&k, |p| {
            p.name = "x".repeat(100);
            Ok::<_, SessionError>(())
        })
        .await;
    match res {
        Err(SessionError::TooLarge { key, limit: 64, size }) => {
            assert_eq!(key, k.to_string());
            assert!(size > 100);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let r = store.load(&k, now(&c)).await.unwrap().expect("kept");
    assert_eq!(
        (r.version, s.get(&k).await.unwrap().map(|p| p.name)),
        (before, Some("short".into())),
        "nothing written"
    );
}

/// A store that counts the loads and writes that reach it: how many round trips a
/// session operation cost.
struct Counting {
    store: DynStore,
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
impl crate::Store for Counting {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<crate::Record>, StoreError> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.load(key, now).await
    }
    async fn write(
        &self,
        key: &SessionKey,
        w: Write<'_>,
        pre: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.write(key, w, pre, now).await
    }
    async fn delete(&self, key: &SessionKey, pre: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        self.store.delete(key, pre, now).await
    }
    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.store.forget_user(user_id, now).await
    }
    async fn scan(
        &self,
        ns: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<crate::Page, StoreError> {
        self.store.scan(ns, cursor, limit, now).await
    }
    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.store.purge_expired(now).await
    }
    async fn count(&self, ns: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.store.count(ns, now).await
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
    let counting = Arc::new(Counting { store: store.clone(), loads: 0.into(), writes: 0.into() });
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

/// Runs every conformance property as its own `#[tokio::test]` against the stores a
/// factory makes: `conformance_tests!(factory)` where `async fn factory() -> DynStore`.
///
/// `conformance_tests!(factory, near_cache)` runs them all again with the factory's
/// store behind a [`NearCache`](crate::store::near_cache::NearCache) (module
/// `conformance_near_cache`): the store properties through the cache, and the session
/// properties with updates and opens starting from cached records.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:ident) => {
        $crate::conformance_tests!(@list conformance, $factory, ::std::convert::identity);
    };
    ($factory:ident, near_cache) => {
        $crate::conformance_tests!($factory);
        $crate::conformance_tests!(@list conformance_near_cache, $factory, $crate::testing::near_cached);
    };
    (@list $module:ident, $factory:ident, $wrap:path) => {
        $crate::conformance_tests!(@each $module, $factory, $wrap;
            crud, versions_never_repeat, forget_user_reaches_owned_records, values_round_trip, preconditions,
            write_over_known_records, expiry,
            forget_user, scan_paging, count, namespaces,
            concurrent_compare_and_set, sessions_concurrency, sessions_across_instances, writes_only_changes, session_ttl,
            undecodable_policies, schema_versions, size_limit, model_lifetimes,
            near_cache_counts_exactly, near_cache_never_serves_expired, near_cache_invalidation);
    };
    (@each $module:ident, $factory:ident, $wrap:path; $($name:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::testing::conformance::$name($wrap(super::$factory().await)).await;
                }
            )*
        }
    };
}
