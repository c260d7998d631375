//! `telegram::migrate_chat` with encryption at rest, on every backend: a sealed value
//! is bound to its key, so a move re-seals it for the new key (given the ring) or
//! leaves it where it is, never strands it; the creation time moves with it.
#![cfg(all(feature = "telegram", feature = "encryption"))]

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::encryption::KeyRing;
use bot_sessions::telegram::{MigrationReport, migrate_chat_at, migrate_chat_sealed};
use bot_sessions::testing::{unique_namespace, unique_user};
use bot_sessions::{Clock, DynStore, ManualClock, Precondition, Scope, SessionError, SessionKey, Sessions, Ttl, Write};
use teloxide::types::ChatId;

const GROUP: i64 = -599075523;
const SUPERGROUP: i64 = -1001555296434;

fn ring(ids: &[u32]) -> KeyRing {
    KeyRing::new(ids.iter().map(|id| (*id, [*id as u8 + 0x40; 32]))).unwrap()
}

async fn raw(store: &DynStore, key: &SessionKey, clock: &ManualClock) -> Option<bot_sessions::Record> {
    store.load(key, clock.now()).await.unwrap()
}

/// Sealed sessions of a group: not moved without the ring or with a ring that lacks
/// their key (reported, still readable where they were); moved and re-sealed with it,
/// keeping created_at, updated_at and expiry; an interrupted sealed move is finished;
/// forget-user still reaches the moved per-user session. On the old code the sealed
/// bytes were copied as they were and never opened again at the new key.
async fn sealed_sessions_move_resealed(store: DynStore) {
    let clock = ManualClock::starting_now();
    let ns = unique_namespace("tg-sealed");
    let user = unique_user();
    let keys = Arc::new(ring(&[1, 2]));
    let sessions = Sessions::<u64>::builder(store.clone())
        .namespace(ns.as_str())
        .ttl(Ttl::absolute(Duration::from_secs(3600)))
        .clock(Arc::new(clock.clone()))
        .encryption(keys.clone())
        .build()
        .unwrap();
    let key = |scope| SessionKey::new(ns.clone(), scope);
    let (chat_old, chat_new) = (key(Scope::Chat(GROUP)), key(Scope::Chat(SUPERGROUP)));
    let (user_old, user_new) =
        (key(Scope::ChatUser { chat: GROUP, user }), key(Scope::ChatUser { chat: SUPERGROUP, user }));
    let (topic_old, topic_new) =
        (key(Scope::Topic { chat: GROUP, topic: 3 }), key(Scope::Topic { chat: SUPERGROUP, topic: 3 }));
    let bump = |k: SessionKey| {
        let s = sessions.clone();
        async move {
            s.update(&k, |n| {
                *n += 1;
                Ok::<_, SessionError>(())
            })
            .await
            .unwrap()
        }
    };
    bump(chat_old.clone()).await;
    bump(user_old.clone()).await;
    bump(topic_old.clone()).await;
    clock.advance(Duration::from_secs(5));
    bump(chat_old.clone()).await;
    let before = sessions.meta(&chat_old).await.unwrap().unwrap();
    assert!(before.created_at < before.updated_at);
    clock.advance(Duration::from_secs(5));

    let namespaces = [ns.clone()];
    let (from, to) = (ChatId(GROUP), ChatId(SUPERGROUP));
    // Without the ring: nothing moves, every sealed session is reported and stays.
    let report = migrate_chat_at(&store, from, to, &namespaces, &clock).await.unwrap();
    assert_eq!(report.moved, 0);
    assert_eq!(report.sealed.len(), 3, "{report:?}");
    // A ring without the key that sealed them (2): the same.
    let report = migrate_chat_sealed(&store, from, to, &namespaces, &clock, &ring(&[1])).await.unwrap();
    assert_eq!((report.moved, report.sealed.len()), (0, 3));
    assert_eq!(sessions.get(&chat_old).await.unwrap(), Some(2));
    assert_eq!(sessions.get(&chat_new).await.unwrap(), None);

    // A run that re-sealed and copied the topic session, then stopped before the delete.
    let old_topic = raw(&store, &topic_old, &clock).await.unwrap();
    let resealed = keys.seal(&topic_new, &keys.open(&topic_old, &old_topic.value).unwrap()).unwrap();
    let copy = Write::new(&resealed, old_topic.schema_version, old_topic.expires_at);
    store.write(&topic_new, copy, Precondition::Absent, clock.now()).await.unwrap();

    let report = migrate_chat_sealed(&store, from, to, &namespaces, &clock, &keys).await.unwrap();
    assert_eq!((report.moved, report.finished, report.raced), (2, 1, 0), "{report:?}");
    assert!(report.sealed.is_empty() && report.kept.is_empty());
    for (old, new, n) in [(&chat_old, &chat_new, 2), (&user_old, &user_new, 1), (&topic_old, &topic_new, 1)] {
        assert_eq!(sessions.get(new).await.unwrap(), Some(n), "{new} opens");
        assert_eq!(sessions.get(old).await.unwrap(), None, "{old} is gone");
        let stored = raw(&store, new, &clock).await.unwrap();
        assert_eq!(KeyRing::sealed_with(&stored.value), Some(2), "{new} is sealed, for its own key");
    }
    let after = sessions.meta(&chat_new).await.unwrap().unwrap();
    assert_eq!(
        (after.created_at, after.updated_at, after.expires_at),
        (before.created_at, before.updated_at, before.expires_at)
    );
    assert_eq!(
        migrate_chat_sealed(&store, from, to, &namespaces, &clock, &keys).await.unwrap(),
        MigrationReport::default()
    );

    // Updates go on at the new key; forget-user finds the moved per-user session.
    bump(chat_new.clone()).await;
    assert_eq!(sessions.get(&chat_new).await.unwrap(), Some(3));
    assert_eq!(store.forget_user(user, clock.now()).await.unwrap(), 1);
    assert_eq!(sessions.get(&user_new).await.unwrap(), None);
}

#[tokio::test]
async fn sealed_sessions_move_resealed_in_memory() {
    sealed_sessions_move_resealed(Arc::new(bot_sessions::store::memory::MemoryStore::new())).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread")]
async fn sealed_sessions_move_resealed_in_sqlite() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tg-migrate-sealed");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("m-{}-{:016x}.db", std::process::id(), rand::random::<u64>()));
    sealed_sessions_move_resealed(bot_sessions::store::open(&format!("sqlite://{}", file.display())).await.unwrap())
        .await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn sealed_sessions_move_resealed_in_redis() {
    let url = std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    sealed_sessions_move_resealed(bot_sessions::store::open(&url).await.unwrap_or_else(|e| panic!("redis: {e}"))).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread")]
async fn sealed_sessions_move_resealed_in_postgres() {
    let url =
        std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let url = format!("{url}?schema=bot_sessions_tg_migrate_test");
    sealed_sessions_move_resealed(bot_sessions::store::open(&url).await.unwrap_or_else(|e| panic!("postgres: {e}")))
        .await;
}
