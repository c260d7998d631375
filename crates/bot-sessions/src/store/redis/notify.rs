//! End notices over Redis: `PUBLISH` on the store's connection, and a dedicated pub/sub
//! connection (to the first seed node; a cluster forwards every `PUBLISH` to all its
//! nodes) that `SUBSCRIBE`s to the store's channel and reconnects when it drops.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use super::config::RedisConfig;
use super::connection::{Con, ensure_crypto_provider, seeds, tls_certificates};
use super::error::config_err;
use crate::StoreError;
use crate::store::notify::{Heard, Notice, Transport, backoff};

/// The Redis side of a store's notices.
pub(super) struct RedisNotices {
    con: Con,
    client: redis::Client,
    channel: String,
    connect_timeout: Duration,
}

impl RedisNotices {
    /// Notices on the channel `<prefix>notices`, published over `con`, heard over a
    /// connection of their own to the first node `url` names.
    pub(super) fn new(url: &str, config: &RedisConfig, con: Con) -> Result<Self, StoreError> {
        let first = seeds(url).into_iter().next().unwrap_or_else(|| url.to_owned());
        let bad = |e: redis::RedisError| {
            config_err(format!("redis URL `{}` is not valid: {e}", super::config::redact_url(url)))
        };
        let client = if first.starts_with("rediss://") {
            ensure_crypto_provider();
            redis::Client::build_with_tls(first.as_str(), tls_certificates(&config.tls)?).map_err(bad)?
        } else {
            redis::Client::open(first.as_str()).map_err(bad)?
        };
        Ok(RedisNotices {
            con,
            client,
            channel: format!("{}notices", config.prefix),
            connect_timeout: config.connect_timeout,
        })
    }
}

impl Transport for RedisNotices {
    fn publish(&self, notice: Notice) {
        let mut con = self.con.clone();
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.channel).arg(notice.encode());
        tokio::spawn(async move {
            if let Err(error) = cmd.query_async::<i64>(&mut con).await {
                tracing::debug!(%error, "redis: an end notice was not published");
            }
        });
    }

    fn start(&self, hub: broadcast::WeakSender<Heard>) {
        let (client, channel, limit) = (self.client.clone(), self.channel.clone(), self.connect_timeout);
        tokio::spawn(async move {
            let mut failures = 0;
            loop {
                let subscribed = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                };
                let pubsub = match tokio::time::timeout(limit, subscribed).await {
                    Ok(Ok(pubsub)) => pubsub,
                    Ok(Err(error)) => {
                        failures += 1;
                        tracing::warn!(%error, "redis: the notice connection failed; retrying");
                        tokio::time::sleep(backoff(failures)).await;
                        continue;
                    }
                    Err(_) => {
                        failures += 1;
                        tracing::warn!("redis: the notice connection timed out; retrying");
                        tokio::time::sleep(backoff(failures)).await;
                        continue;
                    }
                };
                failures = 0;
                // Whatever was published while not subscribed is lost.
                let Some(sender) = hub.upgrade() else { return };
                let _ = sender.send(Heard::Missed);
                drop(sender);
                let mut messages = pubsub.into_on_message();
                let mut alive = tokio::time::interval(Duration::from_secs(1));
                loop {
                    let msg = tokio::select! {
                        msg = messages.next() => msg,
                        _ = alive.tick() => {
                            if hub.upgrade().is_none() {
                                return; // the store is gone
                            }
                            continue;
                        }
                    };
                    let Some(msg) = msg else { break };
                    let Some(sender) = hub.upgrade() else { return };
                    match msg.get_payload::<String>().ok().as_deref().and_then(Notice::decode) {
                        Some(notice) => drop(sender.send(Heard::Notice(notice))),
                        None => tracing::debug!("redis: a message on the notice channel that is not a notice"),
                    }
                }
                if hub.upgrade().is_none() {
                    return;
                }
                tracing::warn!("redis: the notice connection closed; reconnecting");
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
        });
    }

    fn echoes(&self) -> bool {
        true
    }
}
