//! Text steps: a session asks for its opener's next message in its chat (and topic),
//! and `Manager::route_text` hands it over, on any manager sharing the store. Run on
//! every backend this build has (memory always; SQLite, Redis and PostgreSQL with
//! their features, against the servers `.ci/run` starts).
#![cfg(feature = "interactive")]

mod interactive_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bot_sessions::interactive::{
    Commands, EndReason, Interactive, Kind, Manager, Reply, RouteOutcome, StartCx, Step, UpdateCx,
};
use bot_sessions::store::{BoxError, InProcess, Page};
use bot_sessions::{
    Clock, Context, DynStore, ManualClock, Namespace, Precondition, Record, SessionKey, Store, StoreError, Timestamp,
    Ttl, Write,
};
use interactive_support::*;

/// A value set by text: `set` asks for a number, a number sets it and stops asking,
/// anything else is answered `not a number` (and the session keeps asking); `done`
/// finishes with the value.
#[derive(Clone)]
struct Setter {
    ask_at_start: bool,
    commands: Commands,
}

impl Interactive for Setter {
    type State = i64;
    type Args = ();
    type Output = i64;

    async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<i64, BoxError> {
        if self.ask_at_start {
            cx.ask_text();
        }
        Ok(0)
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, value: &mut i64) -> Result<Step<i64>, BoxError> {
        match cx.component() {
            "set" => {
                cx.ask_text();
                cx.reply(Reply::notice("send a number"));
                Ok(Step::refresh())
            }
            "done" => Ok(Step::Finish(*value)),
            _ => Ok(Step::keep()),
        }
    }

    async fn on_text(&self, cx: &mut UpdateCx<'_>, value: &mut i64) -> Result<Step<i64>, BoxError> {
        let text = cx.text().unwrap_or_default().trim().to_owned();
        if text.starts_with("/confirm") {
            return Ok(Step::Finish(*value));
        }
        match text.parse::<i64>() {
            Ok(n) => {
                *value = n;
                cx.stop_asking();
                cx.reply(Reply::notice(format!("value: {n}")));
            }
            Err(_) => cx.reply(Reply::notice("not a number")),
        }
        Ok(Step::refresh())
    }

    fn ttl(&self) -> Ttl {
        idle(60)
    }

    fn commands(&self) -> Commands {
        self.commands.clone()
    }
}

fn setter(ask_at_start: bool) -> Setter {
    Setter { ask_at_start, commands: Commands::PassThrough }
}

/// Managers on handles of one store, in one namespace, sharing a clock.
struct Setup {
    clock: ManualClock,
    ns: String,
}

impl Setup {
    fn new() -> Self {
        Setup { clock: ManualClock::starting_now(), ns: format!("tx-{:016x}", rand::random::<u64>()) }
    }

    fn manager(&self, store: &DynStore, kind: Setter) -> (Manager, Kind<Setter>) {
        let m = manager_in(store, &self.clock, &self.ns);
        let k = m.register("setter", kind).unwrap();
        (m, k)
    }

    /// How many awaiting records the namespace holds.
    async fn awaiting(&self, store: &DynStore) -> u64 {
        let ns = Namespace::new(&format!("{}.text", self.ns)).unwrap();
        store.count(Some(&ns), self.clock.now()).await.unwrap()
    }
}

fn text_of(routed: &bot_sessions::interactive::Routed) -> String {
    routed.reply.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Only the opener's messages in the session's chat and topic are taken; bad input
/// is answered and asked again; a good one stops the asking, so the next message is
/// the bot's again.
pub async fn taken_from_the_opener_only_there(s1: DynStore, _s2: DynStore) {
    let setup = Setup::new();
    let (m, k) = setup.manager(&s1, setter(false));
    let opener = Context::new().chat(-100).user(42);
    let started = m.start(&k, &opener, ()).await.unwrap();
    let id = started.id;
    assert_eq!(m.route_text(&opener, "5").await.unwrap(), RouteOutcome::NotOurs, "not asked yet");
    let asked = m.handle(&click(&m, id, "set")).await.unwrap();
    assert_eq!(text_of(&asked), "(notice) send a number");
    assert_eq!(setup.awaiting(&s1).await, 1);
    for (who, why) in [
        (Context::new().chat(-100).user(7), "a stranger in the chat"),
        (Context::new().chat(-200).user(42), "the opener in another chat"),
        (Context::new().chat(-100).user(42).topic(5), "the opener in a forum topic"),
        (Context::new().chat(-100), "nobody"),
        (opener.clone().custom_id("t:whatever"), "a component update"),
    ] {
        assert_eq!(m.route_text(&who, "5").await.unwrap(), RouteOutcome::NotOurs, "{why}");
    }
    let bad = m.handle_text(&opener, "five").await.unwrap();
    assert_eq!(bad.outcome, RouteOutcome::Handled { session: id, ended: None });
    assert_eq!(text_of(&bad), "(notice) not a number");
    let good = m.handle_text(&opener, " 17 ").await.unwrap();
    assert_eq!(text_of(&good), "(notice) value: 17");
    assert_eq!(m.route_text(&opener, "18").await.unwrap(), RouteOutcome::NotOurs, "asking stopped");
    assert_eq!(setup.awaiting(&s1).await, 0, "stopping released the awaiting record");
    m.route(&click(&m, id, "done")).await.unwrap();
    let ended = resolved(started.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Finished, Some(17)));
}

/// The same in a forum topic: the topic's messages are taken, the chat's are not.
pub async fn taken_in_its_topic(s1: DynStore, _s2: DynStore) {
    let setup = Setup::new();
    let (m, k) = setup.manager(&s1, setter(true));
    let opener = Context::new().chat(-100).user(42).topic(9);
    let started = m.start(&k, &opener, ()).await.unwrap();
    assert_eq!(m.route_text(&Context::new().chat(-100).user(42), "1").await.unwrap(), RouteOutcome::NotOurs);
    assert_eq!(m.route_text(&opener.clone().topic(8), "1").await.unwrap(), RouteOutcome::NotOurs);
    assert_eq!(m.route_text(&opener, "1").await.unwrap(), RouteOutcome::Handled { session: started.id, ended: None });
}

/// Asked through one manager, answered through another (another process), and after
/// a restart of the first.
pub async fn answered_on_another_manager_and_after_a_restart(s1: DynStore, s2: DynStore) {
    let setup = Setup::new();
    let (m1, k1) = setup.manager(&s1, setter(false));
    let (m2, _k2) = setup.manager(&s2, setter(false));
    let opener = Context::new().chat(-100).user(42);
    let started = m1.start(&k1, &opener, ()).await.unwrap();
    let id = started.id;
    m1.route(&click(&m1, id, "set")).await.unwrap();
    assert_eq!(text_of(&m2.handle_text(&opener, "x").await.unwrap()), "(notice) not a number");
    // The first process restarts between two answers.
    m1.shutdown_detached();
    let (m3, _k3) = setup.manager(&s2, setter(false));
    assert_eq!(text_of(&m3.handle_text(&opener, "7").await.unwrap()), "(notice) value: 7");
    assert_eq!(m2.route_text(&opener, "8").await.unwrap(), RouteOutcome::NotOurs);
    m3.route(&click(&m3, id, "set")).await.unwrap();
    assert_eq!(text_of(&m2.handle_text(&opener, "9").await.unwrap()), "(notice) value: 9");
}

/// Commands pass through unless the kind takes them.
pub async fn commands_pass_through_unless_taken(s1: DynStore, _s2: DynStore) {
    let setup = Setup::new();
    let (m, k) = setup.manager(&s1, setter(true));
    let opener = Context::new().chat(-100).user(42);
    m.start(&k, &opener, ()).await.unwrap();
    assert_eq!(m.route_text(&opener, "/help").await.unwrap(), RouteOutcome::NotOurs);
    assert_eq!(m.route_text(&opener, "/confirm").await.unwrap(), RouteOutcome::NotOurs);

    let taker = Setter { ask_at_start: true, commands: Commands::TakeOnly(vec!["/confirm".into()]) };
    let (m, k) = setup.manager(&s1, taker);
    let opener = Context::new().chat(-101).user(42);
    let started = m.start(&k, &opener, ()).await.unwrap();
    assert_eq!(m.route_text(&opener, "/help").await.unwrap(), RouteOutcome::NotOurs);
    assert_eq!(
        m.route_text(&opener, "/confirm@DemoBot").await.unwrap(),
        RouteOutcome::Handled { session: started.id, ended: Some(EndReason::Finished) }
    );
}

/// An end releases what the session awaited: by a click, by expiry found by a pass,
/// and by expiry found by the message itself.
pub async fn released_at_end_and_on_expiry(s1: DynStore, s2: DynStore) {
    let setup = Setup::new();
    let (m1, k1) = setup.manager(&s1, setter(true));
    let (m2, _k2) = setup.manager(&s2, setter(true));
    let opener = Context::new().chat(-100).user(42);

    let done = m1.start(&k1, &opener, ()).await.unwrap();
    assert_eq!(setup.awaiting(&s1).await, 1);
    m2.route(&click(&m2, done.id, "done")).await.unwrap();
    assert_eq!(setup.awaiting(&s1).await, 0, "a finished session awaits nothing");
    assert_eq!(m1.route_text(&opener, "1").await.unwrap(), RouteOutcome::NotOurs);

    let swept = m1.start(&k1, &opener, ()).await.unwrap();
    setup.clock.advance(Duration::from_secs(60));
    assert_eq!(m1.expire_due(setup.clock.now()).await.expired, 1);
    assert_eq!(setup.awaiting(&s1).await, 0, "an expired session awaits nothing");
    assert_eq!(m2.route_text(&opener, "1").await.unwrap(), RouteOutcome::NotOurs);
    assert_eq!(resolved(swept.handle).await.unwrap().reason, EndReason::Expired);

    // Nobody swept: the message finds the session over, ends it (once) and says so.
    let unswept = m1.start(&k1, &opener, ()).await.unwrap();
    setup.clock.advance(Duration::from_secs(60));
    assert_eq!(m2.route_text(&opener, "1").await.unwrap(), RouteOutcome::Expired { session: unswept.id });
    assert_eq!(m1.route_text(&opener, "1").await.unwrap(), RouteOutcome::NotOurs);
    assert_eq!(setup.awaiting(&s1).await, 0);
}

/// Two sessions of one opener in one chat: the latest ask takes the messages; when it
/// stops, the earlier one does not get them back by accident.
pub async fn the_latest_ask_wins(s1: DynStore, _s2: DynStore) {
    let setup = Setup::new();
    let (m, k) = setup.manager(&s1, setter(true));
    let opener = Context::new().chat(-100).user(42);
    let first = m.start(&k, &opener, ()).await.unwrap();
    let second = m.start(&k, &opener, ()).await.unwrap();
    assert_eq!(m.route_text(&opener, "x").await.unwrap(), RouteOutcome::Handled { session: second.id, ended: None });
    m.route(&click(&m, first.id, "done")).await.unwrap();
    assert_eq!(
        m.route_text(&opener, "x").await.unwrap(),
        RouteOutcome::Handled { session: second.id, ended: None },
        "the first session's end left the second's ask alone"
    );
}

/// Forget-user erases what a user's sessions await, with the sessions.
pub async fn forget_user_erases_the_ask(s1: DynStore, _s2: DynStore) {
    let setup = Setup::new();
    let (m, k) = setup.manager(&s1, setter(true));
    let user = bot_sessions::testing::unique_user();
    let opener = Context::new().chat(-100).user(user);
    m.start(&k, &opener, ()).await.unwrap();
    assert_eq!(setup.awaiting(&s1).await, 1);
    assert_eq!(s1.forget_user(user, setup.clock.now()).await.unwrap(), 2, "the session and its awaiting record");
    assert_eq!(m.route_text(&opener, "1").await.unwrap(), RouteOutcome::NotOurs);
}

/// A store that counts the calls made through it.
struct Counting {
    inner: DynStore,
    calls: AtomicU64,
}

impl Counting {
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Store for Counting {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, StoreError> {
        self.tick();
        self.inner.load(key, now).await
    }
    async fn write(&self, key: &SessionKey, w: Write<'_>, p: Precondition, now: Timestamp) -> Result<u64, StoreError> {
        self.tick();
        self.inner.write(key, w, p, now).await
    }
    async fn delete(&self, key: &SessionKey, p: Precondition, now: Timestamp) -> Result<bool, StoreError> {
        self.tick();
        self.inner.delete(key, p, now).await
    }
    async fn forget_user(&self, user_id: i64, now: Timestamp) -> Result<u64, StoreError> {
        self.tick();
        self.inner.forget_user(user_id, now).await
    }
    async fn scan(&self, ns: &Namespace, c: Option<&str>, limit: usize, now: Timestamp) -> Result<Page, StoreError> {
        self.tick();
        self.inner.scan(ns, c, limit, now).await
    }
    async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.tick();
        self.inner.purge_expired(now).await
    }
    async fn count(&self, ns: Option<&Namespace>, now: Timestamp) -> Result<u64, StoreError> {
        self.tick();
        self.inner.count(ns, now).await
    }
    fn in_process(&self) -> Option<&dyn InProcess> {
        // The memory store's in-process side: calls there are no round trips.
        self.inner.in_process()
    }
}

/// A message that no session awaits costs one store load (none on the memory store),
/// whether or not other sessions of the namespace await text elsewhere.
pub async fn an_unawaited_message_costs_one_load(s1: DynStore, _s2: DynStore) {
    let setup = Setup::new();
    let counting = Arc::new(Counting { inner: s1.clone(), calls: AtomicU64::new(0) });
    let round_trips = if s1.in_process().is_some() { 0 } else { 1 };
    let store: DynStore = counting.clone();
    let (m, k) = setup.manager(&store, setter(true));
    let stranger = Context::new().chat(-100).user(7);
    for text in ["hello", "/help", "42"] {
        let before = counting.calls();
        assert_eq!(m.route_text(&stranger, text).await.unwrap(), RouteOutcome::NotOurs);
        assert_eq!(counting.calls() - before, round_trips, "nobody awaits anything: {text:?}");
    }
    m.start(&k, &Context::new().chat(-100).user(42), ()).await.unwrap();
    for text in ["hello", "42"] {
        let before = counting.calls();
        assert_eq!(m.route_text(&stranger, text).await.unwrap(), RouteOutcome::NotOurs);
        assert_eq!(counting.calls() - before, round_trips, "the opener's ask is not the stranger's: {text:?}");
    }
    println!("store calls per unawaited message on {}: {round_trips}", s1.backend());
}

macro_rules! text_tests {
    ($pair:path) => {
        text_tests!(@each $pair, taken_from_the_opener_only_there, taken_in_its_topic,
            answered_on_another_manager_and_after_a_restart, commands_pass_through_unless_taken,
            released_at_end_and_on_expiry, the_latest_ask_wins, forget_user_erases_the_ask,
            an_unawaited_message_costs_one_load);
    };
    (@each $pair:path, $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (a, b) = $pair().await;
                super::$name(a, b).await;
            }
        )*
    };
}

on_every_backend!(text_tests);
