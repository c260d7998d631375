//! The contenders of each backend, built for one *instance* (a set of tables, files or
//! key prefixes of their own) so workloads do not see each other's data, and so the
//! two processes of the two-process update open the very same instance.
//!
//! Every name is unique to the run (the parent's process id): Redis keys under
//! `bsbench-RUN-INSTANCE:` (teloxide's and tower-sessions' stores, which take no prefix,
//! get chat and session ids offset by the run), PostgreSQL tables in the schema
//! `bsbench_RUN` (teloxide's fixed table `teloxide_dialogues` gets offset chat ids),
//! SQLite files in a scratch directory. [`Env::cleanup`] removes exactly those.

pub mod encrypted;
pub mod memory;
pub mod postgres;
pub mod redis;
pub mod sqlite;

use std::path::PathBuf;

use crate::subject::Subject;

/// Where the services are and what this run's names are.
#[derive(Debug, Clone)]
pub struct Env {
    /// The run id (the parent's process id), shared by the children.
    pub run: u64,
    /// Scratch directory for SQLite files.
    pub dir: PathBuf,
    /// `redis://HOST:PORT` (no db, no prefix).
    pub redis_url: String,
    /// `postgres://...` URL of a database this run may create a schema in.
    pub postgres_url: String,
}

impl Env {
    /// From the environment: `BENCH_RUN` (set for children), `BENCH_REDIS_URL`,
    /// `BENCH_POSTGRES_URL`.
    pub fn from_env() -> Self {
        let run = std::env::var("BENCH_RUN").ok().and_then(|r| r.parse().ok()).unwrap_or(std::process::id() as u64);
        Env {
            run,
            dir: std::env::temp_dir().join(format!("bot-sessions-bench-{run}")),
            redis_url: std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            // Plaintext for every subject: the raw baseline connects without TLS, and the
            // store's default `sslmode=prefer` would otherwise pay TLS against a server
            // with `ssl=on` (Debian's default) while the baseline does not.
            postgres_url: std::env::var("BENCH_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".into()),
        }
    }

    /// The PostgreSQL schema of this run.
    pub fn pg_schema(&self) -> String {
        format!("bsbench_{}", self.run)
    }

    /// The Redis key prefix of one instance.
    pub fn redis_prefix(&self, instance: &str) -> String {
        format!("bsbench-{}-{instance}:", self.run)
    }

    /// The first chat id (teloxide) or session id (tower-sessions) of an instance in a
    /// shared keyspace: unique to the run and the instance.
    pub fn id_base(&self, instance: &str) -> i64 {
        let slot = INSTANCES.iter().position(|i| *i == instance).unwrap_or(INSTANCES.len()) as i64;
        1_000_000_000 + (self.run as i64 % 4_000_000) * 100_000 + slot * 4_096
    }

    /// Whether Redis answers.
    pub async fn redis_up(&self) -> bool {
        let Ok(client) = ::redis::Client::open(self.redis_url.as_str()) else { return false };
        let probe = async {
            let mut con = client.get_multiplexed_async_connection().await?;
            ::redis::cmd("PING").query_async::<String>(&mut con).await
        };
        matches!(tokio::time::timeout(std::time::Duration::from_secs(2), probe).await, Ok(Ok(_)))
    }

    /// Whether PostgreSQL answers.
    pub async fn postgres_up(&self) -> bool {
        let probe = async {
            let (client, conn) = tokio_postgres::connect(&self.postgres_url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            client.simple_query("SELECT 1").await
        };
        matches!(tokio::time::timeout(std::time::Duration::from_secs(2), probe).await, Ok(Ok(_)))
    }

    /// Removes everything this run created: the scratch directory, the Redis keys of
    /// every instance, the PostgreSQL schema and the run's rows of `teloxide_dialogues`.
    pub async fn cleanup(&self, redis: bool, postgres: bool) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if redis && let Err(e) = redis::cleanup(self).await {
            eprintln!("bench: Redis cleanup failed: {e:#}");
        }
        if postgres && let Err(e) = postgres::cleanup(self).await {
            eprintln!("bench: PostgreSQL cleanup failed: {e:#}");
        }
    }
}

/// The instances a run uses (their position gives the id offset).
pub const INSTANCES: &[&str] = &["update", "read", "tp", "click"];

/// The subjects of `backend` on `instance`.
pub async fn build(env: &Env, backend: &str, instance: &str) -> anyhow::Result<Vec<Subject>> {
    match backend {
        "memory" => Ok(memory::subjects().into_iter().chain([encrypted::memory()?]).collect()),
        "sqlite" => Ok(sqlite::subjects(env, instance)
            .await?
            .into_iter()
            .chain([encrypted::sqlite(env, instance).await?])
            .collect()),
        "redis" => redis::subjects(env, instance).await,
        "postgres" => postgres::subjects(env, instance).await,
        other => anyhow::bail!("unknown backend {other}"),
    }
}

/// The per-chat session keys `0..KEYS` of namespace `ns`.
pub fn session_keys(ns: &str) -> std::sync::Arc<Vec<bot_sessions::SessionKey>> {
    let ns = bot_sessions::Namespace::new(ns).expect("a valid bench namespace");
    std::sync::Arc::new(
        (0..crate::keys::KEYS)
            .map(|k| bot_sessions::SessionKey::new(ns.clone(), bot_sessions::Scope::Chat(k as i64)))
            .collect(),
    )
}

/// `Sessions<Bench>` as a subject: `update` bumps, a read goes through a lazy session
/// that is read and committed (nothing changed: nothing written), an unread lazy
/// session is committed without being read.
pub fn ours(name: &str, backend: &'static str, sessions: bot_sessions::Sessions<crate::Bench>) -> Subject {
    use crate::subject::{Action, BoxFut, Role, total};
    use std::sync::Arc;
    let keys = session_keys(sessions.namespace().as_str());
    let (s2, k2) = (sessions.clone(), keys.clone());
    Subject {
        name: name.into(),
        backend,
        role: Role::Ours,
        // Each action boxes its own future, so an update's box holds the update alone
        // (`Sessions::update`'s future is 352 bytes), not the lazy-session futures of the
        // read actions beside it (1,576 bytes in one async block): a bot's update handler
        // does not carry them, and teloxide's operation carries only small futures.
        op: Arc::new(move |action, k| -> BoxFut<()> {
            let (sessions, keys) = (sessions.clone(), keys.clone());
            match action {
                Action::Update => Box::pin(async move {
                    sessions
                        .update(&keys[k], |b| {
                            b.count += 1;
                            Ok::<_, bot_sessions::SessionError>(())
                        })
                        .await?;
                    Ok(())
                }),
                Action::Read => Box::pin(async move {
                    let mut lazy = sessions.lazy(&keys[k]);
                    std::hint::black_box(lazy.get().await?.count);
                    lazy.commit().await?;
                    Ok(())
                }),
                Action::LazyUnread => Box::pin(async move {
                    sessions.lazy(&keys[k]).commit().await?;
                    Ok(())
                }),
            }
        }),
        total: total(crate::keys::KEYS, move |k| {
            let (sessions, keys) = (s2.clone(), k2.clone());
            async move { Ok(sessions.get(&keys[k]).await?.map_or(0, |b| b.count)) }
        }),
    }
}

/// Whether the subjects of `instance` include `bot-sessions/BACKEND+cache` (the near
/// cache of issue 13): the update and the two-process update, where a process updates
/// keys it wrote before (the one-process case the cache is for, and the two-process
/// worst case it must survive).
pub fn with_near_cache(instance: &str) -> bool {
    matches!(instance, "update" | "tp")
}

/// `bot-sessions/BACKEND+cache`: [`ours`] over `store` with a near cache of its own
/// (default bounds), in namespace `cached` so its counts stay apart from the uncached
/// subject's on the same store.
pub fn ours_cached(backend: &'static str, store: bot_sessions::DynStore) -> anyhow::Result<Subject> {
    let sessions = bot_sessions::Sessions::builder_with_initial(store, crate::Bench::seeded)
        .namespace("cached")
        .near_cache(bot_sessions::store::near_cache::CacheConfig::default())
        .build()?;
    Ok(ours(&format!("bot-sessions/{backend}+cache"), backend, sessions))
}

/// A teloxide dialogue storage as a subject: `get_dialogue`, bump, `update_dialogue`
/// (a blind write: teloxide has no compare-and-set). Chat ids start at `base`.
/// Errors whose text contains `database is locked` are retried (SQLite with its
/// default rollback journal answers that under concurrency; a bot would retry too).
pub fn teloxide<S>(name: &str, backend: &'static str, storage: std::sync::Arc<S>, base: i64) -> Subject
where
    S: teloxide::dispatching::dialogue::Storage<crate::Bench> + Send + Sync + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    use crate::subject::{Action, Role, op, total};
    use teloxide::types::ChatId;
    let s2 = storage.clone();
    Subject {
        name: name.into(),
        backend,
        role: Role::Peer,
        op: op(move |action, k| {
            let storage = storage.clone();
            async move {
                let chat = ChatId(base + k as i64);
                loop {
                    let attempt = async {
                        match action {
                            Action::Update => {
                                let mut v =
                                    storage.clone().get_dialogue(chat).await?.unwrap_or_else(crate::Bench::seeded);
                                v.count += 1;
                                storage.clone().update_dialogue(chat, v).await
                            }
                            Action::Read => {
                                std::hint::black_box(storage.clone().get_dialogue(chat).await?);
                                Ok(())
                            }
                            // teloxide's `Dialogue` loads only on `get()`: unread costs nothing.
                            Action::LazyUnread => Ok(()),
                        }
                    };
                    match attempt.await {
                        Ok(()) => return Ok(()),
                        Err(e) if e.to_string().contains("database is locked") => tokio::task::yield_now().await,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }),
        total: total(crate::keys::KEYS, move |k| {
            let storage = s2.clone();
            async move { Ok(storage.get_dialogue(ChatId(base + k as i64)).await?.map_or(0, |b| b.count)) }
        }),
    }
}

/// A tower-sessions store as a subject: `load`, change the value under `"bench"`,
/// `save` (a blind upsert; tower-sessions has no compare-and-set). Session ids start
/// at `base`.
pub fn tower<S>(name: &str, backend: &'static str, store: S, base: i64) -> Subject
where
    S: tower_sessions_core::SessionStore + Clone,
{
    use crate::subject::{Action, Role, op, total};
    use tower_sessions_core::session::{Id, Record};
    let s2 = store.clone();
    Subject {
        name: name.into(),
        backend,
        role: Role::Peer,
        op: op(move |action, k| {
            let store = store.clone();
            async move {
                let id = Id(base as i128 + k as i128);
                match action {
                    Action::Update => {
                        // As tower-sessions' own `Session::save` does: `create` a session
                        // that is not stored yet, `save` one that is. (`save` of a missing
                        // record is what failed before on the Redis store, with "Parse
                        // Error: Could not convert to bool": its `SET .. XX` answers nil,
                        // which fred turns into a bool only with its `default-nil-types`
                        // feature; maxcountryman/tower-sessions-stores#19.)
                        let (mut record, stored) = match store.load(&id).await? {
                            Some(r) => (r, true),
                            None => (
                                Record {
                                    id,
                                    data: [("bench".to_owned(), serde_json::to_value(crate::Bench::seeded())?)].into(),
                                    expiry_date: time::OffsetDateTime::now_utc() + time::Duration::days(1),
                                },
                                false,
                            ),
                        };
                        let mut v: crate::Bench = serde_json::from_value(record.data["bench"].clone())?;
                        v.count += 1;
                        record.data.insert("bench".into(), serde_json::to_value(v)?);
                        if stored {
                            store.save(&record).await?;
                        } else {
                            // Only while seeding (one task, key by key): a timed update
                            // always finds its record. (Had a racing creator taken the id,
                            // the Redis store's `SET .. NX` would answer nil and fail the
                            // same way.)
                            store.create(&mut record).await?;
                        }
                    }
                    Action::Read => {
                        std::hint::black_box(store.load(&id).await?);
                    }
                    // A tower-sessions `Session` loads on first access: unread costs nothing.
                    Action::LazyUnread => {}
                }
                Ok(())
            }
        }),
        total: total(crate::keys::KEYS, move |k| {
            let store = s2.clone();
            async move {
                let id = Id(base as i128 + k as i128);
                Ok(match store.load(&id).await? {
                    Some(r) => serde_json::from_value::<crate::Bench>(r.data["bench"].clone())?.count,
                    None => 0,
                })
            }
        }),
    }
}
