//! The one-server connection, replaced by a fresh one when it stops answering or
//! answers garbage.
//!
//! The client's [`ConnectionManager`] reconnects by itself only after an I/O error. A
//! connection that went silent (a black-holed TCP connection, a hung proxy) gives
//! response timeouts for ever, and a reconnect that ended in a parse error (something
//! that is not Redis answered) is kept and returned to every later command: the store
//! would never recover. So a command that times out or gets an unparsable reply swaps
//! in a new, lazily connecting manager; commands in flight on the old one finish on it,
//! and it closes when the last of them drops it. (Found by
//! `tests/reliability_faults.rs`.)

use std::sync::{Arc, RwLock};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// The connection every operation of a store (and its clones) uses.
#[derive(Clone)]
pub(super) struct Healing(Arc<Shared>);

struct Shared {
    client: Client,
    config: ConnectionManagerConfig,
    current: RwLock<(u64, ConnectionManager)>,
}

impl Healing {
    /// Connects (within the manager's own connection timeout and retries).
    pub(super) async fn connect(client: Client, config: ConnectionManagerConfig) -> RedisResult<Healing> {
        let con = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
        Ok(Healing(Arc::new(Shared { client, config, current: RwLock::new((0, con)) })))
    }

    fn current(&self) -> (u64, ConnectionManager) {
        self.0.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current connection's generation (see [`Healing::replace`]).
    pub(super) fn generation(&self) -> u64 {
        self.0.current.read().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Replaces the connection of `generation` by a fresh one, unless that was done
    /// already (many operations see one connection fail at once).
    pub(super) fn replace(&self, generation: u64) {
        let mut current = self.0.current.write().unwrap_or_else(|p| p.into_inner());
        if current.0 != generation {
            return;
        }
        match ConnectionManager::new_lazy_with_config(self.0.client.clone(), self.0.config.clone()) {
            Ok(con) => {
                tracing::warn!("redis connection stopped answering or answered garbage; connecting anew");
                *current = (generation.wrapping_add(1), con);
            }
            Err(e) => tracing::warn!(error = %e, "cannot replace a broken redis connection"),
        }
    }

    fn check<T>(&self, generation: u64, r: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &r
            && broken(e)
        {
            self.replace(generation);
        }
        r
    }
}

/// Whether `e` says the connection cannot be trusted any more, while the client keeps
/// it: no answer in time, or an answer that is not Redis' protocol.
fn broken(e: &RedisError) -> bool {
    e.is_timeout() || e.kind() == redis::ErrorKind::Parse
}

impl ConnectionLike for Healing {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (generation, mut con) = self.current();
            let r = con.req_packed_command(cmd).await;
            self.check(generation, r)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (generation, mut con) = self.current();
            let r = con.req_packed_commands(pipeline, offset, count).await;
            self.check(generation, r)
        })
    }

    fn get_db(&self) -> i64 {
        self.current().1.get_db()
    }
}
