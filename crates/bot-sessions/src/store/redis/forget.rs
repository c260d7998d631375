//! Forgetting a user: every record in the user's index, in every shard and namespace.

use futures_util::future::join_all;

use super::layout::{Layout, member_key};
use super::{BATCH, RedisStore};
use crate::{StoreError, Timestamp};

impl RedisStore {
    /// Deletes every record indexed under `user_id`; returns the live records deleted.
    pub(super) async fn forget(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        let shards = self.layout.shards();
        let results = join_all(shards.iter().map(|shard| self.forget_in_shard(shard, user_id, now))).await;
        let mut forgotten = 0u64;
        for r in results {
            forgotten += r?;
        }
        Ok(forgotten)
    }

    /// Forgets the members of `user`'s index in one shard; returns the live records
    /// deleted.
    async fn forget_in_shard(&self, shard: &str, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        let index = Layout::user_index(shard, user_id);
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
                let key = match member_key(raw, &index) {
                    Some(key) if self.layout.shard_of(&key) == shard => key,
                    Some(key) => {
                        tracing::warn!(index = %index, key = %key, "skipping a member of another shard's index");
                        junk.push(raw);
                        continue;
                    }
                    None => {
                        junk.push(raw);
                        continue;
                    }
                };
                let ns = key.namespace().as_str();
                inv.key(self.record_key(&key))
                    .key(Layout::namespace_index(shard, ns))
                    .key(Layout::expiry_index(shard, ns))
                    .key(Layout::owners_index(shard, ns))
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
}
