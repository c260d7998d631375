//! Progress of a long transfer: a bar (count, rate, ETA) when stderr is a terminal,
//! otherwise a plain line every second, so logs and pipes get something readable.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain line is printed.
const EVERY: Duration = Duration::from_secs(1);

/// A running transfer's progress.
pub struct Progress {
    what: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts reporting `what` (a verb) over `total` sessions, when known.
    pub fn new(what: &'static str, total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                "{prefix} [{bar:30}] {pos}/{len} sessions, {per_sec}, eta {eta}"
            } else {
                "{prefix} {pos} sessions, {per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(what);
            bar
        });
        let now = Instant::now();
        Progress { what, total, done: 0, started: now, last: now, bar }
    }

    /// `n` more sessions done.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        if self.last.elapsed() >= EVERY {
            self.last = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    /// Sessions per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    fn line(&self) -> String {
        let rate = self.rate();
        match self.total {
            Some(total) => {
                let left = total.saturating_sub(self.done) as f64 / rate.max(1e-9);
                format!("{}: {}/{total} sessions, {rate:.0}/s, eta {left:.0}s", self.what, self.done)
            }
            None => format!("{}: {} sessions, {rate:.0}/s", self.what, self.done),
        }
    }

    /// Stops the bar; returns the elapsed time.
    pub fn finish(&self) -> Duration {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.started.elapsed()
    }
}
