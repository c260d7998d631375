//! Records: create, read, update and delete; versions that never repeat; opaque values; preconditions; compare-and-set over a known record.

use std::time::Duration;

use super::{MINUTE, assert_conflict, clock, key, now, w};
use crate::testing::{unique_namespace, unique_user};
use crate::{DynStore, Precondition, Scope, Write};

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
