//! `telegram::migrate_chat`: a group that became a supergroup (the migrate fixtures of
//! teloxide issue #427) keeps its sessions, with compare-and-set, idempotently.
#![cfg(feature = "telegram")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::telegram::{ChatMigration, MigrationReport, migrate_chat};
use bot_sessions::{DynStore, Namespace, Precondition, Scope, SessionKey, Sessions, Timestamp, Ttl, Write};
use teloxide::types::{ChatId, Message};

const GROUP: i64 = -599075523;
const SUPERGROUP: i64 = -1001555296434;
const USER: i64 = 729497414;

fn message(file: &str) -> Message {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/telegram").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn both_service_messages_name_the_same_migration() {
    let to = ChatMigration::of(&message("message_object_group_migrate_to_supergroup__teloxide_issue427.json"));
    let from = ChatMigration::of(&message("message_object_supergroup_migrate_from__teloxide_issue427.json"));
    let expected = ChatMigration { from: ChatId(GROUP), to: ChatId(SUPERGROUP) };
    assert_eq!(to, Some(expected));
    assert_eq!(from, Some(expected));
    assert_eq!(ChatMigration::of(&message("message_object_forum_topic_message__teloxide.json")), None);
}

fn key(ns: &str, scope: Scope) -> SessionKey {
    SessionKey::new(Namespace::new(ns).expect("namespace"), scope)
}

fn counters(store: &DynStore, ns: &str) -> Sessions<u64> {
    Sessions::<u64>::builder(store.clone())
        .namespace(ns)
        .ttl(Ttl::idle(Duration::from_secs(3600)))
        .build()
        .expect("sessions")
}

async fn set(sessions: &Sessions<u64>, key: &SessionKey, n: u64) {
    sessions.set(key, &n).await.expect("set");
}

async fn the_group_keeps_its_sessions(store: DynStore) {
    let counter = counters(&store, "counter");
    let forms = counters(&store, "form");
    let other = counters(&store, "other");
    let migration = ChatMigration::of(&message("message_object_group_migrate_to_supergroup__teloxide_issue427.json"))
        .expect("a migration");

    // The group's sessions: per chat, per user in the chat, a bot-qualified one.
    set(&counter, &key("counter", Scope::Chat(GROUP)), 1).await;
    set(&counter, &key("counter", Scope::ChatUser { chat: GROUP, user: USER }), 2).await;
    let qualified = SessionKey::with_bot(Namespace::new("form").expect("ns"), Some(7), Scope::Chat(GROUP));
    set(&forms, &qualified, 3).await;
    // Sessions that stay: another chat, a per-user one, a namespace not listed.
    set(&counter, &key("counter", Scope::Chat(-42)), 4).await;
    set(&counter, &key("counter", Scope::User(USER)), 5).await;
    set(&other, &key("other", Scope::Chat(GROUP)), 6).await;
    let expiry = counter.meta(&key("counter", Scope::ChatUser { chat: GROUP, user: USER })).await.expect("meta");

    let namespaces = [Namespace::new("counter").expect("ns"), Namespace::new("form").expect("ns")];
    let report = migrate_chat(&store, migration.from, migration.to, &namespaces).await.expect("migrate");
    assert_eq!((report.moved, report.finished, report.raced, report.kept.len()), (3, 0, 0, 0));

    let moved = key("counter", Scope::ChatUser { chat: SUPERGROUP, user: USER });
    assert_eq!(counter.get(&key("counter", Scope::Chat(SUPERGROUP))).await.expect("get"), Some(1));
    assert_eq!(counter.get(&moved).await.expect("get"), Some(2));
    let qualified_new = SessionKey::with_bot(Namespace::new("form").expect("ns"), Some(7), Scope::Chat(SUPERGROUP));
    assert_eq!(forms.get(&qualified_new).await.expect("get"), Some(3));
    for gone in [key("counter", Scope::Chat(GROUP)), key("counter", Scope::ChatUser { chat: GROUP, user: USER })] {
        assert_eq!(counter.get(&gone).await.expect("get"), None, "{gone}");
    }
    assert_eq!(forms.get(&qualified).await.expect("get"), None);
    assert_eq!(counter.get(&key("counter", Scope::Chat(-42))).await.expect("get"), Some(4));
    assert_eq!(counter.get(&key("counter", Scope::User(USER))).await.expect("get"), Some(5));
    assert_eq!(other.get(&key("other", Scope::Chat(GROUP))).await.expect("get"), Some(6));
    // The expiry moved with the value.
    let moved_meta = counter.meta(&moved).await.expect("meta").expect("stored");
    assert_eq!(moved_meta.expires_at, expiry.expect("stored").expires_at);

    // Re-running finds nothing left to move.
    let again = migrate_chat(&store, migration.from, migration.to, &namespaces).await.expect("migrate");
    assert_eq!(again, MigrationReport::default());

    // The moved per-user session is still found by forget-user.
    let forgotten = store.forget_user(USER, Timestamp::now()).await.expect("forget");
    assert_eq!(forgotten, 2, "the moved chat-user session and the per-user one");
    assert_eq!(counter.get(&moved).await.expect("get"), None);
}

#[tokio::test]
async fn the_group_keeps_its_sessions_in_memory() {
    the_group_keeps_its_sessions(Arc::new(MemoryStore::new())).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread")]
async fn the_group_keeps_its_sessions_in_sqlite() {
    let dir =
        std::env::temp_dir().join(format!("bot-sessions-tg-migrate-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = bot_sessions::store::open(&format!("sqlite://{}", dir.join("s.db").display())).await.expect("sqlite");
    the_group_keeps_its_sessions(store).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_interrupted_run_is_finished_and_newer_sessions_are_kept() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let counter = counters(&store, "counter");
    let ns = [Namespace::new("counter").expect("ns")];
    let old_a = key("counter", Scope::ChatUser { chat: GROUP, user: 1 });
    let old_b = key("counter", Scope::ChatUser { chat: GROUP, user: 2 });
    let new_a = key("counter", Scope::ChatUser { chat: SUPERGROUP, user: 1 });
    let new_b = key("counter", Scope::ChatUser { chat: SUPERGROUP, user: 2 });
    set(&counter, &old_a, 10).await;
    set(&counter, &old_b, 20).await;
    // A run that copied user 1's session and stopped before deleting the old one.
    let now = Timestamp::now();
    let record = store.load(&old_a, now).await.expect("load").expect("stored");
    let copy = Write::new(&record.value, record.schema_version, record.expires_at).with_owner(record.user_id);
    store.write(&new_a, copy, Precondition::Absent, now).await.expect("copy");
    // User 2 already wrote in the supergroup before the migration ran.
    set(&counter, &new_b, 99).await;

    let report = migrate_chat(&store, ChatId(GROUP), ChatId(SUPERGROUP), &ns).await.expect("migrate");
    assert_eq!((report.moved, report.finished, report.raced), (0, 1, 0));
    assert_eq!(report.kept, vec![(old_b.clone(), new_b.clone())]);
    assert_eq!(counter.get(&old_a).await.expect("get"), None);
    assert_eq!(counter.get(&new_a).await.expect("get"), Some(10));
    // Nothing is overwritten: the newer session stays, the old one waits for the bot.
    assert_eq!(counter.get(&new_b).await.expect("get"), Some(99));
    assert_eq!(counter.get(&old_b).await.expect("get"), Some(20));

    // Migrating onto itself does nothing.
    let same = migrate_chat(&store, ChatId(SUPERGROUP), ChatId(SUPERGROUP), &ns).await.expect("migrate");
    assert_eq!(same, MigrationReport::default());
}

/// A migration through a session type's store (its near cache) invalidates the cached
/// record of the old chat: not even a stale read serves it afterwards.
#[tokio::test]
async fn a_migration_through_the_near_cache_invalidates_the_old_chat() {
    let counters = Sessions::<u32>::builder(MemoryStore::without_sweeper())
        .namespace("counter")
        .key(bot_sessions::KeyStrategy::ChatUser)
        .near_cache(bot_sessions::store::near_cache::CacheConfig::default())
        .stale_reads(Duration::from_secs(3600))
        .build()
        .unwrap();
    let old = SessionKey::new(counters.namespace().clone(), Scope::ChatUser { chat: GROUP, user: USER });
    let new = SessionKey::new(counters.namespace().clone(), Scope::ChatUser { chat: SUPERGROUP, user: USER });
    counters
        .update(&old, |n| {
            *n += 3;
            Ok::<_, bot_sessions::SessionError>(())
        })
        .await
        .unwrap();
    assert_eq!(counters.get(&old).await.unwrap(), Some(3), "cached");
    let report = migrate_chat(counters.store(), ChatId(GROUP), ChatId(SUPERGROUP), &[counters.namespace().clone()])
        .await
        .unwrap();
    assert_eq!(report.moved, 1);
    assert_eq!(counters.get(&old).await.unwrap(), None, "the old chat's copy is gone");
    assert_eq!(counters.get(&new).await.unwrap(), Some(3));
    counters
        .update(&new, |n| {
            *n += 1;
            Ok::<_, bot_sessions::SessionError>(())
        })
        .await
        .unwrap();
    assert_eq!(counters.get(&new).await.unwrap(), Some(4));
}
