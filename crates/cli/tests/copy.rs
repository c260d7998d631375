//! `copy` between backends: 100,000 sessions SQLite -> Redis -> PostgreSQL keep every
//! record exactly; a copy killed mid-way and run again completes without duplicates.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use bot_sessions::{DynStore, Record, SessionKey, Timestamp};
use futures_util::StreamExt as _;
use support::{Backend, Env, export, ok, rt, run, seed_async};

/// Seeds `n` sessions in 4 namespaces; every 7th was updated after its creation, every
/// 5th expires in an hour, every 3rd is owned by a user.
fn seed_many(store: &DynStore, n: u64) {
    let now = Timestamp::now().as_millis();
    let items: Vec<(SessionKey, Record)> = (0..n)
        .map(|i| {
            let key: SessionKey = format!("ns{}/chat:{i}/user:{}", i % 4, i % 1000).parse().unwrap();
            let created = now - 100_000 + (i % 1000) as i64;
            let record = Record {
                value: format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat((i % 50) as usize)).into_bytes(),
                version: bot_sessions::new_version(),
                schema_version: 1 + (i % 3) as u32,
                created_at: Timestamp(created),
                updated_at: Timestamp(if i % 7 == 0 { created + 5_000 } else { created }),
                expires_at: (i % 5 == 0).then_some(Timestamp(now + 3_600_000)),
                user_id: None,
            };
            (key, record)
        })
        .collect();
    rt().block_on(futures_util::stream::iter(items.iter()).for_each_concurrent(64, |(k, r)| seed_async(store, k, r)));
}

fn count(env: &Env) -> u64 {
    rt().block_on(env.store().count(None, Timestamp::now())).unwrap()
}

#[test]
fn copy_of_100k_sessions_sqlite_to_redis_to_postgres_keeps_every_record() {
    const N: u64 = 100_000;
    let (sqlite, redis, postgres) = (Env::new(Backend::Sqlite), Env::new(Backend::Redis), Env::new(Backend::Postgres));
    seed_many(&sqlite.store(), N);
    let source = export(&sqlite);
    assert_eq!(source.lines().count() as u64, N);

    let out = ok(sqlite.cmd().args(["copy", "--to", &redis.url]));
    assert!(out.contains(&format!("copied {N} of {N} sessions")), "{out}");
    let out = ok(redis.cmd().args(["copy", "--to", &postgres.url]));
    assert!(out.contains(&format!("copied {N} of {N} sessions")), "{out}");
    assert_eq!(count(&redis), N);
    assert_eq!(count(&postgres), N);
    // Every record, byte for byte, with its version, schema, times, expiry and owner.
    assert!(export(&redis) == source, "Redis differs from the SQLite source");
    assert!(export(&postgres) == source, "PostgreSQL differs from the SQLite source");
}

#[test]
fn an_interrupted_copy_run_again_completes_without_duplicates() {
    const N: u64 = 40_000;
    let (sqlite, redis) = (Env::new(Backend::Sqlite), Env::new(Backend::Redis));
    seed_many(&sqlite.store(), N);
    // Killed at its first progress line (stderr is not a terminal: plain lines).
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("bot-sessions"))
        .env("BOT_SESSIONS_STORE", &sqlite.url)
        .args(["copy", "--to", &redis.url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("copy: "), "a progress line: {line:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = count(&redis);
    assert!(partial > 0 && partial < N, "killed mid-way: {partial} of {N} copied");

    let (code, out, err) = run(sqlite.cmd().args(["copy", "--to", &redis.url]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("already there with the same version"), "says what it skipped and why: {out}");
    assert_eq!(count(&redis), N, "no duplicates, nothing missing");
    assert!(export(&redis) == export(&sqlite), "every record as in the source");
    // And once more: nothing left to do.
    let out = ok(sqlite.cmd().args(["copy", "--to", &redis.url]));
    assert!(
        out.contains(&format!("copied 0 of {N}")) && out.contains(&format!("skipped {N}: {N} already there")),
        "{out}"
    );
}
