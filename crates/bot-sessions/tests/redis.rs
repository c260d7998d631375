//! The Redis store against a real server: the conformance suite, two OS processes on
//! the same keys, and a server killed and restarted under load.
//!
//! The shared server is `redis://127.0.0.1:6379/0` (override with
//! `BOT_SESSIONS_REDIS_URL`); the fault test starts its own `redis-server` on a free
//! loopback port. An unreachable server fails the tests; nothing is skipped.
#![cfg(feature = "redis")]

mod redis_postgres_common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::redis::{RedisConfig, RedisStore};
use bot_sessions::{DynStore, Namespace, Precondition, Scope, SessionKey, Store, Timestamp, Write};
use redis_postgres_common::{Load, free_port, temp_dir, two_processes, wait_until};

fn url() -> String {
    std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

async fn store() -> DynStore {
    let url = url();
    match RedisStore::connect(&url).await {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("the Redis tests need a server at {url} (set BOT_SESSIONS_REDIS_URL): {e}"),
    }
}

bot_sessions::conformance_tests!(store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_update_the_same_keys() {
    two_processes("two_processes_update_the_same_keys", store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_layout_is_readable_and_prefixed() {
    let prefix = format!("bstest{:x}:", rand_suffix());
    let store = RedisStore::connect(&format!("{}?prefix={prefix}", url())).await.expect("connect");
    let ns = Namespace::new("layout").unwrap();
    let user = bot_sessions::testing::unique_user();
    let with_user = SessionKey::new(ns.clone(), Scope::ChatUser { chat: 1, user });
    let without = SessionKey::new(ns.clone(), Scope::Chat(1));
    let now = Timestamp::now();
    let at = now.saturating_add(Duration::from_secs(600));
    store
        .write(&with_user, Write::new(b"{}", 2, Some(at)), Precondition::Absent, now)
        .await
        .unwrap();
    store
        .write(&without, Write::new(b"x", 1, None), Precondition::Absent, now)
        .await
        .unwrap();
    assert_eq!(store.record_key(&with_user), format!("{prefix}{{u:{user}}}layout/chat:1/user:{user}"));
    assert_eq!(store.record_key(&without), format!("{prefix}{{layout/chat:1}}"));

    let client = redis::Client::open(url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let fields: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg(store.record_key(&with_user)).query_async(&mut con).await.unwrap();
    assert_eq!(fields["value"], "{}");
    assert_eq!(
        fields["meta"],
        format!("1 2 {0} {0} {1}", now.as_millis(), at.as_millis()),
        "version schema created updated expires"
    );
    assert_eq!(fields.len(), 2);
    let pexpire: i64 = redis::cmd("PEXPIRETIME").arg(store.record_key(&with_user)).query_async(&mut con).await.unwrap();
    assert_eq!(pexpire, at.as_millis() + 60_000, "native expiry = expires_at + grace");
    let ttl: i64 = redis::cmd("PTTL").arg(store.record_key(&without)).query_async(&mut con).await.unwrap();
    assert_eq!(ttl, -1, "no expiry, no native TTL");
    let members: Vec<String> =
        redis::cmd("SMEMBERS").arg(format!("{prefix}{{u:{user}}}:keys")).query_async(&mut con).await.unwrap();
    assert_eq!(members, vec![with_user.to_string()]);
    // Removing the expiry removes the native TTL too.
    store
        .write(&with_user, Write::new(b"{}", 2, None), Precondition::Version(1), now)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(store.record_key(&with_user)).query_async(&mut con).await.unwrap();
    assert_eq!(ttl, -1);
    assert_eq!(store.forget_user(user, now).await.unwrap(), 1);
    store.delete(&without, Precondition::Any, now).await.unwrap();
    let left: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut con).await.unwrap();
    assert_eq!(left, vec![format!("{prefix}namespaces")], "nothing but the namespace list is left");
    let _: () = redis::cmd("DEL").arg(format!("{prefix}namespaces")).query_async(&mut con).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn natively_expired_records_leave_no_trace_after_purge() {
    // A record whose expiry (plus grace) is already past is dropped by Redis at once;
    // its index entries must not count, and a purge removes them.
    let config = RedisConfig::default().expiry_grace(Duration::ZERO);
    let store = RedisStore::connect_with(&url(), config).await.expect("connect");
    let ns = bot_sessions::testing::unique_namespace("native");
    let user = bot_sessions::testing::unique_user();
    let k = SessionKey::new(ns.clone(), Scope::User(user));
    let now = Timestamp::now();
    let past = Some(Timestamp(now.as_millis() - 1));
    store.write(&k, Write::new(b"x", 1, past), Precondition::Any, now).await.unwrap();
    assert_eq!(store.load(&k, now).await.unwrap(), None);
    assert_eq!(store.count(Some(&ns), now).await.unwrap(), 0);
    assert!(store.scan(&ns, None, 10, now).await.unwrap().items.is_empty());
    assert!(store.purge_expired(now).await.unwrap() >= 1);
    assert_eq!(store.forget_user(user, now).await.unwrap(), 0, "the user index entry went with the purge");
    // And the key can be created again.
    let w = Write::new(b"y", 1, None);
    assert_eq!(store.write(&k, w, Precondition::Absent, now).await.unwrap(), 1);
    assert_eq!(store.count(Some(&ns), now).await.unwrap(), 1);
    assert_eq!(store.forget_user(user, now).await.unwrap(), 1);
}

#[tokio::test]
async fn unreachable_server_is_a_retryable_error_in_bounded_time() {
    let port = free_port();
    let config = RedisConfig::default().op_timeout(Duration::from_secs(2));
    let err = RedisStore::connect_with(&format!("redis://127.0.0.1:{port}"), config).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(RedisStore::connect("redis://127.0.0.1:6379?prefix=bad{tag}").await.is_err());
}

fn rand_suffix() -> u64 {
    rand::random()
}

/// A `redis-server` of the test's own, with an append-only file synced on every write.
struct Server {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(port: u16, dir: &std::path::Path) -> Server {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server must be installed for the fault test");
        Server { port, dir: dir.to_path_buf(), child: Some(child) }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        let url = self.url();
        wait_until("redis-server to answer PING", Duration::from_secs(30), || {
            let url = url.clone();
            async move {
                let Ok(client) = redis::Client::open(url) else { return false };
                let Ok(mut con) = client.get_multiplexed_async_connection().await else { return false };
                redis::cmd("PING").query_async::<String>(&mut con).await.is_ok()
            }
        })
        .await;
    }

    /// SIGKILL: a crash, not a shutdown.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill redis-server");
            c.wait().expect("reap redis-server");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted_under_load_loses_no_acknowledged_update() {
    let port = free_port();
    let dir = temp_dir("redis");
    let mut server = Server::start(port, &dir);
    server.wait_ready().await;
    let config = RedisConfig::default().op_timeout(Duration::from_secs(2));
    let store: DynStore = Arc::new(RedisStore::connect_with(&server.url(), config).await.expect("connect"));

    let load = Load::start(store, 16);
    load.wait_for_progress(500, "the load to start").await;

    server.kill();
    let failed = load.failed();
    wait_until("updates to fail while the server is down", Duration::from_secs(30), || async {
        load.failed() > failed
    })
    .await;
    let acked_while_down = load.acked();

    let server = Server::start(port, &dir);
    server.wait_ready().await;
    load.wait_for_progress(500, "the load to resume after the restart").await;
    assert!(load.acked() >= acked_while_down + 500);

    let (acked, failed) = load.stop_and_check().await;
    assert!(failed > 0, "the outage was seen");
    eprintln!("redis fault test: {acked} acknowledged, {failed} failed during the outage");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_server_gives_retryable_timeouts_then_recovers() {
    let port = free_port();
    let dir = temp_dir("redis-hang");
    let server = Server::start(port, &dir);
    server.wait_ready().await;
    let config = RedisConfig::default().op_timeout(Duration::from_millis(500));
    let store = RedisStore::connect_with(&server.url(), config).await.expect("connect");
    let k = SessionKey::new(bot_sessions::testing::unique_namespace("hang"), Scope::Chat(1));
    let w = Write::new(b"x", 1, None);
    assert_eq!(store.write(&k, w, Precondition::Absent, Timestamp::now()).await.unwrap(), 1);

    let pid = server.child.as_ref().expect("running").id().to_string();
    redis_postgres_common::run(Command::new("kill").args(["-STOP", &pid]));
    let err = store.load(&k, Timestamp::now()).await.expect_err("a stopped server cannot answer");
    let write_err = store.write(&k, w, Precondition::Version(1), Timestamp::now()).await.expect_err("nor take writes");
    redis_postgres_common::run(Command::new("kill").args(["-CONT", &pid]));
    assert!(err.is_retryable() && write_err.is_retryable(), "{err:?} / {write_err:?}");

    // The write may or may not have reached the server before the timeout; either way
    // the store answers again and the record is consistent.
    wait_until("the store to answer again", Duration::from_secs(30), || async {
        store.load(&k, Timestamp::now()).await.is_ok()
    })
    .await;
    let r = store.load(&k, Timestamp::now()).await.unwrap().expect("the record survives");
    assert!(r.version == 1 || r.version == 2, "version {}", r.version);
}
