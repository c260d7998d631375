//! Round trips under the store's timeouts: the bulk operations' commands and scripts,
//! and the write and delete scripts with the configured `WAIT` behind them.

use std::sync::{Arc, Mutex};

use super::RedisStore;
use super::connection::Waiting;
use super::durability;
use super::error::{backend_err, sent_err, timeout_err};
use crate::StoreError;

impl RedisStore {
    /// Runs `fut` under the operation timeout.
    pub(super) async fn timed<T>(
        &self,
        key: Option<&str>,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let generation = self.con.generation();
        match tokio::time::timeout(self.config.op_timeout, fut).await {
            Ok(r) => r,
            Err(_) => {
                // A connection that did not answer in time is not trusted again.
                self.con.replace(generation);
                Err(timeout_err(key, self.config.op_timeout))
            }
        }
    }

    /// One command that changes nothing (or may safely run again), under the operation
    /// timeout.
    pub(super) async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut con = self.con.clone();
        self.timed(None, async move { cmd.query_async(&mut con).await.map_err(|e| backend_err(None, e)) }).await
    }

    /// One script run of a bulk operation (forget-user, purge), under the operation
    /// timeout.
    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut con = self.con.clone();
        self.timed(None, async move { inv.invoke_async(&mut con).await.map_err(|e| backend_err(None, e)) }).await
    }

    /// Runs a write or delete script on `key`, with the configured wait behind it in the
    /// same round trip.
    pub(super) async fn run_write(&self, key: &str, inv: &redis::ScriptInvocation<'_>) -> Result<i64, StoreError> {
        let Some(wait) = &self.wait else {
            let mut con = self.con.clone();
            return inv.invoke_async(&mut con).await.map_err(|e| sent_err(key, e, self.config.cluster));
        };
        let reply = Arc::new(Mutex::new(None));
        let mut con = Waiting { con: self.con.clone(), wait, reply: reply.clone() };
        let outcome: i64 = inv.invoke_async(&mut con).await.map_err(|e| sent_err(key, e, self.config.cluster))?;
        if outcome >= 0 {
            let wait_reply = reply.lock().ok().and_then(|mut r| r.take());
            durability::check_wait_reply(key, &self.config, wait_reply)?;
        }
        Ok(outcome)
    }
}
