//! Discord message records: a note never brings back a record forget-user erased
//! while it ran, and finding a user's records reads that user's index, not the
//! namespace.
#![cfg(feature = "discord")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bot_sessions::discord::{Messages, Shown};
use bot_sessions::interactive::SessionId;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{Namespace, Page, Precondition, Record, SessionKey, Store, StoreError, Timestamp, Write};

/// A memory store that counts its calls and, when armed, runs forget-user of `victim`
/// just before the next write goes ahead (the note's load has been done: the race).
#[derive(Default)]
struct Racing {
    inner: MemoryStore,
    calls: AtomicU64,
    armed: AtomicBool,
    victim: AtomicU64,
}

impl Racing {
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Store for Racing {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.count();
        self.inner.load(key, now).await
    }

    async fn write(&self, key: &SessionKey, w: Write<'_>, p: Precondition, now: Timestamp) -> Result<u64, StoreError> {
        self.count();
        if self.armed.swap(false, Ordering::SeqCst) {
            let victim = i64::try_from(self.victim.load(Ordering::SeqCst)).unwrap();
            self.inner.forget_user(victim, now).await?;
        }
        self.inner.write(key, w, p, now).await
    }

    async fn delete(&self, key: &SessionKey, p: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        self.count();
        self.inner.delete(key, p, now).await
    }

    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.count();
        self.inner.forget_user(user_id, now).await
    }

    async fn scan(
        &self,
        ns: &Namespace,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        self.count();
        self.inner.scan(ns, cursor, limit, now).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.count();
        self.inner.purge_expired(now).await
    }

    async fn count(&self, ns: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.count();
        self.inner.count(ns, now).await
    }
}

const USER: i64 = 42;

#[tokio::test]
async fn a_note_racing_a_forget_leaves_nothing_behind() {
    let store = Arc::new(Racing::default());
    let messages = Messages::new(store.clone()).unwrap();
    let session = SessionId::random();
    messages.note(session, Shown::new(1, "tok-1").at(Some(5), None), Some(USER)).await.unwrap();
    assert!(messages.get(session).await.unwrap().is_some());

    // A click's note (another message id: a write) loses the race to /forget.
    store.victim.store(USER as u64, Ordering::SeqCst);
    store.armed.store(true, Ordering::SeqCst);
    messages.note(session, Shown::new(1, "tok-2").at(Some(5), Some(9)), Some(USER)).await.unwrap();
    assert!(!store.armed.load(Ordering::SeqCst), "the forget ran inside the note");
    assert_eq!(messages.get(session).await.unwrap(), None, "the erased record came back");
    assert!(messages.of_user(USER).await.unwrap().is_empty());
    let namespace = Namespace::new(bot_sessions::discord::DEFAULT_NAMESPACE).unwrap();
    assert_eq!(store.inner.count(Some(&namespace), Timestamp::now()).await.unwrap(), 0, "nothing left at all");
}

#[tokio::test]
async fn of_user_reads_the_users_index_whatever_other_users_hold() {
    let store = Arc::new(Racing::default());
    let messages = Messages::new(store.clone()).unwrap();
    let mine: Vec<SessionId> = (0..3).map(|_| SessionId::random()).collect();
    for (i, session) in mine.iter().enumerate() {
        messages.note(*session, Shown::new(1, format!("tok-{i}")).at(Some(5), None), Some(USER)).await.unwrap();
    }
    let cost = |before: u64| store.calls() - before;

    let before = store.calls();
    let found = messages.of_user(USER).await.unwrap();
    let alone = cost(before);
    let mut ids: Vec<SessionId> = found.iter().map(|(s, _)| *s).collect();
    ids.sort_by_key(|s| s.to_string());
    let mut expected = mine.clone();
    expected.sort_by_key(|s| s.to_string());
    assert_eq!(ids, expected);
    assert_eq!(alone, 1 + 3, "the index, then each record");

    // 600 records of other users (more than a scan page).
    for other in 0..600 {
        messages.note(SessionId::random(), Shown::new(1, "tok").at(Some(5), None), Some(1000 + other)).await.unwrap();
    }
    let before = store.calls();
    assert_eq!(messages.of_user(USER).await.unwrap().len(), 3);
    assert_eq!(cost(before), alone, "of_user's cost grew with other users' records");

    // Forget-user erases the index too.
    store.forget_user(USER, Timestamp::now()).await.unwrap();
    let before = store.calls();
    assert!(messages.of_user(USER).await.unwrap().is_empty());
    assert_eq!(cost(before), 1);
}
