//! The PostgreSQL store against a real server: the conformance suite, migrations, two
//! OS processes on the same keys, killed connections and a crashed server under load.
//!
//! The shared server is `postgres://postgres@127.0.0.1:5432/test` (override with
//! `BOT_SESSIONS_POSTGRES_URL`); the tests work in the schema `bot_sessions_test`. The
//! crash test runs `initdb` and `postgres` of its own on a free loopback port (as the
//! `postgres` user when run as root). An unreachable server fails the tests; nothing is
//! skipped.
#![cfg(feature = "postgres")]

mod redis_postgres_common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};
use bot_sessions::{DynStore, Namespace, Precondition, Scope, SessionKey, Store, StoreError, Timestamp, Write};
use redis_postgres_common::{Load, free_port, run, two_processes, wait_until};

fn url() -> String {
    std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

const SCHEMA: &str = "bot_sessions_test";

async fn connect(url: &str, config: PostgresConfig) -> PostgresStore {
    match PostgresStore::connect_with(url, config).await {
        Ok(s) => s,
        Err(e) => panic!("the PostgreSQL tests need a server at {url} (set BOT_SESSIONS_POSTGRES_URL): {e}"),
    }
}

async fn store() -> DynStore {
    Arc::new(connect(&url(), PostgresConfig::default().schema(SCHEMA)).await)
}

bot_sessions::conformance_tests!(store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_update_the_same_keys() {
    two_processes("two_processes_update_the_same_keys", store).await;
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await.expect("admin connection");
    tokio::spawn(conn);
    client
}

fn unique_schema() -> String {
    format!("bs_t{:016x}", rand::random::<u64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_migrate_once() {
    let schema = unique_schema();
    let starts = (0..6).map(|_| {
        let schema = schema.clone();
        tokio::spawn(async move { PostgresStore::connect_with(&url(), PostgresConfig::default().schema(schema)).await })
    });
    let stores: Vec<PostgresStore> =
        futures_join(starts).await.into_iter().map(|r| r.expect("every concurrent start succeeds")).collect();
    let k = SessionKey::new(Namespace::new("m").unwrap(), Scope::Chat(1));
    let w = Write::new(b"x", 1, None);
    stores[0].write(&k, w, Precondition::Absent, Timestamp::now()).await.unwrap();
    assert_eq!(stores[5].load(&k, Timestamp::now()).await.unwrap().map(|r| r.version), Some(1), "one table");

    let admin = admin().await;
    let v: i32 =
        admin.query_one(&format!("SELECT version FROM {schema}.bot_sessions_schema"), &[]).await.unwrap().get(0);
    assert_eq!(v, 1);
    let indexes: i64 = admin
        .query_one("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'bot_sessions'", &[&schema])
        .await
        .unwrap()
        .get(0);
    assert_eq!(indexes, 4, "primary key, (namespace, key), expires_at, user_id");

    // A table from newer code is refused, not touched.
    admin.execute(&format!("UPDATE {schema}.bot_sessions_schema SET version = 99"), &[]).await.unwrap();
    match PostgresStore::connect_with(&url(), PostgresConfig::default().schema(schema.clone())).await {
        Err(e @ StoreError::Backend { retryable: false, .. }) => assert!(e.to_string().contains("99"), "{e}"),
        other => panic!("expected a non-retryable error for a newer table, got {other:?}"),
    }
    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn configured_names_are_validated_before_any_sql() {
    for (schema, table) in [("public", "x; DROP TABLE y"), ("Public", "t"), ("a\"b", "t"), ("s", "")] {
        let r = PostgresStore::connect_with(&url(), PostgresConfig::default().schema(schema).table(table)).await;
        assert!(matches!(r, Err(StoreError::Config(_))), "{schema:?}.{table:?}: {r:?}");
    }
    let r = PostgresStore::connect(&format!("{}?table=Robert');DROP", url())).await;
    assert!(matches!(r, Err(StoreError::Config(_))), "{r:?}");
}

#[tokio::test]
async fn unreachable_server_is_a_retryable_error_in_bounded_time() {
    let port = free_port();
    let config = PostgresConfig::default().op_timeout(Duration::from_secs(2));
    let err =
        PostgresStore::connect_with(&format!("postgres://postgres@127.0.0.1:{port}/test"), config).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_in_batches() {
    let store = connect(&url(), PostgresConfig::default().schema(unique_schema())).await;
    let ns = bot_sessions::testing::unique_namespace("purge");
    let now = Timestamp::now();
    let soon = Some(now.saturating_add(Duration::from_secs(60)));
    for i in 0..2500 {
        let k = SessionKey::new(ns.clone(), Scope::Chat(i));
        let expires_at = if i % 5 == 0 { None } else { soon };
        store.write(&k, Write::new(b"x", 1, expires_at), Precondition::Any, now).await.unwrap();
    }
    let later = now.saturating_add(Duration::from_secs(120));
    assert_eq!(store.purge_expired(later).await.unwrap(), 2000, "more than one batch of 1000");
    assert_eq!(store.count(Some(&ns), now).await.unwrap(), 500);
    admin()
        .await
        .batch_execute(&format!("DROP SCHEMA {} CASCADE", store.table().split('.').next().unwrap()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_under_load_heal_and_lose_nothing() {
    let app = format!("bs_kill_{:x}", rand::random::<u32>());
    let store_url = format!("{}?application_name={app}", url());
    let config = PostgresConfig::default().schema(SCHEMA).pool_size(8).op_timeout(Duration::from_secs(3));
    let store: DynStore = Arc::new(connect(&store_url, config).await);
    let load = Load::start(store, 16);
    load.wait_for_progress(300, "the load to start").await;
    let admin = admin().await;
    for round in 0..3 {
        let killed: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        assert!(killed > 0, "round {round}: the store's connections were found");
        load.wait_for_progress(300, "the load to resume after pg_terminate_backend").await;
    }
    let (acked, failed) = load.stop_and_check().await;
    eprintln!("postgres terminate test: {acked} acknowledged, {failed} failed");
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A PostgreSQL server binary: from `PATH`, else from the newest
/// `/usr/lib/postgresql/*/bin` (Debian keeps them there).
fn pg_binary(name: &str) -> PathBuf {
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
        .unwrap_or_default();
    if let Some(found) = in_path {
        return found;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok()).map(|e| e.path().join("bin").join(name)).filter(|f| f.is_file()).collect()
        })
        .unwrap_or_default();
    versions
        .sort_by_key(|p| p.components().nth(4).and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok()).unwrap_or(0));
    versions.pop().unwrap_or_else(|| panic!("`{name}` is not installed (not in PATH nor /usr/lib/postgresql/*/bin)"))
}

/// A command run as the `postgres` user when we are root (PostgreSQL refuses root).
fn as_postgres(program: &str) -> Command {
    let program = pg_binary(program);
    if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL server of the test's own.
struct Server {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn init(port: u16) -> Server {
        let dir = std::env::temp_dir().join(format!("bot-sessions-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        run(as_postgres("initdb").arg("-D").arg(&dir).args(["-A", "trust", "-U", "postgres", "--no-sync"]));
        Server { port, dir, child: None }
    }

    fn start(&mut self) {
        let child = as_postgres("postgres")
            .arg("-D")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="])
            .args(["-c", "fsync=on", "-c", "synchronous_commit=on"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres must be installed for the crash test");
        self.child = Some(child);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn wait_ready(&self) {
        let url = self.url();
        wait_until("postgres to accept connections", Duration::from_secs(60), || {
            let url = url.clone();
            async move {
                match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    Ok((client, conn)) => {
                        tokio::spawn(conn);
                        client.simple_query("SELECT 1").await.is_ok()
                    }
                    Err(_) => false,
                }
            }
        })
        .await;
    }

    /// SIGQUIT: PostgreSQL's immediate shutdown, which skips the checkpoint and leaves
    /// crash recovery to the next start, like a crash.
    fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            run(Command::new("kill").args(["-QUIT", &c.id().to_string()]));
            c.wait().expect("reap postgres");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        remove_dir(&self.dir);
    }
}

fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_crashed_and_restarted_under_load_loses_no_acknowledged_update() {
    let mut server = Server::init(free_port());
    server.start();
    server.wait_ready().await;
    let config = PostgresConfig::default().pool_size(8).op_timeout(Duration::from_secs(3));
    let store: DynStore = Arc::new(connect(&server.url(), config).await);

    let load = Load::start(store, 16);
    load.wait_for_progress(300, "the load to start").await;
    server.crash();
    let failed = load.failed();
    wait_until("updates to fail while the server is down", Duration::from_secs(30), || async {
        load.failed() > failed
    })
    .await;
    let acked_while_down = load.acked();
    server.start();
    server.wait_ready().await;
    load.wait_for_progress(300, "the load to resume after the restart").await;
    assert!(load.acked() >= acked_while_down + 300);
    let (acked, failed) = load.stop_and_check().await;
    assert!(failed > 0, "the outage was seen");
    eprintln!("postgres crash test: {acked} acknowledged, {failed} failed during the outage");
}
