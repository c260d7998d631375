//! What the tool's tests share: a private store per test on each backend (a fresh SQLite
//! file, a Redis key prefix, a PostgreSQL table, all unique, removed at the end), the
//! binary with that store, and a runtime to seed data through the library.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::sync::OnceLock;

use assert_cmd::Command;
use bot_sessions::{DynStore, Precondition, Record, SessionKey, Timestamp, Write};

/// The backends the tool is tested on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Redis,
    Postgres,
}

/// A runtime for seeding and checking through the library.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// A fresh name: `prefix` and 12 random lower-case letters and digits.
pub fn unique(prefix: &str) -> String {
    const ABC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..12).map(|_| ABC[rand::random_range(0..ABC.len())] as char).collect();
    format!("{prefix}{tail}")
}

fn redis_base() -> String {
    std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

fn postgres_base() -> String {
    std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// One test's private store.
pub struct Env {
    pub backend: Backend,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    RedisPrefix(String),
    PgTable(String),
}

impl Env {
    /// A new, empty store on `backend`.
    pub fn new(backend: Backend) -> Self {
        let (url, cleanup) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{}.db", unique("bot-sessions-cli-")));
                (format!("sqlite://{}", path.display()), Cleanup::File(path))
            }
            Backend::Redis => {
                let prefix = unique("clitest:") + ":";
                (format!("{}?prefix={prefix}", redis_base()), Cleanup::RedisPrefix(prefix))
            }
            Backend::Postgres => {
                let table = unique("cli_");
                (format!("{}?table={table}", postgres_base()), Cleanup::PgTable(table))
            }
        };
        Env { backend, url, cleanup }
    }

    /// The binary, pointed at this store through BOT_SESSIONS_STORE.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("bot-sessions").unwrap();
        c.env("BOT_SESSIONS_STORE", &self.url);
        c
    }

    /// The store, opened through the library (no background purge).
    pub fn store(&self) -> DynStore {
        let url = format!("{}{}purge_interval=off", self.url, if self.url.contains('?') { "&" } else { "?" });
        rt().block_on(bot_sessions::store::open(&url)).unwrap_or_else(|e| panic!("{}: {e}", self.url))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::RedisPrefix(prefix) => {
                let script = format!(
                    "redis-cli -u '{}' --scan --pattern '{prefix}*' | xargs -r redis-cli -u '{}' del",
                    redis_base(),
                    redis_base()
                );
                let _ = StdCommand::new("sh").arg("-c").arg(script).output();
            }
            Cleanup::PgTable(table) => {
                let sql = format!("DROP TABLE IF EXISTS public.\"{table}\", public.\"{table}_schema\"");
                let _ = StdCommand::new("psql").args([&postgres_base(), "-q", "-c", &sql]).output();
            }
        }
    }
}

/// Parses a key.
pub fn key(text: &str) -> SessionKey {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Writes `record` under `key` the way a bot would have: created at its `created_at`,
/// rewritten at its `updated_at` when that is later, so every piece of metadata is set.
pub fn seed(store: &DynStore, key: &SessionKey, r: &Record) {
    rt().block_on(seed_async(store, key, r));
}

/// [`seed`], async.
pub async fn seed_async(store: &DynStore, key: &SessionKey, r: &Record) {
    let last =
        Write { version: r.version, ..Write::new(&r.value, r.schema_version, r.expires_at).with_owner(r.user_id) };
    if r.updated_at > r.created_at {
        let first = Write::new(b"{}", 1, r.expires_at).with_owner(r.user_id);
        let v = store.write(key, first, Precondition::Absent, r.created_at).await.unwrap();
        store.write(key, last, Precondition::Version(v), r.updated_at).await.unwrap();
    } else {
        store.write(key, last, Precondition::Absent, r.created_at).await.unwrap();
    }
}

/// A record to seed: `value`, created `age_ms` ago, updated `updated_ms_ago` ago.
pub fn record(value: &[u8], created_ms_ago: i64, updated_ms_ago: i64, expires_in_ms: Option<i64>) -> Record {
    let now = Timestamp::now().as_millis();
    Record {
        value: value.to_vec(),
        version: bot_sessions::new_version(),
        schema_version: 2,
        created_at: Timestamp(now - created_ms_ago),
        updated_at: Timestamp(now - updated_ms_ago),
        expires_at: expires_in_ms.map(|ms| Timestamp(now + ms)),
        user_id: None,
    }
}

/// Runs the binary; returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the binary and expects exit 0; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

/// Every live record of the store, exported by the tool, as text.
pub fn export(env: &Env) -> String {
    ok(env.cmd().arg("export"))
}

/// An interactive session kind for the tool's tests: a menu whose `end` counts its runs.
pub struct Menu(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl bot_sessions::interactive::Interactive for Menu {
    type State = u32;
    type Args = ();
    type Output = u32;

    async fn start(
        &self,
        _: &mut bot_sessions::interactive::StartCx<'_>,
        _: (),
    ) -> Result<u32, bot_sessions::store::BoxError> {
        Ok(0)
    }

    async fn end(
        &self,
        _: &mut bot_sessions::interactive::EndCx<'_>,
        n: u32,
    ) -> Result<Option<u32>, bot_sessions::store::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Some(n))
    }

    fn ttl(&self) -> bot_sessions::Ttl {
        bot_sessions::Ttl::idle(std::time::Duration::from_secs(3600))
    }
}
