//! The conformance suite on the SQLite store, plus what only a file-backed store has to
//! prove: schema ownership, error mapping, batch isolation, and restarts.
//!
//! The multi-process tests (several processes, SIGKILL) are in `sqlite_processes.rs`.
#![cfg(all(feature = "sqlite", feature = "testing"))]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::sqlite::SqliteStore;
use bot_sessions::testing::{Counter, unique_namespace, unique_user};
use bot_sessions::{
    DynStore, Precondition, Scope, SessionError, SessionKey, Sessions, Store, StoreError, Timestamp, Write,
};

/// A fresh database file under cargo's per-target scratch directory.
fn fresh_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}-{:016x}.db", std::process::id(), rand::random::<u64>()))
}

async fn store() -> DynStore {
    Arc::new(SqliteStore::open(fresh_path("conformance").to_str().unwrap()).await.unwrap())
}

bot_sessions::conformance_tests!(store);

/// The same suite with group commit off (one write per transaction): correctness must
/// not depend on batching. (`Durability::Full` is exercised by the kill test.)
mod unbatched {
    use super::*;

    async fn store() -> DynStore {
        let path = fresh_path("unbatched");
        Arc::new(SqliteStore::builder().max_batch(1).open(path).await.unwrap())
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
    assert_eq!(b.write(&key, w(b"in b"), Precondition::Absent, t).await.unwrap(), 1);
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
    assert_eq!(version, 1);
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

    // Newer code bumped the table to version 2: this code refuses it and changes nothing.
    conn.execute("UPDATE bot_sessions_schema SET version = 2 WHERE table_name = 'bot_sessions'", []).unwrap();
    let err = SqliteStore::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(&err, StoreError::Config(m) if m.contains("newer")), "{err}");
    let value: Vec<u8> = conn.query_row("SELECT value FROM bot_sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(value, b"kept");
    let version: i64 = conn.query_row("SELECT version FROM bot_sessions_schema", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 2);
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
async fn a_corrupt_row_is_reported_with_its_key() {
    let path = fresh_path("corrupt");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let ns = unique_namespace("corrupt");
    let key = SessionKey::new(ns.clone(), Scope::Chat(1));
    let t = Timestamp::now();
    store.write(&key, w(b"x"), Precondition::Absent, t).await.unwrap();
    raw(&path).execute("UPDATE bot_sessions SET version = -3", []).unwrap();
    for err in [
        store.load(&key, t).await.unwrap_err(),
        store.write(&key, w(b"y"), Precondition::Any, t).await.unwrap_err(),
        store.scan(&ns, None, 10, t).await.unwrap_err(),
    ] {
        assert!(matches!(&err, StoreError::Corrupt { key: k, .. } if k == key.as_str()), "{err:?}");
    }
}

#[tokio::test]
async fn memory_paths_are_refused() {
    for location in ["", ":memory:"] {
        assert!(matches!(SqliteStore::open(location).await, Err(StoreError::Config(_))), "{location:?}");
    }
    let err = SqliteStore::open("/nonexistent-dir/sub/bot.db").await.unwrap_err();
    assert!(matches!(err, StoreError::Backend { backend: "sqlite", retryable: false, .. }), "{err:?}");
}

#[tokio::test]
async fn dropping_the_store_closes_the_file_cleanly() {
    let path = fresh_path("close");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let key = SessionKey::new(unique_namespace("close"), Scope::Chat(1));
    store.write(&key, w(b"kept"), Precondition::Absent, Timestamp::now()).await.unwrap();
    drop(store);
    // The last connection checkpointed the WAL into the file and removed it.
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    assert!(!wal.exists(), "{} left behind", wal.display());
    let value: Vec<u8> = raw(&path).query_row("SELECT value FROM bot_sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(value, b"kept");
}
