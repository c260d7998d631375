//! The session kind and helpers the interactive tests share.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bot_sessions::interactive::{
    CustomId, CustomIdCodec, EndCx, EndReason, Filter, Interactive, Manager, SessionId, SigningKeys, StartCx, Step,
    Target, UpdateCx,
};
use bot_sessions::store::BoxError;
use bot_sessions::{Context, DynStore, ManualClock, Ttl};

/// Every `end` that ran, in every manager sharing the log.
pub type EndLog = Arc<Mutex<Vec<(SessionId, EndReason)>>>;

/// A click counter. Components: `inc` (+1, refreshes), `peek` (no change, no refresh),
/// `done` (finishes with the count), `fail` (an error), `add:<n>` via token 0.
#[derive(Clone)]
pub struct Counter {
    pub ttl: Ttl,
    pub start_filter: Filter,
    pub update_filter: Filter,
    pub ends: EndLog,
}

impl Counter {
    pub fn new(ttl: Ttl, ends: &EndLog) -> Self {
        Counter { ttl, start_filter: Filter::allow_all(), update_filter: Filter::opener(), ends: ends.clone() }
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CounterState {
    pub n: u64,
    pub buttons: Vec<String>,
}

impl Interactive for Counter {
    type State = CounterState;
    type Args = u64;
    type Output = u64;

    async fn start(&self, cx: &mut StartCx<'_>, from: u64) -> Result<CounterState, BoxError> {
        let mut buttons = Vec::new();
        for c in ["inc", "peek", "done"] {
            buttons.push(cx.encode(&cx.custom_id(c))?);
        }
        CustomIdCodec::ensure_unique(buttons.iter().map(String::as_str))?;
        cx.set_message(1000);
        Ok(CounterState { n: from, buttons })
    }

    async fn update(&self, cx: &mut UpdateCx<'_>, s: &mut CounterState) -> Result<Step<u64>, BoxError> {
        match cx.component() {
            "inc" => {
                s.n += 1;
                Ok(Step::refresh())
            }
            "add" => {
                s.n += cx.token(0).ok_or("no amount")?.parse::<u64>()?;
                Ok(Step::refresh())
            }
            "peek" => Ok(Step::keep()),
            "done" => Ok(Step::Finish(s.n)),
            other => Err(format!("no component {other}").into()),
        }
    }

    async fn end(&self, cx: &mut EndCx<'_>, s: CounterState) -> Result<Option<u64>, BoxError> {
        assert_eq!(cx.origin().message, Some(1000), "end sees the message to edit");
        self.ends.lock().unwrap().push((cx.session_id(), cx.reason()));
        Ok(Some(s.n))
    }

    fn ttl(&self) -> Ttl {
        self.ttl
    }

    fn start_filter(&self) -> Filter {
        self.start_filter.clone()
    }

    fn update_filter(&self) -> Filter {
        self.update_filter.clone()
    }
}

pub const T0: i64 = 1_700_000_000_000;

pub fn codec() -> CustomIdCodec {
    CustomIdCodec::new("t", Target::Telegram)
        .unwrap()
        .signed(SigningKeys::new([b"0123456789abcdef0123456789abcdef"]).unwrap())
}

pub fn manager(store: &DynStore, clock: &ManualClock) -> Manager {
    Manager::builder(store.clone(), codec()).clock(clock.clone()).build().unwrap()
}

pub fn idle(secs: u64) -> Ttl {
    Ttl::idle(Duration::from_secs(secs))
}

pub fn opener() -> Context {
    Context::new().chat(-100).user(42)
}

/// The opener clicking `component` of `session`.
pub fn click(m: &Manager, session: SessionId, component: &str) -> Context {
    click_as(m, session, component, opener())
}

pub fn click_as(m: &Manager, session: SessionId, component: &str, who: Context) -> Context {
    who.custom_id(m.codec().encode(&CustomId::new(session, component)).unwrap())
}

pub fn ends_of(log: &EndLog, session: SessionId) -> Vec<EndReason> {
    log.lock().unwrap().iter().filter(|(s, _)| *s == session).map(|(_, r)| *r).collect()
}

/// A manager in namespace `ns` with a shorter grace, so a shared server is not left
/// with day-long records.
pub fn manager_in(store: &DynStore, clock: &ManualClock, ns: &str) -> Manager {
    Manager::builder(store.clone(), codec())
        .namespace(ns)
        .clock(clock.clone())
        .grace(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// Two managers on two handles of one store (two processes, as far as the store can
/// tell, when the handles are separate connections), sharing a clock and an end log.
pub struct Pair {
    pub m1: Manager,
    pub m2: Manager,
    pub k1: bot_sessions::interactive::Kind<Counter>,
    pub k2: bot_sessions::interactive::Kind<Counter>,
    pub clock: ManualClock,
    pub ends: EndLog,
    pub ns: String,
}

impl Pair {
    pub fn new(s1: DynStore, s2: DynStore, ttl: Ttl) -> Self {
        let ns = format!("ia-{:016x}", rand::random::<u64>());
        let clock = ManualClock::starting_now();
        let ends = EndLog::default();
        let m1 = manager_in(&s1, &clock, &ns);
        let m2 = manager_in(&s2, &clock, &ns);
        let k1 = m1.register("counter", Counter::new(ttl, &ends)).unwrap();
        let k2 = m2.register("counter", Counter::new(ttl, &ends)).unwrap();
        Pair { m1, m2, k1, k2, clock, ends, ns }
    }

    /// A third manager (another process, or the first one restarted).
    pub fn another(&self, store: DynStore) -> Manager {
        let m = manager_in(&store, &self.clock, &self.ns);
        m.register("counter", Counter::new(idle(60), &self.ends)).unwrap();
        m
    }
}

/// Awaits a handle, failing the test (instead of hanging it) if it never resolves. A
/// guard against a hang, not a timing assertion: everything that resolves it has run
/// before the call.
pub async fn resolved<R: 'static>(
    handle: bot_sessions::interactive::SessionHandle<R>,
) -> Result<bot_sessions::interactive::Ended<R>, bot_sessions::interactive::HandleError> {
    let session = handle.session();
    tokio::time::timeout(Duration::from_secs(60), handle)
        .await
        .unwrap_or_else(|_| panic!("the handle of {session} never resolved"))
}

/// Two handles on one store of each backend, as two managers (or two processes) hold
/// them: the memory store shared in process; one SQLite file, the shared Redis server and
/// the shared PostgreSQL database each opened twice.
pub mod pairs {
    use bot_sessions::DynStore;

    /// One memory store, two handles: in-process managers.
    pub async fn memory() -> (DynStore, DynStore) {
        let store = bot_sessions::store::open("memory://").await.unwrap();
        (store.clone(), store)
    }

    /// One database file opened twice: two writers, as two processes would be.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite() -> (DynStore, DynStore) {
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interactive-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("ia-{}-{:016x}.db", std::process::id(), rand::random::<u64>()));
        let url = format!("sqlite://{}", file.display());
        (bot_sessions::store::open(&url).await.unwrap(), bot_sessions::store::open(&url).await.unwrap())
    }

    /// The Redis server at `BOT_SESSIONS_REDIS_URL` (default 127.0.0.1:6379), twice.
    #[cfg(feature = "redis")]
    pub async fn redis() -> (DynStore, DynStore) {
        let url = std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        twice(&url, "redis").await
    }

    /// The PostgreSQL database at `BOT_SESSIONS_POSTGRES_URL` (default the local `test`),
    /// in the schema the interactive tests share, twice.
    #[cfg(feature = "postgres")]
    pub async fn postgres() -> (DynStore, DynStore) {
        let url = std::env::var("BOT_SESSIONS_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        twice(&format!("{url}?schema=bot_sessions_interactive_test"), "postgres").await
    }

    #[cfg(any(feature = "redis", feature = "postgres"))]
    async fn twice(url: &str, what: &str) -> (DynStore, DynStore) {
        let open = || async { bot_sessions::store::open(url).await.unwrap_or_else(|e| panic!("{what} at {url}: {e}")) };
        (open().await, open().await)
    }
}

/// Runs `$tests!(pair)` (a macro that writes tests over a store pair) once per backend,
/// each in a module named for it: `memory`, `sqlite`, `redis`, `postgres`.
#[allow(unused_macros)] // used by the tests that run on every backend, not by all
macro_rules! on_every_backend {
    ($tests:ident) => {
        mod memory {
            $tests!(crate::interactive_support::pairs::memory);
        }
        #[cfg(feature = "sqlite")]
        mod sqlite {
            $tests!(crate::interactive_support::pairs::sqlite);
        }
        #[cfg(feature = "redis")]
        mod redis {
            $tests!(crate::interactive_support::pairs::redis);
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $tests!(crate::interactive_support::pairs::postgres);
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_every_backend;
