//! The settings of a [`RedisStore`](super::RedisStore) and the URL options that set them.

use std::path::PathBuf;
use std::time::Duration;

use super::error::config_err;
use crate::StoreError;

/// Longest accepted [`RedisConfig::expiry_grace`].
const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a write waits for before it is acknowledged (see [`RedisConfig::wait`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WaitFor {
    /// Nothing beyond the primary applying it in memory (default).
    #[default]
    Applied,
    /// `WAIT n`: at least `n` replicas acknowledged the write.
    Replicas(u32),
    /// `WAITAOF local n` (Redis 7.2 or newer): the primary's append-only file has it
    /// fsynced when `local` is true, and at least `n` replicas' files do.
    Aof {
        /// Whether the primary's own AOF must have it on disk.
        local: bool,
        /// How many replicas must have it in their AOF on disk.
        replicas: u32,
    },
}

/// TLS files for `rediss://` (as libpq spells them in a URL: `sslrootcert`, `sslcert`,
/// `sslkey`). Without `root_cert` the system's trusted roots are used.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TlsFiles {
    /// PEM file of the CA (or CAs) that signed the server's certificate.
    pub root_cert: Option<PathBuf>,
    /// PEM file of the client's certificate chain, for servers that ask for one.
    pub cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// Trust the CA (or CAs) in this PEM file instead of the system roots.
    pub fn root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_cert = Some(path.into());
        self
    }

    /// Present this client certificate chain and key (PEM files).
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert = Some(cert.into());
        self.key = Some(key.into());
        self
    }
}

/// Settings of a [`RedisStore`](super::RedisStore) beyond the server URL.
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
    /// Talk to a Redis Cluster (URL `cluster=true`): the cluster key layout and a
    /// cluster client that follows the slot map. Off by default; a cluster node
    /// reached without it is refused at connect.
    pub cluster: bool,
    /// TLS files (URL `sslrootcert`, `sslcert`, `sslkey`); only for `rediss://`.
    pub tls: TlsFiles,
    /// Refuse to start (a [`StoreError::Config`] at connect) when the server's settings
    /// let an acknowledged write be lost in a crash or evicted (`appendonly` off,
    /// `appendfsync` other than `always`, `maxmemory-policy` other than `noeviction`),
    /// or when it does not let the store read them (URL `require_durable=true`). Off by
    /// default: then such settings are a logged warning.
    pub require_durable: bool,
    /// What a write or delete waits for before it is acknowledged (URL
    /// `wait=replicas:N` or `wait=aof:local:N` / `wait=aof:-:N`). A wait that does not
    /// reach its count in [`RedisConfig::wait_timeout`] makes the outcome
    /// [`StoreError::Ambiguous`]: the primary applied the write, but it may not survive a
    /// failover or crash.
    pub wait: WaitFor,
    /// How long `WAIT` / `WAITAOF` may block (URL `wait_timeout_ms`; default 1 s; from
    /// 1 ms to less than `op_timeout`).
    pub wait_timeout: Duration,
    /// Whether the near cache's compare-and-set writes ([`Store::write_over`]) that wait
    /// at the same moment (more than 8 under way) share one script run (URL
    /// `batch_writes`; default `true`). Each stays its own compare-and-set, decided on
    /// its own. On one server without [`wait`](Self::wait) only: a cluster's keys of
    /// one run would have to share a slot, and a wait belongs to each write. It saves
    /// the client and the server a command's overhead per write: on the 2-core test
    /// machine, 64 tasks through the near cache (`bench --bin cache`) ran 1.4x the
    /// raw two-step baseline unbatched and more batched (see the guide's performance
    /// chapter).
    ///
    /// [`Store::write_over`]: crate::Store::write_over
    pub batch_writes: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            prefix: "bs:".into(),
            op_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            expiry_grace: Duration::from_secs(60),
            cluster: false,
            tls: TlsFiles::default(),
            require_durable: false,
            wait: WaitFor::Applied,
            wait_timeout: Duration::from_secs(1),
            batch_writes: true,
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

    /// Sets [`RedisConfig::cluster`].
    pub fn cluster(mut self, on: bool) -> Self {
        self.cluster = on;
        self
    }

    /// Sets [`RedisConfig::tls`].
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = files;
        self
    }

    /// Sets [`RedisConfig::require_durable`].
    pub fn require_durable(mut self, on: bool) -> Self {
        self.require_durable = on;
        self
    }

    /// Sets [`RedisConfig::wait`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::store::redis::{RedisConfig, WaitFor};
    /// use std::time::Duration;
    ///
    /// // Acknowledge a write once one replica has it (or say it is ambiguous after 500 ms).
    /// let config = RedisConfig::default().wait(WaitFor::Replicas(1)).wait_timeout(Duration::from_millis(500));
    /// ```
    pub fn wait(mut self, wait: WaitFor) -> Self {
        self.wait = wait;
        self
    }

    /// Sets [`RedisConfig::wait_timeout`].
    pub fn wait_timeout(mut self, d: Duration) -> Self {
        self.wait_timeout = d;
        self
    }

    /// Sets [`RedisConfig::batch_writes`].
    pub fn batch_writes(mut self, on: bool) -> Self {
        self.batch_writes = on;
        self
    }

    /// Checks every setting's range.
    pub(super) fn validate(&self) -> Result<(), StoreError> {
        validate_prefix(&self.prefix)?;
        super::super::check_timeout(super::BACKEND, "op_timeout", self.op_timeout)?;
        super::super::check_timeout(super::BACKEND, "connect_timeout", self.connect_timeout)?;
        if self.expiry_grace > MAX_GRACE {
            return Err(config_err(format!("redis expiry_grace must be at most 30 days, not {:?}", self.expiry_grace)));
        }
        if self.wait != WaitFor::Applied
            && (self.wait_timeout < Duration::from_millis(1) || self.wait_timeout >= self.op_timeout)
        {
            return Err(config_err(format!(
                "redis wait_timeout must be from 1 ms to less than op_timeout ({:?}), not {:?}",
                self.op_timeout, self.wait_timeout
            )));
        }
        if matches!(self.wait, WaitFor::Replicas(0) | WaitFor::Aof { local: false, replicas: 0 }) {
            return Err(config_err("redis wait must wait for at least one replica or the local AOF".into()));
        }
        if (self.tls.cert.is_some()) != (self.tls.key.is_some()) {
            return Err(config_err("redis sslcert and sslkey go together: give both or neither".into()));
        }
        Ok(())
    }

    /// Applies the store's own options of a URL's query to this config and returns the
    /// URL without them (the rest is for the redis client).
    pub(super) fn take_url_options(&mut self, url: &str) -> Result<String, StoreError> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok(url.to_owned());
        };
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let Some((name, v)) = pair.split_once('=') else {
                rest.push(pair);
                continue;
            };
            match name {
                "prefix" => self.prefix = v.to_owned(),
                "cluster" => self.cluster = flag(name, v)?,
                "require_durable" => self.require_durable = flag(name, v)?,
                "batch_writes" => self.batch_writes = flag(name, v)?,
                "sslrootcert" => self.tls.root_cert = Some(v.into()),
                "sslcert" => self.tls.cert = Some(v.into()),
                "sslkey" => self.tls.key = Some(v.into()),
                "wait" => self.wait = parse_wait(v)?,
                "wait_timeout_ms" => {
                    let ms: u64 = v.parse().map_err(|_| {
                        config_err(format!("redis wait_timeout_ms must be whole milliseconds, not `{v}`"))
                    })?;
                    self.wait_timeout = Duration::from_millis(ms);
                }
                _ => rest.push(pair),
            }
        }
        Ok(if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) })
    }
}

fn flag(name: &str, v: &str) -> Result<bool, StoreError> {
    match v {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(config_err(format!("redis URL option {name} must be true or false, not `{v}`"))),
    }
}

fn parse_wait(v: &str) -> Result<WaitFor, StoreError> {
    let bad =
        || config_err(format!("redis URL option wait must be `replicas:N`, `aof:local:N` or `aof:-:N`, not `{v}`"));
    let count = |n: &str| n.parse::<u32>().map_err(|_| bad());
    match v.split(':').collect::<Vec<_>>().as_slice() {
        ["replicas", n] => Ok(WaitFor::Replicas(count(n)?)),
        ["aof", "local", n] => Ok(WaitFor::Aof { local: true, replicas: count(n)? }),
        ["aof", "-", n] => Ok(WaitFor::Aof { local: false, replicas: count(n)? }),
        _ => Err(bad()),
    }
}

pub(super) fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
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

/// `url` with its password masked (the crate's one redaction, [`crate::store::redact_url`]).
pub(super) fn redact_url(url: &str) -> String {
    crate::store::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_options_are_split_off_the_url() {
        let mut c = RedisConfig::default();
        let url = c
            .take_url_options(
                "rediss://h:1/2?prefix=app:&protocol=resp3&cluster=true&sslrootcert=/ca.pem&wait=replicas:2&wait_timeout_ms=250&require_durable=yes&batch_writes=off",
            )
            .unwrap();
        assert_eq!(url, "rediss://h:1/2?protocol=resp3");
        assert_eq!(c.prefix, "app:");
        assert!(c.cluster && c.require_durable && !c.batch_writes);
        assert_eq!(c.tls.root_cert.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert_eq!((c.wait, c.wait_timeout), (WaitFor::Replicas(2), Duration::from_millis(250)));
        let mut c = RedisConfig::default();
        assert_eq!(c.take_url_options("redis://h:1").unwrap(), "redis://h:1");
        assert_eq!(RedisConfig::default().take_url_options("redis://h?wait=aof:local:0").map(|_| ()).ok(), Some(()));
        for bad in [
            "redis://h?cluster=maybe",
            "redis://h?wait=all",
            "redis://h?wait=replicas:x",
            "redis://h?wait_timeout_ms=-1",
        ] {
            assert!(matches!(RedisConfig::default().take_url_options(bad), Err(StoreError::Config(_))), "{bad}");
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
    fn passwords_are_redacted() {
        assert_eq!(redact_url("redis://:hunter2@h:1/0"), "redis://:***@h:1/0");
        // The user info runs to the last `@`: a query value holding one is masked too.
        assert_eq!(redact_url("rediss://bot:hunter2@h:1?x=@y"), "rediss://bot:***@y");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
        assert_eq!(redact_url("redis://bot@h:1"), "redis://bot@h:1");
    }

    #[test]
    fn settings_out_of_range_are_config_errors() {
        assert!(RedisConfig::default().validate().is_ok());
        assert!(RedisConfig::default().expiry_grace(Duration::ZERO).validate().is_ok());
        assert!(RedisConfig::default().wait(WaitFor::Replicas(1)).validate().is_ok());
        let bad = [
            RedisConfig::default().op_timeout(Duration::MAX),
            RedisConfig::default().op_timeout(Duration::ZERO),
            RedisConfig::default().op_timeout(Duration::from_micros(999)),
            RedisConfig::default().op_timeout(*crate::store::NETWORK_TIMEOUTS.end() + Duration::from_millis(1)),
            RedisConfig::default().connect_timeout(Duration::MAX),
            RedisConfig::default().connect_timeout(Duration::ZERO),
            RedisConfig::default().expiry_grace(Duration::MAX),
            RedisConfig::default().prefix("p".repeat(65)),
            RedisConfig::default().wait(WaitFor::Replicas(0)),
            RedisConfig::default().wait(WaitFor::Replicas(1)).wait_timeout(Duration::from_secs(5)),
            RedisConfig::default().wait(WaitFor::Replicas(1)).wait_timeout(Duration::ZERO),
            RedisConfig::default().tls(TlsFiles { cert: Some("c.pem".into()), ..TlsFiles::default() }),
        ];
        for config in bad {
            assert!(matches!(config.validate(), Err(StoreError::Config(_))), "{config:?}");
        }
    }
}
