//! Connecting: one server or a cluster, plain or over TLS (rustls), and the wrapper that
//! sends `WAIT` / `WAITAOF` behind a write in the same round trip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, TlsCertificates, Value};

use super::config::{RedisConfig, TlsFiles, redact_url};
use super::error::{backend_err, config_err, timeout_err};
use super::healing::Healing;
use crate::StoreError;

/// A connection to one server (reconnecting, and replaced when it goes silent or
/// answers garbage) or to a cluster (following its slot map).
#[derive(Clone)]
pub(super) enum Con {
    Single(Healing),
    Cluster(ClusterConnection),
}

impl Con {
    /// The one-server connection's generation, taken before an operation so that a
    /// timeout can replace exactly the connection it happened on.
    pub(super) fn generation(&self) -> u64 {
        match self {
            Con::Single(h) => h.generation(),
            Con::Cluster(_) => 0,
        }
    }

    /// Replaces the one-server connection of `generation` (see [`Healing::replace`]).
    pub(super) fn replace(&self, generation: u64) {
        if let Con::Single(h) = self {
            h.replace(generation);
        }
    }
}

impl ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Con::Single(c) => c.req_packed_command(cmd),
            Con::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        p: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Con::Single(c) => c.req_packed_commands(p, offset, count),
            Con::Cluster(c) => c.req_packed_commands(p, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::Single(c) => c.get_db(),
            Con::Cluster(c) => c.get_db(),
        }
    }
}

/// Sends every script run (`EVALSHA` / `EVAL`) in one pipeline with `wait` behind it, so
/// the wait targets the node that ran the script and costs no extra round trip; keeps
/// the wait's reply. Anything else (`SCRIPT LOAD` after a `NOSCRIPT`) goes alone.
pub(super) struct Waiting<'a> {
    pub(super) con: Con,
    pub(super) wait: &'a Cmd,
    pub(super) reply: Arc<Mutex<Option<Value>>>,
}

impl ConnectionLike for Waiting<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let is_script = cmd.args_iter().next().is_some_and(|a| {
            matches!(a, redis::Arg::Simple(name) if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL"))
        });
        if !is_script {
            return self.con.req_packed_command(cmd);
        }
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.add_command(cmd.clone()).add_command(self.wait.clone());
            let mut replies = self.con.req_packed_commands(&pipe, 0, 2).await?.into_iter();
            let (Some(script), Some(wait)) = (replies.next(), replies.next()) else {
                return Err((redis::ErrorKind::Parse, "a pipeline of two commands answered fewer replies").into());
            };
            if let Ok(mut slot) = self.reply.lock() {
                *slot = Some(wait);
            }
            match script {
                Value::ServerError(e) => Err(e.into()),
                v => Ok(v),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        p: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.con.req_packed_commands(p, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.con.get_db()
    }
}

/// Reads the TLS files a config names.
pub(super) fn tls_certificates(files: &TlsFiles) -> Result<TlsCertificates, StoreError> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| config_err(format!("cannot read redis {what} file `{}`: {e}", path.display())))
    };
    let root_cert = files.root_cert.as_deref().map(|p| read("sslrootcert", p)).transpose()?;
    let client_tls = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            Some(redis::ClientTlsConfig { client_cert: read("sslcert", cert)?, client_key: read("sslkey", key)? })
        }
        _ => None,
    };
    Ok(TlsCertificates { client_tls, root_cert })
}

/// The redis crate builds its rustls configuration with the process's default crypto
/// provider; when no one installed one, ring (this crate's) becomes it, so a build where
/// several providers are compiled in does not stop at "no process-level CryptoProvider".
pub(super) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing this race to another thread installing one is fine: one is installed.
        let _ = crate::store::ring_provider::ring_provider().install_default();
    }
}

/// The seed URLs of a URL whose host part may list several `host:port`s, comma-separated
/// (`redis://a:7000,b:7001/?cluster=true`).
pub(super) fn seeds(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else { return vec![url.to_owned()] };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    hosts.split(',').map(|h| format!("{scheme}://{userinfo}{h}{tail}")).collect()
}

/// Whether the client accepts `url` (options taken off), without connecting.
pub(super) fn check(url: &str) -> Result<(), StoreError> {
    for seed in seeds(url) {
        redis::Client::open(seed.as_str())
            .map_err(|e| config_err(format!("redis URL `{}` is not valid: {e}", redact_url(url))))?;
    }
    Ok(())
}

/// Connects as `config` says (validated before), within `op_timeout`.
pub(super) async fn connect(url: &str, config: &RedisConfig) -> Result<Con, StoreError> {
    let tls = url.starts_with("rediss://");
    if !tls && (config.tls.root_cert.is_some() || config.tls.cert.is_some()) {
        return Err(config_err(format!(
            "redis URL `{}` sets TLS files but is not rediss://; TLS needs the rediss:// scheme",
            redact_url(url)
        )));
    }
    let certs = if tls {
        ensure_crypto_provider();
        Some(tls_certificates(&config.tls)?)
    } else {
        None
    };
    let bad_url = |e: redis::RedisError| config_err(format!("redis URL `{}` is not valid: {e}", redact_url(url)));
    let connecting = async {
        if config.cluster {
            let mut builder = redis::cluster::ClusterClientBuilder::new(seeds(url))
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.op_timeout)
                .retries(3)
                .min_retry_wait(20)
                .max_retry_wait(500);
            if let Some(certs) = certs {
                builder = builder.certs(certs);
            }
            let client = builder.build().map_err(bad_url)?;
            client.get_async_connection().await.map(Con::Cluster).map_err(|e| backend_err(None, e))
        } else {
            let client = match certs {
                Some(certs) => redis::Client::build_with_tls(url, certs),
                None => redis::Client::open(url),
            }
            .map_err(bad_url)?;
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.op_timeout))
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(20))
                .set_max_delay(Duration::from_millis(500));
            Healing::connect(client, manager_config).await.map(Con::Single).map_err(|e| backend_err(None, e))
        }
    };
    match tokio::time::timeout(config.op_timeout, connecting).await {
        Ok(con) => con,
        Err(_) => Err(timeout_err(None, config.op_timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_hosts_are_several_seeds() {
        assert_eq!(
            seeds("redis://:pw@a:1,b:2/?x=1"),
            vec!["redis://:pw@a:1/?x=1".to_owned(), "redis://:pw@b:2/?x=1".to_owned()]
        );
        assert_eq!(seeds("rediss://h:1"), vec!["rediss://h:1".to_owned()]);
    }
}
