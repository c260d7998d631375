//! Reading one record: [`load`](crate::Store::load) and the version history that
//! resolves a write whose reply was lost.

use super::RedisStore;
use super::error::{backend_err, is_wrong_type};
use super::record::{self, FIELDS, Fields, parse_record};
use crate::{Record, SessionKey, StoreError, Timestamp};

impl RedisStore {
    /// The live record of `key`; a key of the wrong type is corrupt.
    pub(super) async fn load_record(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
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

    /// The record's `hist` field (see `meta.lua`), when it ends with the live record's
    /// version.
    pub(super) async fn recent_versions_of(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<Vec<u64>>, StoreError> {
        let mut con = self.con.clone();
        // One read, so the history and the record are of the same moment.
        let (value, meta, hist): (Option<Vec<u8>>, Option<Vec<u8>>, Option<String>) = redis::cmd("HMGET")
            .arg(self.record_key(key))
            .arg(&FIELDS[..])
            .arg("hist")
            .query_async(&mut con)
            .await
            .map_err(|e| backend_err(Some(key.as_str()), e))?;
        let Some(record) = parse_record(key, (value, meta))?.filter(|r| !r.is_expired(now)) else { return Ok(None) };
        Ok(hist.and_then(|h| record::history(&h, record.version)))
    }
}
