//! Values the memory store keeps typed for `Sessions::update` (see `session/typed.rs`):
//! what an update sees and writes is what a store of bytes would give, except for what
//! the codec drops, and nothing a handler leaves behind after an error, a conflict or
//! another writer is ever served.

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{
    Clock, InProcess, ManualClock, Namespace, Precondition, Scope, SessionError, SessionKey, Sessions, Store, Taken,
    Timestamp, Ttl, Write,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Tally {
    n: u64,
    /// Dropped by the codec: the marker of a value that was not decoded.
    #[serde(skip)]
    scratch: u64,
}

fn key(n: i64) -> SessionKey {
    SessionKey::new(Namespace::new("typed").unwrap(), Scope::Chat(n))
}

fn sessions(store: &MemoryStore, clock: &ManualClock) -> Sessions<Tally> {
    Sessions::<Tally>::builder(store.clone())
        .namespace("typed")
        .ttl(Ttl::idle(Duration::from_secs(60)))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

fn bump(by: u64) -> impl FnMut(&mut Tally) -> Result<u64, SessionError> {
    move |t| {
        t.n += by;
        t.scratch += 1;
        Ok(t.n)
    }
}

#[tokio::test]
async fn an_update_starts_from_the_value_the_last_one_left_and_any_other_write_drops_it() {
    let store = MemoryStore::without_sweeper();
    let clock = ManualClock::new(1_000_000);
    let s = sessions(&store, &clock);
    let k = key(1);
    s.update(&k, bump(1)).await.unwrap();
    // Not decoded: the field the codec skips is still there.
    let seen = s.update(&k, |t| Ok::<_, SessionError>(t.scratch)).await.unwrap();
    assert_eq!(seen, 1);
    // Every other reader sees the bytes.
    let record = store.load(&k, clock.now()).await.unwrap().unwrap();
    assert_eq!(record.value, br#"{"n":1}"#);
    assert_eq!(s.get(&k).await.unwrap(), Some(Tally { n: 1, scratch: 0 }));
    // A write of bytes drops what was kept: the next update decodes.
    store.write(&k, Write::new(br#"{"n":7}"#, 1, None), Precondition::Any, clock.now()).await.unwrap();
    let seen = s.update(&k, bump(1)).await.unwrap();
    assert_eq!(seen, 8);
    assert_eq!(s.update(&k, |t| Ok::<_, SessionError>((t.n, t.scratch))).await.unwrap(), (8, 1));
}

#[tokio::test]
async fn take_typed_hands_out_the_value_once_and_the_bytes_stay() {
    let store = MemoryStore::without_sweeper();
    let clock = ManualClock::new(1_000_000);
    let s = sessions(&store, &clock);
    let k = key(2);
    s.update(&k, bump(3)).await.unwrap();
    // The session type's own kept value is private; any other type finds the bytes.
    let other = std::any::TypeId::of::<Tally>();
    match store.take_typed(&k, clock.now(), other, 1).unwrap() {
        Taken::Encoded(Some(r)) => assert_eq!(r.value, br#"{"n":3}"#),
        other => panic!("expected the bytes, got {other:?}"),
    }
    assert_eq!(store.load_now(&k, clock.now()).unwrap().unwrap().value, br#"{"n":3}"#);
}

#[tokio::test]
async fn a_failed_handler_leaves_nothing_behind() {
    let store = MemoryStore::without_sweeper();
    let clock = ManualClock::new(1_000_000);
    let s = sessions(&store, &clock);
    let k = key(3);
    s.update(&k, bump(1)).await.unwrap();
    let version = s.meta(&k).await.unwrap().unwrap().version;
    let failed: Result<(), SessionError> = s
        .update(&k, |t| {
            t.n += 100;
            Err(SessionError::Config("the handler gave up".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(s.meta(&k).await.unwrap().unwrap().version, version, "nothing written");
    // The mutated value is gone with the failed handler.
    assert_eq!(s.update(&k, bump(1)).await.unwrap(), 2);
}

#[tokio::test]
async fn an_unchanged_value_is_not_written_and_keeps_its_expiry() {
    let store = MemoryStore::without_sweeper();
    let clock = ManualClock::new(1_000_000);
    let s = sessions(&store, &clock);
    let k = key(4);
    s.update(&k, bump(1)).await.unwrap();
    let before = s.meta(&k).await.unwrap().unwrap();
    clock.advance(Duration::from_secs(30));
    // Only the skipped field changes: the bytes do not, so nothing is written.
    s.update(&k, |t| {
        t.scratch += 1;
        Ok::<_, SessionError>(())
    })
    .await
    .unwrap();
    assert_eq!(s.meta(&k).await.unwrap().unwrap(), before);
    // ... and the idle TTL was not refreshed: 31 s later the session is gone.
    clock.advance(Duration::from_secs(31));
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert_eq!(s.update(&k, bump(1)).await.unwrap(), 1, "starts over");
}

#[tokio::test]
async fn two_session_types_on_one_namespace_see_each_other_through_the_bytes() {
    let store = MemoryStore::without_sweeper();
    let clock = ManualClock::new(1_000_000);
    let s = sessions(&store, &clock);
    let raw = Sessions::<serde_json::Value>::builder(store.clone())
        .namespace("typed")
        .ttl(Ttl::idle(Duration::from_secs(60)))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let k = key(5);
    for i in 0..10u64 {
        s.update(&k, bump(1)).await.unwrap();
        raw.update(&k, |v| {
            v["n"] = serde_json::json!(v["n"].as_u64().unwrap_or(0) + 10);
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap();
        assert_eq!(s.get(&k).await.unwrap().map(|t| t.n), Some((i + 1) * 11));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_of_one_type_lose_no_update() {
    // Two `Sessions` have two lock tables: they meet only in the store's compare-and-set.
    let store = MemoryStore::without_sweeper();
    let clock = ManualClock::new(1_000_000);
    let (a, b) = (sessions(&store, &clock), sessions(&store, &clock));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for i in 0..500 {
                s.update(&key(i % 3), bump(1)).await.unwrap();
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    for i in 0..3 {
        total += a.get(&key(i)).await.unwrap().map_or(0, |t| t.n);
    }
    assert_eq!(total, 16 * 500);
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Step {
    /// `Sessions::update` adding `by` (0: changes nothing but the skipped field).
    Update(u64),
    /// An update whose handler changes the value, then fails.
    Fail,
    /// An update through a second `Sessions` (another lock table).
    Other(u64),
    /// An update through a `Sessions<serde_json::Value>`.
    Json(u64),
    /// A write of bytes straight to the store.
    Raw(u64),
    /// A delete straight to the store.
    Delete,
    /// `Sessions::get`.
    Get,
    /// Time passes (the TTL is 60 s, idle).
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3u64).prop_map(Step::Update),
        1 => Just(Step::Fail),
        2 => (0..3u64).prop_map(Step::Other),
        1 => (0..3u64).prop_map(Step::Json),
        1 => (0..50u64).prop_map(Step::Raw),
        1 => Just(Step::Delete),
        2 => Just(Step::Get),
        1 => (0..40u64).prop_map(Step::Advance),
    ]
}

/// The reference: the stored count and when it expires, if it is there.
#[derive(Debug, Default)]
struct Model {
    live: Option<(u64, i64)>,
}

impl Model {
    fn now_live(&mut self, now: i64) -> Option<u64> {
        if self.live.is_some_and(|(_, expires)| expires <= now) {
            self.live = None;
        }
        self.live.map(|(n, _)| n)
    }

    fn add(&mut self, by: u64, now: i64) {
        let n = self.now_live(now).unwrap_or(0) + by;
        match self.live {
            // Unchanged: nothing written, the expiry stays.
            Some((old, _)) if old == n => {}
            // An untouched initial value is not stored.
            None if n == 0 => {}
            _ => self.live = Some((n, now + 60_000)),
        }
    }
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let store = MemoryStore::without_sweeper();
    let clock = ManualClock::new(1_000_000);
    let (s, other) = (sessions(&store, &clock), sessions(&store, &clock));
    let json = Sessions::<serde_json::Value>::builder_with_initial(store.clone(), || serde_json::json!({"n": 0}))
        .namespace("typed")
        .ttl(Ttl::idle(Duration::from_secs(60)))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let k = key(9);
    let mut model = Model::default();
    for (i, st) in steps.into_iter().enumerate() {
        let now = clock.now().as_millis();
        match st {
            Step::Update(by) => {
                s.update(&k, bump(by)).await.unwrap();
                model.add(by, now);
            }
            Step::Fail => {
                let r: Result<(), SessionError> = s
                    .update(&k, |t| {
                        t.n += 1_000;
                        Err(SessionError::Config("no".into()))
                    })
                    .await;
                prop_assert!(r.is_err());
            }
            Step::Other(by) => {
                other.update(&k, bump(by)).await.unwrap();
                model.add(by, now);
            }
            Step::Json(by) => {
                json.update(&k, |v| {
                    v["n"] = serde_json::json!(v["n"].as_u64().unwrap_or(0) + by);
                    Ok::<_, SessionError>(())
                })
                .await
                .unwrap();
                model.add(by, now);
            }
            Step::Raw(n) => {
                let bytes = serde_json::to_vec(&Tally { n, scratch: 0 }).unwrap();
                let expires = Timestamp(now + 60_000);
                store.write(&k, Write::new(&bytes, 1, Some(expires)), Precondition::Any, clock.now()).await.unwrap();
                model.live = Some((n, now + 60_000));
            }
            Step::Delete => {
                store.delete(&k, Precondition::Any, clock.now()).await.unwrap();
                model.live = None;
            }
            Step::Get => {}
            Step::Advance(s) => clock.advance(Duration::from_secs(s)),
        }
        let now = clock.now().as_millis();
        let expected = model.now_live(now);
        let got = s.get(&k).await.unwrap().map(|t| t.n);
        prop_assert_eq!(got, expected, "after step {}", i);
        let stored = store.load(&k, clock.now()).await.unwrap().map(|r| r.expires_at.map(|t| t.as_millis()));
        prop_assert_eq!(stored, model.live.map(|(_, e)| Some(e)), "expiry after step {}", i);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn kept_values_follow_the_model(steps in proptest::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(steps))?;
    }
}
