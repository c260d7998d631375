//! What a transfer did, counted, and said at the end.

use serde_json::json;

use super::put::Outcome;
use crate::util;
use bot_sessions::SessionKey;

/// Keys named one by one on stderr before the rest are only counted.
const NAMED: usize = 20;

/// Counts per outcome.
#[derive(Debug, Default)]
pub struct Tally {
    /// Written.
    pub written: u64,
    /// Already there, identical.
    pub same: u64,
    /// Kept because newer in the target.
    pub newer: u64,
    /// Expired by now.
    pub expired: u64,
    /// Kept changing in the target.
    pub contended: u64,
}

impl Tally {
    /// Counts one outcome, naming the first refused keys on stderr.
    pub fn add(&mut self, key: &SessionKey, outcome: &Outcome) {
        match outcome {
            Outcome::Written => self.written += 1,
            Outcome::Same => self.same += 1,
            Outcome::Expired => self.expired += 1,
            Outcome::Newer { version, updated_at } => {
                self.newer += 1;
                if self.newer <= NAMED as u64 {
                    eprintln!(
                        "skipped {key}: newer in the target (version {version}, updated {}); --force overwrites it",
                        util::time(*updated_at)
                    );
                }
            }
        }
    }

    /// A key that kept changing under the transfer.
    pub fn contended(&mut self, key: &SessionKey) {
        self.contended += 1;
        eprintln!("skipped {key}: it kept changing in the target while being written");
    }

    /// Sessions not written.
    pub fn skipped(&self) -> u64 {
        self.same + self.newer + self.expired + self.contended
    }

    /// Prints the summary: `verb` (`copied`, `imported`) N sessions, what was skipped
    /// and why.
    pub fn report(&self, verb: &str, to: &str, secs: f64, as_json: bool) {
        let seen = self.written + self.skipped();
        if as_json {
            util::json_line(&json!({
                "written": self.written, "same": self.same, "newer": self.newer, "expired": self.expired,
                "contended": self.contended, "seconds": secs,
            }));
            return;
        }
        println!(
            "{verb} {} of {seen} sessions to {to} in {secs:.1}s ({:.0}/s)",
            self.written,
            seen as f64 / secs.max(1e-9)
        );
        if self.skipped() > 0 {
            let mut why = Vec::new();
            if self.same > 0 {
                why.push(format!("{} already there with the same version", self.same));
            }
            if self.newer > 0 {
                why.push(format!("{} newer in the target (kept; --force overwrites)", self.newer));
            }
            if self.expired > 0 {
                why.push(format!("{} expired", self.expired));
            }
            if self.contended > 0 {
                why.push(format!("{} changing in the target", self.contended));
            }
            println!("skipped {}: {}", self.skipped(), why.join(", "));
        }
    }
}
