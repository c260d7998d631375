//! Pipelined updates of one key on the SQLite store (`session/pipeline.rs`): an
//! update releases its key once its write is queued in the writer, and the next update
//! of the key builds on the queued value, so several updates of one key share a
//! transaction. Proven here: that it happens (fewer transactions than updates), that
//! a failed write fails the chain built on it and every update of it runs again on a
//! committed value, that an update writing nothing over a queued value waits for it,
//! and that every update of one hot key counts with two `Sessions` on one file and
//! conflicts injected.
#![cfg(all(feature = "sqlite", feature = "testing"))]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bot_sessions::store::sqlite::SqliteStore;
use bot_sessions::testing::{Counter, hammer, unique_namespace};
use bot_sessions::{Precondition, Scope, SessionError, SessionKey, Sessions, Store, Timestamp, Write};
use rusqlite::params;

fn fresh_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-pipeline-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}-{:016x}.db", std::process::id(), rand::random::<u64>()))
}

/// Another connection to the file, as another process would have.
fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// A store on `path` with pipelined updates (the default, named so these tests keep
/// testing the pipeline whatever the default becomes: see
/// `SqliteOptions::pipelined_updates`).
async fn pipelined(path: &Path) -> SqliteStore {
    SqliteStore::builder().pipelined_updates(true).open(path).await.unwrap()
}

fn sessions(store: &Arc<SqliteStore>, ns: &str) -> Sessions<Counter> {
    Sessions::<Counter>::builder(store.clone()).namespace(ns).build().unwrap()
}

async fn bump(sessions: &Sessions<Counter>, key: &SessionKey) -> Result<u64, SessionError> {
    sessions
        .update(key, |c| {
            c.n += 1;
            Ok::<_, SessionError>(c.n)
        })
        .await
}

/// Lets the tasks spawned so far run up to their first wait (the writer, held up by
/// another connection's write lock, answers nobody meanwhile). A pause, not a timing
/// assertion: a task that is late only shares fewer transactions.
async fn settle_in() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// While another connection holds the file's write lock, 32 updates of one key queue
/// one after the other (each built on the last one's queued value), and the writer
/// commits them together once the lock is gone: fewer transactions than updates, and
/// not one closure run twice. Holding each update's key until its commit (the design
/// before pipelining) makes exactly one transaction per update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_updates_of_one_key_share_transactions() {
    let path = fresh_path("share");
    let store = Arc::new(pipelined(&path).await);
    let ns = unique_namespace("pipeline");
    let sessions = sessions(&store, ns.as_str());
    let key = SessionKey::new(ns.clone(), Scope::Chat(1));
    bump(&sessions, &key).await.unwrap();

    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let before = store.write_transactions();
    let runs = Arc::new(AtomicU64::new(0));
    const UPDATES: u64 = 32;
    let mut tasks = Vec::new();
    for _ in 0..UPDATES {
        let (sessions, key, runs) = (sessions.clone(), key.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            sessions
                .update(&key, |c| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    c.n += 1;
                    Ok::<_, SessionError>(c.n)
                })
                .await
        }));
    }
    settle_in().await;
    other.execute_batch("COMMIT").unwrap();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (2..=UPDATES + 1).collect::<Vec<_>>(), "each update saw the one before it");
    assert_eq!(sessions.get(&key).await.unwrap().map(|c| c.n), Some(UPDATES + 1));
    assert_eq!(runs.load(Ordering::SeqCst), UPDATES, "no update ran twice");
    let transactions = store.write_transactions() - before;
    assert!(transactions < UPDATES, "{UPDATES} updates of one key took {transactions} transactions");
}

/// A write that fails (another process moved the key on while it was queued) fails
/// the update queued over it too, and an update that wrote nothing over it: each runs
/// again on the committed value, and none returns what was never committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_fails_the_chain_built_on_it() {
    let path = fresh_path("chain");
    let store = Arc::new(pipelined(&path).await);
    let ns = unique_namespace("chain");
    let sessions = sessions(&store, ns.as_str());
    let key = SessionKey::new(ns.clone(), Scope::Chat(1));
    for _ in 0..5 {
        bump(&sessions, &key).await.unwrap();
    }

    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // First: an increment (queued, its key released); then an increment and a read
    // through `update` that changes nothing, both built on the queued value.
    let first = tokio::spawn({
        let (sessions, key) = (sessions.clone(), key.clone());
        async move { bump(&sessions, &key).await }
    });
    settle_in().await;
    let second = tokio::spawn({
        let (sessions, key) = (sessions.clone(), key.clone());
        async move { bump(&sessions, &key).await }
    });
    settle_in().await;
    let reader_runs = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn({
        let (sessions, key, runs) = (sessions.clone(), key.clone(), reader_runs.clone());
        async move {
            sessions
                .update(&key, |c| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, SessionError>(c.n)
                })
                .await
        }
    });
    settle_in().await;
    // Another process sets the counter to 100 under a version of its own, before the
    // writer gets to the queued writes.
    let changed = other
        .execute(
            "UPDATE bot_sessions SET value = ?1, version = ?2 WHERE key = ?3",
            params![br#"{"n":100}"#.to_vec(), 4_242_424_242i64, key.as_str()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    other.execute_batch("COMMIT").unwrap();

    let mut written = vec![first.await.unwrap().unwrap(), second.await.unwrap().unwrap()];
    written.sort_unstable();
    assert_eq!(written, vec![101, 102], "both increments ran again on the committed 100");
    let read = reader.await.unwrap().unwrap();
    assert!(read >= 100, "the read returned {read}, a value that was never committed");
    assert!(reader_runs.load(Ordering::SeqCst) >= 2, "the read built on the failed write and was not run again");
    assert_eq!(sessions.get(&key).await.unwrap().map(|c| c.n), Some(102));
}

/// A handler-scoped session opened while an update's write is queued starts from that
/// write once it is committed, so its own commit does not conflict; and an update
/// cancelled after queueing its write strands nothing (the write stands).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_waits_for_queued_writes_and_cancelled_updates_strand_nothing() {
    let path = fresh_path("open");
    let store = Arc::new(pipelined(&path).await);
    let ns = unique_namespace("open");
    let sessions = sessions(&store, ns.as_str());
    let key = SessionKey::new(ns.clone(), Scope::Chat(1));
    bump(&sessions, &key).await.unwrap();

    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let queued = tokio::spawn({
        let (sessions, key) = (sessions.clone(), key.clone());
        async move { bump(&sessions, &key).await }
    });
    settle_in().await;
    let cancelled = tokio::spawn({
        let (sessions, key) = (sessions.clone(), key.clone());
        async move { bump(&sessions, &key).await }
    });
    settle_in().await;
    cancelled.abort();
    let opened = tokio::spawn({
        let (sessions, key) = (sessions.clone(), key.clone());
        async move {
            let mut s = sessions.open(&key).await?;
            s.n += 10;
            let n = s.n;
            s.commit().await?;
            Ok::<_, SessionError>(n)
        }
    });
    settle_in().await;
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(queued.await.unwrap().unwrap(), 2);
    assert!(cancelled.await.unwrap_err().is_cancelled());
    // The cancelled update's write was queued, so it stands: the session opened after
    // it sees it.
    assert_eq!(opened.await.unwrap().unwrap(), 13);
    assert_eq!(bump(&sessions, &key).await.unwrap(), 14);
    assert_eq!(sessions.get(&key).await.unwrap().map(|c| c.n), Some(14));
}

/// Every update of one hot key counts: many tasks on two `Sessions` over two stores on
/// one file (two writers, as two processes would have), with a third writer moving the
/// key on under them (the same value, a new version: every compare-and-set queued
/// over the old one fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_update_of_a_hot_key_counts_with_two_sessions_and_injected_conflicts() {
    let path = fresh_path("hot");
    let a = Arc::new(pipelined(&path).await);
    let b = Arc::new(pipelined(&path).await);
    let meddler = pipelined(&path).await;
    let ns = unique_namespace("hot");
    let (sa, sb) = (sessions(&a, ns.as_str()), sessions(&b, ns.as_str()));
    let hot = SessionKey::new(ns.clone(), Scope::Chat(0));
    let cold: Vec<SessionKey> = (1..=4).map(|i| SessionKey::new(ns.clone(), Scope::Chat(i))).collect();
    const TASKS: usize = 24;
    const UPDATES: usize = 40;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let injected = Arc::new(AtomicU64::new(0));
    let meddling = tokio::spawn({
        let (stop, injected, hot) = (stop.clone(), injected.clone(), hot.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                let now = Timestamp::now();
                if let Some(record) = meddler.load(&hot, now).await.unwrap() {
                    let write = Write::new(&record.value, record.schema_version, record.expires_at);
                    if meddler.write(&hot, write, Precondition::Version(record.version), now).await.is_ok() {
                        injected.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }
    });
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let sessions = if t % 2 == 0 { sa.clone() } else { sb.clone() };
        let (hot, cold) = (hot.clone(), cold.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..UPDATES {
                // Three in four on the hot key.
                let key = if i % 4 == 3 { &cold[(t + i) % cold.len()] } else { &hot };
                bump(&sessions, key).await?;
            }
            Ok::<_, SessionError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    meddling.await.unwrap();
    let mut total = sa.get(&hot).await.unwrap().map_or(0, |c| c.n);
    let hot_updates = (TASKS * UPDATES - TASKS * UPDATES / 4) as u64;
    assert_eq!(total, hot_updates, "the hot key lost or doubled updates");
    for k in &cold {
        total += sb.get(k).await.unwrap().map_or(0, |c| c.n);
    }
    assert_eq!(total, (TASKS * UPDATES) as u64);
    assert!(injected.load(Ordering::SeqCst) > 0, "no conflict was injected");
}

/// A process's first moments on a fresh file (the writer thread counts as contended
/// for its first milliseconds, so every write is queued and chains form at once): 40
/// fresh files, 8 tasks x 3 updates over 4 keys each, and every key holds exactly
/// the updates made to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_update_counts_in_a_fresh_files_first_moments() {
    for round in 0..40 {
        let path = fresh_path("fresh");
        let store = Arc::new(pipelined(&path).await);
        let ns = unique_namespace("fresh");
        let sessions = sessions(&store, ns.as_str());
        let keys: Vec<SessionKey> = (0..4).map(|i| SessionKey::new(ns.clone(), Scope::Chat(i))).collect();
        hammer(&sessions, &keys, 8, 3).await.unwrap();
        for key in &keys {
            // hammer spreads 8 x 3 updates round-robin: 6 per key.
            assert_eq!(sessions.get(key).await.unwrap().map(|c| c.n), Some(6), "round {round}, {key}");
        }
    }
}
