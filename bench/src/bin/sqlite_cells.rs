//! Ours against raw rusqlite on the update cells of issue 25, with longer cells and
//! more rounds than the quick report (the order of the two subjects alternates round
//! to round), and the process's CPU time per update of each (from `/proc/self/stat`,
//! 10 ms ticks): on a shared machine the CPU per update moves far less than the rate.
//! `cargo run --release --bin sqlite_cells [-- MS_PER_CELL ROUNDS]`; `CELLS=u8,z64`
//! runs only those cells (u/z: uniform/Zipf, then the tasks); `NEAR_CACHE=off` runs
//! ours without the store's default near cache.

use std::time::Duration;

use bot_sessions_bench::harness::{Cpu, Mix, Sample, cpu_seconds, parse_rounds, round_start, run_cell_from};
use bot_sessions_bench::keys::{Dist, KEYS};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let ms: u64 = args.next().map_or(Ok(500), |a| a.parse())?;
    let rounds = args.next().map_or(Ok(4), |a| parse_rounds(Some(&a)))?;
    let dir = std::env::temp_dir().join(format!("bot-sessions-cells-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // `NEAR_CACHE=off`: ours without the near cache the SQLite store gives sessions by
    // default (every update loads first), to compare the two.
    let mut options = bot_sessions::store::sqlite::SqliteStore::builder();
    if std::env::var("NEAR_CACHE").is_ok_and(|v| v == "off") {
        options = options.without_near_cache();
    }
    let store = options.open(&dir.join("ours.db")).await?;
    let ours = bot_sessions_bench::backends::sqlite::ours_on(store.clone())?;
    let raw = bot_sessions_bench::backends::sqlite::raw(&dir.join("raw.db"))?;
    let cells = [
        (Dist::Uniform, 1),
        (Dist::Uniform, 8),
        (Dist::Uniform, 64),
        (Dist::Zipf, 1),
        (Dist::Zipf, 8),
        (Dist::Zipf, 64),
        (Dist::Zipf, 256),
    ];
    let only = std::env::var("CELLS").ok();
    for (dist, tasks) in cells {
        if let Some(only) = &only
            && !only.split(',').any(|c| c == format!("{}{tasks}", &dist.label()[..1]))
        {
            continue;
        }
        let (mut a, mut b) = (Sample::default(), Sample::default());
        let (mut ca, mut cb) = (0.0, 0.0);
        let before = ((ours.total)().await?, (raw.total)().await?);
        let transactions = store.write_transactions();
        for r in 0..rounds {
            let cell = Duration::from_millis(ms);
            for first in [r % 2 == 0, r % 2 != 0] {
                let t = cpu_seconds(Cpu::Own);
                if first {
                    a.merge(run_cell_from(&ours.op, tasks, cell, dist, KEYS, Mix::Update, round_start(r)).await);
                    ca += cpu_seconds(Cpu::Own) - t;
                } else {
                    b.merge(run_cell_from(&raw.op, tasks, cell, dist, KEYS, Mix::Update, round_start(r)).await);
                    cb += cpu_seconds(Cpu::Own) - t;
                }
            }
        }
        let transactions = store.write_transactions() - transactions;
        let after = ((ours.total)().await?, (raw.total)().await?);
        let lost = (
            a.acked_updates as i64 - (after.0 - before.0) as i64,
            b.acked_updates as i64 - (after.1 - before.1) as i64,
        );
        println!(
            "{:<8} c={:<4} ours {:>7.1} k/s p50 {:>7.1} us | raw {:>7.1} k/s p50 {:>6.1} us | ratio {:.2}x  cpu/op {:.1} vs {:.1} us, {:.1} writes/txn (errors {}/{}, lost {}/{})",
            dist.label(),
            tasks,
            a.ops_per_s() / 1e3,
            a.percentile_us(0.5),
            b.ops_per_s() / 1e3,
            b.percentile_us(0.5),
            a.ops_per_s() / b.ops_per_s(),
            ca * 1e6 / a.ops.max(1) as f64,
            cb * 1e6 / b.ops.max(1) as f64,
            a.acked_updates as f64 / transactions.max(1) as f64,
            a.errors,
            b.errors,
            lost.0,
            lost.1
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
