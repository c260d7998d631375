//! The benchmark report of bot-sessions: every workload on every backend it can reach,
//! this project beside the raw baselines and the peers (teloxide's storages,
//! tower-sessions' stores) in one run, written to `target/bench-report/`.
//!
//! Layout: [`harness`] runs one measurement cell (N tasks for a time, every latency
//! recorded, lost updates counted); [`keys`] picks the key of each operation (uniform or
//! Zipf-skewed, the same sequence for every subject); [`subject`] is what a contender
//! is; the backend modules build the contenders; [`workloads`] drives them;
//! [`child`] is what the binary does when it runs itself as a child process (memory
//! per session, the two-process update); [`report`] writes markdown, JSON and SVG.

pub mod backends;
pub mod child;
pub mod expiry;
pub mod harness;
pub mod interactive;
pub mod keys;
pub mod report;
pub mod sketch;
pub mod subject;
pub mod workloads;

/// The session value every data-session benchmark updates: a few fields, one of which
/// changes per update (the shape of a typical counter/onboarding session).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bench {
    /// Incremented by each update.
    pub count: u64,
    /// Carried along unchanged.
    pub name: String,
    /// Carried along unchanged.
    pub tags: Vec<String>,
}

impl Bench {
    /// A value with realistic unchanged payload.
    pub fn seeded() -> Self {
        Bench { count: 0, name: "Ada Lovelace".into(), tags: vec!["onboarded".into(), "en".into()] }
    }
}

/// One read-modify-write on encoded bytes (JSON): what every raw baseline does.
pub fn bump_json(bytes: Option<&[u8]>) -> anyhow::Result<Vec<u8>> {
    let mut v: Bench = match bytes {
        Some(b) => serde_json::from_slice(b)?,
        None => Bench::seeded(),
    };
    v.count += 1;
    Ok(serde_json::to_vec(&v)?)
}

/// The count stored in JSON bytes (0 when absent).
pub fn count_json(bytes: Option<&[u8]>) -> anyhow::Result<u64> {
    Ok(match bytes {
        Some(b) => serde_json::from_slice::<Bench>(b)?.count,
        None => 0,
    })
}
