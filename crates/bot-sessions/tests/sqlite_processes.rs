//! The SQLite store across OS processes: several processes updating the same keys,
//! and writers killed with SIGKILL in the middle of their work.
//!
//! Each test re-runs this test binary as its children (see
//! `bot_sessions::testing::process`); the child side of a test is the branch taken when
//! `child_role()` is set.
#![cfg(all(feature = "sqlite", feature = "testing", unix))]

use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bot_sessions::testing::{Counter, hammer, process, total, unique_namespace};
use bot_sessions::{Namespace, Scope, SessionError, SessionKey, Sessions, Timestamp};

const DB_ENV: &str = "BOT_SESSIONS_TEST_DB";
const NS_ENV: &str = "BOT_SESSIONS_TEST_NS";
/// How long any child may take before the test gives up on it (a hang, not a timing
/// assertion).
const CHILD_DEADLINE: Duration = Duration::from_secs(300);

fn fresh_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}-{:016x}.db", std::process::id(), rand::random::<u64>()))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child needs {name}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn counters(url: &str, ns: &Namespace) -> Sessions<Counter> {
    let store = bot_sessions::store::open(url).await.unwrap();
    Sessions::<Counter>::builder(store).namespace(ns.as_str()).build().unwrap()
}

fn keys(ns: &Namespace, n: i64) -> Vec<SessionKey> {
    (0..n).map(|i| SessionKey::new(ns.clone(), Scope::Chat(i))).collect()
}

/// Waits for every child to exit successfully. Fails as soon as one fails (killing the
/// rest) or when the deadline passes.
fn wait_all(mut children: Vec<Child>, what: &str) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    let mut running = children.len();
    while running > 0 {
        running = 0;
        for i in 0..children.len() {
            match children[i].try_wait().unwrap() {
                Some(status) if !status.success() => {
                    children.iter_mut().for_each(|c| drop(c.kill()));
                    panic!("{what} {i} failed: {status}");
                }
                Some(_) => {}
                None => running += 1,
            }
        }
        if Instant::now() > deadline {
            children.iter_mut().for_each(|c| drop(c.kill()));
            panic!("{what}: {running} did not finish within {CHILD_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a killed child to be reaped.
fn reap(mut child: Child) -> std::process::ExitStatus {
    child.wait().unwrap()
}

const PROCESSES: usize = 2;
const TASKS: usize = 32;
const UPDATES: usize = 300;
const KEYS: i64 = 4;

/// 2 processes x 32 tasks x 300 updates of the same 4 keys: 19,200 increments, each
/// counted once, 4,800 per key.
#[test]
fn processes_updating_the_same_keys_sum_exactly() {
    const TEST: &str = "processes_updating_the_same_keys_sum_exactly";
    if process::child_role().is_some() {
        return runtime().block_on(sum_child());
    }
    let path = fresh_path("processes");
    let url = format!("sqlite://{}", path.display());
    let ns = unique_namespace("procs");
    let children: Vec<Child> = (0..PROCESSES)
        .map(|i| process::spawn_child(TEST, &i.to_string(), &[(DB_ENV, &url), (NS_ENV, ns.as_str())]).unwrap())
        .collect();
    wait_all(children, "child");
    runtime().block_on(async {
        let sessions = counters(&url, &ns).await;
        let keys = keys(&ns, KEYS);
        let expected = (PROCESSES * TASKS * UPDATES) as u64;
        assert_eq!(expected, 19_200);
        assert_eq!(total(&sessions, &keys).await.unwrap(), expected, "every update of every process counted");
        for k in &keys {
            assert!(sessions.store().load(k, Timestamp::now()).await.unwrap().is_some(), "{k} written");
            let n = sessions.get(k).await.unwrap().unwrap().n;
            assert_eq!(n, expected / KEYS as u64, "{k}");
        }
    });
}

async fn sum_child() {
    let url = env(DB_ENV);
    let ns = Namespace::new(&env(NS_ENV)).unwrap();
    let sessions = counters(&url, &ns).await;
    // Start together, so the processes really overlap.
    process::barrier(&sessions, &ns, PROCESSES as u64, CHILD_DEADLINE).await.unwrap();
    hammer(&sessions, &keys(&ns, KEYS), TASKS, UPDATES).await.unwrap();
}

/// Several processes creating the same new file at once: each ends up with the table
/// (created once) and its write in it.
#[test]
fn processes_creating_one_file_at_once() {
    const TEST: &str = "processes_creating_one_file_at_once";
    const OPENERS: usize = 8;
    if let Some(role) = process::child_role() {
        return runtime().block_on(async {
            let ns = Namespace::new(&env(NS_ENV)).unwrap();
            let sessions = counters(&env(DB_ENV), &ns).await;
            let me = SessionKey::new(ns, Scope::Chat(role.parse().unwrap()));
            sessions
                .update(&me, |c| {
                    c.n += 1;
                    Ok::<_, SessionError>(())
                })
                .await
                .unwrap();
        });
    }
    let path = fresh_path("create");
    let url = format!("sqlite://{}", path.display());
    let ns = unique_namespace("create");
    let children = (0..OPENERS)
        .map(|i| process::spawn_child(TEST, &i.to_string(), &[(DB_ENV, &url), (NS_ENV, ns.as_str())]).unwrap())
        .collect();
    wait_all(children, "opener");
    runtime().block_on(async {
        let sessions = counters(&url, &ns).await;
        assert_eq!(total(&sessions, &keys(&ns, OPENERS as i64)).await.unwrap(), OPENERS as u64);
    });
}

const KILLS: usize = 20;
const WRITER_TASKS: usize = 8;
const KILL_KEYS: usize = 4;

/// A writer is SIGKILLed in the middle of its write loop, 20 times (alternating
/// durability normal and full, and pipelined updates on and off). After each kill every write the child acknowledged is
/// in the file, and nothing more than what was in flight; at the end `PRAGMA
/// integrity_check` is `ok`.
///
/// The child prints `ACK <key> <n>` after each `update` returned; the parent kills it
/// once it has read a varying number of those lines (never after a fixed sleep).
#[test]
fn killed_writers_lose_no_acknowledged_write() {
    const TEST: &str = "killed_writers_lose_no_acknowledged_write";
    if process::child_role().is_some() {
        return runtime().block_on(writer_child());
    }
    let path = fresh_path("kill");
    let ns = unique_namespace("kill");
    let rt = runtime();
    let mut stored = [0u64; KILL_KEYS];
    let mut total_acks = 0;
    for round in 0..KILLS {
        let durability = if round % 2 == 0 { "normal" } else { "full" };
        // Both halves have early kills (kill_after 1 in round 0, 2 in round 13).
        let pipelined = if round < KILLS / 2 { "on" } else { "off" };
        let url = format!("sqlite://{}?durability={durability}&pipelined={pipelined}", path.display());
        let mut child = process::spawn_child(TEST, "writer", &[(DB_ENV, &url), (NS_ENV, ns.as_str())]).unwrap();
        let lines = ack_lines(&mut child);
        let mut acked = stored;
        let kill_after = 1 + (round * 37) % 160;
        for _ in 0..kill_after {
            let (k, n) = lines.recv_timeout(CHILD_DEADLINE).unwrap_or_else(|e| {
                child.kill().ok();
                panic!("round {round}: the writer stopped acknowledging ({e})");
            });
            acked[k] = acked[k].max(n);
            total_acks += 1;
        }
        child.kill().unwrap();
        // Lines the child printed before it died were acknowledged too.
        for (k, n) in lines.iter() {
            acked[k] = acked[k].max(n);
            total_acks += 1;
        }
        let status = reap(child);
        assert_eq!(status.signal(), Some(9), "round {round}: the writer was killed, not finished: {status}");

        rt.block_on(async {
            let sessions = counters(&format!("sqlite://{}", path.display()), &ns).await;
            for (k, key) in keys(&ns, KILL_KEYS as i64).iter().enumerate() {
                let n = sessions.get(key).await.unwrap().map_or(0, |c| c.n);
                assert!(n >= acked[k], "round {round}, {key}: acknowledged {} but found {n}", acked[k]);
                // At most one unacknowledged update per writer task of that key.
                let in_flight = (WRITER_TASKS / KILL_KEYS) as u64;
                assert!(n <= acked[k] + in_flight, "round {round}, {key}: {n} is more than was ever written");
                stored[k] = n;
            }
        });
    }
    assert!(total_acks >= KILLS, "the children acknowledged writes");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    eprintln!("{KILLS} kills, {total_acks} acknowledged writes, final counters {stored:?}");
}

/// The child's `ACK <key> <n>` lines, parsed on a thread (so the parent can give up on
/// a hung child instead of blocking on its pipe forever).
fn ack_lines(child: &mut Child) -> mpsc::Receiver<(usize, u64)> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(rest) = process::tagged(&line, "ACK ") else { continue };
            let (k, n) = rest.split_once(' ').unwrap();
            if tx.send((k.parse().unwrap(), n.parse().unwrap())).is_err() {
                break;
            }
        }
    });
    rx
}

async fn writer_child() {
    let url = env(DB_ENV);
    let ns = Namespace::new(&env(NS_ENV)).unwrap();
    let sessions = counters(&url, &ns).await;
    let keys = keys(&ns, KILL_KEYS as i64);
    let mut tasks = Vec::new();
    for t in 0..WRITER_TASKS {
        let (sessions, key) = (sessions.clone(), keys[t % KILL_KEYS].clone());
        tasks.push(tokio::spawn(async move {
            // Bounded, so an orphaned child ends by itself.
            for _ in 0..1_000_000 {
                let n = sessions
                    .update(&key, |c| {
                        c.n += 1;
                        Ok::<_, SessionError>(c.n)
                    })
                    .await
                    .unwrap();
                let mut out = std::io::stdout().lock();
                if writeln!(out, "ACK {} {n}", t % KILL_KEYS).and_then(|()| out.flush()).is_err() {
                    // The parent is gone.
                    std::process::exit(0);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
