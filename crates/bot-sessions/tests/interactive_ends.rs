//! Ends heard at once: a handle waiting in one process resolves soon after another
//! process ends its session, through the store's end notices (Redis pub/sub,
//! PostgreSQL LISTEN/NOTIFY, SQLite's polled notice table, in process for the memory
//! store), with no sweeper running; and it still resolves, through the re-read every
//! watch period, when the notices are dropped.
//!
//! The cross-process tests re-run this binary as a child (see
//! `bot_sessions::testing::process`) that ends the sessions the parent started and
//! prints when it began each end; the parent records when each handle resolved. The
//! latencies printed (median and max over 50 ends) are the figures of issue 21; the
//! bound the issue states (250 ms) is checked on the median, so one slow moment on a
//! shared machine does not fail the run, and every end must have come by notice.
#![cfg(all(feature = "interactive", feature = "testing", unix))]

use std::io::{BufRead, BufReader};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bot_sessions::interactive::*;
use bot_sessions::store::BoxError;
use bot_sessions::testing::process;
use bot_sessions::{Context, DynStore, Ttl};

/// Ends measured per backend.
const ENDS: usize = 50;
/// The bound issue 21 states for an end to reach a waiting handle in another process.
const BOUND: Duration = Duration::from_millis(250);
/// How long the whole exchange may take before the test gives up (a hang, not a
/// timing assertion).
const DEADLINE: Duration = Duration::from_secs(60);

struct Poll;

impl Interactive for Poll {
    type State = u8;
    type Args = ();
    type Output = u32;

    async fn start(&self, _: &mut StartCx<'_>, _: ()) -> Result<u8, BoxError> {
        Ok(0)
    }

    async fn end(&self, _: &mut EndCx<'_>, _: u8) -> Result<Option<u32>, BoxError> {
        Ok(Some(7))
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(600))
    }
}

fn manager(store: DynStore, ns: &str) -> (Manager, Kind<Poll>) {
    let codec = CustomIdCodec::new("e", Target::Telegram).unwrap();
    let manager = Manager::builder(store, codec).namespace(ns).build().unwrap();
    let kind = manager.register("poll", Poll).unwrap();
    (manager, kind)
}

fn unix_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child needs {name}"))
}

fn redis_url(prefix: &str) -> String {
    let base = std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    format!("{base}?prefix={prefix}")
}

fn postgres_url(table: &str) -> String {
    let base =
        std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    format!("{base}?schema=bot_sessions_test&table={table}")
}

fn sqlite_url() -> String {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("ends-{}-{:016x}.db", std::process::id(), rand::random::<u64>()));
    format!("sqlite://{}", path.display())
}

/// The child: ends every session in `SIDS` (the first, a warm-up, then a pause), one
/// at a time, printing `ENDED <id> <unix nanos before the end>` for each.
async fn end_them() {
    let store = bot_sessions::store::open(&env("URL")).await.unwrap();
    let (manager, _kind) = manager(store, &env("NS"));
    for (i, sid) in env("SIDS").split(',').enumerate() {
        let sid = SessionId::parse(sid).unwrap();
        let began = unix_nanos();
        assert!(manager.end(sid, EndReason::Cancelled).await.unwrap(), "session {sid} was live");
        println!("ENDED {sid} {began}");
        // After the warm-up, time for the parent to be listening (a notice sent before
        // its subscription is up would come by the fallback, not by notice).
        let pause = if i == 0 { 500 } else { 20 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Latencies of the ends after the warm-up, sorted.
struct Measured {
    sorted: Vec<Duration>,
}

impl Measured {
    fn median(&self) -> Duration {
        self.sorted[self.sorted.len() / 2]
    }

    fn max(&self) -> Duration {
        *self.sorted.last().unwrap()
    }
}

/// The parent: starts `ends + 1` sessions, has a child end them, and measures how long
/// after each end began its handle resolved.
async fn across_processes(test: &str, url: &str, ends: usize, drop_notices: bool) -> (Manager, Measured) {
    let ns = format!("ends{:x}", rand::random::<u32>());
    let store = bot_sessions::store::open(url).await.unwrap();
    let (manager, kind) = manager(store, &ns);
    manager.drop_end_notices(drop_notices);
    let ctx = Context::new().chat(1).user(42);
    let mut sids = Vec::new();
    let mut waiting = Vec::new();
    for _ in 0..=ends {
        let started = manager.start(&kind, &ctx, ()).await.unwrap();
        sids.push(started.id);
        let handle = started.handle;
        waiting.push(tokio::spawn(async move {
            let ended = handle.await.expect("the handle resolves with the end");
            assert_eq!((ended.reason, ended.result), (EndReason::Cancelled, Some(7)));
            unix_nanos()
        }));
    }
    let list: Vec<String> = sids.iter().map(ToString::to_string).collect();
    let mut child =
        process::spawn_child(test, "ender", &[("URL", url), ("NS", &ns), ("SIDS", &list.join(","))]).unwrap();
    let stdout = child.stdout.take().unwrap();
    let began = tokio::task::spawn_blocking(move || {
        let mut began = std::collections::HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = process::tagged(&line, "ENDED ") {
                let (sid, at) = rest.split_once(' ').unwrap();
                began.insert(sid.to_owned(), at.parse::<u128>().unwrap());
            }
        }
        began
    });
    let resolved = tokio::time::timeout(DEADLINE, futures_join(waiting)).await.expect("every handle resolves");
    let began = began.await.unwrap();
    assert!(child.wait().unwrap().success(), "the child failed");
    let mut sorted: Vec<Duration> = sids
        .iter()
        .zip(resolved)
        .skip(1) // the warm-up
        .map(|(sid, at)| {
            let from = began[&sid.to_string()];
            Duration::from_nanos(u64::try_from(at.saturating_sub(from)).unwrap())
        })
        .collect();
    sorted.sort();
    (manager, Measured { sorted })
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<u128>>) -> Vec<u128> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// The parent side of a latency test: 50 ends by notice, the median within the bound.
async fn latency(test: &str, backend: &str, url: &str) {
    let (manager, measured) = across_processes(test, url, ENDS, false).await;
    println!(
        "end-notice latency across processes, {backend}: median {:?}, max {:?} over {} ends",
        measured.median(),
        measured.max(),
        measured.sorted.len()
    );
    let (heard, dropped) = manager.end_notice_counts();
    assert_eq!(dropped, 0);
    // The re-check at a watch tick may read an end just before its notice arrives (the
    // notice then finds nobody waiting); nearly all must still come by notice.
    assert!(heard >= ENDS as u64 * 9 / 10, "{backend}: only {heard} of {ENDS} ends came by notice");
    assert!(measured.median() <= BOUND, "{backend}: median {:?} above {BOUND:?}", measured.median());
}

/// The parent side of a fallback test: notices dropped, the handles still resolve.
async fn fallback(test: &str, url: &str) {
    let (manager, measured) = across_processes(test, url, 3, true).await;
    let (heard, dropped) = manager.end_notice_counts();
    assert_eq!(heard, 0, "every notice was dropped");
    assert!(dropped >= 1, "the notices came and were dropped");
    assert_eq!(measured.sorted.len(), 3);
}

macro_rules! backend_tests {
    ($latency:ident, $fallback:ident, $backend:literal, $url:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $latency() {
            if process::child_role().is_some() {
                return end_them().await;
            }
            latency(stringify!($latency), $backend, &$url).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $fallback() {
            if process::child_role().is_some() {
                return end_them().await;
            }
            fallback(stringify!($fallback), &$url).await;
        }
    };
}

backend_tests!(
    redis_end_is_heard_across_processes,
    redis_end_is_collected_when_its_notice_is_dropped,
    "redis",
    redis_url(&format!("bsends{:x}:", rand::random::<u32>()))
);
backend_tests!(
    postgres_end_is_heard_across_processes,
    postgres_end_is_collected_when_its_notice_is_dropped,
    "postgres",
    postgres_url(&format!("ends_{:x}", rand::random::<u32>()))
);
backend_tests!(
    sqlite_end_is_heard_across_processes,
    sqlite_end_is_collected_when_its_notice_is_dropped,
    "sqlite",
    sqlite_url()
);

/// The memory store: two managers in one process, no sweeper; the end run by one
/// reaches the handle of the other by notice.
#[tokio::test]
async fn memory_end_by_another_manager_reaches_the_handle() {
    let store: DynStore = std::sync::Arc::new(bot_sessions::store::memory::MemoryStore::new());
    let (starter, kind) = manager(store.clone(), "ends");
    let (ender, _) = manager(store, "ends");
    let started = starter.start(&kind, &Context::new().chat(1).user(42), ()).await.unwrap();
    assert!(ender.end(started.id, EndReason::Cancelled).await.unwrap());
    let ended = tokio::time::timeout(Duration::from_secs(30), started.handle).await.expect("resolves").unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Cancelled, Some(7)));
    assert_eq!(starter.end_notice_counts(), (1, 0), "it came by notice");
}
