//! Purging expired records in batches, shard by shard, and the lease that lets one
//! process at a time run the background purge.

use std::time::Duration;

use super::layout::{Layout, member_key};
use super::{BATCH, RedisStore};
use crate::{StoreError, Timestamp};

/// Shortest lease of the background purger (it is at least 4 x `op_timeout`).
const MIN_PURGE_LEASE: Duration = Duration::from_secs(30);

impl RedisStore {
    /// How long the background purger's lease lasts without being extended.
    fn purge_lease(&self) -> Duration {
        self.config.op_timeout.saturating_mul(4).max(MIN_PURGE_LEASE)
    }

    /// Takes the lease `<prefix>purger` (`SET NX PX`, at least 30 s and 4 x
    /// `op_timeout`), purges in batches while extending it, then releases it; returns
    /// `Ok(0)` at once while another process holds it.
    pub(super) async fn purge_background(&self, now: Timestamp) -> Result<u64, StoreError> {
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

    /// Purges every namespace's expired records in batches, shard by shard; with a
    /// lease, extends it after each batch and stops early (with what it purged) once it
    /// is lost. A namespace whose indexes Redis refuses to work on (say, a key of the
    /// wrong type) is skipped and reported; the others are purged.
    pub(super) async fn purge_batches(&self, now: Timestamp, lease: Option<(&str, u64)>) -> Result<u64, StoreError> {
        let mut purged = 0u64;
        for shard in self.layout.shards() {
            let list = Layout::namespaces(shard);
            let namespaces: Vec<Vec<u8>> = self.query(redis::cmd("SMEMBERS").arg(&list)).await?;
            for raw in namespaces {
                let Ok(ns) = String::from_utf8(raw) else {
                    tracing::warn!(index = %list, "skipping a namespace name that is not UTF-8");
                    continue;
                };
                match self.purge_namespace(shard, &ns, now, lease, &mut purged).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("the purge lease ran out mid-round; another process goes on");
                        return Ok(purged);
                    }
                    Err(e) if !e.is_retryable() => {
                        tracing::warn!(namespace = %ns, error = %e, "purge skipped a namespace it cannot work on");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(purged)
    }

    /// Purges one namespace of one shard in batches, adding to `purged` as it goes.
    /// `Ok(false)` when the lease was lost.
    async fn purge_namespace(
        &self,
        shard: &str,
        ns: &str,
        now: Timestamp,
        lease: Option<(&str, u64)>,
        purged: &mut u64,
    ) -> Result<bool, StoreError> {
        let (keys, exp, owners) =
            (Layout::namespace_index(shard, ns), Layout::expiry_index(shard, ns), Layout::owners_index(shard, ns));
        let list = Layout::namespaces(shard);
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
            inv.key(&keys).key(&exp).key(&list).key(&owners).arg(now.as_millis()).arg(ns).arg(shard);
            for raw in &texts {
                let Some(key) = member_key(raw, &exp) else {
                    offset += 1;
                    continue;
                };
                if key.namespace().as_str() != ns || self.layout.shard_of(&key) != shard {
                    tracing::warn!(index = %exp, key = %key, "skipping a member of another namespace's or shard's index");
                    offset += 1;
                    continue;
                }
                let rkey = self.record_key(&key);
                let user = key.user_id().map(|u| Layout::user_index(shard, u));
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
