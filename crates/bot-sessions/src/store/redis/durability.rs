//! Durability you can see: the server's persistence and eviction settings read at
//! connect, and the optional `WAIT` / `WAITAOF` behind every write.

use redis::Value;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};

use super::BACKEND;
use super::config::{RedisConfig, WaitFor};
use super::connection::Con;
use super::error::{backend_err, config_err};
use crate::StoreError;

/// Refuses a cluster node reached without `cluster=true` (every key would be MOVED).
pub(super) async fn check_topology(con: &mut Con, config: &RedisConfig) -> Result<(), StoreError> {
    if config.cluster {
        return Ok(());
    }
    let info: String = match redis::cmd("INFO").arg("cluster").query_async(con).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "INFO cluster is not allowed; assuming a single server");
            return Ok(());
        }
    };
    if info.lines().any(|l| l.trim() == "cluster_enabled:1") {
        return Err(config_err(
            "this redis server is a Redis Cluster node: add cluster=true to the URL (or RedisConfig::cluster)".into(),
        ));
    }
    Ok(())
}

/// What the settings of one server let happen to an acknowledged write, or `None` when
/// they could not be read.
fn risks(settings: &[(String, String)]) -> Vec<String> {
    let get = |name: &str| settings.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut out = Vec::new();
    match (get("appendonly"), get("appendfsync")) {
        (Some("no"), _) => {
            out.push("appendonly is no: a server crash or restart loses every write since the last snapshot".to_owned())
        }
        (Some("yes"), Some("everysec")) => {
            out.push("appendfsync is everysec: a server crash can lose about the last second of writes".to_owned())
        }
        (Some("yes"), Some("no")) => out.push(
            "appendfsync is no: a server crash can lose the writes the OS had not flushed (up to ~30 s)".to_owned(),
        ),
        (Some("yes"), Some("always")) => {}
        (a, f) => out.push(format!("unknown persistence settings (appendonly {a:?}, appendfsync {f:?})")),
    }
    match get("maxmemory-policy") {
        Some("noeviction") => {}
        Some(p) => out.push(format!("maxmemory-policy is {p}: sessions can be evicted silently under memory pressure")),
        None => out.push("unknown maxmemory-policy".to_owned()),
    }
    out
}

fn pairs(v: &Value) -> Option<Vec<(String, String)>> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match v {
        Value::Map(kv) => kv.iter().map(|(k, v)| Some((text(k)?, text(v)?))).collect(),
        Value::Array(items) => items.chunks(2).map(|p| Some((text(p.first()?)?, text(p.get(1)?)?))).collect(),
        _ => None,
    }
}

/// Reads `CONFIG GET appendonly appendfsync maxmemory-policy` (on every primary of a
/// cluster) and warns, or refuses with [`RedisConfig::require_durable`], when an
/// acknowledged write can be lost or evicted. CONFIG may be disabled or renamed (managed
/// services): then a debug log, or a refusal when durability is required.
pub(super) async fn check_settings(con: &mut Con, config: &RedisConfig) -> Result<(), StoreError> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("appendonly").arg("appendfsync").arg("maxmemory-policy");
    let reply: Result<Vec<(String, Value)>, redis::RedisError> = match con {
        Con::Single(c) => {
            redis::aio::ConnectionLike::req_packed_command(c, &cmd).await.map(|v| vec![(String::new(), v)])
        }
        Con::Cluster(c) => c
            .route_command(cmd.clone(), RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)))
            .await
            .map(|v| match v {
                Value::Map(nodes) => nodes
                    .into_iter()
                    .map(|(addr, v)| (redis::from_redis_value::<String>(addr).unwrap_or_default(), v))
                    .collect(),
                other => vec![(String::new(), other)],
            }),
    };
    let mut unreadable = None;
    let mut found = Vec::new();
    match reply {
        Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => return Err(backend_err(None, e)),
        Err(e) => unreadable = Some(e.to_string()),
        Ok(nodes) => {
            for (node, v) in nodes {
                match &v {
                    Value::ServerError(e) => unreadable = Some(format!("{node}: {e:?}")),
                    v => match pairs(v) {
                        Some(settings) => {
                            for risk in risks(&settings) {
                                found.push(if node.is_empty() { risk } else { format!("{node}: {risk}") });
                            }
                        }
                        None => unreadable = Some(format!("{node}: unexpected reply {v:?}")),
                    },
                }
            }
        }
    }
    if let Some(why) = unreadable {
        if config.require_durable {
            return Err(config_err(format!(
                "require_durable: cannot read the redis server's persistence settings (CONFIG GET: {why}), so cannot \
                 tell whether acknowledged writes survive a crash"
            )));
        }
        tracing::debug!(reason = %why, "cannot read the redis server's persistence settings; not checking them");
        return Ok(());
    }
    if found.is_empty() {
        return Ok(());
    }
    if config.require_durable {
        return Err(config_err(format!(
            "require_durable: this redis server can lose or evict acknowledged writes: {}",
            found.join("; ")
        )));
    }
    for risk in &found {
        tracing::warn!(backend = BACKEND, risk = %risk, "acknowledged session writes are not durable on this server");
    }
    Ok(())
}

/// Refuses `WAITAOF` on a server that does not know it (before Redis 7.2).
pub(super) async fn check_wait_supported(con: &mut Con, config: &RedisConfig) -> Result<(), StoreError> {
    if !matches!(config.wait, WaitFor::Aof { .. }) {
        return Ok(());
    }
    let info: Value =
        redis::cmd("COMMAND").arg("INFO").arg("WAITAOF").query_async(con).await.map_err(|e| backend_err(None, e))?;
    let known = match &info {
        Value::Array(items) => items.first().is_some_and(|i| !matches!(i, Value::Nil)),
        _ => false,
    };
    if known {
        Ok(())
    } else {
        Err(config_err("redis wait=aof needs WAITAOF (Redis 7.2 or newer); this server does not know it".into()))
    }
}

/// The command that follows each write, if the config asks for one.
pub(super) fn wait_cmd(config: &RedisConfig) -> Option<redis::Cmd> {
    let ms = u64::try_from(config.wait_timeout.as_millis()).unwrap_or(u64::MAX);
    match config.wait {
        WaitFor::Applied => None,
        WaitFor::Replicas(n) => {
            let mut c = redis::cmd("WAIT");
            c.arg(n).arg(ms);
            Some(c)
        }
        WaitFor::Aof { local, replicas } => {
            let mut c = redis::cmd("WAITAOF");
            c.arg(u8::from(local)).arg(replicas).arg(ms);
            Some(c)
        }
    }
}

/// Whether the wait's reply reached what the config asks for; if not, the write to `key`
/// is ambiguous: applied on the primary, not known to survive a failover (or a crash).
pub(super) fn check_wait_reply(key: &str, config: &RedisConfig, reply: Option<Value>) -> Result<(), StoreError> {
    let short = |what: String| {
        tracing::warn!(key, %what, "a session write was applied but not confirmed durable");
        Err(StoreError::ambiguous(
            BACKEND,
            key,
            format!("the write was applied on the primary, but {what}: it may not survive a failover or crash"),
        ))
    };
    let int = |v: &Value| match v {
        Value::Int(n) => Some(*n),
        _ => None,
    };
    match (config.wait, reply) {
        (WaitFor::Applied, _) => Ok(()),
        (WaitFor::Replicas(n), Some(v)) => match int(&v) {
            Some(got) if got >= i64::from(n) => Ok(()),
            Some(got) => short(format!("WAIT saw {got} of {n} replicas within {:?}", config.wait_timeout)),
            None => short(format!("WAIT answered {v:?}")),
        },
        (WaitFor::Aof { local, replicas }, Some(Value::Array(items))) => {
            let (l, r) = (items.first().and_then(int), items.get(1).and_then(int));
            match (l, r) {
                (Some(l), Some(r)) if l >= i64::from(local) && r >= i64::from(replicas) => Ok(()),
                _ => short(format!(
                    "WAITAOF saw local {l:?} and {r:?} of {replicas} replicas fsynced within {:?}",
                    config.wait_timeout
                )),
            }
        }
        (_, v) => short(format!("the wait answered {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn only_fsync_always_and_noeviction_are_free_of_risk() {
        let safe = s(&[("appendonly", "yes"), ("appendfsync", "always"), ("maxmemory-policy", "noeviction")]);
        assert!(risks(&safe).is_empty());
        for (name, value) in [
            ("appendonly", "no"),
            ("appendfsync", "everysec"),
            ("appendfsync", "no"),
            ("maxmemory-policy", "allkeys-lru"),
        ] {
            let mut settings = safe.clone();
            settings.iter_mut().filter(|(k, _)| k == name).for_each(|(_, v)| *v = value.to_owned());
            let found = risks(&settings);
            assert_eq!(found.len(), 1, "{name} {value}: {found:?}");
        }
        assert_eq!(risks(&[]).len(), 2, "nothing known is a risk");
    }

    #[test]
    fn a_wait_short_of_its_count_is_ambiguous() {
        let c = RedisConfig::default().wait(WaitFor::Replicas(2));
        assert!(check_wait_reply("k", &c, Some(Value::Int(2))).is_ok());
        let e = check_wait_reply("k", &c, Some(Value::Int(1))).unwrap_err();
        assert!(e.is_ambiguous() && e.to_string().contains("1 of 2"), "{e}");
        let c = RedisConfig::default().wait(WaitFor::Aof { local: true, replicas: 0 });
        assert!(check_wait_reply("k", &c, Some(Value::Array(vec![Value::Int(1), Value::Int(0)]))).is_ok());
        assert!(
            check_wait_reply("k", &c, Some(Value::Array(vec![Value::Int(0), Value::Int(0)])))
                .unwrap_err()
                .is_ambiguous()
        );
        assert!(check_wait_reply("k", &c, None).unwrap_err().is_ambiguous());
    }
}
