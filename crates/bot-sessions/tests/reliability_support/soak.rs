//! The crash soak: a writer child updates a few keys as fast as it can and reports
//! every acknowledged update on stdout (`ACK <key> <n>`, written and flushed after
//! `Sessions::update` returned, before it goes on); the parent SIGKILLs it at a random
//! point, then checks that every acknowledged value (or a newer one) is stored.
//!
//! The child is this same test binary re-run on one test (see
//! `bot_sessions::testing::process`); `soak` is the parent side, `writer_child` the
//! child side.

use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use bot_sessions::testing::{process, unique_namespace};
use bot_sessions::{DynStore, Namespace, Scope, SessionError, SessionKey, Sessions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The store URL the child writes to.
pub const URL_ENV: &str = "BOT_SESSIONS_SOAK_URL";
/// The namespace the child writes in.
pub const NS_ENV: &str = "BOT_SESSIONS_SOAK_NS";
/// Writer tasks in the child.
pub const TASKS: usize = 6;
/// Keys the tasks share (so each key has [`TASKS`] / [`KEYS`] writers queueing on it).
pub const KEYS: usize = 3;
/// How long a child may go without acknowledging, or a check take, before the test
/// gives up (a hang detector, not a timing assertion).
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The soak's session: a counter and a padding of random length, so records change
/// size and SQLite pages split, merge and overflow.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    /// Updates applied.
    pub n: u64,
    /// Filler.
    pub pad: String,
}

/// The keys of the soak in `ns` (chat and user, so user indexes are written too).
pub fn keys(ns: &Namespace) -> Vec<SessionKey> {
    (0..KEYS as i64).map(|i| SessionKey::new(ns.clone(), Scope::ChatUser { chat: -100 - i, user: 4_200 + i })).collect()
}

/// A multi-threaded runtime of two workers, as a bot would run.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Opens `url`, trying again while the error is retryable (a busy shared server, a
/// Redis server that is still loading its append-only file), for up to [`DEADLINE`].
pub async fn open(url: &str) -> DynStore {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        match bot_sessions::store::open(url).await {
            Ok(store) => return store,
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot open {url}: {e}"),
        }
    }
}

/// The counters stored under the soak's keys now, read through a store freshly
/// opened on `url` (what a restarted bot would see).
pub async fn stored(url: &str, ns: &Namespace) -> Vec<u64> {
    let store = open(url).await;
    let sessions = Sessions::<Tally>::builder(store).namespace(ns.as_str()).build().expect("sessions");
    let mut out = Vec::with_capacity(KEYS);
    for key in keys(ns) {
        let n = sessions.get(&key).await.unwrap_or_else(|e| panic!("reading {key} back: {e}"));
        out.push(n.map_or(0, |t| t.n));
    }
    out
}

/// The child side: writes until killed (or a million updates per task, so an orphan
/// ends by itself).
pub fn writer_child() {
    runtime().block_on(async {
        let url = std::env::var(URL_ENV).expect("the parent names the store");
        let ns: Namespace = std::env::var(NS_ENV).expect("the parent names the namespace").parse().expect("namespace");
        // purge_interval=off: the soak's sessions never expire, and no background task
        // is needed.
        let store = open(&super::with_param(&url, "purge_interval", "off")).await;
        let sessions = Sessions::<Tally>::builder(store).namespace(ns.as_str()).build().expect("sessions");
        let keys = keys(&ns);
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (sessions, k) = (sessions.clone(), t % KEYS);
                let key = keys[k].clone();
                tokio::spawn(async move {
                    for _ in 0..1_000_000 {
                        let pad = "p".repeat(rand::random_range(0..6_000));
                        let r = sessions
                            .update(&key, |s| {
                                s.n += 1;
                                s.pad.clone_from(&pad);
                                Ok::<_, SessionError>(s.n)
                            })
                            .await;
                        match r {
                            Ok(n) => report(format_args!("ACK {k} {n}")),
                            // Not acknowledged; a server restarting under the soak gives
                            // these. An unknown outcome may still have landed: the parent
                            // allows one more write of the key for each.
                            Err(e) => {
                                eprintln!("soak writer: update failed: {e}");
                                report(format_args!("FAILED {k}"));
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("writer task");
        }
    });
}

/// A child that is killed when the parent gives up on it (a panic mid-round).
struct Killed(Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Totals of a finished soak.
#[derive(Debug, Default)]
pub struct Report {
    /// Acknowledgements read from the children.
    pub acks: u64,
    /// Kills that landed before the child acknowledged anything (startup, open, first
    /// writes).
    pub early: usize,
    /// The counters at the end.
    pub last: Vec<u64>,
}

/// What a soak runs against.
pub struct Target<'a> {
    /// The test to re-run as the writer child.
    pub test: &'a str,
    /// The store URL the child writes to.
    pub url: String,
    /// Kills to make.
    pub kills: usize,
    /// Runs right before each kill of the writer (Redis: crash the server too).
    pub before_kill: &'a mut dyn FnMut(usize, &mut StdRng),
    /// Runs after each kill: restarts what `before_kill` crashed, checks the store's
    /// own consistency (SQLite's integrity check) and returns the stored counters.
    pub check: &'a mut dyn FnMut(usize, &Namespace) -> Vec<u64>,
}

/// The parent side: `target.kills` rounds of start a writer, let it acknowledge a
/// random number of updates (or none: a kill during start-up), wait a random
/// fraction of a millisecond more so the kill lands anywhere inside a write, SIGKILL
/// it, and check that every acknowledged counter is stored (or a newer one) and that
/// nothing was invented (at most one update per writer of a key beyond the last
/// acknowledgement).
pub fn soak(target: Target<'_>) -> Report {
    let seed = super::seed();
    eprintln!("{}: {} kills, BOT_SESSIONS_SOAK_SEED={seed}", target.test, target.kills);
    let mut rng = StdRng::seed_from_u64(seed);
    let ns = unique_namespace("soak");
    let mut report = Report { last: vec![0; KEYS], ..Report::default() };
    for round in 0..target.kills {
        let child = process::spawn_child(target.test, "writer", &[(URL_ENV, &target.url), (NS_ENV, ns.as_str())])
            .expect("spawn the writer");
        let mut child = Killed(Some(child));
        let lines = ack_lines(child.0.as_mut().expect("child"));
        let mut acked = report.last.clone();
        let mut failed = [0u64; KEYS];
        let mut round_acks = 0u64;
        let mut note = |line: Line| match line {
            Line::Ack(k, n) => {
                acked[k] = acked[k].max(n);
                round_acks += 1;
            }
            Line::Failed(k) => failed[k] += 1,
        };
        if rng.random_ratio(1, 8) {
            std::thread::sleep(Duration::from_micros(rng.random_range(0..60_000)));
        } else {
            for _ in 0..rng.random_range(1..=120) {
                let ack = lines
                    .recv_timeout(DEADLINE)
                    .unwrap_or_else(|e| panic!("round {round}: the writer stopped acknowledging ({e}); seed {seed}"));
                note(ack);
            }
            std::thread::sleep(Duration::from_micros(rng.random_range(0..2_000)));
        }
        (target.before_kill)(round, &mut rng);
        let mut c = child.0.take().expect("child");
        c.kill().expect("SIGKILL the writer");
        let status = c.wait().expect("reap the writer");
        // What the child printed before it died was acknowledged too.
        lines.iter().for_each(&mut note);
        report.acks += round_acks;
        report.early += usize::from(round_acks == 0);
        assert_eq!(status.signal(), Some(9), "round {round}: the writer ended by itself: {status}; seed {seed}");

        let found = (target.check)(round, &ns);
        for k in 0..KEYS {
            assert!(
                found[k] >= acked[k],
                "round {round}, key {k}: acknowledged {} but found {}; seed {seed}",
                acked[k],
                found[k]
            );
            // Each writer of the key may have one update applied but not yet reported
            // (or still on its way to a server when the child died): it reports each
            // update before it starts the next. Plus one per failed update (its outcome
            // may have been unknown, and it may have landed).
            let slack = (TASKS / KEYS) as u64 + failed[k];
            assert!(
                found[k] <= acked[k] + slack,
                "round {round}, key {k}: found {} but only {} were acknowledged; seed {seed}",
                found[k],
                acked[k]
            );
        }
        report.last = found;
    }
    assert!(report.acks >= target.kills as u64, "the writers acknowledged writes: {report:?}");
    eprintln!("{}: {report:?}", target.test);
    report
}

/// Prints one report line of the child and flushes it; exits if the parent is gone.
fn report(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0); // the parent is gone
    }
}

/// What the child reports: an acknowledged update (`ACK <key> <n>`), or an update that
/// returned an error (`FAILED <key>`).
enum Line {
    Ack(usize, u64),
    Failed(usize),
}

/// The child's report lines, parsed on a thread so the parent can give up on a hung
/// child instead of blocking on its pipe.
fn ack_lines(child: &mut Child) -> mpsc::Receiver<Line> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let parsed = if let Some(rest) = process::tagged(&line, "ACK ") {
                let (k, n) = rest.split_once(' ').expect("ACK <key> <n>");
                Line::Ack(k.parse().expect("key index"), n.parse().expect("counter"))
            } else if let Some(k) = process::tagged(&line, "FAILED ") {
                Line::Failed(k.parse().expect("key index"))
            } else {
                continue;
            };
            if tx.send(parsed).is_err() {
                break;
            }
        }
    });
    rx
}
