//! Erasure: forget-user, through the user index and through owners.

use super::{MINUTE, clock, key, now, w};
use crate::testing::{unique_namespace, unique_user};
use crate::{DynStore, Precondition, Scope, SessionKey, Write};

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
