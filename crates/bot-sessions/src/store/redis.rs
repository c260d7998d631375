//! The Redis store (feature `redis`): one hash per session, written by Lua scripts that
//! check the precondition and keep the indexes in step in one round trip.
//!
//! # Key layout
//!
//! With the default prefix `bs:` (set with `?prefix=` in the URL):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `bs:{u:42}onboarding/chat:1/user:42` | hash | a session of user 42: `value` (the codec's bytes) and `meta` = `version schema created updated expires` (unix ms; `-`: never), e.g. `3 1 1715000000000 1715000042000 -` |
//! | `bs:{counter/chat:5}` | hash | a session without a user, tagged by its whole key text |
//! | `bs:{u:42}:keys` | set | the key texts of every session of user 42, in every namespace |
//! | `bs:{ns:onboarding}:keys` | sorted set | the key texts of a namespace (score 0, so in byte order): scans |
//! | `bs:{ns:onboarding}:exp` | sorted set | the key texts of a namespace that expire, scored by `expires_at`: counts and purges |
//! | `bs:namespaces` | set | every namespace that has records |
//!
//! Hash tags (`{…}`): a session with a user id is tagged by that user, so its record
//! and the user's index set live in one Redis Cluster slot and the write script updates
//! both atomically even though the user's sessions span namespaces. Sessions without a
//! user are tagged by their own key text. The namespace indexes are tagged by
//! namespace, which is another slot: this store drives one Redis server (or a
//! primary), where a script may touch any key; on a cluster, the namespace index
//! updates would have to move out of the scripts. The layout keeps that change local.
//!
//! # Expiry
//!
//! Every decision compares `expires_at` with the caller's `now`, as on every backend.
//! Redis' own expiry (`PEXPIREAT`) is set to `expires_at` plus a grace period (one
//! minute by default, see [`RedisConfig::expiry_grace`]) so memory is reclaimed without a
//! sweeper even if the bot's clock runs somewhat behind the server's. Index entries
//! left behind by native expiry are not counted or scanned (the expiry index says they
//! are expired) and go at the next [`purge_expired`](Store::purge_expired).
//!
//! # Faults
//!
//! One multiplexed [`ConnectionManager`] reconnects after a server restart. An outage
//! is a retryable [`StoreError::Backend`] in bounded time, never a hang: every request
//! has a response timeout of [`RedisConfig::op_timeout`], a reconnect makes at most 3
//! attempts of at most [`RedisConfig::connect_timeout`] each, and operations of several
//! round trips (scan, count, forget-user, purge) run under one more `op_timeout` as a
//! whole. Single-key operations rely on the client's own timeouts alone: a second
//! timer per operation measurably slowed the hot path (`bench/`), so a load or write
//! waits at most one reconnect plus `op_timeout` per round trip (a write is one round
//! trip, three when the server lost the script).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use crate::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

const BACKEND: &str = "redis";
/// Key texts fetched per round trip while scanning or purging.
const BATCH: usize = 256;

/// Settings of a [`RedisStore`] beyond the server URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Prepended to every key (default `bs:`): 1 to 64 characters from
    /// `[A-Za-z0-9_.:-]`.
    pub prefix: String,
    /// Longest wait for one reply, and for a whole multi-round-trip operation (scan,
    /// count, forget-user, purge), before a retryable error (default 5 s).
    pub op_timeout: Duration,
    /// Timeout of one connection attempt (default 1 s).
    pub connect_timeout: Duration,
    /// Redis' own expiry is set this long after a record's `expires_at` (default 60 s),
    /// so a bot clock behind the server's never loses a live record early.
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
    scripts: std::sync::Arc<Scripts>,
}

struct Scripts {
    write: Script,
    delete: Script,
    forget: Script,
    purge: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The compare-and-set write script, for benchmarks and tools that want to call it raw.
pub const WRITE_SCRIPT: &str = include_str!("redis/write.lua");

fn backend_err(key: Option<&str>, e: redis::RedisError) -> StoreError {
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

fn timeout_err(key: Option<&str>, after: Duration) -> StoreError {
    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer from redis within {after:?}"));
    StoreError::backend(BACKEND, key, true, e)
}

fn config_err(msg: String) -> StoreError {
    StoreError::Config(msg)
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
    /// As [`RedisStore::connect`].
    pub async fn connect_with(url: &str, mut config: RedisConfig) -> Result<Self, StoreError> {
        let (url, prefix) = split_url(url)?;
        if let Some(p) = prefix {
            config.prefix = p;
        }
        validate_prefix(&config.prefix)?;
        if config.op_timeout.is_zero() {
            return Err(config_err("redis op_timeout must be above zero".into()));
        }
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
            delete: Script::new(include_str!("redis/delete.lua")),
            forget: Script::new(include_str!("redis/forget.lua")),
            purge: Script::new(include_str!("redis/purge.lua")),
        };
        let namespaces_key = format!("{}namespaces", config.prefix);
        Ok(RedisStore { con, config, namespaces_key, scripts: std::sync::Arc::new(scripts) })
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

    fn user_index(&self, user: i64) -> String {
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

    fn native_expiry(&self, expires_at: Timestamp) -> i64 {
        // Never in the past from Redis' point of view by more than the grace allows.
        expires_at.saturating_add(self.config.expiry_grace).as_millis()
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

/// Parses the `value` and `meta` fields of a record hash (see [`FIELDS`]).
fn parse_record(key: &str, fields: Fields) -> Result<Option<Record>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { key: key.to_owned(), reason };
    let (value, meta) = match fields {
        (Some(value), Some(meta)) => (value, meta),
        (None, None) => return Ok(None),
        (None, Some(_)) => return Err(corrupt("the hash has no `value` field".into())),
        (Some(_), None) => return Err(corrupt("the hash has no `meta` field".into())),
    };
    let text = std::str::from_utf8(&meta).map_err(|_| corrupt("the `meta` field is not UTF-8".into()))?;
    let bad = || corrupt(format!("the `meta` field {text:?} is not `version schema created updated expires`"));
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
    if parts.next().is_some() {
        return Err(bad());
    }
    // TODO(issue 8): keep the owner in `meta`.
    Ok(Some(Record { value, version, schema_version, created_at, updated_at, expires_at, user_id: None }))
}

/// The fields of a record hash: the codec's bytes, and the metadata as five
/// space-separated fields `version schema created updated expires` (unix ms; `-`:
/// never), e.g. `3 1 1715000000000 1715000042000 -`. Two fields rather than six: a
/// load is one HMGET whose reply the client parses in a third less time (measured).
const FIELDS: [&str; 2] = ["value", "meta"];

/// The reply to `HMGET key value meta`.
type Fields = (Option<Vec<u8>>, Option<Vec<u8>>);

fn parse_text(text: &str) -> Result<SessionKey, StoreError> {
    text.parse::<SessionKey>().map_err(|e| StoreError::Corrupt { key: text.to_owned(), reason: e.to_string() })
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        let text = key.as_str();
        let rkey = self.record_key(key);
        let mut con = self.con.clone();
        let fields: Fields = redis::cmd("HMGET")
            .arg(&rkey)
            .arg(&FIELDS[..])
            .query_async(&mut con)
            .await
            .map_err(|e| backend_err(Some(text), e))?;
        Ok(parse_record(text, fields)?.filter(|r| !r.is_expired(now)))
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
        let user = key.user_id().map(|u| self.user_index(u));
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
            .arg(text)
            .arg(ns)
            .arg(mode)
            .arg(expected)
            .arg(write.value)
            .arg(write.schema_version)
            .arg(now.as_millis())
            .arg(expires)
            .arg(native)
            .arg(if user.is_some() { "1" } else { "0" });
        let mut con = self.con.clone();
        let version: i64 = inv.invoke_async(&mut con).await.map_err(|e| backend_err(Some(text), e))?;
        match version {
            -1 => Err(StoreError::Conflict { key: text.to_owned() }),
            v => u64::try_from(v).map_err(|_| StoreError::Corrupt {
                key: text.to_owned(),
                reason: format!("script returned version {v}"),
            }),
        }
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
            .arg(text)
            .arg(mode)
            .arg(expected)
            .arg(now.as_millis())
            .arg(if user.is_some() { "1" } else { "0" });
        let mut con = self.con.clone();
        let outcome: i64 = inv.invoke_async(&mut con).await.map_err(|e| backend_err(Some(text), e))?;
        match outcome {
            -1 => Err(StoreError::Conflict { key: text.to_owned() }),
            n => Ok(n == 1),
        }
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        let index = self.user_index(user_id);
        let mut con = self.con.clone();
        self.timed(None, async move {
            let mut forgotten = 0u64;
            loop {
                // Batches keep each script short; each one removes what it is given.
                let texts: Vec<String> = redis::cmd("SRANDMEMBER")
                    .arg(&index)
                    .arg(BATCH)
                    .query_async(&mut con)
                    .await
                    .map_err(|e| backend_err(None, e))?;
                if texts.is_empty() {
                    return Ok(forgotten);
                }
                let mut inv = self.scripts.forget.prepare_invoke();
                inv.key(&index).arg(now.as_millis());
                for text in &texts {
                    let key = parse_text(text)?;
                    let ns = key.namespace().as_str();
                    inv.key(self.record_key(&key)).key(self.namespace_index(ns)).key(self.expiry_index(ns)).arg(text);
                }
                let n: u64 = inv.invoke_async(&mut con).await.map_err(|e| backend_err(None, e))?;
                forgotten += n;
            }
        })
        .await
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
            let mut from = cursor.map_or_else(|| "-".to_owned(), |c| format!("({c}"));
            loop {
                let want = limit.saturating_add(1).saturating_sub(items.len()).clamp(1, BATCH);
                let texts: Vec<String> = redis::cmd("ZRANGEBYLEX")
                    .arg(&index)
                    .arg(&from)
                    .arg("+")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(want)
                    .query_async(&mut con)
                    .await
                    .map_err(|e| backend_err(None, e))?;
                let keys = texts.iter().map(|t| parse_text(t)).collect::<Result<Vec<_>, _>>()?;
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("HMGET").arg(self.record_key(k)).arg(&FIELDS[..]);
                }
                let rows: Vec<Fields> = if keys.is_empty() {
                    Vec::new()
                } else {
                    pipe.query_async(&mut con).await.map_err(|e| backend_err(None, e))?
                };
                for (k, fields) in keys.into_iter().zip(rows) {
                    if let Some(r) = parse_record(k.as_str(), fields)?.filter(|r| !r.is_expired(now)) {
                        items.push((k, r));
                    }
                }
                let exhausted = texts.len() < want;
                match texts.last() {
                    Some(last) if !exhausted && items.len() <= limit => from = format!("({last}"),
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
        let mut con = self.con.clone();
        self.timed(None, async move {
            let namespaces: Vec<String> = con.smembers(self.namespaces()).await.map_err(|e| backend_err(None, e))?;
            let mut purged = 0u64;
            for ns in namespaces {
                loop {
                    let texts: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                        .arg(self.expiry_index(&ns))
                        .arg("-inf")
                        .arg(now.as_millis())
                        .arg("LIMIT")
                        .arg(0)
                        .arg(BATCH)
                        .query_async(&mut con)
                        .await
                        .map_err(|e| backend_err(None, e))?;
                    let mut inv = self.scripts.purge.prepare_invoke();
                    inv.key(self.namespace_index(&ns))
                        .key(self.expiry_index(&ns))
                        .key(self.namespaces())
                        .arg(now.as_millis())
                        .arg(&ns);
                    for text in &texts {
                        let key = parse_text(text)?;
                        let rkey = self.record_key(&key);
                        let user = key.user_id().map(|u| self.user_index(u));
                        inv.key(&rkey).key(user.as_deref().unwrap_or(&rkey)).arg(text).arg(if user.is_some() {
                            "1"
                        } else {
                            "0"
                        });
                    }
                    let n: u64 = inv.invoke_async(&mut con).await.map_err(|e| backend_err(None, e))?;
                    purged += n;
                    if texts.len() < BATCH || n == 0 {
                        break;
                    }
                }
            }
            Ok(purged)
        })
        .await
    }

    async fn count(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        let mut con = self.con.clone();
        self.timed(None, async move {
            let namespaces: Vec<String> = match namespace {
                Some(ns) => vec![ns.as_str().to_owned()],
                None => con.smembers(self.namespaces()).await.map_err(|e| backend_err(None, e))?,
            };
            if namespaces.is_empty() {
                return Ok(0);
            }
            let mut pipe = redis::pipe();
            for ns in &namespaces {
                pipe.zcard(self.namespace_index(ns)).zcount(self.expiry_index(ns), "-inf", now.as_millis());
            }
            let counts: Vec<u64> = pipe.query_async(&mut con).await.map_err(|e| backend_err(None, e))?;
            Ok(counts.chunks(2).map(|c| c[0].saturating_sub(c.get(1).copied().unwrap_or(0))).sum())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn records_parse_and_corruption_is_named() {
        let f = |v: &str| Some(v.as_bytes().to_vec());
        let r = parse_record("k", (f("x"), f("3 1 10 20 -"))).unwrap().unwrap();
        assert_eq!((r.version, r.schema_version, r.created_at, r.updated_at), (3, 1, Timestamp(10), Timestamp(20)));
        assert_eq!(r.expires_at, None);
        let r = parse_record("k", (f(""), f("1 2 -5 7 99"))).unwrap().unwrap();
        assert_eq!((r.created_at, r.expires_at), (Timestamp(-5), Some(Timestamp(99))));
        assert_eq!(parse_record("k", (None, None)).unwrap(), None);
        for bad in ["three 1 10 20 -", "3 1 10 20", "3 1 10 20 - x", "", "3  1 10 20 -", "3 1 10 20 soon"] {
            let r = parse_record("k", (f("x"), f(bad)));
            assert!(matches!(r, Err(StoreError::Corrupt { ref key, .. }) if key == "k"), "{bad:?}: {r:?}");
        }
        assert!(parse_record("k", (f("x"), None)).is_err());
        assert!(parse_record("k", (None, f("1 1 1 1 -"))).is_err());
    }
}
