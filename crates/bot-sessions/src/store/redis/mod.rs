//! The Redis store (feature `redis`): one hash per session, written by Lua scripts that
//! check the precondition and keep the indexes in step in one round trip.
//!
//! # Key layout
//!
//! With the default prefix `bs:` (set with `?prefix=` in the URL):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `bs:{u:42}onboarding/chat:1/user:42` | hash | a session of user 42: `value` (the codec's bytes) and `meta` = `version schema created updated expires owner` (unix ms; `-`: never / none), e.g. `8071441546817530881 1 1715000000000 1715000042000 - 42`; and `hist`, the last 16 versions it held (oldest first), which resolves a write whose reply was lost |
//! | `bs:{counter/chat:5}` | hash | a session without a user, tagged by its whole key text; its `owner` is the user its creating write named ([`Write::owner`], e.g. an interactive session's opener), or `-` |
//! | `bs:{u:42}:keys` | set | the key texts of every session indexed under user 42 (its key's user, or its owner), in every namespace |
//! | `bs:{ns:onboarding}:keys` | sorted set | the key texts of a namespace (score 0, so in byte order): scans |
//! | `bs:{ns:onboarding}:exp` | sorted set | the key texts of a namespace that expire, scored by `expires_at`: counts and purges |
//! | `bs:{ns:onboarding}:own` | hash | key text → owner, for the namespace's records whose key names no user but that have an owner: lets a purge or a re-creation clean the owner's index after Redis' own expiry dropped the record, or when its `meta` is unreadable |
//! | `bs:namespaces` | set | every namespace that has records |
//! | `bs:purger` | string | the background purger's lease (see [`Store::purge_expired_background`]) |
//!
//! On a cluster every key but the lease has its shard's tag after the prefix (see below).
//!
//! `version` is the writer's ([`Write::version`], random, stored as given), so it never
//! repeats for a key. `owner` is fixed when the record is created. Records written before
//! owners were stored have a five-field `meta` (no `owner`): their owner is their key's
//! user, and their next write stores the sixth field.
//!
//! Hash tags (`{…}`): a session with a user id is tagged by that user, so its record
//! and the user's index set live in one slot and the write script updates both
//! atomically even though the user's sessions span namespaces. Sessions without a user
//! are tagged by their own key text.
//!
//! # Redis Cluster
//!
//! With `cluster=true` (or [`RedisConfig::cluster`]) the store uses a cluster client and
//! the same layout split into [`CLUSTER_SHARDS`] shards, each under
//! `<prefix>{b:NNN}` (`bs:{b:017}{u:42}onboarding/chat:1/user:42`,
//! `bs:{b:017}{ns:onboarding}:keys`, ...): the shard's tag is the first `{…}`, so it
//! alone decides the slot. A record lives in the shard of its key's user, or of its key
//! text when the key names no user, and every index entry its write, delete, purge or
//! forget touches is that shard's: each single-key operation is one script on one slot,
//! as on one server. A namespace scan merges the shards' sorted indexes in key order; a
//! count sums them; a purge and a forget-user visit every shard (forget-user needs to:
//! the interactive sessions a user opened live in the shards of their own key texts).
//! Why shards rather than node-by-node `SCAN`: listing, counting and purging then read
//! only the namespace's own index entries, 256 cheap reads more than on one server,
//! where a `SCAN` walks every key of every namespace on every node.
//!
//! # Expiry
//!
//! Every decision compares `expires_at` with the caller's `now`, as on every backend.
//! Redis' own expiry (`PEXPIREAT`) is set to `expires_at` plus a grace period (one
//! minute by default, see [`RedisConfig::expiry_grace`]) so memory is reclaimed without a
//! sweeper even if the bot's clock runs somewhat behind the server's. Index entries
//! left behind by native expiry are not counted or scanned (the expiry index says they
//! are expired) and go at the next [`purge_expired`](Store::purge_expired), which works
//! in batches of at most 256 records per script. The background purge
//! ([`Store::purge_expired_background`]) first takes a lease (`SET bs:purger ID NX PX`),
//! extends it after each batch and releases it at the end, so one process purges at a
//! time; the others skip the round.
//!
//! # Bad stored data
//!
//! A record whose `meta` does not parse (or a key of the wrong type where a record
//! should be) never makes a script raise. [`load`](Store::load) reports it as
//! [`StoreError::Corrupt`] naming the key; a write or delete with [`Precondition::Any`]
//! replaces or removes it; with [`Precondition::Absent`] or [`Precondition::Version`]
//! it is also [`StoreError::Corrupt`] (not a conflict: no retry can make it hold), and
//! nothing is written. Forget-user deletes such a record when it is the user's (its
//! key names the user, or its namespace's owner hash does, or nothing says otherwise:
//! erasure wins over an unreadable record). Scan and purge skip it and log a warning;
//! so do scan, purge and forget-user for index members that are not valid key texts (or
//! that belong in another namespace). Count is index arithmetic and reads no member.
//!
//! # Faults
//!
//! One multiplexed `ConnectionManager` (on a cluster, one cluster connection that
//! follows the slot map and its changes) reconnects after a server restart. An outage
//! is a retryable [`StoreError::Backend`] in bounded time, never a hang: every request
//! has a response timeout of [`RedisConfig::op_timeout`], a reconnect makes at most 3
//! attempts of at most [`RedisConfig::connect_timeout`] each, and every round trip of
//! the operations of several round trips (scan, count, forget-user, purge) runs under
//! one more `op_timeout` (a scan and a count as a whole). Single-key operations rely on
//! the client's own timeouts alone: a second timer per operation measurably slowed the
//! hot path (`bench/`), so a load or write waits at most one reconnect plus
//! `op_timeout` per round trip (a write is one round trip, three when the server lost
//! the script).
//!
//! A write or delete whose reply does not come (a timeout, a connection dropped while
//! waiting) may have been applied: it is [`StoreError::Ambiguous`], never a retryable
//! error, so [`Sessions::update`](crate::Sessions::update) finds out whether it landed
//! before it runs anything again. Only a refused connection (nothing was sent) and an
//! error reply of the server (an outcome) stay plain errors; the client does not say
//! whether a timeout struck while connecting or after sending, so every timeout of a
//! write or delete counts as ambiguous. On a cluster the client retries a command
//! itself (through a failover's reconnects and redirections), so an error says only
//! what became of its last try: every failed write or delete there is ambiguous, and a
//! re-sent write script that meets its own earlier try (its version is in the record's
//! history) answers "written". Forget-user and purge are idempotent, so their
//! timeouts are retryable.
//!
//! # TLS
//!
//! `rediss://` connects over rustls. The server's certificate must chain to the CA in
//! the URL's `sslrootcert=PATH` (PEM), or to the system's trusted roots without it, and
//! cover the URL's host name; `sslcert=PATH&sslkey=PATH` present a client certificate.
//! A refused certificate is a non-retryable [`StoreError::Backend`] saying why (unknown
//! CA, wrong host name, expired).
//!
//! # Durability
//!
//! At connect the store reads `CONFIG GET appendonly appendfsync maxmemory-policy` (on
//! every primary of a cluster) and logs a warning for each way an acknowledged write can
//! be lost in a crash or evicted; [`RedisConfig::require_durable`] refuses to start
//! instead. Where `CONFIG` is disabled or renamed (managed services) that is a debug log
//! (a refusal under `require_durable`). [`RedisConfig::wait`] sends `WAIT n ms` or
//! `WAITAOF local n ms` in the same round trip behind every write and delete; a wait
//! that does not reach its count makes the outcome [`StoreError::Ambiguous`]: the
//! primary applied it (a read sees it), but it may be lost in a failover or crash.

mod batch;
mod config;
mod connection;
mod count;
mod durability;
mod error;
mod forget;
mod healing;
mod layout;
mod notify;
mod purge;
mod read;
mod record;
mod round_trip;
mod scan;
mod scripts;
mod write;

use std::sync::Arc;

pub use config::{RedisConfig, TlsFiles, WaitFor};
use connection::Con;
pub use layout::CLUSTER_SHARDS;
use layout::Layout;
// For the fuzz targets (`testing::fuzz`).
#[cfg(feature = "testing")]
pub(crate) use record::parse_record;
use scripts::Scripts;
pub use scripts::WRITE_SCRIPT;

use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

const BACKEND: &str = "redis";
/// Key texts fetched, and records handled by one script, per round trip while scanning,
/// forgetting or purging.
const BATCH: usize = 256;

/// A store on a Redis server or a Redis Cluster, safe for many bot processes at once.
///
/// # Examples
///
/// ```no_run
/// use bot_sessions::store::redis::RedisStore;
///
/// # async fn demo() -> Result<(), bot_sessions::StoreError> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/0?prefix=mybot:").await?;
/// let tls = RedisStore::connect("rediss://cache.example.com:6380?sslrootcert=/etc/ssl/redis-ca.pem").await?;
/// let cluster = RedisStore::connect("redis://10.0.0.1:7000,10.0.0.2:7000?cluster=true").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    con: Con,
    config: RedisConfig,
    layout: Layout,
    purger_key: String,
    wait: Option<Arc<redis::Cmd>>,
    scripts: Arc<Scripts>,
    /// Where the near cache's compare-and-sets wait to share a run
    /// ([`RedisConfig::batch_writes`]; none on a cluster or with a wait).
    batch: Option<Arc<batch::Batcher>>,
    /// End notices: `PUBLISH` here, heard on a pub/sub connection of their own.
    notices: crate::store::notify::Notices,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("config", &self.config).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server a `redis://` or `rediss://` URL names
    /// (`redis[s]://[:PASSWORD@]HOST:PORT[/DB][?prefix=P&cluster=true&sslrootcert=PATH&...]`,
    /// see [`RedisConfig`] for every option) with the default [`RedisConfig`] (the URL's
    /// options replace its defaults).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a malformed URL or option, a TLS file that cannot be
    /// read, a cluster node reached without `cluster=true`, or a server that fails
    /// `require_durable`; a retryable [`StoreError::Backend`] when the server cannot be
    /// reached; a non-retryable one when its TLS certificate is refused.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RedisConfig::default()).await
    }

    /// Connects with explicit settings. Options in the URL win over `config`.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect`]; [`StoreError::Config`] for a setting out of its
    /// range (see [`RedisConfig`]).
    pub async fn connect_with(url: &str, mut config: RedisConfig) -> Result<Self, StoreError> {
        let url = config.take_url_options(url)?;
        config.validate()?;
        let mut con = connection::connect(&url, &config).await?;
        durability::check_topology(&mut con, &config).await?;
        durability::check_settings(&mut con, &config).await?;
        durability::check_wait_supported(&mut con, &config).await?;
        let scripts = Arc::new(Scripts::new());
        let batch = (config.batch_writes && !config.cluster && config.wait == WaitFor::Applied).then(|| {
            batch::Batcher::new(
                batch::Runs { con: con.clone(), scripts: scripts.clone() },
                batch::IN_FLIGHT,
                batch::LANES,
            )
        });
        let layout = if config.cluster { Layout::cluster(&config.prefix) } else { Layout::single(&config.prefix) };
        let purger_key = layout.purger();
        let wait = durability::wait_cmd(&config).map(Arc::new);
        let notices =
            crate::store::notify::Notices::with_transport(notify::RedisNotices::new(&url, &config, con.clone())?);
        Ok(RedisStore { con, config, layout, purger_key, wait, scripts, batch, notices })
    }

    /// The checks of [`RedisStore::connect`] that need no server: the URL, its options
    /// and the prefix.
    pub(crate) fn check_url(url: &str) -> Result<(), StoreError> {
        let mut config = RedisConfig::default();
        let url = config.take_url_options(url)?;
        config.validate()?;
        connection::check(&url)
    }

    /// The key prefix in use.
    pub fn prefix(&self) -> &str {
        self.layout.prefix()
    }

    /// Whether this store talks to a Redis Cluster (and uses its sharded layout).
    pub fn is_cluster(&self) -> bool {
        self.layout.is_cluster()
    }

    /// The Redis key of the hash that holds `key`'s record (for operators and tools).
    pub fn record_key(&self, key: &SessionKey) -> String {
        self.layout.record_key(key)
    }

    /// The Redis key of the set of key texts indexed under `user` (for operators and
    /// tools). On a cluster this is the index in the user's own shard, which lists the
    /// sessions whose key names the user; those a user opened under a key without a
    /// user are in the index of the same name in their own key's shard.
    pub fn user_index(&self, user: i64) -> String {
        Layout::user_index(self.layout.shard_of_user(user), user)
    }

    /// The prefix of the shard holding `key` (the whole prefix on one server), which the
    /// scripts are given to build an owner's user index in that shard.
    pub fn shard_of(&self, key: &SessionKey) -> &str {
        self.layout.shard_of(key)
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    fn notices(&self) -> Option<crate::store::notify::Notices> {
        Some(self.notices.clone())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.load_record(key, now).await
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write_record(key, write, precondition, now).await
    }

    /// One lean script (`cas.lua`): it reads only the stored version, and writes the
    /// value and the `meta` built here from `previous`; the expiry index changes only
    /// when the expiry does. Measured on the server (`INFO commandstats`): 2.1 µs per
    /// call against 5.8 µs for `write.lua`, whose general path parses the record and
    /// decides about indexes.
    async fn write_over(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        previous: &Record,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write_over_record(key, write, previous, now).await
    }

    /// The record's `hist` field (see `meta.lua`), when it ends with the live record's
    /// version.
    async fn recent_versions(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Vec<u64>>, StoreError> {
        self.recent_versions_of(key, now).await
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        self.delete_record(key, precondition, now).await
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.forget(user_id, now).await
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        self.scan_page(namespace, cursor, limit, now).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_batches(now, None).await
    }

    /// Takes the lease `<prefix>purger` (`SET NX PX`, at least 30 s and 4 x
    /// `op_timeout`), purges in batches while extending it, then releases it; returns
    /// `Ok(0)` at once while another process holds it.
    async fn purge_expired_background(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_background(now).await
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.count_live(namespace, now).await
    }

    async fn namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        self.live_namespaces(now).await
    }
}
