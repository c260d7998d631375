//! The Redis store against a real server: the conformance suite, two OS processes on
//! the same keys, a server killed and restarted under load, writes whose replies are
//! lost, bad stored data, and the background purger's lease.
//!
//! The shared server is `redis://127.0.0.1:6379/0` (override with
//! `BOT_SESSIONS_REDIS_URL`); the fault tests start their own `redis-server` on a free
//! loopback port. An unreachable server fails the tests; nothing is skipped.
#![cfg(feature = "redis")]

mod redis_postgres_common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bot_sessions::session::RetryPolicy;
use bot_sessions::store::redis::{RedisConfig, RedisStore};
use bot_sessions::testing::{Counter, unique_namespace, unique_user};
use bot_sessions::{
    DynStore, Namespace, Page, Precondition, Record, Scope, SessionError, SessionKey, Sessions, Store, StoreError,
    Timestamp, Write,
};
use redis_postgres_common::{Load, free_port, is_ambiguous, temp_dir, two_processes, wait_until};

fn url() -> String {
    std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

async fn store() -> DynStore {
    let url = url();
    match RedisStore::connect(&url).await {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("the Redis tests need a server at {url} (set BOT_SESSIONS_REDIS_URL): {e}"),
    }
}

bot_sessions::conformance_tests!(store, near_cache);

#[path = "redis/batch.rs"]
mod batch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_update_the_same_keys() {
    two_processes("two_processes_update_the_same_keys", store).await;
}

/// A store under a prefix of its own (so planted bad data touches no other test), and
/// a plain connection to the same server.
struct Fresh {
    store: RedisStore,
    con: redis::aio::MultiplexedConnection,
    prefix: String,
}

impl Fresh {
    async fn new(config: RedisConfig) -> Fresh {
        let prefix = format!("bstest{:x}:", rand::random::<u64>());
        let store = RedisStore::connect_with(&url(), config.prefix(prefix.clone())).await.expect("connect");
        let client = redis::Client::open(url()).expect("url");
        let con = client.get_multiplexed_async_connection().await.expect("connect");
        Fresh { store, con, prefix }
    }

    async fn cmd<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        let mut con = self.con.clone();
        cmd.query_async(&mut con).await.unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
    }

    /// Every key under the prefix, sorted.
    async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.cmd(redis::cmd("KEYS").arg(format!("{}*", self.prefix))).await;
        keys.sort();
        keys
    }

    async fn set_meta(&self, key: &SessionKey, meta: &str) {
        let () = self.cmd(redis::cmd("HSET").arg(self.store.record_key(key)).arg("meta").arg(meta)).await;
    }

    fn ns_key(&self, ns: &Namespace, suffix: &str) -> String {
        format!("{}{{ns:{}}}{suffix}", self.prefix, ns.as_str())
    }

    /// Deletes everything under the prefix.
    async fn clean(self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let () = self.cmd(redis::cmd("DEL").arg(keys)).await;
        }
    }
}

fn w(value: &[u8]) -> Write<'_> {
    Write::new(value, 1, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_layout_is_readable_and_prefixed() {
    let f = Fresh::new(RedisConfig::default()).await;
    let (store, prefix) = (&f.store, f.prefix.clone());
    let ns = Namespace::new("layout").unwrap();
    let user = unique_user();
    let with_user = SessionKey::new(ns.clone(), Scope::ChatUser { chat: 1, user });
    let without = SessionKey::new(ns.clone(), Scope::Chat(1));
    let now = Timestamp::now();
    let at = now.saturating_add(Duration::from_secs(600));
    let first = Write::new(b"{}", 2, Some(at));
    store.write(&with_user, first, Precondition::Absent, now).await.unwrap();
    store.write(&without, w(b"x"), Precondition::Absent, now).await.unwrap();
    let opener = unique_user();
    let owned = SessionKey::new(ns.clone(), Scope::Custom { id: "menu".into(), user: None });
    store.write(&owned, w(b"m").with_owner(Some(opener)), Precondition::Absent, now).await.unwrap();
    assert_eq!(store.record_key(&with_user), format!("{prefix}{{u:{user}}}layout/chat:1/user:{user}"));
    assert_eq!(store.record_key(&without), format!("{prefix}{{layout/chat:1}}"));
    assert_eq!(store.user_index(user), format!("{prefix}{{u:{user}}}:keys"));

    let fields: std::collections::HashMap<String, String> =
        f.cmd(redis::cmd("HGETALL").arg(store.record_key(&with_user))).await;
    assert_eq!(fields["value"], "{}");
    assert_eq!(
        fields["meta"],
        format!("{} 2 {1} {1} {2} {user}", first.version, now.as_millis(), at.as_millis()),
        "version (the writer's) schema created updated expires owner"
    );
    assert_eq!(fields["hist"], first.version.to_string(), "the versions the record held");
    assert_eq!(fields.len(), 3);
    let pexpire: i64 = f.cmd(redis::cmd("PEXPIRETIME").arg(store.record_key(&with_user))).await;
    assert_eq!(pexpire, at.as_millis() + 60_000, "native expiry = expires_at + grace");
    let ttl: i64 = f.cmd(redis::cmd("PTTL").arg(store.record_key(&without))).await;
    assert_eq!(ttl, -1, "no expiry, no native TTL");
    let members: Vec<String> = f.cmd(redis::cmd("SMEMBERS").arg(store.user_index(user))).await;
    assert_eq!(members, vec![with_user.to_string()]);
    // A session without a user is indexed under its owner, also kept in the namespace's
    // owner hash; one without an owner has `-`.
    let meta: String = f.cmd(redis::cmd("HGET").arg(store.record_key(&owned)).arg("meta")).await;
    assert!(meta.ends_with(&format!(" - {opener}")), "{meta}");
    let meta: String = f.cmd(redis::cmd("HGET").arg(store.record_key(&without)).arg("meta")).await;
    assert!(meta.ends_with(" - -"), "{meta}");
    let members: Vec<String> = f.cmd(redis::cmd("SMEMBERS").arg(store.user_index(opener))).await;
    assert_eq!(members, vec![owned.to_string()]);
    let owner: String = f.cmd(redis::cmd("HGET").arg(f.ns_key(&ns, ":own")).arg(owned.as_str())).await;
    assert_eq!(owner, opener.to_string());
    assert_eq!(store.forget_user(opener, now).await.unwrap(), 1);

    // Removing the expiry removes the native TTL too.
    store.write(&with_user, w(b"{}"), Precondition::Version(first.version), now).await.unwrap();
    let ttl: i64 = f.cmd(redis::cmd("PTTL").arg(store.record_key(&with_user))).await;
    assert_eq!(ttl, -1);
    assert_eq!(store.forget_user(user, now).await.unwrap(), 1);
    store.delete(&without, Precondition::Any, now).await.unwrap();
    assert_eq!(f.keys().await, vec![format!("{prefix}namespaces")], "nothing but the namespace list is left");
    f.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn natively_expired_records_leave_no_trace_after_purge() {
    // A record whose expiry (plus grace) is already past is dropped by Redis at once;
    // its index entries must not count, and a purge removes them, the owner's index
    // entry of a session without a user included.
    let f = Fresh::new(RedisConfig::default().expiry_grace(Duration::ZERO)).await;
    let store = &f.store;
    let ns = unique_namespace("native");
    let (user, opener) = (unique_user(), unique_user());
    let k = SessionKey::new(ns.clone(), Scope::User(user));
    let owned = SessionKey::new(ns.clone(), Scope::Custom { id: "menu".into(), user: None });
    let now = Timestamp::now();
    let past = Some(Timestamp(now.as_millis() - 1));
    store.write(&k, Write::new(b"x", 1, past), Precondition::Any, now).await.unwrap();
    store.write(&owned, Write::new(b"m", 1, past).with_owner(Some(opener)), Precondition::Any, now).await.unwrap();
    assert_eq!(store.load(&k, now).await.unwrap(), None);
    assert_eq!(store.count(Some(&ns), now).await.unwrap(), 0);
    assert!(store.scan(&ns, None, 10, now).await.unwrap().items.is_empty());
    assert_eq!(store.purge_expired(now).await.unwrap(), 2);
    assert!(f.keys().await.iter().all(|k| k.ends_with("namespaces")), "{:?}", f.keys().await);
    assert_eq!(store.forget_user(user, now).await.unwrap(), 0, "the user index entry went with the purge");
    // And the key can be created again.
    let again = w(b"y");
    assert_eq!(store.write(&k, again, Precondition::Absent, now).await.unwrap(), again.version);
    assert_eq!(store.count(Some(&ns), now).await.unwrap(), 1);
    assert_eq!(store.forget_user(user, now).await.unwrap(), 1);
    f.clean().await;
}

#[tokio::test]
async fn unreachable_server_is_a_retryable_error_in_bounded_time() {
    let port = free_port();
    let config = RedisConfig::default().op_timeout(Duration::from_secs(2));
    let err = RedisStore::connect_with(&format!("redis://127.0.0.1:{port}"), config).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(RedisStore::connect("redis://127.0.0.1:6379?prefix=bad{tag}").await.is_err());
}

#[tokio::test]
async fn settings_out_of_range_are_config_errors_at_connect() {
    let cases = [
        ("op_timeout MAX", RedisConfig::default().op_timeout(Duration::MAX)),
        ("op_timeout 0", RedisConfig::default().op_timeout(Duration::ZERO)),
        ("connect_timeout MAX", RedisConfig::default().connect_timeout(Duration::MAX)),
        ("connect_timeout 0", RedisConfig::default().connect_timeout(Duration::ZERO)),
        ("expiry_grace MAX", RedisConfig::default().expiry_grace(Duration::MAX)),
        ("prefix too long", RedisConfig::default().prefix("p".repeat(65))),
        ("prefix empty", RedisConfig::default().prefix("")),
    ];
    for (what, config) in cases {
        match RedisStore::connect_with(&url(), config).await {
            Err(StoreError::Config(msg)) => assert!(!msg.is_empty(), "{what}"),
            other => panic!("{what}: expected a Config error, got {other:?}"),
        }
    }
    let long = format!("{}?prefix={}", url(), "p".repeat(65));
    assert!(matches!(RedisStore::connect(&long).await, Err(StoreError::Config(_))), "prefix from the URL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_five_field_records_are_read_and_upgraded() {
    let f = Fresh::new(RedisConfig::default()).await;
    let store = &f.store;
    let ns = unique_namespace("old");
    let user = unique_user();
    let k = SessionKey::new(ns.clone(), Scope::ChatUser { chat: 3, user });
    let now = Timestamp::now();
    let created = w(b"v");
    store.write(&k, created, Precondition::Absent, now).await.unwrap();
    // What a store before owners wrote: five fields, owner implied by the key.
    f.set_meta(&k, &format!("{} 1 {1} {1} -", created.version, now.as_millis())).await;
    let r = store.load(&k, now).await.unwrap().expect("loads");
    assert_eq!((r.version, r.user_id), (created.version, Some(user)));
    let next = w(b"v2");
    store.write(&k, next, Precondition::Version(created.version), now).await.unwrap();
    let meta: String = f.cmd(redis::cmd("HGET").arg(store.record_key(&k)).arg("meta")).await;
    assert_eq!(meta, format!("{} 1 {1} {1} - {user}", next.version, now.as_millis()), "upgraded on write");
    // The lean compare-and-set over a known five-field record writes six fields too.
    f.set_meta(&k, &format!("{} 1 {1} {1} -", next.version, now.as_millis())).await;
    let known = store.load(&k, now).await.unwrap().expect("loads");
    let over = w(b"v3");
    store.write_over(&k, over, &known, now).await.unwrap();
    let meta: String = f.cmd(redis::cmd("HGET").arg(store.record_key(&k)).arg("meta")).await;
    assert_eq!(meta, format!("{} 1 {1} {1} - {user}", over.version, now.as_millis()), "upgraded by write_over");
    f.set_meta(&k, &format!("{} 1 {1} {1} -", over.version, now.as_millis())).await;
    assert_eq!(store.forget_user(user, now).await.unwrap(), 1, "forgotten as the key's user's");
    assert_eq!(store.load(&k, now).await.unwrap(), None);
    f.clean().await;
}

/// The record's version history (`hist`, what resolves a write whose reply was lost)
/// through both write scripts: the last 16 versions, the oldest cut away; a garbled
/// field reads as "nothing known" and is cut away by the writes that follow; one far
/// too long starts anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_version_history_keeps_the_last_sixteen_and_heals_when_garbled() {
    let f = Fresh::new(RedisConfig::default()).await;
    let store = &f.store;
    let k = SessionKey::new(unique_namespace("hist"), Scope::User(unique_user()));
    let now = Timestamp::now();
    let first = w(b"v");
    store.write(&k, first, Precondition::Absent, now).await.unwrap();
    let mut written = vec![first.version];
    // Alternately the full write script and the compare-and-set over a known record.
    let step = |round: usize| {
        let (store, k) = (store, &k);
        async move {
            let known = store.load(k, now).await.unwrap().expect("loads");
            let next = w(b"v");
            match round % 2 {
                0 => store.write(k, next, Precondition::Version(known.version), now).await.unwrap(),
                _ => store.write_over(k, next, &known, now).await.unwrap(),
            };
            next.version
        }
    };
    for round in 0..40 {
        written.push(step(round).await);
        let want = &written[written.len().saturating_sub(16)..];
        assert_eq!(store.recent_versions(&k, now).await.unwrap().as_deref(), Some(want), "after write {round}");
    }
    let hist = store.record_key(&k);
    let _: () = f.cmd(redis::cmd("HSET").arg(&hist).arg("hist").arg("12 garbled x 9")).await;
    assert_eq!(store.recent_versions(&k, now).await.unwrap(), None, "garbled: nothing known");
    let mut since = Vec::new();
    for round in 0..20 {
        since.push(step(round).await);
    }
    assert_eq!(store.recent_versions(&k, now).await.unwrap().as_deref(), Some(&since[4..]), "cut away");
    let _: () = f.cmd(redis::cmd("HSET").arg(&hist).arg("hist").arg("7 ".repeat(600))).await;
    let last = step(0).await;
    assert_eq!(store.recent_versions(&k, now).await.unwrap(), Some(vec![last]), "far too long: anew");
    f.clean().await;
}

/// On one server the client never re-sends a script, so a write with a version the
/// record already holds is a plain conflict: the operator tool's import and copy, which
/// write the versions of their source, rely on it to say "already there" (the cluster's
/// re-send case is in `redis_cluster.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_server_a_version_already_held_is_a_conflict() {
    let f = Fresh::new(RedisConfig::default()).await;
    let store = &f.store;
    let k = SessionKey::new(unique_namespace("resend"), Scope::User(unique_user()));
    let now = Timestamp::now();
    let created = w(b"v1");
    store.write(&k, created, Precondition::Absent, now).await.unwrap();
    let conflict = |r: Result<u64, StoreError>| matches!(r, Err(StoreError::Conflict { .. }));
    assert!(conflict(store.write(&k, created, Precondition::Absent, now).await), "the same create again");
    let second = w(b"v2");
    store.write(&k, second, Precondition::Version(created.version), now).await.unwrap();
    assert!(conflict(store.write(&k, second, Precondition::Version(created.version), now).await), "the same update");
    f.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_meta_is_corrupt_on_load_and_replaceable_with_any() {
    let f = Fresh::new(RedisConfig::default()).await;
    let store = &f.store;
    let ns = unique_namespace("badmeta");
    let user = unique_user();
    let k = SessionKey::new(ns.clone(), Scope::ChatUser { chat: 1, user });
    let now = Timestamp::now();
    let first = w(b"v");
    store.write(&k, first, Precondition::Absent, now).await.unwrap();
    let known = store.load(&k, now).await.unwrap().expect("written");
    for bad in ["garbage", "1 2 3", "1 1 1 1 soon 7", "1 1 1 1 - someone"] {
        f.set_meta(&k, bad).await;
        match store.write_over(&k, w(b"x"), &known, now).await {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, k.to_string()),
            other => panic!("{bad}: write_over unreadable meta: expected Corrupt, got {other:?}"),
        }
        match store.load(&k, now).await {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, k.to_string(), "{bad}: the error names the key"),
            other => panic!("{bad}: expected Corrupt, got {other:?}"),
        }
        for pre in [Precondition::Absent, Precondition::Version(first.version)] {
            match store.write(&k, w(b"x"), pre, now).await {
                Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, k.to_string()),
                other => panic!("{bad}: write {pre:?} over unreadable meta: expected Corrupt, got {other:?}"),
            }
            assert!(matches!(store.delete(&k, pre, now).await, Err(StoreError::Corrupt { .. })), "{bad}: {pre:?}");
        }
    }
    // `Any` replaces it: a new record, fully indexed.
    let fresh = w(b"fresh");
    assert_eq!(store.write(&k, fresh, Precondition::Any, now).await.unwrap(), fresh.version);
    let r = store.load(&k, now).await.unwrap().expect("readable again");
    assert_eq!(
        (r.value.as_slice(), r.version, r.created_at, r.user_id),
        (&b"fresh"[..], fresh.version, now, Some(user))
    );
    assert_eq!(store.count(Some(&ns), now).await.unwrap(), 1);
    // ... and `Any` deletes it.
    f.set_meta(&k, "garbage").await;
    assert!(store.delete(&k, Precondition::Any, now).await.unwrap(), "a record was there");
    assert_eq!(store.load(&k, now).await.unwrap(), None);
    assert_eq!(store.count(Some(&ns), now).await.unwrap(), 0);

    // A key of another type where the record should be, and a hash without `meta`.
    let other = SessionKey::new(ns.clone(), Scope::Chat(9));
    for plant in ["string", "hash without meta"] {
        let rkey = store.record_key(&other);
        let () = match plant {
            "string" => f.cmd(redis::cmd("SET").arg(&rkey).arg("x")).await,
            _ => f.cmd(redis::cmd("HSET").arg(&rkey).arg("value").arg("x")).await,
        };
        assert!(
            matches!(store.load(&other, now).await, Err(StoreError::Corrupt { ref key, .. }) if key == other.as_str())
        );
        assert!(matches!(
            store.write(&other, w(b"y"), Precondition::Absent, now).await,
            Err(StoreError::Corrupt { .. })
        ));
        let known = Record { user_id: None, ..known.clone() };
        assert!(
            matches!(store.write_over(&other, w(b"y"), &known, now).await, Err(StoreError::Corrupt { .. })),
            "{plant}: write_over"
        );
        store.write(&other, w(b"y"), Precondition::Any, now).await.unwrap_or_else(|e| panic!("{plant}: {e}"));
        assert_eq!(store.load(&other, now).await.unwrap().map(|r| r.value), Some(b"y".to_vec()), "{plant}");
        store.delete(&other, Precondition::Any, now).await.unwrap();
    }
    f.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_user_gets_past_bad_members_and_erases_unreadable_records() {
    let f = Fresh::new(RedisConfig::default()).await;
    let store = &f.store;
    let (a, b) = (unique_namespace("fa"), unique_namespace("fb"));
    let (user, other) = (unique_user(), unique_user());
    let now = Timestamp::now();
    let mine = [
        SessionKey::new(a.clone(), Scope::User(user)),
        SessionKey::new(b.clone(), Scope::ChatUser { chat: 2, user }),
        SessionKey::new(a.clone(), Scope::Custom { id: "opened".into(), user: None }),
    ];
    let unreadable = SessionKey::new(b.clone(), Scope::ChatUser { chat: 3, user });
    let unreadable_owned = SessionKey::new(b.clone(), Scope::Custom { id: "menu".into(), user: None });
    for k in mine.iter().chain([&unreadable, &unreadable_owned]) {
        store.write(k, w(b"v").with_owner(Some(user)), Precondition::Absent, now).await.unwrap();
    }
    f.set_meta(&unreadable, "not meta").await;
    f.set_meta(&unreadable_owned, "1 2").await;
    // Another user's record whose key slipped into this user's index: not this user's.
    let theirs = SessionKey::new(a.clone(), Scope::User(other));
    store.write(&theirs, w(b"t"), Precondition::Absent, now).await.unwrap();
    let index = store.user_index(user);
    let junk: [&[u8]; 3] = [b"not a key", b"\xff\xfe", theirs.as_str().as_bytes()];
    for member in junk {
        let () = f.cmd(redis::cmd("SADD").arg(&index).arg(member)).await;
    }

    assert_eq!(store.forget_user(user, now).await.unwrap(), 5, "three readable records and two unreadable ones");
    for k in mine.iter().chain([&unreadable, &unreadable_owned]) {
        assert!(matches!(store.load(k, now).await, Ok(None)), "{k} is erased");
    }
    assert!(store.load(&theirs, now).await.unwrap().is_some(), "another user's record stays");
    let left: Vec<Vec<u8>> = f.cmd(redis::cmd("SMEMBERS").arg(&index)).await;
    assert!(left.is_empty(), "every member is gone from the index: {left:?}");
    assert_eq!(store.count(Some(&a), now).await.unwrap(), 1, "only the other user's record is left");
    assert_eq!(store.count(Some(&b), now).await.unwrap(), 0);
    assert_eq!(store.forget_user(other, now).await.unwrap(), 1);
    f.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_owner_entry_never_deletes_someone_elses_record() {
    let f = Fresh::new(RedisConfig::default()).await;
    let store = &f.store;
    let ns = unique_namespace("stale");
    let (user, other) = (unique_user(), unique_user());
    let k = SessionKey::new(ns.clone(), Scope::Custom { id: "menu".into(), user: None });
    let now = Timestamp::now();
    store.write(&k, w(b"theirs").with_owner(Some(other)), Precondition::Absent, now).await.unwrap();
    // A member left in the user's index (say, by a crash of an older version) that
    // points at a record somebody else owns now.
    let () = f.cmd(redis::cmd("SADD").arg(store.user_index(user)).arg(k.as_str())).await;
    assert_eq!(store.forget_user(user, now).await.unwrap(), 0);
    assert_eq!(store.load(&k, now).await.unwrap().and_then(|r| r.user_id), Some(other), "the record stays");
    let left: Vec<String> = f.cmd(redis::cmd("SMEMBERS").arg(store.user_index(user))).await;
    assert!(left.is_empty(), "the stale member is cleaned: {left:?}");
    assert_eq!(store.forget_user(other, now).await.unwrap(), 1);
    f.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_count_and_purge_get_past_bad_members() {
    let f = Fresh::new(RedisConfig::default()).await;
    let store = &f.store;
    let ns = unique_namespace("badidx");
    let elsewhere = unique_namespace("elsewhere");
    let now = Timestamp::now();
    let soon = Some(now.saturating_add(Duration::from_secs(60)));
    let key = |i: i64| SessionKey::new(ns.clone(), Scope::Chat(i));
    // 300 expiring records (more than one purge batch) and 5 that stay.
    for i in 0..305 {
        let expires_at = if i < 300 { soon } else { None };
        store.write(&key(i), Write::new(b"v", 1, expires_at), Precondition::Absent, now).await.unwrap();
    }
    // Bad members in the namespace's indexes, sorting before and among the real ones:
    // not key texts, another namespace's key, and a record whose meta does not parse.
    let (keys, exp) = (f.ns_key(&ns, ":keys"), f.ns_key(&ns, ":exp"));
    let foreign = SessionKey::new(elsewhere, Scope::Chat(1)).to_string().into_bytes();
    let strays: [Vec<u8>; 3] = [b"!not a key".to_vec(), b"\xff\xfe".to_vec(), foreign];
    for member in &strays {
        let () = f.cmd(redis::cmd("ZADD").arg(&keys).arg(0).arg(member)).await;
        let () = f.cmd(redis::cmd("ZADD").arg(&exp).arg(0).arg(member)).await;
    }
    f.set_meta(&key(150), "garbage").await;
    f.set_meta(&key(302), "garbage").await;
    // A namespace whose indexes are not even sorted sets.
    let broken = f.ns_key(&Namespace::new("broken").unwrap(), "");
    let () = f.cmd(redis::cmd("SADD").arg(format!("{}namespaces", f.prefix)).arg("broken")).await;
    let () =
        f.cmd(redis::cmd("MSET").arg(format!("{broken}:keys")).arg("x").arg(format!("{broken}:exp")).arg("x")).await;
    let plain = RedisStore::connect_with(&url(), RedisConfig::default().prefix(f.prefix.clone())).await.unwrap();
    let () = f.cmd(redis::cmd("SET").arg(plain.record_key(&key(303))).arg("not a hash")).await;

    // Scan: every readable live record once, in order, across pages.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let Page { items, next } = store.scan(&ns, cursor.as_deref(), 50, now).await.expect("scan is never blocked");
        seen.extend(items.into_iter().map(|(k, _): (SessionKey, Record)| k));
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let mut expected: Vec<SessionKey> = (0..305).filter(|i| ![150, 302, 303].contains(i)).map(key).collect();
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(seen, expected);
    // Count is index arithmetic: it reads no member, so nothing in them can fail it.
    assert!(store.count(Some(&ns), now).await.is_ok());
    assert!(store.count(None, now).await.unwrap() >= 305, "the broken namespace is skipped");

    // Purge, once they expired: every readable expired record goes, the rest is skipped.
    let later = now.saturating_add(Duration::from_secs(120));
    assert_eq!(store.purge_expired(later).await.expect("purge is never blocked"), 299);
    for i in 0..305 {
        let loaded = store.load(&key(i), later).await;
        match i {
            150 | 302 | 303 => assert!(matches!(loaded, Err(StoreError::Corrupt { .. })), "{i}: {loaded:?}"),
            i if i < 300 => assert!(matches!(loaded, Ok(None)), "{i} purged"),
            _ => assert!(matches!(loaded, Ok(Some(_))), "{i} kept"),
        }
    }
    let left: u64 = f.cmd(redis::cmd("ZCARD").arg(&exp)).await;
    assert_eq!(left, 4, "the three strays and the unreadable record 150 stay in the expiry index");
    f.clean().await;
}

/// A store that stops the server (SIGSTOP) just before a chosen write, so the write is
/// sent and its reply never comes in time, and continues it (SIGCONT) at the first load
/// after, if told to. Everything else passes through.
struct Stopper {
    inner: RedisStore,
    pid: String,
    stop_next_write: AtomicBool,
    continue_on_load: AtomicBool,
    stopped: AtomicBool,
}

impl Stopper {
    fn signal(&self, sig: &str) {
        redis_postgres_common::run(Command::new("kill").args([sig, &self.pid]));
    }

    fn arm(&self, continue_on_load: bool) {
        self.continue_on_load.store(continue_on_load, Ordering::SeqCst);
        self.stop_next_write.store(true, Ordering::SeqCst);
    }

    fn resume(&self) {
        if self.stopped.swap(false, Ordering::SeqCst) {
            self.signal("-CONT");
        }
    }
}

#[async_trait::async_trait]
impl Store for Stopper {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        if self.continue_on_load.load(Ordering::SeqCst) {
            self.resume();
        }
        self.inner.load(key, now).await
    }

    async fn write(&self, key: &SessionKey, w: Write<'_>, p: Precondition, now: Timestamp) -> Result<u64, StoreError> {
        if self.stop_next_write.swap(false, Ordering::SeqCst) {
            self.signal("-STOP");
            self.stopped.store(true, Ordering::SeqCst);
        }
        self.inner.write(key, w, p, now).await
    }

    async fn delete(&self, key: &SessionKey, p: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.delete(key, p, now).await
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.forget_user(user_id, now).await
    }

    async fn scan(&self, ns: &Namespace, c: Option<&str>, limit: usize, now: Timestamp) -> Result<Page, StoreError> {
        self.inner.scan(ns, c, limit, now).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }

    async fn count(&self, ns: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.count(ns, now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_reply_times_out_is_ambiguous_and_counted_exactly_once() {
    let port = free_port();
    let dir = temp_dir("redis-ambiguous");
    let server = Server::start(port, &dir);
    server.wait_ready().await;
    // Long enough that nothing times out on a busy machine unless the server is stopped.
    let config = RedisConfig::default().op_timeout(Duration::from_secs(1));
    let inner = RedisStore::connect_with(&server.url(), config).await.expect("connect");
    let pid = server.child.as_ref().expect("running").id().to_string();
    let stopper = Arc::new(Stopper {
        inner: inner.clone(),
        pid,
        stop_next_write: AtomicBool::new(false),
        continue_on_load: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
    });

    // At the store: the write is sent, then the server stops; the reply never comes.
    let k = SessionKey::new(unique_namespace("amb"), Scope::Chat(1));
    let now = Timestamp::now();
    let first = w(b"1");
    stopper.write(&k, first, Precondition::Absent, now).await.unwrap();
    // The server must know the delete script before it stops (it would answer NOSCRIPT).
    inner.delete(&SessionKey::new(unique_namespace("amb"), Scope::Chat(2)), Precondition::Any, now).await.unwrap();
    stopper.arm(false);
    let lost = w(b"2");
    let err = stopper.write(&k, lost, Precondition::Version(first.version), now).await.unwrap_err();
    assert!(err.is_ambiguous() && !err.is_retryable(), "{err:?}");
    assert!(matches!(&err, StoreError::Ambiguous { key, .. } if key == k.as_str()), "names the key: {err}");
    let read = inner.load(&k, now).await.unwrap_err();
    assert!(read.is_retryable() && !read.is_ambiguous(), "a read just fails: {read:?}");
    let gone = inner.delete(&k, Precondition::Any, now).await.unwrap_err();
    assert!(gone.is_ambiguous(), "a delete too: {gone:?}");
    stopper.resume();
    // The server runs what it had queued: the write landed. The timed-out load replaced
    // the silent connection (`store/redis/healing.rs`), so the delete went out on a
    // new one, which may not have been established while the server was stopped: it
    // landed after the write, or was never sent. Both are what `Ambiguous` allows.
    let after = wait_for_answer(&inner, &k, now).await;
    assert!(
        after.as_ref().is_none_or(|r| r.version == lost.version),
        "the lost write landed, then the delete or nothing: {after:?}"
    );

    // Through `Sessions::update`: every third update's reply is lost. Some are resolved
    // while the update is still running (the server continues at its first load), the
    // others stay unknown to the caller and land once the server continues.
    let retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    let ns = unique_namespace("ambcount");
    let sessions =
        Sessions::<Counter>::builder(stopper.clone() as DynStore).namespace(ns.as_str()).retry(retry).build().unwrap();
    let key = SessionKey::new(ns, Scope::Chat(1));
    let calls = AtomicU64::new(0);
    let (mut acked, mut ambiguous, mut resolved) = (0u64, 0u64, 0u64);
    for i in 0..9 {
        match i % 3 {
            1 => stopper.arm(true),
            2 => stopper.arm(false),
            _ => {}
        }
        let r = sessions
            .update(&key, |c| {
                calls.fetch_add(1, Ordering::SeqCst);
                c.n += 1;
                Ok::<_, SessionError>(())
            })
            .await;
        stopper.resume();
        match r {
            Ok(()) => {
                acked += 1;
                resolved += u64::from(i % 3 == 1);
            }
            Err(e) if is_ambiguous(&e) => ambiguous += 1,
            Err(e) => panic!("update {i}: {e:?}"),
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 9, "the closure ran once per call");
    assert_eq!(resolved, 3, "a write that landed while the update waited is acknowledged");
    assert_eq!(ambiguous, 3, "a write whose fate stayed unknown is reported as such");
    let n = sessions.get(&key).await.unwrap().map_or(0, |c| c.n);
    // Every queued write ran once its server continued (its precondition still held),
    // and nothing ran twice.
    assert_eq!(n, acked + ambiguous, "{acked} acknowledged + {ambiguous} ambiguous that landed");
    drop(server);
}

/// The record under `k` once the store answers again (its connection may be being
/// replaced).
async fn wait_for_answer(store: &RedisStore, k: &SessionKey, now: Timestamp) -> Option<Record> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match store.load(k, now).await {
            Ok(r) => return r,
            Err(e) if tokio::time::Instant::now() < deadline => eprintln!("loading again after: {e}"),
            Err(e) => panic!("the store did not answer again: {e}"),
        }
    }
}

/// The id of the client the paused server holds a command of, once there is one.
async fn blocked_client(admin: &redis::aio::MultiplexedConnection) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut con = admin.clone();
        let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut con).await.unwrap();
        let blocked = list.lines().find(|l| l.contains(" flags=b "));
        if let Some(id) = blocked.and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id="))) {
            return id.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "no command waits on the paused server");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_a_write_was_sent_is_ambiguous_and_counted_once() {
    let port = free_port();
    let dir = temp_dir("redis-dropped");
    let server = Server::start(port, &dir);
    server.wait_ready().await;
    let store = RedisStore::connect_with(&server.url(), RedisConfig::default()).await.expect("connect");
    let admin = redis::Client::open(server.url()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let ns = unique_namespace("dropped");
    let sessions =
        Sessions::<Counter>::builder(Arc::new(store.clone()) as DynStore).namespace(ns.as_str()).build().unwrap();
    let key = SessionKey::new(ns, Scope::Chat(1));
    let bump = |c: &mut Counter| {
        c.n += 1;
        Ok::<_, SessionError>(())
    };

    // The server holds writes (reads go on), the update's write is sent and waits, then
    // its connection is killed: the write never ran, and nobody could know.
    let mut acked = 0u64;
    for round in 0..4 {
        sessions.update(&key, bump).await.unwrap();
        acked += 1;
        let () = redis::cmd("CLIENT").arg("PAUSE").arg(60_000).arg("WRITE").query_async(&mut admin).await.unwrap();
        let pending = {
            let sessions = sessions.clone();
            let key = key.clone();
            tokio::spawn(async move { sessions.update(&key, bump).await })
        };
        let id = blocked_client(&admin).await;
        let () = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(&id).query_async(&mut admin).await.unwrap();
        let () = redis::cmd("CLIENT").arg("UNPAUSE").query_async(&mut admin).await.unwrap();
        // `update` saw an ambiguous outcome, found that its write had not landed and
        // that nothing else had changed, and wrote again: exactly once.
        pending.await.unwrap().unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        acked += 1;
        assert_eq!(sessions.get(&key).await.unwrap().map(|c| c.n), Some(acked), "round {round}");
    }

    // At the store: the same cut-off write is ambiguous, and the record is as it was.
    let k = SessionKey::new(unique_namespace("dropped"), Scope::Chat(2));
    let first = w(b"1");
    store.write(&k, first, Precondition::Absent, Timestamp::now()).await.unwrap();
    let () = redis::cmd("CLIENT").arg("PAUSE").arg(60_000).arg("WRITE").query_async(&mut admin).await.unwrap();
    let pending = {
        let (store, k) = (store.clone(), k.clone());
        tokio::spawn(
            async move { store.write(&k, w(b"2"), Precondition::Version(first.version), Timestamp::now()).await },
        )
    };
    let id = blocked_client(&admin).await;
    let () = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(&id).query_async(&mut admin).await.unwrap();
    let () = redis::cmd("CLIENT").arg("UNPAUSE").query_async(&mut admin).await.unwrap();
    let err = pending.await.unwrap().unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");
    let r = store.load(&k, Timestamp::now()).await.unwrap().expect("kept");
    assert_eq!(r.version, first.version, "the killed write never ran");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_purge_runs_in_one_process_at_a_time() {
    let f = Fresh::new(RedisConfig::default()).await;
    let other = RedisStore::connect_with(&url(), RedisConfig::default().prefix(f.prefix.clone())).await.unwrap();
    let ns = unique_namespace("lease");
    let now = Timestamp::now();
    let soon = Some(now.saturating_add(Duration::from_secs(1)));
    for i in 0..600 {
        let k = SessionKey::new(ns.clone(), Scope::Chat(i));
        f.store.write(&k, Write::new(b"v", 1, soon), Precondition::Absent, now).await.unwrap();
    }
    let later = now.saturating_add(Duration::from_secs(5));
    let lease = format!("{}purger", f.prefix);

    // Another process holds the lease: this one skips its round.
    let () = f.cmd(redis::cmd("SET").arg(&lease).arg("someone-else").arg("PX").arg(60_000)).await;
    assert_eq!(f.store.purge_expired_background(later).await.unwrap(), 0, "skipped");
    assert_eq!(f.store.count(Some(&ns), now).await.unwrap(), 600, "nothing purged");
    let holder: String = f.cmd(redis::cmd("GET").arg(&lease)).await;
    assert_eq!(holder, "someone-else", "the holder's lease is untouched");

    // Free: one of two processes purging at once does it all, in batches, and gives the
    // lease back.
    let () = f.cmd(redis::cmd("DEL").arg(&lease)).await;
    let (a, b) = tokio::join!(f.store.purge_expired_background(later), other.purge_expired_background(later));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 600, "every expired record purged once: {a} + {b}");
    assert!(a == 0 || b == 0, "one process purged, the other skipped: {a} + {b}");
    let held: bool = f.cmd(redis::cmd("EXISTS").arg(&lease)).await;
    assert!(!held, "the lease is released after the round");
    assert_eq!(f.store.purge_expired_background(later).await.unwrap(), 0, "nothing left");
    f.clean().await;
}

/// A `redis-server` of the test's own, with an append-only file synced on every write.
struct Server {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(port: u16, dir: &std::path::Path) -> Server {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server must be installed for the fault test");
        Server { port, dir: dir.to_path_buf(), child: Some(child) }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        let url = self.url();
        wait_until("redis-server to answer PING", Duration::from_secs(30), || {
            let url = url.clone();
            async move {
                let Ok(client) = redis::Client::open(url) else { return false };
                let Ok(mut con) = client.get_multiplexed_async_connection().await else { return false };
                redis::cmd("PING").query_async::<String>(&mut con).await.is_ok()
            }
        })
        .await;
    }

    /// SIGKILL: a crash, not a shutdown.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A stopped server is continued first, so it dies at once.
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
            c.kill().expect("kill redis-server");
            c.wait().expect("reap redis-server");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted_under_load_loses_no_acknowledged_update() {
    let port = free_port();
    let dir = temp_dir("redis");
    let mut server = Server::start(port, &dir);
    server.wait_ready().await;
    let config = RedisConfig::default().op_timeout(Duration::from_secs(2));
    let store: DynStore = Arc::new(RedisStore::connect_with(&server.url(), config).await.expect("connect"));

    let load = Load::start(store, 16);
    load.wait_for_progress(500, "the load to start").await;

    server.kill();
    let failed = load.failed();
    wait_until("updates to fail while the server is down", Duration::from_secs(30), || async {
        load.failed() > failed
    })
    .await;
    let acked_while_down = load.acked();

    let server = Server::start(port, &dir);
    server.wait_ready().await;
    load.wait_for_progress(500, "the load to resume after the restart").await;
    assert!(load.acked() >= acked_while_down + 500);

    let ambiguous = load.ambiguous();
    let (acked, failed) = load.stop_and_check().await;
    assert!(failed > 0, "the outage was seen");
    eprintln!(
        "redis fault test: {acked} acknowledged, {failed} failed ({ambiguous} of them ambiguous) during the outage"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_server_gives_timeouts_then_recovers() {
    let port = free_port();
    let dir = temp_dir("redis-hang");
    let server = Server::start(port, &dir);
    server.wait_ready().await;
    let config = RedisConfig::default().op_timeout(Duration::from_millis(500));
    let store = RedisStore::connect_with(&server.url(), config).await.expect("connect");
    let k = SessionKey::new(unique_namespace("hang"), Scope::Chat(1));
    let first = w(b"x");
    store.write(&k, first, Precondition::Absent, Timestamp::now()).await.unwrap();

    let pid = server.child.as_ref().expect("running").id().to_string();
    redis_postgres_common::run(Command::new("kill").args(["-STOP", &pid]));
    let err = store.load(&k, Timestamp::now()).await.expect_err("a stopped server cannot answer");
    let second = w(b"y");
    let write_err = store.write(&k, second, Precondition::Version(first.version), Timestamp::now()).await;
    let write_err = write_err.expect_err("nor take writes");
    redis_postgres_common::run(Command::new("kill").args(["-CONT", &pid]));
    assert!(err.is_retryable(), "a read that timed out can be retried: {err:?}");
    assert!(write_err.is_ambiguous(), "a write that timed out may have landed: {write_err:?}");

    // The write was queued before the timeout: the store answers again, and the record
    // is the one the ambiguous write proposed.
    wait_until("the store to answer again", Duration::from_secs(30), || async {
        store.load(&k, Timestamp::now()).await.is_ok()
    })
    .await;
    let r = store.load(&k, Timestamp::now()).await.unwrap().expect("the record survives");
    assert!(r.version == first.version || r.version == second.version, "version {}", r.version);
}
