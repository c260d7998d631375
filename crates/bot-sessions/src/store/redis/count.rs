//! Counting live records (index arithmetic: no record is read) and listing the
//! namespaces that have some.

use futures_util::future::join_all;

use super::RedisStore;
use super::error::backend_err;
use super::layout::Layout;
use crate::{Namespace, Store, StoreError, Timestamp};

impl RedisStore {
    /// Live records of `namespace`, or of every namespace, in every shard.
    pub(super) async fn count_live(&self, namespace: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.timed(None, async move {
            let shards = self.layout.shards();
            let counts = join_all(shards.iter().map(|shard| self.count_in_shard(shard, namespace, now))).await;
            let mut total = 0u64;
            for c in counts {
                total += c?;
            }
            Ok(total)
        })
        .await
    }

    /// Live records of one namespace in one shard.
    async fn count_in_shard(
        &self,
        shard: &str,
        namespace: Option<&Namespace>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut con = self.con.clone();
        let namespaces: Vec<String> = match namespace {
            Some(ns) => vec![ns.as_str().to_owned()],
            None => {
                let list = Layout::namespaces(shard);
                let raw: Vec<Vec<u8>> =
                    redis::cmd("SMEMBERS").arg(&list).query_async(&mut con).await.map_err(|e| backend_err(None, e))?;
                let total = raw.len();
                let names: Vec<String> = raw.into_iter().filter_map(|n| String::from_utf8(n).ok()).collect();
                if names.len() < total {
                    tracing::warn!(index = %list, "count skipped namespace names that are not UTF-8");
                }
                names
            }
        };
        if namespaces.is_empty() {
            return Ok(0);
        }
        // Every key of the pipeline is in this shard: one slot, one round trip.
        let mut pipe = redis::pipe();
        for ns in &namespaces {
            pipe.zcard(Layout::namespace_index(shard, ns)).zcount(
                Layout::expiry_index(shard, ns),
                "-inf",
                now.as_millis(),
            );
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
    }

    /// The namespaces that have a live record.
    pub(super) async fn live_namespaces(&self, now: Timestamp) -> Result<Vec<Namespace>, StoreError> {
        // Every shard's list of namespace names, then those with a live record (the
        // lists also name emptied namespaces).
        let mut names = std::collections::BTreeSet::new();
        for shard in self.layout.shards().iter() {
            let raw: Vec<Vec<u8>> = self.query(redis::cmd("SMEMBERS").arg(Layout::namespaces(shard))).await?;
            names.extend(
                raw.iter().filter_map(|n| Namespace::new_unchecked_reserved(std::str::from_utf8(n).ok()?).ok()),
            );
        }
        let mut live = Vec::new();
        for ns in names {
            if self.count(Some(&ns), now).await? > 0 {
                live.push(ns);
            }
        }
        Ok(live)
    }
}
