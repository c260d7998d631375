//! Writes whose outcome is unknown (a reply lost after the command left): `Sessions`
//! resolves them by version before anything is retried, so a change is never applied
//! twice, and a refresh-on-read that meets another writer is not an error.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bot_sessions::session::RetryPolicy;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::testing::Counter;
use bot_sessions::testing::delegate::{Delegate, Overrides};
use bot_sessions::{
    Namespace, Precondition, Scope, SessionError, SessionKey, Sessions, Store, StoreError, Timestamp, Ttl, Write,
};

/// What the next write (or delete) suffers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Applied, but the reply is lost.
    LostReply,
    /// Never applied, and the caller cannot tell.
    NotSent,
    /// Applied, reply lost, and another process writes the key right after.
    LostReplyThenMoved,
    /// Not applied, reply lost, and another process writes the key right after.
    NotSentThenMoved,
    /// Another process writes the key just before this write arrives.
    Raced,
}

/// The script of faults a memory store's writes and deletes follow.
#[derive(Default)]
struct Faulty {
    plan: Mutex<VecDeque<Option<Fault>>>,
    /// Writes applied although their caller got an ambiguous error.
    landed_unseen: AtomicUsize,
}

impl Faulty {
    fn new() -> Arc<Delegate<Faulty>> {
        Arc::new(Delegate::new(MemoryStore::default(), Faulty::default()))
    }

    fn next_fault(&self) -> Option<Fault> {
        self.plan.lock().unwrap().pop_front().flatten()
    }
}

/// Another process bumps the counter under `key` by 1000.
async fn other_process_writes(inner: &dyn Store, key: &SessionKey, now: Timestamp) {
    let current = inner.load(key, now).await.unwrap();
    let (n, pre) = match &current {
        Some(r) => (serde_json::from_slice::<Counter>(&r.value).unwrap().n, Precondition::Version(r.version)),
        None => (0, Precondition::Absent),
    };
    let bytes = serde_json::to_vec(&Counter { n: n + 1000 }).unwrap();
    inner.write(key, Write::new(&bytes, 1, None), pre, now).await.unwrap();
}

fn lost(key: &SessionKey) -> StoreError {
    StoreError::ambiguous("faulty", key.as_str(), "reply timed out")
}

#[async_trait::async_trait]
impl Overrides for Faulty {
    async fn write(
        &self,
        inner: &dyn Store,
        key: &SessionKey,
        w: Write<'_>,
        p: Precondition,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        match self.next_fault() {
            None => inner.write(key, w, p, now).await,
            Some(Fault::Raced) => {
                other_process_writes(inner, key, now).await;
                inner.write(key, w, p, now).await
            }
            Some(fault @ (Fault::LostReply | Fault::LostReplyThenMoved)) => {
                if inner.write(key, w, p, now).await.is_ok() {
                    self.landed_unseen.fetch_add(1, Ordering::SeqCst);
                }
                if fault == Fault::LostReplyThenMoved {
                    other_process_writes(inner, key, now).await;
                }
                Err(lost(key))
            }
            Some(fault @ (Fault::NotSent | Fault::NotSentThenMoved)) => {
                if fault == Fault::NotSentThenMoved {
                    other_process_writes(inner, key, now).await;
                }
                Err(lost(key))
            }
        }
    }
    async fn delete(
        &self,
        inner: &dyn Store,
        key: &SessionKey,
        p: Precondition,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        match self.next_fault() {
            Some(Fault::LostReply) => {
                inner.delete(key, p, now).await?;
                Err(lost(key))
            }
            Some(Fault::NotSent) => Err(lost(key)),
            _ => inner.delete(key, p, now).await,
        }
    }
}

fn counters(store: &Arc<Delegate<Faulty>>) -> Sessions<Counter> {
    let retry = RetryPolicy { max_attempts: 8, ..RetryPolicy::default() };
    Sessions::<Counter>::builder(store.clone()).namespace("count").retry(retry).build().unwrap()
}

fn key() -> SessionKey {
    SessionKey::new(Namespace::new("count").unwrap(), Scope::Chat(1))
}

async fn stored(store: &Delegate<Faulty>) -> u64 {
    let r = store.inner().load(&key(), Timestamp::now()).await.unwrap();
    r.map_or(0, |r| serde_json::from_slice::<Counter>(&r.value).unwrap().n)
}

#[tokio::test]
async fn lost_replies_are_resolved_and_no_increment_is_applied_twice() {
    let store = Faulty::new();
    // 300 increments; about a third of the writes lose their reply (half of those
    // after landing, half before), in a fixed pseudo-random pattern.
    let plan = (0..2_000u32).map(|i| match (i * 7919) % 6 {
        0 => Some(Fault::LostReply),
        1 => Some(Fault::NotSent),
        _ => None,
    });
    store.plan.lock().unwrap().extend(plan);
    let sessions = counters(&store);
    let runs = AtomicUsize::new(0);
    for _ in 0..300 {
        sessions
            .update(&key(), |c| {
                runs.fetch_add(1, Ordering::SeqCst);
                c.n += 1;
                Ok::<_, SessionError>(())
            })
            .await
            .unwrap();
    }
    assert_eq!(stored(&store).await, 300, "every increment exactly once");
    assert_eq!(runs.load(Ordering::SeqCst), 300, "the closure never re-ran after an unknown outcome");
    assert!(store.landed_unseen.load(Ordering::SeqCst) > 10, "the faults were exercised");
}

#[tokio::test]
async fn an_unknown_outcome_another_writer_hides_is_reported_not_retried() {
    for fault in [Fault::LostReplyThenMoved, Fault::NotSentThenMoved] {
        let store = Faulty::new();
        let sessions = counters(&store);
        store.plan.lock().unwrap().push_back(Some(fault));
        let runs = AtomicUsize::new(0);
        let res = sessions
            .update(&key(), |c| {
                runs.fetch_add(1, Ordering::SeqCst);
                c.n += 1;
                Ok::<_, SessionError>(())
            })
            .await;
        let err = res.expect_err("the outcome cannot be told");
        assert!(err.is_ambiguous(), "{fault:?}: {err:?}");
        assert!(!err.is_retryable(), "{fault:?}: an unknown outcome is not blindly retryable");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{fault:?}: the closure ran once");
        let landed = store.landed_unseen.load(Ordering::SeqCst) as u64;
        assert_eq!(stored(&store).await, 1000 + landed, "{fault:?}: the other process's write is kept");
    }
}

#[tokio::test]
async fn a_lost_reply_to_a_delete_is_resolved() {
    let store = Faulty::new();
    let sessions = counters(&store);
    sessions
        .update(&key(), |c| {
            c.n = 5;
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
    for fault in [Fault::LostReply, Fault::NotSent] {
        sessions
            .update(&key(), |c| {
                c.n = 5;
                Ok::<_, SessionError>(())
            })
            .await
            .unwrap();
        store.plan.lock().unwrap().push_back(Some(fault));
        sessions
            .update_option(&key(), |slot| {
                *slot = None;
                Ok::<_, SessionError>(())
            })
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(stored(&store).await, 0, "{fault:?}: deleted");
    }
}

#[tokio::test]
async fn a_refresh_on_read_that_meets_another_writer_is_not_an_error() {
    let store = Faulty::new();
    let sessions = Sessions::<Counter>::builder(store.clone())
        .namespace("count")
        .ttl(Ttl::idle_refreshed_on_read(std::time::Duration::from_secs(60)))
        .build()
        .unwrap();
    sessions
        .update(&key(), |c| {
            c.n = 1;
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
    // The refresh's compare-and-set loses to another process that wrote meanwhile.
    store.plan.lock().unwrap().push_back(Some(Fault::Raced));
    let read = sessions.get(&key()).await.expect("a read is not failed by a racing write");
    assert_eq!(read, Some(Counter { n: 1 }), "the value as loaded");
    assert_eq!(stored(&store).await, 1001, "the other process's write stands");
}
