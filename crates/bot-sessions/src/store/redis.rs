//! The Redis store (feature `redis`): one hash per session, written by Lua scripts that
//! check the precondition and keep the indexes in step in one round trip.
//!
//! # Key layout
//!
//! With the default prefix `bs:` (set with `?prefix=` in the URL):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `bs:{u:42}onboarding/chat:1/user:42` | hash | a session of user 42: `value` (the codec's bytes) and `meta` = `version schema created updated expires owner` (unix ms; `-`: never / none), e.g. `8071441546817530881 1 1715000000000 1715000042000 - 42` |
//! | `bs:{counter/chat:5}` | hash | a session without a user, tagged by its whole key text; its `owner` is the user its creating write named ([`Write::owner`], e.g. an interactive session's opener), or `-` |
//! | `bs:{u:42}:keys` | set | the key texts of every session indexed under user 42 (its key's user, or its owner), in every namespace |
//! | `bs:{ns:onboarding}:keys` | sorted set | the key texts of a namespace (score 0, so in byte order): scans |
//! | `bs:{ns:onboarding}:exp` | sorted set | the key texts of a namespace that expire, scored by `expires_at`: counts and purges |
//! | `bs:{ns:onboarding}:own` | hash | key text → owner, for the namespace's records whose key names no user but that have an owner: lets a purge or a re-creation clean the owner's index after Redis' own expiry dropped the record, or when its `meta` is unreadable |
//! | `bs:namespaces` | set | every namespace that has records |
//! | `bs:purger` | string | the background purger's lease (see [`Store::purge_expired_background`]) |
//!
//! `version` is the writer's ([`Write::version`], random, stored as given), so it never
//! repeats for a key. `owner` is fixed when the record is created. Records written before
//! owners were stored have a five-field `meta` (no `owner`): their owner is their key's
//! user, and their next write stores the sixth field.
//!
//! Hash tags (`{…}`): a session with a user id is tagged by that user, so its record
//! and the user's index set live in one Redis Cluster slot and the write script updates
//! both atomically even though the user's sessions span namespaces. Sessions without a
//! user are tagged by their own key text. The namespace indexes are tagged by
//! namespace, which is another slot, and so is the owner's index of a session without a
//! user (the scripts build that key from the prefix they are given): this store drives
//! one Redis server (or a primary), where a script may touch any key. On a cluster the
//! namespace index updates and the owner index updates of userless sessions would have
//! to move out of the scripts. The layout keeps that change local.
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
//! One multiplexed [`ConnectionManager`] reconnects after a server restart. An outage
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
//! write or delete counts as ambiguous. Forget-user and purge are idempotent, so their
//! timeouts are retryable.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

const BACKEND: &str = "redis";
/// Key texts fetched, and records handled by one script, per round trip while scanning,
/// forgetting or purging.
const BATCH: usize = 256;
/// Longest accepted [`RedisConfig::op_timeout`] and [`RedisConfig::connect_timeout`].
/// Longest accepted [`RedisConfig::expiry_grace`].
const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Shortest lease of the background purger (it is at least 4 x `op_timeout`).
const MIN_PURGE_LEASE: Duration = Duration::from_secs(30);

/// Settings of a [`RedisStore`] beyond the server URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Prepended to every key (default `bs:`): 1 to 64 characters from
    /// `[A-Za-z0-9_.:-]`.
    pub prefix: String,
    /// Longest wait for one reply, and for a whole multi-round-trip scan or count,
    /// before an error (default 5 s; from 1 ms to 1 hour).
    pub op_timeout: Duration,
    /// Timeout of one connection attempt (default 1 s; from 1 ms to 1 hour).
    pub connect_timeout: Duration,
    /// Redis' own expiry is set this long after a record's `expires_at` (default 60 s;
    /// at most 30 days), so a bot clock behind the server's never loses a live record
    /// early.
    pub expiry_grace: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            prefix: "bs:".into(),
            op_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            expiry_grace: Duration::from_secs(60),
        }
    }
}

impl RedisConfig {
    /// Sets [`RedisConfig::prefix`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`RedisConfig::op_timeout`].
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = d;
        self
    }

    /// Sets [`RedisConfig::connect_timeout`].
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets [`RedisConfig::expiry_grace`].
    pub fn expiry_grace(mut self, d: Duration) -> Self {
        self.expiry_grace = d;
        self
    }

    /// Checks every setting's range.
    fn validate(&self) -> Result<(), StoreError> {
        validate_prefix(&self.prefix)?;
        super::check_timeout(BACKEND, "op_timeout", self.op_timeout)?;
        super::check_timeout(BACKEND, "connect_timeout", self.connect_timeout)?;
        if self.expiry_grace > MAX_GRACE {
            return Err(config_err(format!("redis expiry_grace must be at most 30 days, not {:?}", self.expiry_grace)));
        }
        Ok(())
    }
}

/// A store on a Redis server, safe for many bot processes at once.
///
/// # Examples
///
/// ```no_run
/// use bot_sessions::store::redis::RedisStore;
///
/// # async fn demo() -> Result<(), bot_sessions::StoreError> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/0?prefix=mybot:").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    con: ConnectionManager,
    config: RedisConfig,
    namespaces_key: String,
    purger_key: String,
    scripts: std::sync::Arc<Scripts>,
}

struct Scripts {
    write: Script,
    delete: Script,
    forget: Script,
    purge: Script,
    lease: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The compare-and-set write script, for benchmarks and tools that want to call it raw
/// (its header comment lists its keys and arguments).
pub const WRITE_SCRIPT: &str = concat!(include_str!("redis/meta.lua"), include_str!("redis/write.lua"));
const DELETE_SCRIPT: &str = concat!(include_str!("redis/meta.lua"), include_str!("redis/delete.lua"));
const FORGET_SCRIPT: &str = concat!(include_str!("redis/meta.lua"), include_str!("redis/forget.lua"));
const PURGE_SCRIPT: &str = concat!(include_str!("redis/meta.lua"), include_str!("redis/purge.lua"));
const LEASE_SCRIPT: &str = include_str!("redis/lease.lua");

/// An error of a command that does not change anything (or may safely run again).
fn backend_err(key: Option<&str>, e: RedisError) -> StoreError {
    let retryable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.retry_method(),
            redis::RetryMethod::Reconnect
                | redis::RetryMethod::RetryImmediately
                | redis::RetryMethod::WaitAndRetry
                | redis::RetryMethod::ReconnectFromInitialConnections
        );
    StoreError::backend(BACKEND, key, retryable, e)
}

/// An error of a write or delete of `key`: when the command may have reached the server
/// and no reply says what became of it (a timeout, a connection lost or a reply garbled
/// while waiting), the outcome is unknown. A refused connection sent nothing, and a
/// server's error reply is an outcome.
fn sent_err(key: &str, e: RedisError) -> StoreError {
    let unknown =
        !e.is_connection_refusal() && (e.is_io_error() || e.is_timeout() || e.kind() == redis::ErrorKind::Parse);
    if unknown { StoreError::ambiguous(BACKEND, key, e) } else { backend_err(Some(key), e) }
}

fn timeout_err(key: Option<&str>, after: Duration) -> StoreError {
    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer from redis within {after:?}"));
    StoreError::backend(BACKEND, key, true, e)
}

fn config_err(msg: String) -> StoreError {
    StoreError::Config(msg)
}

/// Whether Redis refused a command because the key holds another type than it needs.
fn is_wrong_type(e: &RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
}

/// Splits `?prefix=` off a URL; other query parameters stay for the redis client.
fn split_url(url: &str) -> Result<(String, Option<String>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut prefix = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("prefix", v)) => prefix = Some(v.to_owned()),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, prefix))
}

fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(config_err(format!(
            "redis key prefix {prefix:?} must be 1 to 64 characters from A-Z, a-z, 0-9, `_`, `.`, `:`, `-`"
        )))
    }
}

/// A member of an index as a session key, or `None` (reported) when it is not one.
fn member_key(raw: &[u8], index: &str) -> Option<SessionKey> {
    let parsed = std::str::from_utf8(raw)
        .map_err(|e| e.to_string())
        .and_then(|t| t.parse::<SessionKey>().map_err(|e| e.to_string()));
    match parsed {
        Ok(key) => Some(key),
        Err(reason) => {
            tracing::warn!(index, member = %String::from_utf8_lossy(raw), %reason, "skipping an index member that is not a session key");
            None
        }
    }
}

impl RedisStore {
    /// Connects to the server a `redis://` or `rediss://` URL names
    /// (`redis://HOST:PORT[/DB][?prefix=P]`) with the default [`RedisConfig`] (the
    /// URL's `prefix` replaces the default prefix).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a malformed URL or prefix; a retryable
    /// [`StoreError::Backend`] when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RedisConfig::default()).await
    }

    /// Connects with explicit settings. A `?prefix=` in the URL wins over
    /// `config.prefix`.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect`]; [`StoreError::Config`] for a setting out of its
    /// range (see [`RedisConfig`]).
    pub async fn connect_with(url: &str, mut config: RedisConfig) -> Result<Self, StoreError> {
        let (url, prefix) = split_url(url)?;
        if let Some(p) = prefix {
            config.prefix = p;
        }
        config.validate()?;
        let client = redis::Client::open(url.as_str())
            .map_err(|e| config_err(format!("redis URL `{url}` is not valid: {e}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.op_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let connecting = ConnectionManager::new_with_config(client, manager_config);
        let con = match tokio::time::timeout(config.op_timeout, connecting).await {
            Ok(con) => con.map_err(|e| backend_err(None, e))?,
            Err(_) => return Err(timeout_err(None, config.op_timeout)),
        };
        let scripts = Scripts {
            write: Script::new(WRITE_SCRIPT),
            delete: Script::new(DELETE_SCRIPT),
            forget: Script::new(FORGET_SCRIPT),
            purge: Script::new(PURGE_SCRIPT),
            lease: Script::new(LEASE_SCRIPT),
        };
        let namespaces_key = format!("{}namespaces", config.prefix);
        let purger_key = format!("{}purger", config.prefix);
        Ok(RedisStore { con, config, namespaces_key, purger_key, scripts: std::sync::Arc::new(scripts) })
    }

    /// The key prefix in use.
    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// The Redis key of the hash that holds `key`'s record (for operators and tools).
    pub fn record_key(&self, key: &SessionKey) -> String {
        // Built by hand rather than with `format!`: this runs twice per update, and the
        // formatting machinery showed up in profiles.
        let (p, text) = (self.config.prefix.as_str(), key.as_str());
        let mut s = String::with_capacity(p.len() + text.len() + 24);
        s.push_str(p);
        match key.user_id() {
            Some(u) => {
                s.push_str("{u:");
                push_int(&mut s, u);
                s.push('}');
                s.push_str(text);
            }
            None => {
                s.push('{');
                s.push_str(text);
                s.push('}');
            }
        }
        s
    }

    /// The Redis key of the set of key texts indexed under `user` (for operators and
    /// tools).
    pub fn user_index(&self, user: i64) -> String {
        let mut s = String::with_capacity(self.config.prefix.len() + 30);
        s.push_str(&self.config.prefix);
        s.push_str("{u:");
        push_int(&mut s, user);
        s.push_str("}:keys");
        s
    }

    fn namespace_key(&self, ns: &str, suffix: &str) -> String {
        let p = &self.config.prefix;
        let mut s = String::with_capacity(p.len() + ns.len() + 5 + suffix.len());
        s.push_str(p);
        s.push_str("{ns:");
        s.push_str(ns);
        s.push('}');
        s.push_str(suffix);
        s
    }

    fn namespace_index(&self, ns: &str) -> String {
        self.namespace_key(ns, ":keys")
    }

    fn expiry_index(&self, ns: &str) -> String {
        self.namespace_key(ns, ":exp")
    }

    fn owners_index(&self, ns: &str) -> String {
        self.namespace_key(ns, ":own")
    }

    fn namespaces(&self) -> &str {
        &self.namespaces_key
    }

    /// Runs `fut` under the operation timeout.
    async fn timed<T>(
        &self,
        key: Option<&str>,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.config.op_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(timeout_err(key, self.config.op_timeout)),
        }
    }

    /// One command that changes nothing (or may safely run again), under the operation
    /// timeout.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut con = self.con.clone();
        self.timed(None, async move { cmd.query_async(&mut con).await.map_err(|e| backend_err(None, e)) }).await
    }

    /// One script run of a bulk operation (forget-user, purge), under the operation
    /// timeout.
    async fn run<T: redis::FromRedisValue>(&self, inv: &redis::ScriptInvocation<'_>) -> Result<T, StoreError> {
        let mut con = self.con.clone();
        self.timed(None, async move { inv.invoke_async(&mut con).await.map_err(|e| backend_err(None, e)) }).await
    }

    fn native_expiry(&self, expires_at: Timestamp) -> i64 {
        // Never in the past from Redis' point of view by more than the grace allows.
        expires_at.saturating_add(self.config.expiry_grace).as_millis()
    }

    /// How long the background purger's lease lasts without being extended.
    fn purge_lease(&self) -> Duration {
        self.config.op_timeout.saturating_mul(4).max(MIN_PURGE_LEASE)
    }

    /// Purges every namespace's expired records in batches; with a lease, extends it
    /// after each batch and stops early (with what it purged) once it is lost. A
    /// namespace whose indexes Redis refuses to work on (say, a key of the wrong type)
    /// is skipped and reported; the others are purged.
    async fn purge_batches(&self, now: Timestamp, lease: Option<(&str, u64)>) -> Result<u64, StoreError> {
        let namespaces: Vec<Vec<u8>> = self.query(redis::cmd("SMEMBERS").arg(self.namespaces())).await?;
        let mut purged = 0u64;
        for raw in namespaces {
            let Ok(ns) = String::from_utf8(raw) else {
                tracing::warn!(index = self.namespaces(), "skipping a namespace name that is not UTF-8");
                continue;
            };
            match self.purge_namespace(&ns, now, lease, &mut purged).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("the purge lease ran out mid-round; another process goes on");
                    break;
                }
                Err(e) if !e.is_retryable() => {
                    tracing::warn!(namespace = %ns, error = %e, "purge skipped a namespace it cannot work on");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(purged)
    }

    /// Purges one namespace in batches, adding to `purged` as it goes. `Ok(false)` when
    /// the lease was lost.
    async fn purge_namespace(
        &self,
        ns: &str,
        now: Timestamp,
        lease: Option<(&str, u64)>,
        purged: &mut u64,
    ) -> Result<bool, StoreError> {
        let (keys, exp, owners) = (self.namespace_index(ns), self.expiry_index(ns), self.owners_index(ns));
        // Entries this purge leaves in place (unreadable records, members that are not
        // this namespace's keys) stay at the front of the range: skip past them.
        let mut offset = 0usize;
        loop {
            let texts: Vec<Vec<u8>> = self
                .query(
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(&exp)
                        .arg("-inf")
                        .arg(now.as_millis())
                        .arg("LIMIT")
                        .arg(offset)
                        .arg(BATCH),
                )
                .await?;
            let mut inv = self.scripts.purge.prepare_invoke();
            inv.key(&keys)
                .key(&exp)
                .key(self.namespaces())
                .key(&owners)
                .arg(now.as_millis())
                .arg(ns)
                .arg(self.prefix());
            for raw in &texts {
                let Some(key) = member_key(raw, &exp) else {
                    offset += 1;
                    continue;
                };
                if key.namespace().as_str() != ns {
                    tracing::warn!(index = %exp, key = %key, "skipping a member of another namespace's index");
                    offset += 1;
                    continue;
                }
                let rkey = self.record_key(&key);
                let user = key.user_id().map(|u| self.user_index(u));
                inv.key(&rkey).key(user.as_deref().unwrap_or(&rkey)).arg(raw).arg(if user.is_some() {
                    "1"
                } else {
                    "0"
                });
            }
            let (n, skipped): (u64, Vec<String>) = self.run(&inv).await?;
            *purged += n;
            offset += skipped.len();
            for key in &skipped {
                tracing::warn!(key = %key, "purge skipped a record whose metadata does not parse");
            }
            if texts.len() < BATCH {
                return Ok(true);
            }
            if let Some((id, ms)) = lease {
                let mut inv = self.scripts.lease.prepare_invoke();
                inv.key(&self.purger_key).arg(id).arg(ms);
                let held: i64 = self.run(&inv).await?;
                if held != 1 {
                    return Ok(false);
                }
            }
        }
    }
}

/// Appends the decimal form of `n`.
fn push_int(s: &mut String, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        s.push('-');
    }
    for &b in &buf[i..] {
        s.push(char::from(b));
    }
}

fn mode(p: Precondition) -> (&'static str, u64) {
    match p {
        Precondition::Any => ("a", 0),
        Precondition::Absent => ("n", 0),
        Precondition::Version(v) => ("v", v),
    }
}

/// Parses the `value` and `meta` fields of `key`'s record hash (see [`FIELDS`]).
fn parse_record(key: &SessionKey, fields: Fields) -> Result<Option<Record>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { key: key.to_string(), reason };
    let (value, meta) = match fields {
        (Some(value), Some(meta)) => (value, meta),
        (None, None) => return Ok(None),
        (None, Some(_)) => return Err(corrupt("the hash has no `value` field".into())),
        (Some(_), None) => return Err(corrupt("the hash has no `meta` field".into())),
    };
    let text = std::str::from_utf8(&meta).map_err(|_| corrupt("the `meta` field is not UTF-8".into()))?;
    let bad = || corrupt(format!("the `meta` field {text:?} is not `version schema created updated expires owner`"));
    let mut parts = text.split(' ');
    let mut next = || parts.next().ok_or_else(bad);
    let version = next()?.parse().map_err(|_| bad())?;
    let schema_version = next()?.parse().map_err(|_| bad())?;
    let created_at = Timestamp(next()?.parse().map_err(|_| bad())?);
    let updated_at = Timestamp(next()?.parse().map_err(|_| bad())?);
    let expires_at = match next()? {
        "-" => None,
        ms => Some(Timestamp(ms.parse().map_err(|_| bad())?)),
    };
    let user_id = match parts.next() {
        // Written before owners were stored: indexed under the key's user.
        None => key.user_id(),
        Some("-") => None,
        Some(user) => Some(user.parse().map_err(|_| bad())?),
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(Some(Record { value, version, schema_version, created_at, updated_at, expires_at, user_id }))
}

/// The fields of a record hash: the codec's bytes, and the metadata as six
/// space-separated fields `version schema created updated expires owner` (unix ms; `-`:
/// never / none), e.g. `8071441546817530881 1 1715000000000 1715000042000 - 42`. Two
/// fields rather than seven: a load is one HMGET whose reply the client parses in a
/// third less time (measured).
const FIELDS: [&str; 2] = ["value", "meta"];

/// The reply to `HMGET key value meta`.
type Fields = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What a write or delete script's reply means.
fn script_outcome(key: &SessionKey, reply: i64) -> Result<i64, StoreError> {
    match reply {
        -1 => Err(StoreError::Conflict { key: key.to_string() }),
        -2 => Err(StoreError::Corrupt {
            key: key.to_string(),
            reason: "the record's metadata does not parse; only a write or delete with Precondition::Any replaces it"
                .into(),
        }),
        n if n >= 0 => Ok(n),
        n => Err(StoreError::Corrupt { key: key.to_string(), reason: format!("the script answered {n}") }),
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        let rkey = self.record_key(key);
        let mut con = self.con.clone();
        let fields: Fields =
            redis::cmd("HMGET").arg(&rkey).arg(&FIELDS[..]).query_async(&mut con).await.map_err(|e| {
                if is_wrong_type(&e) {
                    StoreError::Corrupt { key: key.to_string(), reason: format!("`{rkey}` is not a hash: {e}") }
                } else {
                    backend_err(Some(key.as_str()), e)
                }
            })?;
        Ok(parse_record(key, fields)?.filter(|r| !r.is_expired(now)))
    }

    async fn write(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let text = key.as_str();
        let ns = key.namespace().as_str();
        let rkey = self.record_key(key);
        let key_user = key.user_id();
        let indexed = write.indexed_user(key);
        let user = indexed.map(|u| self.user_index(u));
        // Only a key without a user keeps its owner in the namespace's owner hash.
        let owners = if key_user.is_none() { Some(self.owners_index(ns)) } else { None };
        let (mode, expected) = mode(precondition);
        let (expires, native) = match write.expires_at {
            Some(at) => (at.as_millis().to_string(), self.native_expiry(at).to_string()),
            None => (String::new(), String::new()),
        };
        let mut inv = self.scripts.write.prepare_invoke();
        inv.key(&rkey)
            .key(self.namespace_index(ns))
            .key(self.expiry_index(ns))
            .key(user.as_deref().unwrap_or(&rkey))
            .key(self.namespaces())
            .key(owners.as_deref().unwrap_or(&rkey))
            .arg(text)
            .arg(ns)
            .arg(mode)
            .arg(expected)
            .arg(write.value)
            .arg(write.schema_version)
            .arg(now.as_millis())
            .arg(expires)
            .arg(native)
            .arg(if user.is_some() { "1" } else { "0" })
            .arg(write.version);
        match indexed {
            Some(u) => inv.arg(u),
            None => inv.arg("-"),
        };
        inv.arg(if key_user.is_some() { "1" } else { "0" }).arg(self.prefix());
        let mut con = self.con.clone();
        let reply: i64 = inv.invoke_async(&mut con).await.map_err(|e| sent_err(text, e))?;
        script_outcome(key, reply)?;
        Ok(write.version)
    }

    async fn delete(&self, key: &SessionKey, precondition: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        let text = key.as_str();
        let ns = key.namespace().as_str();
        let rkey = self.record_key(key);
        let user = key.user_id().map(|u| self.user_index(u));
        let (mode, expected) = mode(precondition);
        let mut inv = self.scripts.delete.prepare_invoke();
        inv.key(&rkey)
            .key(self.namespace_index(ns))
            .key(self.expiry_index(ns))
            .key(user.as_deref().unwrap_or(&rkey))
            .key(self.owners_index(ns))
            .arg(text)
            .arg(mode)
            .arg(expected)
            .arg(now.as_millis())
            .arg(if user.is_some() { "1" } else { "0" })
            .arg(self.prefix());
        let mut con = self.con.clone();
        let reply: i64 = inv.invoke_async(&mut con).await.map_err(|e| sent_err(text, e))?;
        Ok(script_outcome(key, reply)? == 1)
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        let index = self.user_index(user_id);
        let mut forgotten = 0u64;
        loop {
            // Batches keep each script short; each one takes every member it is given
            // out of the index (forgotten, stale or junk), so this ends.
            let texts: Vec<Vec<u8>> = self.query(redis::cmd("SRANDMEMBER").arg(&index).arg(BATCH)).await?;
            if texts.is_empty() {
                return Ok(forgotten);
            }
            let mut inv = self.scripts.forget.prepare_invoke();
            inv.key(&index).arg(now.as_millis()).arg(user_id);
            let (mut members, mut junk) = (0usize, Vec::new());
            for raw in &texts {
                let Some(key) = member_key(raw, &index) else {
                    junk.push(raw);
                    continue;
                };
                let ns = key.namespace().as_str();
                inv.key(self.record_key(&key))
                    .key(self.namespace_index(ns))
                    .key(self.expiry_index(ns))
                    .key(self.owners_index(ns))
                    .arg(raw);
                match key.user_id() {
                    Some(u) => inv.arg(u),
                    None => inv.arg("-"),
                };
                members += 1;
            }
            if !junk.is_empty() {
                let () = self.query(redis::cmd("SREM").arg(&index).arg(&junk)).await?;
            }
            if members > 0 {
                let (n, bad): (u64, Vec<String>) = self.run(&inv).await?;
                forgotten += n;
                for key in &bad {
                    tracing::warn!(key = %key, user_id, "forget-user deleted a record whose metadata does not parse");
                }
            }
        }
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        let index = self.namespace_index(namespace.as_str());
        let mut con = self.con.clone();
        self.timed(None, async move {
            let mut items: Vec<(SessionKey, Record)> = Vec::new();
            let mut from: Vec<u8> = match cursor {
                Some(c) => [b"(", c.as_bytes()].concat(),
                None => b"-".to_vec(),
            };
            loop {
                let want = limit.saturating_add(1).saturating_sub(items.len()).clamp(1, BATCH);
                let texts: Vec<Vec<u8>> = redis::cmd("ZRANGEBYLEX")
                    .arg(&index)
                    .arg(&from)
                    .arg("+")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(want)
                    .query_async(&mut con)
                    .await
                    .map_err(|e| backend_err(None, e))?;
                let mut keys = Vec::with_capacity(texts.len());
                for raw in &texts {
                    match member_key(raw, &index) {
                        Some(k) if k.namespace() == namespace => keys.push(k),
                        Some(k) => tracing::warn!(index, key = %k, "skipping a member of another namespace's index"),
                        None => {}
                    }
                }
                let rows: Vec<redis::RedisResult<Fields>> = if keys.is_empty() {
                    Vec::new()
                } else {
                    let mut pipe = redis::pipe();
                    for k in &keys {
                        pipe.cmd("HMGET").arg(self.record_key(k)).arg(&FIELDS[..]);
                    }
                    pipe.ignore_errors().query_async(&mut con).await.map_err(|e| backend_err(None, e))?
                };
                for (k, row) in keys.into_iter().zip(rows) {
                    let fields = match row {
                        Ok(fields) => fields,
                        Err(e) if is_wrong_type(&e) => {
                            tracing::warn!(key = %k, "scan skipped a record that is not a hash");
                            continue;
                        }
                        Err(e) => return Err(backend_err(Some(k.as_str()), e)),
                    };
                    match parse_record(&k, fields) {
                        Ok(Some(r)) if !r.is_expired(now) => items.push((k, r)),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(key = %k, error = %e, "scan skipped an unreadable record"),
                    }
                }
                let exhausted = texts.len() < want;
                match texts.last() {
                    Some(last) if !exhausted && items.len() <= limit => from = [b"(", last.as_slice()].concat(),
                    _ => break,
                }
            }
            let more = items.len() > limit;
            items.truncate(limit);
            let next = if more { items.last().map(|(k, _)| k.to_string()) } else { None };
            Ok(Page { items, next })
        })
        .await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.purge_batches(now, None).await
    }

    /// Takes the lease `<prefix>purger` (`SET NX PX`, at least 30 s and 4 x
    /// `op_timeout`), purges in batches while extending it, then releases it; returns
    /// `Ok(0)` at once while another process holds it.
    async fn purge_expired_background(&self, now: Timestamp) -> Result<u64, StoreError> {
        let id = format!("{:016x}-{}", rand::random::<u64>(), std::process::id());
        let ms = u64::try_from(self.purge_lease().as_millis()).unwrap_or(u64::MAX);
        let took: Option<String> =
            self.query(redis::cmd("SET").arg(&self.purger_key).arg(&id).arg("NX").arg("PX").arg(ms)).await?;
        if took.is_none() {
            tracing::debug!("another process holds the purge lease; skipping this round");
            return Ok(0);
        }
        let purged = self.purge_batches(now, Some((&id, ms))).await;
        let mut inv = self.scripts.lease.prepare_invoke();
        inv.key(&self.purger_key).arg(&id).arg(0);
        if let Err(e) = self.run::<i64>(&inv).await {
            tracing::warn!(error = %e, "could not release the purge lease; it runs out by itself");
        }
        purged
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        let mut con = self.con.clone();
        self.timed(None, async move {
            let namespaces: Vec<String> = match namespace {
                Some(ns) => vec![ns.as_str().to_owned()],
                None => {
                    let raw: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
                        .arg(self.namespaces())
                        .query_async(&mut con)
                        .await
                        .map_err(|e| backend_err(None, e))?;
                    let total = raw.len();
                    let names: Vec<String> = raw.into_iter().filter_map(|n| String::from_utf8(n).ok()).collect();
                    if names.len() < total {
                        tracing::warn!(index = self.namespaces(), "count skipped namespace names that are not UTF-8");
                    }
                    names
                }
            };
            if namespaces.is_empty() {
                return Ok(0);
            }
            let mut pipe = redis::pipe();
            for ns in &namespaces {
                pipe.zcard(self.namespace_index(ns)).zcount(self.expiry_index(ns), "-inf", now.as_millis());
            }
            let counts: Vec<redis::RedisResult<u64>> =
                pipe.ignore_errors().query_async(&mut con).await.map_err(|e| backend_err(None, e))?;
            let mut total = 0u64;
            for (ns, pair) in namespaces.iter().zip(counts.chunks(2)) {
                match pair {
                    [Ok(all), Ok(expired)] => total += all.saturating_sub(*expired),
                    _ => tracing::warn!(namespace = %ns, "count skipped a namespace whose indexes cannot be read"),
                }
            }
            Ok(total)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scope;

    #[test]
    fn prefix_is_split_off_the_url() {
        let (url, p) = split_url("redis://h:1/2?prefix=app:&protocol=resp3").unwrap();
        assert_eq!((url.as_str(), p.as_deref()), ("redis://h:1/2?protocol=resp3", Some("app:")));
        let (url, p) = split_url("redis://h:1").unwrap();
        assert_eq!((url.as_str(), p), ("redis://h:1", None));
    }

    #[test]
    fn integers_are_written_like_display() {
        for n in [0, 7, -7, 42, 1_000_000_000_000, i64::MAX, i64::MIN] {
            let mut s = String::from("x");
            push_int(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn prefixes_are_validated() {
        assert!(validate_prefix("bs:").is_ok());
        for bad in ["", "a{b", "x}", "sp ace", &"x".repeat(65)] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_out_of_range_are_config_errors() {
        assert!(RedisConfig::default().validate().is_ok());
        assert!(RedisConfig::default().expiry_grace(Duration::ZERO).validate().is_ok());
        let bad = [
            RedisConfig::default().op_timeout(Duration::MAX),
            RedisConfig::default().op_timeout(Duration::ZERO),
            RedisConfig::default().op_timeout(Duration::from_micros(999)),
            RedisConfig::default().op_timeout(*crate::store::NETWORK_TIMEOUTS.end() + Duration::from_millis(1)),
            RedisConfig::default().connect_timeout(Duration::MAX),
            RedisConfig::default().connect_timeout(Duration::ZERO),
            RedisConfig::default().expiry_grace(Duration::MAX),
            RedisConfig::default().prefix("p".repeat(65)),
        ];
        for config in bad {
            assert!(matches!(config.validate(), Err(StoreError::Config(_))), "{config:?}");
        }
    }

    #[test]
    fn records_parse_and_corruption_is_named() {
        let ns = Namespace::new("n").unwrap();
        let k = SessionKey::new(ns.clone(), Scope::User(42));
        let userless = SessionKey::new(ns, Scope::Chat(1));
        let f = |v: &str| Some(v.as_bytes().to_vec());
        let r = parse_record(&k, (f("x"), f("3 1 10 20 - 42"))).unwrap().unwrap();
        assert_eq!((r.version, r.schema_version, r.created_at, r.updated_at), (3, 1, Timestamp(10), Timestamp(20)));
        assert_eq!((r.expires_at, r.user_id), (None, Some(42)));
        let r = parse_record(&userless, (f(""), f("18446744073709551615 2 -5 7 99 -7"))).unwrap().unwrap();
        assert_eq!((r.version, r.created_at, r.expires_at), (u64::MAX, Timestamp(-5), Some(Timestamp(99))));
        assert_eq!(r.user_id, Some(-7), "an owner of a key without user");
        let r = parse_record(&userless, (f(""), f("1 2 3 4 5 -"))).unwrap().unwrap();
        assert_eq!(r.user_id, None);
        // The five-field form of records written before owners: the key's user.
        assert_eq!(parse_record(&k, (f("x"), f("3 1 10 20 -"))).unwrap().unwrap().user_id, Some(42));
        assert_eq!(parse_record(&userless, (f("x"), f("3 1 10 20 -"))).unwrap().unwrap().user_id, None);
        assert_eq!(parse_record(&k, (None, None)).unwrap(), None);
        let bads = [
            "three 1 10 20 - 1",
            "3 1 10 20",
            "3 1 10 20 - 1 x",
            "",
            "3  1 10 20 -",
            "3 1 10 20 soon",
            "3 1 10 20 - me",
        ];
        for bad in bads {
            let r = parse_record(&k, (f("x"), f(bad)));
            assert!(matches!(r, Err(StoreError::Corrupt { ref key, .. }) if key == k.as_str()), "{bad:?}: {r:?}");
        }
        assert!(parse_record(&k, (f("x"), None)).is_err());
        assert!(parse_record(&k, (None, f("1 1 1 1 - -"))).is_err());
    }

    #[test]
    fn lost_replies_of_writes_are_ambiguous_and_refusals_are_not() {
        let io = |kind| RedisError::from(std::io::Error::new(kind, "test"));
        for kind in
            [std::io::ErrorKind::TimedOut, std::io::ErrorKind::ConnectionReset, std::io::ErrorKind::UnexpectedEof]
        {
            let e = sent_err("k", io(kind));
            assert!(e.is_ambiguous() && !e.is_retryable(), "{kind:?}: {e:?}");
            assert!(backend_err(Some("k"), io(kind)).is_retryable(), "{kind:?}: a read just fails");
        }
        let refused = sent_err("k", io(std::io::ErrorKind::ConnectionRefused));
        assert!(refused.is_retryable() && !refused.is_ambiguous(), "{refused:?}");
        let script_error = sent_err("k", RedisError::from((redis::ErrorKind::Client, "bad arguments")));
        assert!(!script_error.is_ambiguous(), "{script_error:?}");
    }
}
