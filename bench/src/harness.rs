//! One measurement cell: N tasks run an operation for a fixed time, every operation's
//! latency recorded; the acknowledged updates are counted so the caller can compare
//! them with what the store holds afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::keys::{Dist, mix};
use crate::subject::{Action, OpFn};

/// The mix of actions a cell runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Every operation an update.
    Update,
    /// 90 % reads, 10 % updates (drawn per operation, the same for every subject).
    ReadMostly,
    /// Every handler is handed a lazy session it never reads.
    LazyUnread,
}

impl Mix {
    fn action(self, t: usize, i: usize) -> Action {
        match self {
            Mix::Update => Action::Update,
            Mix::ReadMostly if mix(((i as u64) << 20) ^ t as u64 ^ 0x5eed).is_multiple_of(10) => Action::Update,
            Mix::ReadMostly => Action::Read,
            Mix::LazyUnread => Action::LazyUnread,
        }
    }
}

/// What one cell measured.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    /// Operations that returned `Ok`.
    pub ops: u64,
    /// Updates among them (acknowledged updates).
    pub acked_updates: u64,
    /// Operations that returned an error.
    pub errors: u64,
    /// The first error's text.
    pub first_error: Option<String>,
    /// Wall time from the first spawn to the last task's end.
    pub elapsed: Duration,
    /// Every successful operation's latency, in nanoseconds, sorted.
    pub lat_ns: Vec<u64>,
}

impl Sample {
    /// Successful operations per second.
    pub fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q`-quantile latency in microseconds.
    pub fn percentile_us(&self, q: f64) -> f64 {
        if self.lat_ns.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_ns.len() as f64 - 1.0) * q).round() as usize;
        self.lat_ns[i] as f64 / 1_000.0
    }

    /// Merges another round into this one (ops and time add up, latencies pool).
    pub fn merge(&mut self, other: Sample) {
        self.ops += other.ops;
        self.acked_updates += other.acked_updates;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.elapsed += other.elapsed;
        self.lat_ns.extend(other.lat_ns);
        self.lat_ns.sort_unstable();
    }
}

/// A task gives up after this many errors (a subject that fails every call must not
/// spin for the whole cell).
const MAX_ERRORS_PER_TASK: u64 = 100;

/// Runs `op` on `tasks` tasks for `duration`, keys drawn from `dist` over `keys` keys.
pub async fn run_cell(op: &OpFn, tasks: usize, duration: Duration, dist: Dist, keys: usize, mix: Mix) -> Sample {
    run_cell_from(op, tasks, duration, dist, keys, mix, 0).await
}

/// The most rounds a cell runs: round `MAX_ROUNDS` is the warm-up's
/// ([`WARMUP_ROUND`]), and each round has a stretch of draws of its own below it.
pub const MAX_ROUNDS: usize = 255;

/// The round whose draws the report's warm-up takes, apart from every measured round's.
pub const WARMUP_ROUND: usize = MAX_ROUNDS;

/// Where round `round` (0 to [`MAX_ROUNDS`]) of a cell starts drawing its keys and
/// actions: 2^24 draws apart, so no round repeats another's sequence as long as a task
/// makes fewer than 2^24 (16.7 million) operations in one cell (the fastest subject makes
/// about 2 million a second), and every draw stays below 2^32, where a key's task bits
/// start. A round past `MAX_ROUNDS` would repeat round `round % 256`'s draws;
/// [`parse_rounds`] refuses such a count.
pub fn round_start(round: usize) -> usize {
    (round % (MAX_ROUNDS + 1)) << 24
}

/// The number of rounds given on the command line (`value`: what follows `--rounds`, or
/// the positional argument), from 1 to [`MAX_ROUNDS`].
///
/// # Errors
///
/// Missing (`None`), not a number, or out of that range.
pub fn parse_rounds(value: Option<&str>) -> anyhow::Result<usize> {
    let text = value.ok_or_else(|| anyhow::anyhow!("the number of rounds is missing"))?;
    let rounds = text.parse().map_err(|_| anyhow::anyhow!("not a number of rounds: {text:?}"))?;
    anyhow::ensure!(
        (1..=MAX_ROUNDS).contains(&rounds),
        "the number of rounds must be from 1 to {MAX_ROUNDS}, not {rounds}"
    );
    Ok(rounds)
}

/// [`run_cell`], each task's sequence of keys and actions starting at its `first`-th
/// draw instead of its first (so rounds of one cell do not repeat one another).
pub async fn run_cell_from(
    op: &OpFn,
    tasks: usize,
    duration: Duration,
    dist: Dist,
    keys: usize,
    mix: Mix,
    first: usize,
) -> Sample {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let (op, stop) = (op.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut s = Sample::default();
            let mut i = first;
            // In-memory operations never wait: each task watches the deadline itself
            // and yields now and then, so tasks share the workers fairly and the
            // timer below gets to run.
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if i % 32 == 31 {
                    tokio::task::yield_now().await;
                }
                let action = mix.action(t, i);
                let key = dist.key(t, i, keys);
                let began = Instant::now();
                match op(action, key).await {
                    Ok(()) => {
                        s.lat_ns.push(began.elapsed().as_nanos() as u64);
                        s.ops += 1;
                        if action == Action::Update {
                            s.acked_updates += 1;
                        }
                    }
                    Err(e) => {
                        s.errors += 1;
                        if s.first_error.is_none() {
                            s.first_error = Some(format!("{e:#}"));
                        }
                        if s.errors >= MAX_ERRORS_PER_TASK {
                            break;
                        }
                    }
                }
                i += 1;
            }
            s
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Sample::default();
    for h in handles {
        match h.await {
            Ok(s) => {
                total.ops += s.ops;
                total.acked_updates += s.acked_updates;
                total.errors += s.errors;
                if total.first_error.is_none() {
                    total.first_error = s.first_error;
                }
                total.lat_ns.extend(s.lat_ns);
            }
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert_with(|| format!("task panicked: {e}"));
            }
        }
    }
    total.elapsed = start.elapsed();
    total.lat_ns.sort_unstable();
    total
}

/// Whose CPU time [`cpu_seconds`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpu {
    /// This process (every thread).
    Own,
    /// The children this process has waited for.
    Children,
}

/// CPU seconds (user + system) so far, from `/proc/self/stat` (clock ticks of 10 ms:
/// fine over cells of a second); 0 where the file cannot be read.
pub fn cpu_seconds(whose: Cpu) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`, which may hold spaces: utime and stime are the 12th
    // and 13th of them, cutime and cstime the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let skip = match whose {
        Cpu::Own => 11,
        Cpu::Children => 13,
    };
    let ticks: f64 = rest.split_whitespace().skip(skip).take(2).filter_map(|t| t.parse::<f64>().ok()).sum();
    ticks / 100.0
}
