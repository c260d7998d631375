//! The typed API over the store: no needless writes, TTL, decode policies, schema versions, size limits.

use std::sync::Arc;

use super::{MINUTE, clock, key, now};
use crate::testing::{unique_namespace, unique_user};
use crate::{
    DecodePolicy, DynStore, ManualClock, Migrations, Namespace, Precondition, Scope, SessionError, SessionKey,
    Sessions, Timestamp, Write,
};

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Profile {
    pub(super) name: String,
    #[serde(default)]
    pub(super) visits: u32,
}

pub(super) fn profiles(
    store: &DynStore,
    ns: &Namespace,
    clock: &ManualClock,
) -> crate::session::SessionsBuilder<Profile> {
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
