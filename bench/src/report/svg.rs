//! Hand-written SVG plots (a line chart and a grouped bar chart, log-scaled y axes):
//! lighter to build than a plotting crate, and plain text a reviewer can diff.

use std::fmt::Write as _;
use std::path::Path;

use super::Row;

const W: f64 = 760.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: &[&str] =
    &["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn human(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.0}M", v / 1e6),
        v if v >= 1e3 => format!("{:.0}k", v / 1e3),
        v if v >= 1.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

/// A log10 y axis over the finite positive values.
struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    fn new(values: impl Iterator<Item = f64>) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && *v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (1.0, 10.0);
        }
        LogAxis { lo: lo.log10().floor(), hi: hi.log10().ceil().max(lo.log10().floor() + 1.0) }
    }

    fn y(&self, v: f64) -> f64 {
        let t = (v.log10() - self.lo) / (self.hi - self.lo);
        TOP + (H - TOP - BOTTOM) * (1.0 - t)
    }

    fn draw(&self, out: &mut String, label: &str) {
        let mut e = self.lo;
        while e <= self.hi {
            let v = 10f64.powf(e);
            let y = self.y(v);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                human(v)
            );
            e += 1.0;
        }
        let mid = (TOP + H - BOTTOM) / 2.0;
        let _ = write!(
            out,
            r#"<text x="18" y="{mid:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 18 {mid:.1})">{}</text>"#,
            esc(label)
        );
    }
}

fn frame(title: &str, x_label: &str) -> String {
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="{:.1}" y="22" font-size="14" text-anchor="middle" font-weight="bold">{}</text>"##,
        (W - RIGHT + LEFT) / 2.0,
        esc(title)
    );
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM,
        (W - RIGHT + LEFT) / 2.0,
        H - 10.0,
        esc(x_label)
    );
    out
}

fn legend(out: &mut String, names: &[String], dashed: &[bool]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 18.0;
        let x = W - RIGHT + 14.0;
        let dash = if dashed.get(i).copied().unwrap_or(false) { r#" stroke-dasharray="5,3""# } else { "" };
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2.5"{dash}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            x + 22.0,
            COLORS[i % COLORS.len()],
            x + 28.0,
            y + 4.0,
            esc(name)
        );
    }
}

/// A line chart: one series per name over categorical x values, log y. Series whose
/// name starts with `raw/` or `baseline/` are dashed.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, xs: &[String], series: &[(String, Vec<f64>)]) -> String {
    let mut out = frame(title, x_label);
    let axis = LogAxis::new(series.iter().flat_map(|(_, v)| v.iter().copied()));
    axis.draw(&mut out, y_label);
    let step = (W - RIGHT - LEFT) / xs.len().max(1) as f64;
    let x_at = |i: usize| LEFT + step * (i as f64 + 0.5);
    for (i, x) in xs.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            x_at(i),
            H - BOTTOM + 16.0,
            esc(x)
        );
    }
    let mut dashed = Vec::new();
    for (s, (name, values)) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let dash = name.starts_with("raw/") || name.starts_with("baseline/");
        dashed.push(dash);
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && **v > 0.0)
            .map(|(i, v)| format!("{:.1},{:.1}", x_at(i), axis.y(*v)))
            .collect();
        let dash_attr = if dash { r#" stroke-dasharray="5,3""# } else { "" };
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2.5"{dash_attr} points="{}"/>"#,
            points.join(" ")
        );
        for p in &points {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(out, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
        }
    }
    legend(&mut out, &series.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), &dashed);
    out.push_str("</svg>\n");
    out
}

/// Grouped bars: for each category, one bar per measure (e.g. p50, p99), log y.
pub fn bar_chart(title: &str, y_label: &str, categories: &[String], measures: &[(&str, Vec<f64>)]) -> String {
    let mut out = frame(title, "");
    let axis = LogAxis::new(measures.iter().flat_map(|(_, v)| v.iter().copied()));
    axis.draw(&mut out, y_label);
    let step = (W - RIGHT - LEFT) / categories.len().max(1) as f64;
    let bar = step * 0.8 / measures.len().max(1) as f64;
    let base = H - BOTTOM;
    for (c, cat) in categories.iter().enumerate() {
        let x0 = LEFT + step * c as f64 + step * 0.1;
        for (m, (_, values)) in measures.iter().enumerate() {
            let v = values.get(c).copied().unwrap_or(f64::NAN);
            if v.is_finite() && v > 0.0 {
                let y = axis.y(v).min(base);
                let _ = write!(
                    out,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                    x0 + bar * m as f64,
                    bar - 1.0,
                    base - y,
                    COLORS[m % COLORS.len()],
                    human(v)
                );
            }
        }
        let cx = LEFT + step * (c as f64 + 0.5);
        let _ = write!(
            out,
            r#"<text x="{cx:.1}" y="{:.1}" font-size="9" text-anchor="end" transform="rotate(-20 {cx:.1} {:.1})">{}</text>"#,
            base + 14.0,
            base + 14.0,
            esc(cat)
        );
    }
    legend(&mut out, &measures.iter().map(|(n, _)| (*n).to_owned()).collect::<Vec<_>>(), &[]);
    out.push_str("</svg>\n");
    out
}

fn subjects_of<'a>(rows: impl Iterator<Item = &'a Row>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        if !names.contains(&r.subject) {
            names.push(r.subject.clone());
        }
    }
    names
}

/// Writes every plot the rows allow into `dir`; returns the file names.
pub fn write_all(dir: &Path, rows: &[Row]) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut save = |name: String, svg: String| -> anyhow::Result<()> {
        std::fs::write(dir.join(&name), svg)?;
        files.push(name);
        Ok(())
    };
    for backend in ["memory", "sqlite", "redis", "postgres"] {
        for dist in ["uniform", "zipf"] {
            let cell: Vec<&Row> = rows
                .iter()
                .filter(|r| r.workload == "update" && r.backend == backend && r.keys.as_deref() == Some(dist))
                .collect();
            if cell.is_empty() {
                continue;
            }
            let mut conc: Vec<usize> = cell.iter().map(|r| r.concurrency).collect();
            conc.sort_unstable();
            conc.dedup();
            let series: Vec<(String, Vec<f64>)> = subjects_of(cell.iter().copied())
                .into_iter()
                .map(|s| {
                    let v = conc
                        .iter()
                        .map(|c| {
                            cell.iter()
                                .find(|r| r.subject == s && r.concurrency == *c)
                                .map_or(f64::NAN, |r| r.ops_per_s)
                        })
                        .collect();
                    (s, v)
                })
                .collect();
            let xs: Vec<String> = conc.iter().map(|c| c.to_string()).collect();
            save(
                format!("update-{backend}-{dist}.svg"),
                line_chart(
                    &format!("update on {backend}, {dist} keys: throughput"),
                    "concurrent tasks",
                    "updates per second (log)",
                    &xs,
                    &series,
                ),
            )?;
        }
        let lat: Vec<&Row> = rows
            .iter()
            .filter(|r| {
                r.workload == "update"
                    && r.backend == backend
                    && r.keys.as_deref() == Some("uniform")
                    && r.concurrency == 64
            })
            .collect();
        if !lat.is_empty() {
            let cats: Vec<String> = lat.iter().map(|r| r.subject.clone()).collect();
            save(
                format!("latency-{backend}.svg"),
                bar_chart(
                    &format!("update on {backend}, 64 tasks, uniform: latency"),
                    "microseconds (log)",
                    &cats,
                    &[("p50", lat.iter().map(|r| r.p50_us).collect()), ("p99", lat.iter().map(|r| r.p99_us).collect())],
                ),
            )?;
        }
    }
    for (workload, file, title, y) in [
        ("memory", "memory.svg", "resident memory per live session", "bytes per session (log)"),
        ("expiry", "expiry.svg", "purging 10 % expired sessions: time of one purge", "microseconds (log)"),
    ] {
        let cell: Vec<&Row> = rows.iter().filter(|r| r.workload == workload).collect();
        if cell.is_empty() {
            continue;
        }
        let mut sizes: Vec<u64> = cell.iter().filter_map(|r| r.sessions).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut names: Vec<String> = Vec::new();
        for r in &cell {
            let n = if workload == "expiry" { format!("{} ({})", r.subject, r.backend) } else { r.subject.clone() };
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let series: Vec<(String, Vec<f64>)> = names
            .iter()
            .map(|n| {
                let v = sizes
                    .iter()
                    .map(|size| {
                        cell.iter()
                            .find(|r| {
                                r.sessions == Some(*size)
                                    && (r.subject == *n || format!("{} ({})", r.subject, r.backend) == *n)
                            })
                            .map_or(f64::NAN, |r| {
                                if workload == "memory" { r.bytes_per_session.unwrap_or(f64::NAN) } else { r.p50_us }
                            })
                    })
                    .collect();
                (n.clone(), v)
            })
            .collect();
        let xs: Vec<String> = sizes.iter().map(|s| format!("{s}")).collect();
        save(file.into(), line_chart(title, "live sessions", y, &xs, &series))?;
    }
    Ok(files)
}
