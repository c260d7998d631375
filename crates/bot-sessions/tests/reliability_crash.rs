//! Crash soak: a writer process SIGKILLed at random points, [`SHORT_KILLS`] times per
//! backend (per durability mode on SQLite); after every kill each update the writer
//! acknowledged is stored (or a newer value), and SQLite's `PRAGMA integrity_check` is
//! `ok`. `BOT_SESSIONS_SOAK=long` makes it [`LONG_KILLS`] kills each (a number makes it
//! that many); `BOT_SESSIONS_SOAK_SEED` replays a run's kill points.
//!
//! Redis runs on a server of the test's own with `appendonly yes` and `appendfsync
//! always`, crashed (SIGKILL) together with the writer in one round of four and
//! started again; PostgreSQL runs on the shared server, in a schema of its own.
//!
//! [`SHORT_KILLS`]: reliability_support::SHORT_KILLS
//! [`LONG_KILLS`]: reliability_support::LONG_KILLS
#![cfg(all(feature = "testing", unix))]

mod reliability_support;

use bot_sessions::testing::process;
use reliability_support::soak::{self, Target};
use reliability_support::{soak_kills, temp_dir, with_param};

#[cfg(feature = "sqlite")]
fn sqlite_soak(test: &str, durability: &str) {
    if process::child_role().is_some() {
        return soak::writer_child();
    }
    let dir = temp_dir("sqlite-soak");
    let path = dir.join("soak.db");
    let url = format!("sqlite://{}?durability={durability}", path.display());
    let read_url = with_param(&url, "purge_interval", "off");
    let rt = soak::runtime();
    let report = soak::soak(Target {
        test,
        url,
        kills: soak_kills(),
        before_kill: &mut |_, _| {},
        check: &mut |round, ns| {
            // The file as the kill left it (a hot WAL included), before any store opens it.
            let conn = rusqlite::Connection::open(&path).expect("open the database file");
            let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
            assert_eq!(check, "ok", "round {round}: integrity check of {}", path.display());
            drop(conn);
            rt.block_on(soak::stored(&read_url, ns))
        },
    });
    assert!(report.last.iter().all(|&n| n > 0), "every key was written: {report:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_normal_durability_writer_killed_at_random_loses_no_acknowledged_write() {
    sqlite_soak("sqlite_normal_durability_writer_killed_at_random_loses_no_acknowledged_write", "normal");
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_full_durability_writer_killed_at_random_loses_no_acknowledged_write() {
    sqlite_soak("sqlite_full_durability_writer_killed_at_random_loses_no_acknowledged_write", "full");
}

/// The writer is killed every round; in one round of four the Redis server is crashed
/// first (with writes in flight), then started again from its append-only file.
#[cfg(feature = "redis")]
#[test]
fn redis_aof_writer_and_server_killed_at_random_lose_no_acknowledged_write() {
    use rand::Rng;
    use reliability_support::redis_server::RedisServer;
    use std::cell::RefCell;

    const TEST: &str = "redis_aof_writer_and_server_killed_at_random_lose_no_acknowledged_write";
    if process::child_role().is_some() {
        return soak::writer_child();
    }
    let server = RefCell::new(RedisServer::start());
    let url = server.borrow().url();
    let read_url = with_param(&url, "purge_interval", "off");
    let rt = soak::runtime();
    let mut crashes = 0;
    let crashed = std::cell::Cell::new(false);
    let report = soak::soak(Target {
        test: TEST,
        url,
        kills: soak_kills(),
        before_kill: &mut |_, rng| {
            if rng.random_ratio(1, 4) {
                server.borrow_mut().crash();
                crashed.set(true);
            }
        },
        check: &mut |_, ns| {
            if crashed.replace(false) {
                server.borrow_mut().restart();
                crashes += 1;
            }
            rt.block_on(soak::stored(&read_url, ns))
        },
    });
    eprintln!("redis soak: the server was crashed {crashes} times");
    assert!(report.last.iter().all(|&n| n > 0), "every key was written: {report:?}");
}

/// The writer is killed every round; the shared server keeps running (other tests use
/// it), in a schema of the test's own that is dropped at the end.
#[cfg(feature = "postgres")]
#[test]
fn postgres_writer_killed_at_random_loses_no_acknowledged_write() {
    const TEST: &str = "postgres_writer_killed_at_random_loses_no_acknowledged_write";
    if process::child_role().is_some() {
        return soak::writer_child();
    }
    let schema = reliability_support::unique_table("soak");
    let admin_url = reliability_support::postgres_url();
    let url = with_param(&with_param(&admin_url, "schema", &schema), "pool_size", "2");
    let read_url = with_param(&url, "purge_interval", "off");
    let rt = soak::runtime();
    let report = soak::soak(Target {
        test: TEST,
        url,
        kills: soak_kills(),
        before_kill: &mut |_, _| {},
        check: &mut |_, ns| rt.block_on(soak::stored(&read_url, ns)),
    });
    assert!(report.last.iter().all(|&n| n > 0), "every key was written: {report:?}");
    rt.block_on(async {
        let (client, conn) =
            tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.expect("admin connection");
        let driver = tokio::spawn(conn);
        client.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE")).await.expect("drop the soak's schema");
        drop(client);
        let _ = driver.await;
    });
}
