//! Writing and deleting one record: the general write script, the lean compare-and-set
//! over a known record, and the delete script.

use super::RedisStore;
use super::batch::{Cas, Change, Outcome};
use super::layout::Layout;
use super::record::{self, mode, script_outcome};
use crate::{Precondition, Record, SessionKey, StoreError, Timestamp, Write};

impl RedisStore {
    pub(super) fn native_expiry(&self, expires_at: Timestamp) -> i64 {
        // Never in the past from Redis' point of view by more than the grace allows.
        expires_at.saturating_add(self.config.expiry_grace).as_millis()
    }

    /// `"1"` when the client may re-send a script whose first try landed (the cluster
    /// client retries through a failover): the write scripts then take their own
    /// version in a record's history as "written".
    fn resends(&self) -> &'static str {
        if self.config.cluster { "1" } else { "0" }
    }

    /// Writes `key` under `precondition` with the general script (`write.lua`).
    pub(super) async fn write_record(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let text = key.as_str();
        let ns = key.namespace().as_str();
        let shard = self.layout.shard_of(key);
        let rkey = self.record_key(key);
        let key_user = key.user_id();
        let indexed = write.indexed_user(key);
        let user = indexed.map(|u| Layout::user_index(shard, u));
        // Only a key without a user keeps its owner in the namespace's owner hash.
        let owners = if key_user.is_none() { Some(Layout::owners_index(shard, ns)) } else { None };
        let (mode, expected) = mode(precondition);
        let (expires, native) = match write.expires_at {
            Some(at) => (at.as_millis().to_string(), self.native_expiry(at).to_string()),
            None => (String::new(), String::new()),
        };
        let mut inv = self.scripts.write.prepare_invoke();
        inv.key(&rkey)
            .key(Layout::namespace_index(shard, ns))
            .key(Layout::expiry_index(shard, ns))
            .key(user.as_deref().unwrap_or(&rkey))
            .key(Layout::namespaces(shard))
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
        inv.arg(if key_user.is_some() { "1" } else { "0" }).arg(shard).arg(self.resends());
        let reply = self.run_write(text, &inv).await?;
        script_outcome(key, reply)?;
        Ok(write.version)
    }

    /// Writes over `previous` with the lean script (`cas.lua`); see
    /// [`Store::write_over`](crate::Store::write_over) on [`RedisStore`].
    pub(super) async fn write_over_record(
        &self,
        key: &SessionKey,
        write: Write<'_>,
        previous: &Record,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if previous.is_expired(now) {
            // Not the case the lean script is for (the caller should not get here):
            // the general script decides.
            return self.write_record(key, write, Precondition::Version(previous.version), now).await;
        }
        let text = key.as_str();
        // The expiry index changes only with the expiry: set (native expiry, expires_at),
        // or dropped.
        let change = match (previous.expires_at, write.expires_at) {
            (old, new) if old == new => Change::Keep,
            (_, Some(at)) => Change::Set { native: self.native_expiry(at), at: at.as_millis() },
            (_, None) => Change::Persist,
        };
        let cas = Cas {
            key: text.to_owned(),
            record: self.record_key(key),
            index: match change {
                Change::Keep => None,
                _ => Some(Layout::expiry_index(self.layout.shard_of(key), key.namespace().as_str())),
            },
            expect: record::version_prefix(previous.version),
            value: write.value.to_vec(),
            meta: record::meta(&write, previous.created_at, now, previous.user_id),
            change,
        };
        if let Some(batcher) = &self.batch {
            let deadline = tokio::time::Instant::now() + self.config.op_timeout;
            match batcher.submit(cas, deadline).await {
                Outcome::Written => return Ok(write.version),
                Outcome::Conflict => return Err(StoreError::Conflict { key: text.to_owned() }),
                Outcome::Failed(e) => return Err(e),
                // The batch's answer did not cover this write: the script ran, so whether
                // it landed is unknown (the caller resolves that by reading back).
                Outcome::Alone => {
                    return Err(StoreError::ambiguous(
                        super::BACKEND,
                        text,
                        "the batch's answer did not cover this write",
                    ));
                }
            }
        }
        let mut inv = self.scripts.cas.prepare_invoke();
        cas.push(&mut inv);
        inv.arg(self.resends());
        let reply = self.run_write(text, &inv).await?;
        script_outcome(key, reply)?;
        Ok(write.version)
    }

    /// Deletes `key` under `precondition` (`delete.lua`); `true` when a live record went.
    pub(super) async fn delete_record(
        &self,
        key: &SessionKey,
        precondition: Precondition,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let text = key.as_str();
        let ns = key.namespace().as_str();
        let shard = self.layout.shard_of(key);
        let rkey = self.record_key(key);
        let user = key.user_id().map(|u| Layout::user_index(shard, u));
        let (mode, expected) = mode(precondition);
        let mut inv = self.scripts.delete.prepare_invoke();
        inv.key(&rkey)
            .key(Layout::namespace_index(shard, ns))
            .key(Layout::expiry_index(shard, ns))
            .key(user.as_deref().unwrap_or(&rkey))
            .key(Layout::owners_index(shard, ns))
            .arg(text)
            .arg(mode)
            .arg(expected)
            .arg(now.as_millis())
            .arg(if user.is_some() { "1" } else { "0" })
            .arg(shard);
        let reply = self.run_write(text, &inv).await?;
        Ok(script_outcome(key, reply)? == 1)
    }
}
