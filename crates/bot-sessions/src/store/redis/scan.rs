//! Scanning a namespace page by page: on a cluster, the shards' sorted indexes merged in
//! key order.

use std::collections::VecDeque;

use futures_util::future::join_all;

use super::error::{backend_err, is_wrong_type};
use super::layout::{Layout, member_key};
use super::record::{FIELDS, Fields, parse_record};
use super::{BATCH, RedisStore};
use crate::{Namespace, Page, Record, SessionKey, StoreError, Timestamp};

/// One shard's part of a namespace scan: key texts fetched and not yet merged.
struct ScanShard {
    index: String,
    from: Vec<u8>,
    buffer: VecDeque<Vec<u8>>,
    exhausted: bool,
}

impl RedisStore {
    /// A page of `namespace`'s live records after `cursor`.
    pub(super) async fn scan_page(
        &self,
        namespace: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        let from: Vec<u8> = match cursor {
            Some(c) => [b"(", c.as_bytes()].concat(),
            None => b"-".to_vec(),
        };
        let mut shards: Vec<ScanShard> = self
            .layout
            .shards()
            .iter()
            .map(|shard| ScanShard {
                index: Layout::namespace_index(shard, namespace.as_str()),
                from: from.clone(),
                buffer: VecDeque::new(),
                exhausted: false,
            })
            .collect();
        // Key texts per shard per round trip: enough that a page rarely needs a second
        // round, few enough that 256 shards do not fetch 256 pages.
        let want = limit.saturating_add(1);
        let chunk = (want.saturating_mul(2) / shards.len()).clamp(4, BATCH);
        let chunk = if shards.len() == 1 { want.clamp(1, BATCH) } else { chunk };
        self.timed(None, async move {
            let mut items: Vec<(SessionKey, Record)> = Vec::new();
            'pages: while items.len() < want {
                // Merge: a text can be taken only while every shard that may hold a
                // smaller one has something buffered to compare it with.
                self.refill(&mut shards, chunk).await?;
                let mut texts = Vec::new();
                while texts.len() < want - items.len() {
                    if shards.iter().any(|s| s.buffer.is_empty() && !s.exhausted) {
                        break;
                    }
                    let next = shards.iter_mut().filter(|s| !s.buffer.is_empty()).min_by(|a, b| a.buffer[0].cmp(&b.buffer[0]));
                    match next.and_then(|s| s.buffer.pop_front()) {
                        Some(t) => texts.push(t),
                        None => break,
                    }
                }
                if texts.is_empty() {
                    if shards.iter().all(|s| s.buffer.is_empty() && s.exhausted) {
                        break 'pages;
                    }
                    continue;
                }
                let mut keys = Vec::with_capacity(texts.len());
                for raw in &texts {
                    match member_key(raw, namespace.as_str()) {
                        Some(k) if k.namespace() == namespace => keys.push(k),
                        Some(k) => tracing::warn!(namespace = %namespace, key = %k, "skipping a member of another namespace's index"),
                        None => {}
                    }
                }
                let rows = self.fetch_records(&keys).await?;
                for (k, row) in keys.into_iter().zip(rows) {
                    let fields = match row {
                        Ok(fields) => fields,
                        Err(e) if is_wrong_type(&e) => {
                            tracing::warn!(key = %k, "scan skipped a record that is not a hash");
                            continue;
                        }
                        Err(e) => return Err(backend_err(Some(k.as_str()), e)),
                    };
                    match parse_record(&k, fields) {
                        Ok(Some(r)) if !r.is_expired(now) => items.push((k, r)),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(key = %k, error = %e, "scan skipped an unreadable record"),
                    }
                }
            }
            let more = items.len() > limit;
            items.truncate(limit);
            let next = if more { items.last().map(|(k, _)| k.to_string()) } else { None };
            Ok(Page { items, next })
        })
        .await
    }

    /// Reads the records of `keys` (each in its own slot on a cluster, so one command
    /// each there; one pipeline on a single server).
    async fn fetch_records(&self, keys: &[SessionKey]) -> Result<Vec<redis::RedisResult<Fields>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if !self.layout.is_cluster() {
            let mut pipe = redis::pipe();
            for k in keys {
                pipe.cmd("HMGET").arg(self.record_key(k)).arg(&FIELDS[..]);
            }
            let mut con = self.con.clone();
            return pipe.ignore_errors().query_async(&mut con).await.map_err(|e| backend_err(None, e));
        }
        let reads = keys.iter().map(|k| {
            let mut con = self.con.clone();
            let rkey = self.record_key(k);
            async move { redis::cmd("HMGET").arg(rkey).arg(&FIELDS[..]).query_async::<Fields>(&mut con).await }
        });
        let rows = join_all(reads).await;
        // A connection fault fails the scan (retryable); a reply about one key is that key's.
        for row in &rows {
            if let Err(e) = row
                && (e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal())
            {
                return Err(backend_err(None, e.clone()));
            }
        }
        Ok(rows)
    }

    /// Fetches the next key texts of every shard whose buffer ran dry.
    async fn refill(&self, shards: &mut [ScanShard], chunk: usize) -> Result<(), StoreError> {
        let reads = shards.iter_mut().filter(|s| s.buffer.is_empty() && !s.exhausted).map(|s| {
            let mut con = self.con.clone();
            async move {
                let texts: Vec<Vec<u8>> = redis::cmd("ZRANGEBYLEX")
                    .arg(&s.index)
                    .arg(&s.from)
                    .arg("+")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(chunk)
                    .query_async(&mut con)
                    .await
                    .map_err(|e| backend_err(None, e))?;
                s.exhausted = texts.len() < chunk;
                if let Some(last) = texts.last() {
                    s.from = [b"(", last.as_slice()].concat();
                }
                s.buffer.extend(texts);
                Ok::<_, StoreError>(())
            }
        });
        join_all(reads).await.into_iter().collect()
    }
}
