//! The report: rows, the ratios between them, and the files written from them
//! (`report.md`, `report.json`, the SVG plots).

pub mod markdown;
pub mod svg;

use std::path::Path;

use crate::subject::Role;

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// `update`, `read-mostly`, `lazy-unread`, `click`, `memory`, `expiry`, `two-process`.
    pub workload: String,
    /// `bot-sessions/sqlite`, `raw/rusqlite`, `teloxide/SqliteStorage`, ...
    pub subject: String,
    /// `memory`, `sqlite`, `redis`, `postgres`.
    pub backend: String,
    /// Ours, raw or peer.
    pub role: Role,
    /// `uniform` or `zipf` (key choice), when keys are drawn.
    pub keys: Option<String>,
    /// Concurrent tasks (for `two-process`: per process).
    pub concurrency: usize,
    /// Live sessions (memory and expiry workloads).
    pub sessions: Option<u64>,
    /// Successful operations per second (expiry: expired records purged per second).
    pub ops_per_s: f64,
    /// Median latency of one operation (expiry: the whole purge).
    pub p50_us: f64,
    /// 99th percentile latency.
    pub p99_us: f64,
    /// Acknowledged updates that the store does not hold afterwards (final sum against
    /// acknowledged updates); `None` where not counted.
    pub lost_updates: Option<i64>,
    /// Operations that returned an error.
    pub errors: u64,
    /// Memory workload: resident bytes per live session.
    pub bytes_per_session: Option<f64>,
    /// The ratio of this row's figure (ops/s; bytes per session for `memory`) to the
    /// raw baseline's in the same group.
    pub vs_raw: Option<f64>,
    /// The same against the best peer of the group (highest ops/s, fewest bytes).
    pub vs_best_peer: Option<f64>,
    /// Anything to know about the row (first error, retries).
    pub note: String,
}

impl Row {
    /// A row with the identifying fields set and every figure empty.
    pub fn new(workload: &str, subject: &str, backend: &str, role: Role, concurrency: usize) -> Self {
        Row {
            workload: workload.into(),
            subject: subject.into(),
            backend: backend.into(),
            role,
            keys: None,
            concurrency,
            sessions: None,
            ops_per_s: f64::NAN,
            p50_us: f64::NAN,
            p99_us: f64::NAN,
            lost_updates: None,
            errors: 0,
            bytes_per_session: None,
            vs_raw: None,
            vs_best_peer: None,
            note: String::new(),
        }
    }

    /// The figure ratios compare, and whether higher is better.
    fn figure(&self) -> (f64, bool) {
        match self.bytes_per_session {
            Some(b) => (b, false),
            None => (self.ops_per_s, true),
        }
    }

    fn group(&self) -> (String, String, Option<String>, usize, Option<u64>) {
        (self.workload.clone(), self.backend.clone(), self.keys.clone(), self.concurrency, self.sessions)
    }
}

/// Fills `vs_raw` and `vs_best_peer` of every row from the rows of its group (same
/// workload, backend, key choice, concurrency and session count).
pub fn fill_ratios(rows: &mut [Row]) {
    let snapshot = rows.to_vec();
    for row in rows.iter_mut() {
        let group: Vec<&Row> = snapshot.iter().filter(|r| r.group() == row.group()).collect();
        let (mine, higher) = row.figure();
        let ok = |x: f64| x.is_finite() && x > 0.0;
        if let Some(raw) = group.iter().find(|r| r.role == Role::Raw).map(|r| r.figure().0)
            && ok(raw)
            && ok(mine)
        {
            row.vs_raw = Some(mine / raw);
        }
        let peers = group.iter().filter(|r| r.role == Role::Peer).map(|r| r.figure().0).filter(|x| ok(*x));
        let best = if higher { peers.fold(f64::NAN, f64::max) } else { peers.fold(f64::NAN, f64::min) };
        if ok(best) && ok(mine) {
            row.vs_best_peer = Some(mine / best);
        }
    }
}

/// Everything the run found, as written to `report.json`.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: String,
    /// When the run started (seconds since the Unix epoch).
    pub started_unix: u64,
    /// How long it took.
    pub seconds: f64,
    /// The machine: cores and the load average when the run started.
    pub machine: String,
    /// Backends reached and not reached (with why).
    pub backends: Vec<(String, String)>,
    /// The rows.
    pub rows: Vec<Row>,
}

/// Writes `report.json`, `report.md` and the plots into `dir`; returns the plot files.
pub fn write(dir: &Path, report: &Report) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(report)?)?;
    let plots = svg::write_all(dir, &report.rows)?;
    std::fs::write(dir.join("report.md"), markdown::render(report, &plots))?;
    Ok(plots)
}
