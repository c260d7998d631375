//! Observability: every typed operation and every interactive route is counted through
//! the `metrics` facade, with exact counts, and traced in spans that never carry a
//! session's value.
//!
//! Each test installs its own recorder (or subscriber) for its thread only, and runs on
//! a current-thread runtime, so tests running in parallel never see each other's metrics.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bot_sessions::interactive::{
    CustomId, CustomIdCodec, Interactive, Manager, RouteOutcome, StartCx, Step, Target, UpdateCx,
};
use bot_sessions::session::RetryPolicy;
use bot_sessions::store::BoxError;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::testing::Counter;
use bot_sessions::testing::delegate::{Delegate, Overrides};
use bot_sessions::{
    Context, ManualClock, Namespace, Precondition, Scope, SessionError, SessionKey, Sessions, Store, StoreError,
    Timestamp, Ttl, Write,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// What the next write suffers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Another process writes the key just before this write arrives: a conflict.
    Raced,
    /// Applied, but the reply is lost: an ambiguous outcome.
    LostReply,
}

/// The script of faults a memory store's writes follow.
#[derive(Default)]
struct Faulty {
    plan: Mutex<VecDeque<Option<Fault>>>,
}

impl Faulty {
    fn with(plan: &[Option<Fault>]) -> Arc<Delegate<Self>> {
        Arc::new(Delegate::new(MemoryStore::new(), Faulty { plan: Mutex::new(plan.iter().copied().collect()) }))
    }
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
        let fault = self.plan.lock().unwrap().pop_front().flatten();
        match fault {
            None => inner.write(key, w, p, now).await,
            Some(Fault::Raced) => {
                // The other process bumps the counter by 1000.
                let n = match inner.load(key, now).await? {
                    Some(r) => serde_json::from_slice::<Counter>(&r.value).unwrap().n,
                    None => 0,
                };
                let bytes = serde_json::to_vec(&Counter { n: n + 1000 }).unwrap();
                inner.write(key, Write::new(&bytes, 1, None), Precondition::Any, now).await?;
                inner.write(key, w, p, now).await
            }
            Some(Fault::LostReply) => {
                inner.write(key, w, p, now).await?;
                Err(StoreError::ambiguous("faulty", key.as_str(), "reply timed out"))
            }
        }
    }
    fn backend(&self, _: &dyn Store) -> &'static str {
        "faulty"
    }
}

/// A metric's name, sorted labels and value.
type Sample = (String, Vec<(String, String)>, DebugValue);

/// The metrics a snapshot holds.
struct Metrics(Vec<Sample>);

impl Metrics {
    fn take(snapshotter: &Snapshotter) -> Self {
        let items = snapshotter.snapshot().into_vec().into_iter().map(|(ck, _, _, value)| {
            let (_, key) = ck.into_parts();
            let mut labels: Vec<(String, String)> =
                key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            labels.sort();
            (key.name().to_owned(), labels, value)
        });
        Metrics(items.collect())
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        let mut want: Vec<(String, String)> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        want.sort();
        self.0.iter().find(|(n, l, _)| n == name && *l == want).map(|(_, _, v)| v)
    }

    /// A counter's value; 0 when it was never registered.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{name} is not a counter: {other:?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, labels)? {
            DebugValue::Gauge(v) => Some(v.into_inner()),
            other => panic!("{name} is not a gauge: {other:?}"),
        }
    }

    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.find(name, labels) {
            Some(DebugValue::Histogram(v)) => v.iter().map(|x| x.into_inner()).collect(),
            None => Vec::new(),
            Some(other) => panic!("{name} is not a histogram: {other:?}"),
        }
    }

    /// Every counter named `name`, summed.
    fn total(&self, name: &str) -> u64 {
        self.0
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| match v {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    }
}

fn op(backend: &'static str, operation: &'static str, outcome: &'static str) -> [(&'static str, &'static str); 4] {
    [("backend", backend), ("namespace", "obs"), ("operation", operation), ("outcome", outcome)]
}

fn counters(store: impl bot_sessions::session::IntoDynStore, retry: RetryPolicy) -> Sessions<Counter> {
    Sessions::<Counter>::builder(store).namespace("obs").retry(retry).build().unwrap()
}

fn bump(c: &mut Counter) -> Result<(), SessionError> {
    c.n += 1;
    Ok(())
}

fn key() -> SessionKey {
    SessionKey::new(Namespace::new("obs").unwrap(), Scope::User(7))
}

#[tokio::test]
async fn every_operation_is_counted_by_operation_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let sessions = counters(MemoryStore::new(), RetryPolicy::default());
    let key = key();
    for _ in 0..5 {
        sessions.update(&key, bump).await.unwrap();
    }
    let refused: Result<(), SessionError> = sessions.update(&key, |_| Err(SessionError::Config("no".into()))).await;
    assert!(refused.is_err());
    assert_eq!(sessions.get(&key).await.unwrap().map(|c| c.n), Some(5));
    let mut guard = sessions.open(&key).await.unwrap();
    guard.n += 1;
    guard.commit().await.unwrap();
    assert!(sessions.delete(&key).await.unwrap());

    let m = Metrics::take(&snapshotter);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("memory", "update", "ok")), 5);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("memory", "update", "aborted")), 1);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("memory", "get", "ok")), 1);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("memory", "open", "ok")), 1);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("memory", "commit", "ok")), 1);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("memory", "delete", "ok")), 1);
    assert_eq!(m.total("bot_sessions_operations_total"), 10, "nothing else counted");
    let latency = [("backend", "memory"), ("namespace", "obs"), ("operation", "update")];
    assert_eq!(m.samples("bot_sessions_operation_seconds", &latency).len(), 6, "one latency sample per update");
    assert_eq!(m.total("bot_sessions_conflicts_total"), 0);
    assert_eq!(m.total("bot_sessions_retries_total"), 0);
}

#[tokio::test]
async fn a_conflict_is_counted_with_its_retry() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    // The first write meets another process's write: one conflict, one retry.
    let store = Faulty::with(&[Some(Fault::Raced)]);
    let sessions = counters(store, RetryPolicy::default());
    let runs = std::sync::atomic::AtomicU32::new(0);
    sessions
        .update(&key(), |c| {
            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            bump(c)
        })
        .await
        .unwrap();
    assert_eq!(runs.into_inner(), 2);
    assert_eq!(sessions.get(&key()).await.unwrap().unwrap().n, 1001, "both writers counted");

    let m = Metrics::take(&snapshotter);
    let labels = [("backend", "faulty"), ("namespace", "obs")];
    assert_eq!(m.counter("bot_sessions_conflicts_total", &labels), 1);
    assert_eq!(m.counter("bot_sessions_retries_total", &labels), 1);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("faulty", "update", "ok")), 1);
}

#[tokio::test]
async fn the_first_retry_after_a_conflict_goes_at_once() {
    // A backoff of an hour: an update that waited before its second attempt would not
    // finish in the 10 s given (it would wait a uniform 0..=1 h: 1 chance in 360).
    let hour = Duration::from_secs(3600);
    let retry = RetryPolicy { base_delay: hour, max_delay: hour, ..RetryPolicy::default() };
    let store = Faulty::with(&[Some(Fault::Raced)]);
    let sessions = counters(store, retry);
    let runs = std::sync::atomic::AtomicU32::new(0);
    let key = key();
    let update = sessions.update(&key, |c| {
        runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bump(c)
    });
    tokio::time::timeout(Duration::from_secs(10), update).await.expect("no backoff before the second attempt").unwrap();
    assert_eq!(runs.into_inner(), 2);
    assert_eq!(sessions.get(&key).await.unwrap().unwrap().n, 1001, "both writers counted");
}

#[tokio::test]
async fn running_out_of_retries_is_contention() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let store = Faulty::with(&[Some(Fault::Raced), Some(Fault::Raced)]);
    let retry = RetryPolicy { max_attempts: 2, ..RetryPolicy::default() };
    let sessions = counters(store, retry);
    let err = sessions.update(&key(), bump).await.unwrap_err();
    assert!(matches!(err, SessionError::Contention { attempts: 2, .. }), "{err:?}");

    let m = Metrics::take(&snapshotter);
    let labels = [("backend", "faulty"), ("namespace", "obs")];
    assert_eq!(m.counter("bot_sessions_conflicts_total", &labels), 2);
    assert_eq!(m.counter("bot_sessions_retries_total", &labels), 1);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("faulty", "update", "contention")), 1);
    assert_eq!(m.total("bot_sessions_operations_total"), 1);
}

#[tokio::test]
async fn an_ambiguous_write_is_counted_with_its_resolution() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    // The write lands but its reply is lost: resolved by version, applied once.
    let store = Faulty::with(&[Some(Fault::LostReply)]);
    let sessions = counters(store, RetryPolicy::default());
    sessions.update(&key(), bump).await.unwrap();
    assert_eq!(sessions.get(&key()).await.unwrap().unwrap().n, 1);

    let m = Metrics::take(&snapshotter);
    let resolved = [("backend", "faulty"), ("namespace", "obs"), ("resolution", "resolved")];
    assert_eq!(m.counter("bot_sessions_ambiguous_total", &resolved), 1);
    assert_eq!(m.total("bot_sessions_ambiguous_total"), 1);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("faulty", "update", "ok")), 1);
}

#[tokio::test]
async fn a_sweep_sets_live_sessions_and_records_its_lag() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let clock = ManualClock::new(0);
    let sessions = Sessions::<Counter>::builder(MemoryStore::new())
        .namespace("obs")
        .ttl(Ttl::idle(std::time::Duration::from_secs(60)))
        .clock(Arc::new(clock.clone()))
        .on_expire(|_| async {})
        .build()
        .unwrap();
    let ns = sessions.namespace().clone();
    for user in 1..=3 {
        sessions.update(&SessionKey::new(ns.clone(), Scope::User(user)), bump).await.unwrap();
    }
    clock.advance(std::time::Duration::from_secs(30));
    sessions.update(&SessionKey::new(ns.clone(), Scope::User(1)), bump).await.unwrap();
    // Users 2 and 3 expired at 60 s; the sweep comes 5 s late. User 1 lives on.
    clock.advance(std::time::Duration::from_secs(35));
    let report = sessions.sweep_expired(bot_sessions::Clock::now(&clock)).await.unwrap();
    assert_eq!(report.expired, 2);

    let m = Metrics::take(&snapshotter);
    let labels = [("backend", "memory"), ("namespace", "obs")];
    assert_eq!(m.gauge("bot_sessions_live_sessions", &labels), Some(1.0));
    assert_eq!(m.counter("bot_sessions_expired_total", &labels), 2);
    assert_eq!(m.samples("bot_sessions_sweeper_lag_seconds", &labels), [5.0, 5.0]);
    assert_eq!(m.counter("bot_sessions_operations_total", &op("memory", "sweep", "ok")), 1);
}

/// Counts clicks; "done" finishes with the count.
struct Clicks;

impl Interactive for Clicks {
    type State = u32;
    type Args = ();
    type Output = u32;

    async fn start(&self, _: &mut StartCx<'_>, _: ()) -> Result<u32, BoxError> {
        Ok(0)
    }

    async fn update(&self, cx: &mut UpdateCx<'_>, n: &mut u32) -> Result<Step<u32>, BoxError> {
        match cx.component() {
            "plus" => {
                *n += 1;
                Ok(Step::refresh())
            }
            _ => Ok(Step::Finish(*n)),
        }
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(std::time::Duration::from_secs(60))
    }
}

#[tokio::test]
async fn every_route_is_counted_by_kind_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let codec = CustomIdCodec::new("c", Target::Telegram).unwrap();
    let manager = Manager::builder(MemoryStore::new(), codec).clock(ManualClock::new(0)).build().unwrap();
    let clicks = manager.register("clicks", Clicks).unwrap();
    let opener = Context::new().chat(1).user(42);
    let started = manager.start(&clicks, &opener, ()).await.unwrap();
    let plus = manager.codec().encode(&CustomId::new(started.id, "plus")).unwrap();
    let done = manager.codec().encode(&CustomId::new(started.id, "done")).unwrap();
    for _ in 0..3 {
        manager.route(&opener.clone().custom_id(&plus)).await.unwrap();
    }
    let refused = manager.route(&Context::new().chat(1).user(7).custom_id(&plus)).await.unwrap();
    assert!(matches!(refused, RouteOutcome::Refused { .. }));
    manager.route(&opener.clone().custom_id(&done)).await.unwrap();
    assert_eq!(manager.route(&opener.clone().custom_id("elsewhere:1")).await.unwrap(), RouteOutcome::NotOurs);
    assert_eq!(started.handle.await.unwrap().result, Some(3));

    let m = Metrics::take(&snapshotter);
    let route =
        |kind, outcome| [("backend", "memory"), ("namespace", "interactive"), ("kind", kind), ("outcome", outcome)];
    assert_eq!(m.counter("bot_sessions_interactive_routes_total", &route("clicks", "handled")), 4);
    assert_eq!(m.counter("bot_sessions_interactive_routes_total", &route("clicks", "refused")), 1);
    assert_eq!(m.counter("bot_sessions_interactive_routes_total", &route("none", "not_ours")), 1);
    assert_eq!(m.total("bot_sessions_interactive_routes_total"), 6);
    let ns = [("backend", "memory"), ("namespace", "interactive")];
    assert_eq!(m.samples("bot_sessions_interactive_route_seconds", &ns).len(), 6);
    let started = [("backend", "memory"), ("namespace", "interactive"), ("kind", "clicks"), ("outcome", "ok")];
    assert_eq!(m.counter("bot_sessions_interactive_started_total", &started), 1);
    let ended = [("backend", "memory"), ("namespace", "interactive"), ("kind", "clicks"), ("reason", "finished")];
    assert_eq!(m.counter("bot_sessions_interactive_ended_total", &ended), 1);
}

/// A writer the fmt subscriber writes into.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Secret {
    text: String,
}

#[tokio::test]
async fn spans_name_backend_namespace_operation_and_outcome_never_the_value() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    // A retry too, so the span's `retries` field is set.
    let store = Faulty::with(&[Some(Fault::Raced)]);
    let secrets = Sessions::<Secret>::builder(store).namespace("obs").build().unwrap();
    let key = key();
    let err = secrets
        .update(&key, |s| {
            s.text = "hunter2-the-secret".into();
            Ok::<_, SessionError>(())
        })
        .await
        .unwrap_err();
    // The racing writer stored a counter, which is not a `Secret`: a decode error,
    // reported as an outcome.
    assert!(matches!(err, SessionError::Decode { .. }), "{err:?}");
    secrets.set(&key, &Secret { text: "hunter2-the-secret".into() }).await.unwrap();
    assert_eq!(secrets.get(&key).await.unwrap().unwrap().text, "hunter2-the-secret");

    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for line in [
        "backend=\"faulty\" namespace=\"obs\" operation=\"update\" retries=1 outcome=\"error\"",
        "backend=\"faulty\" namespace=\"obs\" operation=\"set\" outcome=\"ok\"",
        "backend=\"faulty\" namespace=\"obs\" operation=\"get\" outcome=\"ok\"",
    ] {
        assert!(out.contains(line), "no span with {line} in:\n{out}");
    }
    assert!(!out.contains("hunter2"), "a session value leaked into the traces:\n{out}");
}
