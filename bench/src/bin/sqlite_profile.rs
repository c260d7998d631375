//! Where one SQLite update's time goes, at one task: the thread hand-off alone, the
//! store's load, its write, the whole `Sessions::update`, the raw rusqlite loop, and
//! the same SQL as the store's run inline. Every step runs `N` times in a row on a
//! fresh file (durability normal, as the report's subjects); the median and mean of
//! each are printed. `cargo run --release --bin sqlite_profile [-- N]`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use bot_sessions::store::sqlite::SqliteStore;
use bot_sessions::{Namespace, Precondition, Scope, SessionKey, Sessions, Store, Timestamp, Write};
use bot_sessions_bench::Bench;
use bot_sessions_bench::subject::Action;

fn report(name: &str, mut lat: Vec<Duration>) {
    lat.sort_unstable();
    let mean = lat.iter().sum::<Duration>() / lat.len().max(1) as u32;
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    // The share of the total time spent in operations over 1 ms: stalls, not work.
    let total: Duration = lat.iter().sum();
    let stalled: Duration = lat.iter().filter(|d| **d > Duration::from_millis(1)).sum();
    eprintln!(
        "{name:<52} p50 {:>6.1} us  p99 {:>7.1} us  p99.9 {:>7.1} us  max {:>7.1} ms  mean {:>6.1} us  \
         ({:.1} k/s; {:.0} % of the time in ops over 1 ms)",
        p(0.5),
        p(0.99),
        p(0.999),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        mean.as_secs_f64() * 1e6,
        1e-3 / mean.as_secs_f64(),
        100.0 * stalled.as_secs_f64() / total.as_secs_f64().max(1e-9)
    );
}

async fn time<F: Future<Output = anyhow::Result<()>>>(n: usize, mut f: impl FnMut(usize) -> F) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await.expect("step failed");
        lat.push(t.elapsed());
    }
    lat
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(20_000), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!("bot-sessions-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let keys = 1024;

    // 1. The bare hand-off: a request over std mpsc to a thread, the answer over a
    //    tokio oneshot, as the writer and the load threads do it.
    let (tx, rx) = mpsc::channel::<tokio::sync::oneshot::Sender<u64>>();
    let thread = std::thread::spawn(move || {
        for reply in rx {
            let _ = reply.send(1);
        }
    });
    let lat = time(n, |_| {
        let tx = tx.clone();
        async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            tx.send(reply)?;
            answer.await?;
            Ok(())
        }
    })
    .await;
    report("hand-off round trip (mpsc + oneshot)", lat);
    drop(tx);
    thread.join().ok();

    // 2. The raw baseline at one task.
    let raw = bot_sessions_bench::backends::sqlite::raw(&dir.join("raw.db"))?;
    let lat = time(n, |i| (raw.op)(Action::Update, i % keys)).await;
    report("raw rusqlite update (inline)", lat);

    // 3. The store's own steps.
    let store = SqliteStore::builder().open(dir.join("ours.db")).await?;
    let ns = Namespace::new("bench")?;
    let key = |i: usize| SessionKey::new(ns.clone(), Scope::Chat((i % keys) as i64));
    let value = serde_json::to_vec(&Bench::seeded())?;
    let lat = time(n, |i| {
        let (store, key, value) = (&store, key(i), &value);
        async move {
            store.write(&key, Write::new(value, 1, None), Precondition::Any, Timestamp::now()).await?;
            Ok(())
        }
    })
    .await;
    report("store.write (Any)", lat);
    let lat = time(n, |i| {
        let (store, key) = (&store, key(i));
        async move {
            std::hint::black_box(store.load(&key, Timestamp::now()).await?);
            Ok(())
        }
    })
    .await;
    report("store.load", lat);
    let sessions = Sessions::builder_with_initial(store.clone(), Bench::seeded).namespace("bench").build()?;
    let lat = time(n, |i| {
        let (sessions, key) = (&sessions, key(i));
        async move {
            sessions
                .update(&key, |b| {
                    b.count += 1;
                    Ok::<_, bot_sessions::SessionError>(())
                })
                .await?;
            Ok(())
        }
    })
    .await;
    report("Sessions::update", lat);
    drop(sessions);
    store.close().await;

    // 4. The store's SQL, inline on this thread, on the store's file and table.
    let conn = rusqlite::Connection::open(dir.join("ours.db"))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")?;
    let head = "SELECT version, created_at, expires_at, user_id FROM bot_sessions WHERE key = ?1";
    let load = "SELECT value, version, schema_version, created_at, updated_at, expires_at, user_id \
                FROM bot_sessions WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
    let upsert = "INSERT INTO bot_sessions (key, namespace, user_id, value, version, schema_version, created_at, \
                  updated_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (key) DO UPDATE SET \
                  value = excluded.value, version = excluded.version, schema_version = excluded.schema_version, \
                  created_at = excluded.created_at, updated_at = excluded.updated_at, \
                  expires_at = excluded.expires_at, user_id = excluded.user_id";
    let mut version = 1_000_000i64;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let k = key(i);
        let now = Timestamp::now().as_millis();
        let _: Option<Vec<u8>> = rusqlite::OptionalExtension::optional(
            conn.prepare_cached(load)?.query_row(rusqlite::params![k.as_str(), now], |r| r.get(0)),
        )?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let _: Option<i64> =
            rusqlite::OptionalExtension::optional(conn.prepare_cached(head)?.query_row([k.as_str()], |r| r.get(0)))?;
        version += 1;
        conn.prepare_cached(upsert)?.execute(rusqlite::params![
            k.as_str(),
            "bench",
            None::<i64>,
            value,
            version,
            1,
            now,
            now,
            None::<i64>
        ])?;
        conn.execute_batch("COMMIT")?;
        lat.push(t.elapsed());
    }
    report("store's SQL inline (load + BEGIN/head/upsert/COMMIT)", lat);
    drop(conn);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
