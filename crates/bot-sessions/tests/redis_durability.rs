//! Durability you can see, on `redis-server`s the tests start: the persistence and
//! eviction settings read at connect (a warning, or a refusal with
//! `require_durable`; a debug log only where CONFIG is disabled), and `WAIT` /
//! `WAITAOF` before a write is acknowledged (a wait short of its count is ambiguous).
#![cfg(feature = "redis")]

mod redis_postgres_common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bot_sessions::store::redis::{RedisConfig, RedisStore, WaitFor};
use bot_sessions::testing::unique_namespace;
use bot_sessions::{Precondition, Scope, SessionKey, Store, StoreError, Timestamp, Write};
use redis_postgres_common::{free_port, temp_dir, wait_until};

/// A `redis-server` with the given extra arguments.
struct Server {
    port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl Server {
    async fn start(args: &[&str]) -> Server {
        let port = free_port();
        let dir = temp_dir("redis-durability");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no", "--dir"])
            .arg(&dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server must be installed");
        wait_until("redis-server to answer", Duration::from_secs(30), || async move {
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        })
        .await;
        Server { port, child, dir }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, sig: &str) {
        redis_postgres_common::run(Command::new("kill").args([sig, &self.child.id().to_string()]));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every WARN event's fields, as text.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Warnings {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

// Current-thread runtimes: the subscriber is set for this thread, where the store runs.
#[tokio::test(flavor = "current_thread")]
async fn lossy_settings_are_a_warning_or_a_refusal_and_safe_ones_neither() {
    let warnings = Warnings::default();
    let _guard = tracing::subscriber::set_default(warnings.clone());

    let lossy = Server::start(&["--appendonly", "no", "--maxmemory-policy", "allkeys-lru"]).await;
    RedisStore::connect(&lossy.url()).await.expect("a lossy server is only a warning by default");
    let seen = warnings.take();
    assert!(seen.iter().any(|w| w.contains("appendonly is no")), "{seen:?}");
    assert!(seen.iter().any(|w| w.contains("allkeys-lru")), "{seen:?}");
    match RedisStore::connect(&format!("{}?require_durable=true", lossy.url())).await {
        Err(StoreError::Config(msg)) => {
            assert!(msg.contains("appendonly is no") && msg.contains("allkeys-lru"), "{msg}")
        }
        other => panic!("require_durable must refuse a lossy server, got {other:?}"),
    }

    let everysec = Server::start(&["--appendonly", "yes", "--appendfsync", "everysec"]).await;
    RedisStore::connect(&everysec.url()).await.unwrap();
    assert!(warnings.take().iter().any(|w| w.contains("everysec")));
    let config = RedisConfig::default().require_durable(true);
    assert!(matches!(RedisStore::connect_with(&everysec.url(), config).await, Err(StoreError::Config(_))));

    let safe =
        Server::start(&["--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"]).await;
    RedisStore::connect(&format!("{}?require_durable=true", safe.url())).await.expect("a durable server passes");
    assert_eq!(warnings.take(), Vec::<String>::new(), "no warning for a durable server");

    // CONFIG renamed away (as managed services do): not an error, not a warning...
    let hidden = Server::start(&["--appendonly", "no", "--rename-command", "CONFIG", ""]).await;
    let store = RedisStore::connect(&hidden.url()).await.expect("CONFIG disabled is not an error");
    assert_eq!(warnings.take(), Vec::<String>::new(), "nothing to warn about: the settings are unknown");
    let k = SessionKey::new(unique_namespace("hidden"), Scope::Chat(1));
    store.write(&k, Write::new(b"v", 1, None), Precondition::Absent, Timestamp::now()).await.unwrap();
    // ... unless durability is required: then not knowing is a refusal.
    match RedisStore::connect(&format!("{}?require_durable=true", hidden.url())).await {
        Err(StoreError::Config(msg)) => assert!(msg.contains("cannot read"), "{msg}"),
        other => panic!("require_durable must refuse unreadable settings, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_a_replica_acknowledges_only_what_it_has_and_a_short_wait_is_ambiguous() {
    let primary = Server::start(&["--appendonly", "no"]).await;
    let replica = Server::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &primary.port.to_string()]).await;
    let config = RedisConfig::default().wait(WaitFor::Replicas(1)).wait_timeout(Duration::from_millis(300));
    let store = RedisStore::connect_with(&format!("{}?prefix=dur:", primary.url()), config).await.unwrap();
    let mut replica_con = redis::Client::open(replica.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    wait_until("the replica to sync", Duration::from_secs(30), || {
        let mut con = replica_con.clone();
        async move {
            let info: String = redis::cmd("INFO").arg("replication").query_async(&mut con).await.unwrap_or_default();
            info.contains("master_link_status:up")
        }
    })
    .await;

    let k = SessionKey::new(unique_namespace("wait"), Scope::Chat(1));
    let now = Timestamp::now();
    let first = Write::new(b"one", 1, None);
    store.write(&k, first, Precondition::Absent, now).await.expect("the replica has it");
    // Acknowledged means the replica has it, right now.
    let on_replica: Option<String> =
        redis::cmd("HGET").arg(store.record_key(&k)).arg("meta").query_async(&mut replica_con).await.unwrap();
    assert!(
        on_replica.is_some_and(|m| m.starts_with(&first.version.to_string())),
        "the replica holds the acknowledged write"
    );

    // The replica stops answering: the write lands on the primary, but is not confirmed.
    replica.signal("-STOP");
    let second = Write::new(b"two", 1, None);
    let err = store.write(&k, second, Precondition::Version(first.version), now).await.unwrap_err();
    assert!(err.is_ambiguous() && err.to_string().contains("0 of 1"), "{err}");
    assert_eq!(store.load(&k, now).await.unwrap().map(|r| r.version), Some(second.version), "applied on the primary");
    // A delete waits the same way.
    assert!(store.delete(&k, Precondition::Any, now).await.unwrap_err().is_ambiguous());
    replica.signal("-CONT");
    let third = Write::new(b"three", 1, None);
    wait_until("writes to be confirmed again", Duration::from_secs(30), || {
        let store = store.clone();
        let k = k.clone();
        async move { store.write(&k, third, Precondition::Any, Timestamp::now()).await.is_ok() }
    })
    .await;
    assert_eq!(store.load(&k, now).await.unwrap().map(|r| r.value), Some(b"three".to_vec()));

    // WAITAOF needs Redis 7.2: an older server is refused at connect rather than failing every write.
    let aof = RedisConfig::default().wait(WaitFor::Aof { local: true, replicas: 0 });
    let version: String = redis::cmd("INFO").arg("server").query_async(&mut replica_con).await.unwrap();
    let old = version.lines().any(|l| l.starts_with("redis_version:7.0") || l.starts_with("redis_version:6"));
    match RedisStore::connect_with(&primary.url(), aof).await {
        Err(StoreError::Config(msg)) if old => assert!(msg.contains("WAITAOF"), "{msg}"),
        Ok(_) if !old => {}
        other => panic!("WAITAOF on this server: {other:?}"),
    }
}
