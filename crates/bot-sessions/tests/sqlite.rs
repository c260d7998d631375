//! The conformance suite on the SQLite store, plus what only a file-backed store has to
//! prove: schema ownership, error mapping, batch isolation, and restarts.
//!
//! The multi-process tests (several processes, SIGKILL) are in `sqlite_processes.rs`.
#![cfg(all(feature = "sqlite", feature = "testing"))]

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bot_sessions::store::near_cache::CacheConfig;
use bot_sessions::store::sqlite::{SqliteOptions, SqliteStore};
use bot_sessions::testing::{Counter, unique_namespace, unique_user};
use bot_sessions::{
    DecodePolicy, DynStore, Precondition, Scope, SessionError, SessionKey, Sessions, Store, StoreError, Timestamp,
    Write,
};
use rusqlite::{OptionalExtension, params};

/// A fresh database file under cargo's per-target scratch directory.
fn fresh_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}-{:016x}.db", std::process::id(), rand::random::<u64>()))
}

async fn store() -> DynStore {
    Arc::new(SqliteStore::open(fresh_path("conformance").to_str().unwrap()).await.unwrap())
}

bot_sessions::conformance_tests!(store, near_cache);

/// The same suite with group commit off (one write per transaction): correctness must
/// not depend on batching. (`Durability::Full` is exercised by the kill test.)
mod unbatched {
    use super::*;

    async fn store() -> DynStore {
        let path = fresh_path("unbatched");
        // Without the near cache the SQLite store gives sessions by default, so that
        // the suite also runs every session operation the uncached way.
        Arc::new(SqliteStore::builder().max_batch(1).without_near_cache().open(path).await.unwrap())
    }

    bot_sessions::conformance_tests!(store);
}

fn w(value: &[u8]) -> Write<'_> {
    Write::new(value, 1, None)
}

fn raw(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

#[tokio::test]
async fn sessions_survive_a_reopen() {
    let path = fresh_path("reopen");
    let ns = unique_namespace("reopen");
    let key = SessionKey::new(ns.clone(), Scope::ChatUser { chat: 1, user: unique_user() });
    {
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let s = Sessions::<Counter>::builder(store).namespace(ns.as_str()).build().unwrap();
        for _ in 0..3 {
            s.update(&key, |c| {
                c.n += 1;
                Ok::<_, SessionError>(())
            })
            .await
            .unwrap();
        }
    }
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let s = Sessions::<Counter>::builder(store).namespace(ns.as_str()).build().unwrap();
    assert_eq!(s.get(&key).await.unwrap(), Some(Counter { n: 3 }));
}

#[tokio::test]
async fn table_names_are_validated_and_tables_are_independent() {
    let path = fresh_path("tables");
    for bad in ["x\"; DROP TABLE bot_sessions; --", "", "sqlite_master", "1x", "a-b", "bot_sessions_schema"] {
        let err = SqliteStore::builder().table(bad).open(&path).await.unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{bad:?}: {err}");
    }
    let a = SqliteStore::builder().table("a_sessions").open(&path).await.unwrap();
    let b = SqliteStore::builder().table("b_sessions").open(&path).await.unwrap();
    assert_eq!(a.table(), "a_sessions");
    let key = SessionKey::new(unique_namespace("tables"), Scope::Chat(1));
    let t = Timestamp::now();
    a.write(&key, w(b"in a"), Precondition::Absent, t).await.unwrap();
    assert_eq!(b.load(&key, t).await.unwrap(), None);
    let in_b = w(b"in b");
    assert_eq!(b.write(&key, in_b, Precondition::Absent, t).await.unwrap(), in_b.version);
    assert_eq!(a.load(&key, t).await.unwrap().unwrap().value, b"in a");
    // The URL form takes the same settings.
    let url = format!("sqlite://{}?table=b_sessions", path.display());
    let c = bot_sessions::store::open(&url).await.unwrap();
    assert_eq!(c.load(&key, t).await.unwrap().unwrap().value, b"in b");
    let bad = format!("sqlite://{}?table=no%20way", path.display());
    assert!(matches!(bot_sessions::store::open(&bad).await, Err(StoreError::Config(_))));
}

#[tokio::test]
async fn the_schema_is_versioned_and_a_newer_table_is_left_alone() {
    let path = fresh_path("schema");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let key = SessionKey::new(unique_namespace("schema"), Scope::Chat(1));
    store.write(&key, w(b"kept"), Precondition::Absent, Timestamp::now()).await.unwrap();
    drop(store);

    let conn = raw(&path);
    let version: i64 = conn
        .query_row("SELECT version FROM bot_sessions_schema WHERE table_name = 'bot_sessions'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'bot_sessions' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, ["bot_sessions_by_expiry", "bot_sessions_by_namespace", "bot_sessions_by_user"]);
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(journal, "wal");

    let lease: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'bot_sessions_purger'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(lease, 1, "version 2 adds the purge lease table");

    // Newer code bumped the table to version 3: this code refuses it and changes nothing.
    conn.execute("UPDATE bot_sessions_schema SET version = 3 WHERE table_name = 'bot_sessions'", []).unwrap();
    let err = SqliteStore::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(&err, StoreError::Config(m) if m.contains("newer")), "{err}");
    let value: Vec<u8> = conn.query_row("SELECT value FROM bot_sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(value, b"kept");
    let version: i64 = conn.query_row("SELECT version FROM bot_sessions_schema", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 3);
}

#[tokio::test]
async fn a_locked_database_is_a_retryable_error_naming_the_key() {
    let path = fresh_path("busy");
    let store = SqliteStore::builder().busy_timeout(Duration::from_millis(50)).open(&path).await.unwrap();
    let key = SessionKey::new(unique_namespace("busy"), Scope::Chat(7));
    let t = Timestamp::now();
    let before = store.write(&key, w(b"before"), Precondition::Absent, t).await.unwrap();

    // Another process (here: another connection) holds the write lock.
    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store.write(&key, w(b"during"), Precondition::Any, t).await.unwrap_err();
    match &err {
        StoreError::Backend { backend: "sqlite", key: Some(k), retryable: true, .. } => assert_eq!(k, key.as_str()),
        other => panic!("expected a retryable sqlite error naming the key, got {other:?}"),
    }
    assert!(err.is_retryable());
    // Reads do not wait for writers (WAL).
    assert_eq!(store.load(&key, t).await.unwrap().unwrap().value, b"before");
    other.execute_batch("COMMIT").unwrap();
    // Once the lock is gone the same write goes through.
    let after = w(b"after");
    assert_eq!(store.write(&key, after, Precondition::Version(before), t).await.unwrap(), after.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_write_does_not_fail_its_batch() {
    let path = fresh_path("poison");
    let store = Arc::new(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
    // A trigger makes writes of one key fail inside SQLite, as a full disk or a
    // constraint would.
    raw(&path)
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON bot_sessions WHEN NEW.key LIKE '%poison%'
             BEGIN SELECT RAISE(ABORT, 'poisoned key'); END;",
        )
        .unwrap();
    let ns = unique_namespace("batch");
    let mut handles = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        let scope = if i % 8 == 0 { Scope::Custom { id: format!("poison-{i}"), user: None } } else { Scope::Chat(i) };
        let key = SessionKey::new(ns.clone(), scope);
        handles.push(tokio::spawn(async move {
            let write = w(b"v");
            let r = store.write(&key, write, Precondition::Absent, Timestamp::now()).await;
            (key, r.map(|v| (v, write.version)))
        }));
    }
    let (mut ok, mut failed) = (0, 0);
    for h in handles {
        let (key, r) = h.await.unwrap();
        if key.as_str().contains("poison") {
            match r {
                Err(StoreError::Backend { key: Some(k), retryable: false, source, .. }) => {
                    assert_eq!(k, key.as_str());
                    assert!(source.to_string().contains("poisoned key"), "{source}");
                    failed += 1;
                }
                other => panic!("{key}: expected a backend error, got {other:?}"),
            }
        } else {
            let (stored, proposed) = r.unwrap();
            assert_eq!(stored, proposed, "{key}");
            ok += 1;
        }
    }
    assert_eq!((ok, failed), (56, 8));
    assert_eq!(store.count(Some(&ns), Timestamp::now()).await.unwrap(), 56);
}

#[tokio::test]
async fn memory_paths_are_refused() {
    for location in ["", ":memory:"] {
        assert!(matches!(SqliteStore::open(location).await, Err(StoreError::Config(_))), "{location:?}");
    }
    let err = SqliteStore::open("/nonexistent-dir/sub/bot.db").await.unwrap_err();
    assert!(matches!(err, StoreError::Backend { backend: "sqlite", retryable: false, .. }), "{err:?}");
}

fn wal(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", path.display()))
}

/// Polls `check` until it holds; a deadline catches a hang (not a timing assertion).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: still not the case after two minutes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `future` once, so what it does before its first await (queueing a request
/// for the writer) has happened.
fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

#[tokio::test]
async fn closing_the_store_closes_the_file_cleanly() {
    let path = fresh_path("close");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let key = SessionKey::new(unique_namespace("close"), Scope::Chat(1));
    store.write(&key, w(b"kept"), Precondition::Absent, Timestamp::now()).await.unwrap();
    store.close().await;
    // The last connection checkpointed the WAL into the file and removed it.
    assert!(!wal(&path).exists(), "{} left behind", wal(&path).display());
    let value: Vec<u8> = raw(&path).query_row("SELECT value FROM bot_sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(value, b"kept");
}

/// Outside a runtime nothing is in the way of waiting: the drop itself closes the file.
#[test]
fn dropping_the_store_outside_a_runtime_closes_the_file_at_once() {
    let path = fresh_path("close-sync");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = runtime.block_on(async {
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let key = SessionKey::new(unique_namespace("close"), Scope::Chat(1));
        store.write(&key, w(b"kept"), Precondition::Absent, Timestamp::now()).await.unwrap();
        store
    });
    drop(store);
    assert!(!wal(&path).exists(), "{} left behind", wal(&path).display());
}

/// Dropping the last handle on the runtime while the writer waits for the write lock
/// (another process holds it) returns at once, and the write it had queued still
/// commits once the lock is free.
///
/// Before, the drop joined the writer thread on the async worker: the (single-thread)
/// runtime stood still for the whole busy timeout, the lock was released only after
/// the writer had given up, and the queued write never landed.
#[tokio::test]
async fn dropping_the_last_handle_never_blocks_the_runtime() {
    let path = fresh_path("drop");
    let store = SqliteStore::builder().busy_timeout(Duration::from_secs(60)).open(&path).await.unwrap();
    let key = SessionKey::new(unique_namespace("drop"), Scope::Chat(1));
    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    {
        let mut write = std::pin::pin!(store.write(&key, w(b"queued"), Precondition::Absent, Timestamp::now()));
        assert!(poll_once(write.as_mut()).is_pending(), "the writer waits for the lock");
        // The caller stops waiting; the queued write stands.
    }
    drop(store);
    other.execute_batch("COMMIT").unwrap();
    let landed = || {
        other
            .query_row("SELECT value FROM bot_sessions WHERE key = ?1", [key.as_str()], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .unwrap()
    };
    eventually("the queued write commits after the drop", || landed().is_some()).await;
    assert_eq!(landed().unwrap(), b"queued");
}

/// Settings out of range are a `Config` error when the store opens, in the URL and in
/// the builder; before, `max_batch=<huge>` opened fine and killed the writer thread
/// (a capacity overflow), and a busy timeout over `i32::MAX` milliseconds panicked.
#[tokio::test]
async fn out_of_range_settings_are_config_errors_at_open() {
    let path = fresh_path("config");
    for (setting, name) in [
        ("max_batch=18446744073709551615", "max_batch"),
        ("max_batch=4097", "max_batch"),
        ("max_batch=0", "max_batch"),
        ("busy_timeout_ms=2147483648", "busy_timeout"),
        ("busy_timeout_ms=18446744073709551615", "busy_timeout"),
        ("max_idle_readers=1000000000000", "max_idle_readers"),
        ("load_threads=0", "load_threads"),
        ("load_threads=65", "load_threads"),
        ("purge_batch=0", "purge_batch"),
        ("purge_batch=100001", "purge_batch"),
        ("near_cache=maybe", "near_cache"),
        ("near_cache", "near_cache"),
        ("pipelined=maybe", "pipelined"),
        ("pipelined", "pipelined"),
    ] {
        let url = format!("sqlite://{}?{setting}", path.display());
        match bot_sessions::store::open(&url).await {
            Err(StoreError::Config(message)) => assert!(message.contains(name), "{setting}: {message}"),
            Err(other) => panic!("{setting}: expected a config error, got {other:?}"),
            Ok(_) => panic!("{setting}: opened"),
        }
    }
    let builders = [
        ("max_batch", SqliteStore::builder().max_batch(usize::MAX)),
        ("max_batch", SqliteStore::builder().max_batch(0)),
        ("busy_timeout", SqliteStore::builder().busy_timeout(Duration::MAX)),
        ("busy_timeout", SqliteStore::builder().busy_timeout(Duration::from_millis(i32::MAX as u64 + 1))),
        ("max_idle_readers", SqliteStore::builder().max_idle_readers(usize::MAX)),
        ("load_threads", SqliteStore::builder().load_threads(0)),
        ("purge_batch", SqliteStore::builder().purge_batch(usize::MAX)),
        ("near cache", SqliteStore::builder().near_cache(CacheConfig::default().max_entries(0))),
        ("near cache", SqliteStore::builder().near_cache(CacheConfig::new(10, 0))),
    ];
    for (name, builder) in builders {
        match builder.open(&path).await {
            Err(StoreError::Config(message)) => assert!(message.contains(name), "{name}: {message}"),
            Err(other) => panic!("{name}: expected a config error, got {other:?}"),
            Ok(_) => panic!("{name}: opened"),
        }
    }
    // The limits themselves are fine, and the writer works with them.
    let store = SqliteStore::builder()
        .max_batch(SqliteOptions::MAX_BATCH)
        .busy_timeout(SqliteOptions::MAX_BUSY_TIMEOUT)
        .max_idle_readers(SqliteOptions::MAX_IDLE_READERS)
        .load_threads(SqliteOptions::MAX_LOAD_THREADS)
        .purge_batch(SqliteOptions::MAX_PURGE_BATCH)
        .open(&path)
        .await
        .unwrap();
    let key = SessionKey::new(unique_namespace("config"), Scope::Chat(1));
    let write = w(b"fine");
    assert_eq!(store.write(&key, write, Precondition::Absent, Timestamp::now()).await.unwrap(), write.version);
    let url = format!("sqlite://{}?max_batch=4096&busy_timeout_ms=3600000&purge_batch=1", path.display());
    let by_url = bot_sessions::store::open(&url).await.unwrap();
    assert_eq!(by_url.load(&key, Timestamp::now()).await.unwrap().map(|r| r.value), Some(b"fine".to_vec()));
}

fn bump(c: &mut Counter) -> Result<u64, SessionError> {
    c.n += 1;
    Ok(c.n)
}

/// A value an operator set by hand is stored as TEXT; it loads as its bytes, so the
/// session type's decode policy judges it (before, every load, update and scan of it
/// failed with a non-retryable backend error).
#[tokio::test]
async fn a_value_stored_as_text_reaches_the_decode_policy() {
    let path = fresh_path("text");
    let store: DynStore = Arc::new(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
    let ns = unique_namespace("text");
    let sessions = Sessions::<Counter>::builder(store.clone()).namespace(ns.as_str()).build().unwrap();
    let (edited, broken) = (SessionKey::new(ns.clone(), Scope::Chat(1)), SessionKey::new(ns.clone(), Scope::Chat(2)));
    for k in [&edited, &broken] {
        sessions.update(k, bump).await.unwrap();
    }
    let conn = raw(&path);
    for (k, text) in [(&edited, r#"{"n":41}"#), (&broken, "abc")] {
        conn.execute("UPDATE bot_sessions SET value = ?2 WHERE key = ?1", params![k.as_str(), text]).unwrap();
        let kind: String = conn
            .query_row("SELECT typeof(value) FROM bot_sessions WHERE key = ?1", [k.as_str()], |r| r.get(0))
            .unwrap();
        assert_eq!(kind, "text");
    }
    let t = Timestamp::now();
    assert_eq!(store.load(&edited, t).await.unwrap().unwrap().value, br#"{"n":41}"#);
    assert_eq!(store.load(&broken, t).await.unwrap().unwrap().value, b"abc");
    let page = store.scan(&ns, None, 10, t).await.unwrap();
    assert_eq!(page.items.len(), 2, "the scan lists both");
    assert_eq!(store.count(Some(&ns), t).await.unwrap(), 2);

    // A valid edit is simply the new value; garbage meets the policy.
    assert_eq!(sessions.update(&edited, bump).await.unwrap(), 42);
    match sessions.get(&broken).await {
        Err(SessionError::Decode { key, .. }) => assert_eq!(key, broken.to_string()),
        other => panic!("expected a decode error naming the key, got {other:?}"),
    }
    let reset = Sessions::<Counter>::builder(store.clone())
        .namespace(ns.as_str())
        .on_decode_error(DecodePolicy::Reset)
        .build()
        .unwrap();
    assert_eq!(reset.update(&broken, bump).await.unwrap(), 1, "reset starts over");
}

/// A sessions table without the NOT NULL constraints (as a manual migration might
/// leave it), so rows can hold every kind of bad metadata.
fn loose_table(path: &Path, table: &str) {
    let conn = raw(path);
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    conn.execute_batch(
        "CREATE TABLE bot_sessions_schema (table_name TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL)",
    )
    .unwrap();
    let v1 = include_str!("../src/store/sqlite/schema_v1.sql").replace("{table}", table).replace(" NOT NULL,", ",");
    conn.execute_batch(&v1).unwrap();
    conn.execute("INSERT INTO bot_sessions_schema (table_name, version) VALUES (?1, 1)", [table]).unwrap();
}

/// Metadata of the wrong type is a `Corrupt` error naming the key on load, a failed
/// conditional write or delete, and is skipped and reported by scan and count: it
/// never breaks them, nor purge or forget-user, for any other record. Unconditional
/// writes and deletes replace or remove it, and forget-user erases it.
#[tokio::test]
async fn corrupt_metadata_never_blocks_other_records() {
    let path = fresh_path("corrupt");
    loose_table(&path, "loose");
    let store = SqliteStore::builder().table("loose").open(&path).await.unwrap();
    let ns = unique_namespace("corrupt");
    let (user, other) = (unique_user(), unique_user());
    let k = |chat: i64| SessionKey::new(ns.clone(), Scope::ChatUser { chat, user });
    let t = Timestamp::now();
    let minute = Duration::from_secs(60);

    let good = [k(1), k(2), SessionKey::new(ns.clone(), Scope::ChatUser { chat: 1, user: other })];
    for key in &good {
        store.write(key, w(b"good"), Precondition::Absent, t).await.unwrap();
    }
    let expiring = k(3);
    store
        .write(&expiring, Write::new(b"old", 1, Some(t.saturating_add(minute))), Precondition::Absent, t)
        .await
        .unwrap();
    let corruptions = [
        "version = 'abc'",
        "version = -3",
        "version = NULL",
        "schema_version = NULL",
        "schema_version = 'one'",
        "created_at = 'yesterday'",
        "updated_at = 1.5",
        "expires_at = 'soon'",
        "value = 42",
        "value = NULL",
    ];
    let conn = raw(&path);
    let mut bad = Vec::new();
    for (i, set) in corruptions.iter().enumerate() {
        let key = k(100 + i as i64);
        store.write(&key, w(b"soon bad"), Precondition::Absent, t).await.unwrap();
        conn.execute(&format!("UPDATE loose SET {set} WHERE key = ?1"), [key.as_str()]).unwrap();
        bad.push(key);
    }
    for (key, set) in bad.iter().zip(corruptions) {
        match store.load(key, t).await {
            Err(StoreError::Corrupt { key: named, reason }) => assert_eq!(&named, key.as_str(), "{set}: {reason}"),
            other => panic!("{set}: expected a corrupt record naming the key, got {other:?}"),
        }
    }

    // Scans list the good records, page by page past the bad ones, and report those.
    let page = store.scan(&ns, None, 100, t).await.unwrap();
    let listed: Vec<_> = page.items.iter().map(|(key, _)| key.clone()).collect();
    let mut live = vec![good[0].clone(), good[1].clone(), good[2].clone(), expiring.clone()];
    live.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(listed, live);
    assert!(page.next.is_none());
    assert_eq!(store.corrupt_rows_seen(), bad.len() as u64, "each bad row reported once");
    let (mut cursor, mut paged, mut pages) = (None, Vec::new(), 0);
    loop {
        let page = store.scan(&ns, cursor.as_deref(), 1, t).await.unwrap();
        paged.extend(page.items.into_iter().map(|(key, _)| key));
        pages += 1;
        assert!(pages <= 100, "the scan ends");
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, live, "paging skips the bad rows too");
    assert_eq!(store.count(Some(&ns), t).await.unwrap(), 4, "count skips the bad rows");
    assert!(store.count(None, t).await.unwrap() >= 4);

    // Conditional writes and deletes cannot judge a bad row; unconditional ones can.
    let target = &bad[0];
    for outcome in [
        store.write(target, w(b"x"), Precondition::Absent, t).await.map(drop),
        store.write(target, w(b"x"), Precondition::Version(1), t).await.map(drop),
        store.delete(target, Precondition::Version(1), t).await.map(drop),
        store.delete(target, Precondition::Absent, t).await.map(drop),
    ] {
        assert!(matches!(&outcome, Err(StoreError::Corrupt { key, .. }) if key == target.as_str()), "{outcome:?}");
    }
    let repaired = w(b"repaired");
    assert_eq!(store.write(target, repaired, Precondition::Any, t).await.unwrap(), repaired.version);
    let r = store.load(target, t).await.unwrap().unwrap();
    assert_eq!((r.value.as_slice(), r.version, r.user_id), (&b"repaired"[..], repaired.version, Some(user)));
    assert!(store.delete(&bad[3], Precondition::Any, t).await.unwrap(), "a bad row counts as live");
    assert_eq!(store.load(&bad[3], t).await.unwrap(), None);

    // Purge removes what expired, whatever else is in the table.
    let later = t.saturating_add(2 * minute);
    assert_eq!(store.purge_expired(later).await.unwrap(), 1);
    assert_eq!(store.load(&expiring, later).await.unwrap(), None);

    // Forget-user erases every row of the user, bad ones included.
    let erased = store.forget_user(user, later).await.unwrap();
    assert_eq!(erased, 2 + 1 + (bad.len() as u64 - 2), "good, repaired, and the bad rows left");
    let left: i64 = conn.query_row("SELECT COUNT(*) FROM loose WHERE user_id = ?1", [user], |r| r.get(0)).unwrap();
    assert_eq!(left, 0, "nothing of the user is left");
    assert!(store.load(&good[2], later).await.unwrap().is_some(), "the other user's record stays");
}

/// A purge of a backlog runs in chunks, each its own transaction, and a write queued
/// behind it commits between two chunks instead of after the whole backlog. Before,
/// the purge was one DELETE inside a group-commit batch: every row went before the
/// write, all in one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_backlog_runs_in_chunks_with_writes_between() {
    const BACKLOG: i64 = 2_000; // four chunks of the default 500
    let path = fresh_path("purge");
    let store = SqliteStore::builder().busy_timeout(Duration::from_secs(60)).open(&path).await.unwrap();
    let ns = unique_namespace("purge");
    let now = Timestamp::now();
    let past = now.as_millis() - 3_600_000;
    let mut conn = raw(&path);
    let tx = conn.transaction().unwrap();
    for i in 0..BACKLOG {
        let key = SessionKey::new(ns.clone(), Scope::Chat(i));
        tx.execute(
            "INSERT INTO bot_sessions (key, namespace, user_id, value, version, schema_version, created_at, updated_at, expires_at)
             VALUES (?1, ?2, NULL, x'7b7d', ?3, 1, ?4, ?4, ?4)",
            params![key.as_str(), ns.as_str(), i + 1, past],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    // Every deleted row notes whether the marker write had committed by then.
    let marker = SessionKey::new(ns.clone(), Scope::Chat(-1));
    conn.execute_batch(&format!(
        "CREATE TABLE purge_log (seq INTEGER PRIMARY KEY, marker_seen INTEGER NOT NULL);
         CREATE TRIGGER log_purge AFTER DELETE ON bot_sessions BEGIN
             INSERT INTO purge_log (marker_seen)
             VALUES ((SELECT COUNT(*) FROM bot_sessions WHERE key = '{}'));
         END;",
        marker.as_str().replace('\'', "''")
    ))
    .unwrap();

    // Queue the purge, then the write, while another connection holds the write lock.
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut purge = Box::pin(store.purge_expired(now));
    assert!(poll_once(purge.as_mut()).is_pending());
    let write = w(b"marker");
    let mut marked = Box::pin(store.write(&marker, write, Precondition::Absent, now));
    assert!(poll_once(marked.as_mut()).is_pending());
    conn.execute_batch("COMMIT").unwrap();

    assert_eq!(purge.await.unwrap(), BACKLOG as u64, "every expired record purged");
    assert_eq!(marked.await.unwrap(), write.version);
    let (logged, after_marker): (i64, i64) = conn
        .query_row("SELECT COUNT(*), COALESCE(SUM(marker_seen), 0) FROM purge_log", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(logged, BACKLOG);
    // The first chunk runs first: the write was queued behind it.
    assert!(after_marker <= BACKLOG - 500, "the first chunk committed before the write: {after_marker}");
    assert!(after_marker > 0, "the write committed while the purge was under way");
}

/// The background purge takes a lease in `<table>_purger`: while another process
/// holds a live one, a round is skipped; an expired lease (its holder died) is taken
/// over; a finished round gives the lease back at once. Before, every process purged
/// every round.
#[tokio::test]
async fn background_purges_take_turns_through_a_lease() {
    let path = fresh_path("lease");
    let a = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let b = SqliteStore::open(path.to_str().unwrap()).await.unwrap(); // as another process
    let ns = unique_namespace("lease");
    let minute = Duration::from_secs(60);
    let t0 = Timestamp::now();
    let expiring =
        |i: i64| (SessionKey::new(ns.clone(), Scope::Chat(i)), Write::new(b"x", 1, Some(t0.saturating_add(minute))));
    for i in 0..3 {
        let (key, write) = expiring(i);
        a.write(&key, write, Precondition::Absent, t0).await.unwrap();
    }
    let t1 = t0.saturating_add(2 * minute);
    let conn = raw(&path);
    conn.execute(
        "INSERT INTO bot_sessions_purger (id, holder, lease_until) VALUES (1, 42, ?1)",
        [t1.saturating_add(minute).as_millis()],
    )
    .unwrap();
    let expired = || {
        conn.query_row("SELECT COUNT(*) FROM bot_sessions WHERE expires_at <= ?1", [t1.as_millis()], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
    };

    assert_eq!(a.purge_expired_background(t1).await.unwrap(), 0, "another holder's live lease: skipped");
    assert_eq!(b.purge_expired_background(t1).await.unwrap(), 0);
    assert_eq!(expired(), 3, "nothing purged");

    let t2 = t1.saturating_add(minute);
    assert_eq!(a.purge_expired_background(t2).await.unwrap(), 3, "an expired lease is taken over");
    let until: i64 = conn.query_row("SELECT lease_until FROM bot_sessions_purger", [], |r| r.get(0)).unwrap();
    assert!(until < t2.as_millis(), "given back at the end of the round");
    for i in 3..5 {
        let (key, write) = expiring(i);
        b.write(&key, write, Precondition::Absent, t0).await.unwrap();
    }
    assert_eq!(b.purge_expired_background(t2).await.unwrap(), 2, "the next round anywhere may purge");
    // An explicit purge does not ask for the lease.
    conn.execute(
        "UPDATE bot_sessions_purger SET holder = 42, lease_until = ?1",
        [t2.saturating_add(minute).as_millis()],
    )
    .unwrap();
    let (key, write) = expiring(9);
    a.write(&key, write, Precondition::Absent, t0).await.unwrap();
    assert_eq!(a.purge_expired_background(t2).await.unwrap(), 0);
    assert_eq!(a.purge_expired(t2).await.unwrap(), 1);
}

/// Sessions on an SQLite store get a near cache by default (the store's bounds), which
/// the store's builder, its URL and the sessions' builder can each turn off; with it,
/// an update of a key this process wrote last skips the load.
#[tokio::test]
async fn sessions_get_the_stores_near_cache_by_default_and_can_turn_it_off() {
    let path = fresh_path("near-default");
    let ns = unique_namespace("near-default");
    let key = SessionKey::new(ns.clone(), Scope::Chat(unique_user()));
    let store: DynStore = Arc::new(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
    assert_eq!(store.default_near_cache(), Some(SqliteOptions::DEFAULT_NEAR_CACHE));
    let cached = Sessions::<Counter>::builder(store.clone()).namespace(ns.as_str()).build().unwrap();
    let near = cached.near_cache().expect("a near cache by default");
    assert_eq!(near.config(), SqliteOptions::DEFAULT_NEAR_CACHE);
    for expected in 1..=5 {
        assert_eq!(cached.update(&key, bump).await.unwrap(), expected);
    }
    // The first update loaded (a miss); the four after it found their key cached.
    let stats = near.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (4, 1, 1), "{stats:?}");

    let plain = Sessions::<Counter>::builder(store).namespace(ns.as_str()).without_near_cache().build().unwrap();
    assert!(plain.near_cache().is_none());
    assert_eq!(plain.update(&key, bump).await.unwrap(), 6);

    let off_url = format!("sqlite://{}?near_cache=off", path.display());
    let off = bot_sessions::store::open(&off_url).await.unwrap();
    assert_eq!(off.default_near_cache(), None);
    let by_url = Sessions::<Counter>::builder(off).namespace(ns.as_str()).build().unwrap();
    assert!(by_url.near_cache().is_none());
    assert_eq!(by_url.update(&key, bump).await.unwrap(), 7);
    let off = SqliteStore::builder().without_near_cache().open(&path).await.unwrap();
    assert_eq!(off.default_near_cache(), None);
    let on_url = format!("sqlite://{}?near_cache=on", path.display());
    let on = bot_sessions::store::open(&on_url).await.unwrap();
    assert_eq!(on.default_near_cache(), Some(SqliteOptions::DEFAULT_NEAR_CACHE));

    // Pipelined updates: on by default, off by URL or builder (then updates of a key
    // wait for each other's commit, as on the other backends, and still count).
    assert!(on.pipeline().is_some(), "pipelined updates are on by default");
    let unpiped = bot_sessions::store::open(&format!("sqlite://{}?pipelined=off", path.display())).await.unwrap();
    assert!(unpiped.pipeline().is_none());
    assert!(SqliteStore::builder().pipelined_updates(false).open(&path).await.unwrap().pipeline().is_none());
    let unpiped = Sessions::<Counter>::builder(unpiped).namespace(ns.as_str()).build().unwrap();
    assert_eq!(unpiped.update(&key, bump).await.unwrap(), 8);

    // The cached handle's copy is stale now (three writes went around it): its next update
    // fails its compare-and-set, loads and runs again, and counts all of them.
    assert_eq!(cached.update(&key, bump).await.unwrap(), 9);
    assert_eq!(cached.get(&key).await.unwrap(), Some(Counter { n: 9 }));
}

/// A cached key's whole lifetime changed behind the cache (another process, the
/// operator tool): its record deleted, created again, overwritten by hand. An update
/// through the stale cache never writes over what it did not see; it starts from what
/// is stored now.
#[tokio::test]
async fn a_stale_cached_copy_never_overwrites_what_changed_behind_it() {
    let path = fresh_path("near-stale");
    let ns = unique_namespace("near-stale");
    let key = SessionKey::new(ns.clone(), Scope::Chat(unique_user()));
    let cached = Sessions::<Counter>::builder(SqliteStore::open(path.to_str().unwrap()).await.unwrap())
        .namespace(ns.as_str())
        .build()
        .unwrap();
    let other = Sessions::<Counter>::builder(SqliteStore::open(path.to_str().unwrap()).await.unwrap())
        .namespace(ns.as_str())
        .without_near_cache()
        .build()
        .unwrap();
    for expected in 1..=3 {
        assert_eq!(cached.update(&key, bump).await.unwrap(), expected);
    }
    // Deleted behind the cache: the next update starts from a fresh session.
    assert!(other.delete(&key).await.unwrap());
    assert_eq!(cached.update(&key, bump).await.unwrap(), 1);
    // Deleted and created again behind the cache (a new version): counted from there.
    assert!(other.delete(&key).await.unwrap());
    for _ in 0..10 {
        other.update(&key, bump).await.unwrap();
    }
    assert_eq!(cached.update(&key, bump).await.unwrap(), 11);
    // Overwritten by hand in the file, as an operator might.
    raw(&path)
        .execute(
            &format!("UPDATE {} SET value = ?1, version = version + 1 WHERE key = ?2", SqliteOptions::DEFAULT_TABLE),
            params![br#"{"n":100}"#.to_vec(), key.as_str()],
        )
        .unwrap();
    assert_eq!(cached.update(&key, bump).await.unwrap(), 101);
    // Edited by hand without a thought for the version: the store's trigger gives the
    // row a new one, so the stale copy still fails its compare-and-set.
    let table = SqliteOptions::DEFAULT_TABLE;
    let version = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row(&format!("SELECT version FROM {table} WHERE key = ?1"), [key.as_str()], |r| r.get(0)).unwrap()
    };
    let conn = raw(&path);
    let before = version(&conn);
    conn.execute(&format!("UPDATE {table} SET value = ?1 WHERE key = ?2"), params![r#"{"n":200}"#, key.as_str()])
        .unwrap();
    let edited = version(&conn);
    assert_ne!(edited, before, "a changed row gets a new version");
    assert!(edited > 0);
    // A rewrite of identical content is no change: its version stays.
    conn.execute(&format!("UPDATE {table} SET value = value, expires_at = expires_at WHERE key = ?1"), [key.as_str()])
        .unwrap();
    assert_eq!(version(&conn), edited);
    assert_eq!(cached.update(&key, bump).await.unwrap(), 201);
    // Alternating writers: every update counted.
    for _ in 0..20 {
        cached.update(&key, bump).await.unwrap();
        other.update(&key, bump).await.unwrap();
    }
    assert_eq!(other.get(&key).await.unwrap(), Some(Counter { n: 241 }));
}
