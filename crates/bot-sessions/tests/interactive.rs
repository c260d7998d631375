//! Interactive sessions in one manager: lifecycle, TTL, handles, filters, routing
//! outcomes. Time is a `ManualClock`; nothing sleeps.
#![cfg(feature = "interactive")]

mod interactive_support;

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::interactive::{
    CustomId, EndReason, Filter, HandleError, InteractiveError, Manager, RouteOutcome, SessionId,
};
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{Clock, Context, DynStore, ManualClock, Ttl};
use interactive_support::*;

fn setup(ttl: Ttl) -> (Manager, ManualClock, EndLog, bot_sessions::interactive::Kind<Counter>) {
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let clock = ManualClock::new(T0);
    let m = manager(&store, &clock);
    let ends = EndLog::default();
    let kind = m.register("counter", Counter::new(ttl, &ends)).unwrap();
    (m, clock, ends, kind)
}

async fn route(m: &Manager, ctx: &Context) -> RouteOutcome {
    m.route(ctx).await.unwrap()
}

fn handled(session: SessionId) -> RouteOutcome {
    RouteOutcome::Handled { session, ended: None }
}

#[tokio::test]
async fn lifecycle_finish_resolves_the_handle_once() {
    let (m, _clock, ends, kind) = setup(idle(60));
    let started = m.start(&kind, &opener(), 10).await.unwrap();
    let id = started.id;
    for _ in 0..3 {
        assert_eq!(route(&m, &click(&m, id, "inc")).await, handled(id));
    }
    assert_eq!(
        route(&m, &click(&m, id, "done")).await,
        RouteOutcome::Handled { session: id, ended: Some(EndReason::Finished) }
    );
    let ended = resolved(started.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Finished, Some(13)));
    assert_eq!(ends_of(&ends, id), [EndReason::Finished]);
    // Late clicks see the end; nothing runs again.
    assert_eq!(
        route(&m, &click(&m, id, "inc")).await,
        RouteOutcome::Ended { session: id, reason: EndReason::Finished }
    );
    assert_eq!(ends_of(&ends, id), [EndReason::Finished]);
    assert_eq!(m.local_sessions(), 0);
}

#[tokio::test]
async fn idle_ttl_is_refreshed_only_when_update_says_so() {
    let (m, clock, ends, kind) = setup(idle(60));
    let refreshed = m.start(&kind, &opener(), 0).await.unwrap();
    let kept = m.start(&kind, &opener(), 0).await.unwrap();

    clock.advance(Duration::from_secs(50));
    assert_eq!(route(&m, &click(&m, refreshed.id, "inc")).await, handled(refreshed.id)); // deadline -> T0+110s
    assert_eq!(route(&m, &click(&m, kept.id, "peek")).await, handled(kept.id)); // deadline stays T0+60s

    clock.advance(Duration::from_secs(9)); // T0+59s: neither is due
    let report = m.expire_due(clock.now()).await;
    assert_eq!(report.expired, 0);

    clock.advance(Duration::from_secs(1)); // T0+60s: `kept` expires at its deadline, inclusive
    let report = m.expire_due(clock.now()).await;
    assert_eq!((report.expired, report.errors), (1, 0));
    let ended = resolved(kept.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Expired, Some(0)));
    assert!(ends_of(&ends, refreshed.id).is_empty());

    clock.advance(Duration::from_secs(49)); // T0+109s
    assert_eq!(m.expire_due(clock.now()).await.expired, 0);
    clock.advance(Duration::from_secs(1)); // T0+110s
    assert_eq!(m.expire_due(clock.now()).await.expired, 1);
    let ended = resolved(refreshed.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Expired, Some(1)));
    assert_eq!(ends_of(&ends, refreshed.id), [EndReason::Expired]);
    assert_eq!(ends_of(&ends, kept.id), [EndReason::Expired]);

    // Expired sessions say so; another pass ends nothing twice.
    assert_eq!(
        route(&m, &click(&m, kept.id, "inc")).await,
        RouteOutcome::Ended { session: kept.id, reason: EndReason::Expired }
    );
    clock.advance(Duration::from_secs(3600));
    assert_eq!(m.expire_due(clock.now()).await.expired, 0);
    assert_eq!(ends.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn absolute_ttl_ignores_refreshes() {
    let (m, clock, ends, kind) = setup(Ttl::absolute(Duration::from_secs(60)));
    let s = m.start(&kind, &opener(), 0).await.unwrap();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(11));
        assert_eq!(route(&m, &click(&m, s.id, "inc")).await, handled(s.id));
    }
    clock.advance(Duration::from_secs(5)); // T0+60s
    assert_eq!(m.expire_due(clock.now()).await.expired, 1);
    assert_eq!(resolved(s.handle).await.unwrap().result, Some(5));
    assert_eq!(ends_of(&ends, s.id), [EndReason::Expired]);
}

#[tokio::test]
async fn a_click_on_an_expired_session_ends_it_without_a_sweeper() {
    let (m, clock, ends, kind) = setup(idle(60));
    let s = m.start(&kind, &opener(), 4).await.unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(route(&m, &click(&m, s.id, "inc")).await, RouteOutcome::Expired { session: s.id });
    let ended = resolved(s.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Expired, Some(4)), "the click was not applied");
    assert_eq!(m.expire_due(clock.now()).await.expired, 0);
    assert_eq!(ends_of(&ends, s.id), [EndReason::Expired]);
}

#[tokio::test]
async fn shutdown_ends_own_sessions_and_resolves_handles() {
    let (m, _clock, ends, kind) = setup(idle(60));
    let a = m.start(&kind, &opener(), 1).await.unwrap();
    let b = m.start(&kind, &opener(), 2).await.unwrap();
    let c = m.start(&kind, &opener(), 3).await.unwrap();
    drop(c.handle); // nobody waits for `c`; it still ends
    route(&m, &click(&m, a.id, "inc")).await;
    let report = m.shutdown().await;
    assert_eq!((report.ended, report.errors), (3, 0));
    let (ea, eb) = (resolved(a.handle).await.unwrap(), resolved(b.handle).await.unwrap());
    assert_eq!((ea.reason, ea.result), (EndReason::Shutdown, Some(2)));
    assert_eq!((eb.reason, eb.result), (EndReason::Shutdown, Some(2)));
    assert_eq!(ends_of(&ends, c.id), [EndReason::Shutdown]);
    assert!(matches!(m.route(&click(&m, a.id, "inc")).await, Err(InteractiveError::ShutDown)));
    assert!(matches!(m.start(&kind, &opener(), 0).await, Err(InteractiveError::ShutDown)));
}

#[tokio::test]
async fn detached_shutdown_leaves_sessions_for_another_manager() {
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let clock = ManualClock::new(T0);
    let ends = EndLog::default();
    let m1 = manager(&store, &clock);
    let k1 = m1.register("counter", Counter::new(idle(60), &ends)).unwrap();
    let s = m1.start(&k1, &opener(), 0).await.unwrap();
    assert_eq!(m1.shutdown_detached(), 1);
    assert_eq!(resolved(s.handle).await.unwrap_err(), HandleError::Detached { session: s.id });
    assert!(ends.lock().unwrap().is_empty());

    // "After the restart": a new manager on the same store carries on.
    let m2 = manager(&store, &clock);
    m2.register("counter", Counter::new(idle(60), &ends)).unwrap();
    assert_eq!(route(&m2, &click(&m2, s.id, "inc")).await, handled(s.id));
    clock.advance(Duration::from_secs(60));
    let report = m2.expire_due(clock.now()).await;
    assert_eq!(report.expired, 1);
    assert_eq!(ends_of(&ends, s.id), [EndReason::Expired]);
}

#[tokio::test]
async fn dropping_the_manager_resolves_handles_as_lost() {
    let (m, _clock, _ends, kind) = setup(idle(60));
    let s = m.start(&kind, &opener(), 0).await.unwrap();
    drop(kind);
    drop(m);
    assert_eq!(resolved(s.handle).await.unwrap_err(), HandleError::Lost { session: s.id });
}

#[tokio::test]
async fn replace_and_cancel() {
    let (m, _clock, ends, kind) = setup(idle(60));
    let old = m.start(&kind, &opener(), 0).await.unwrap();
    let new = m.replace(old.id, &kind, &opener(), 7).await.unwrap();
    assert_eq!(resolved(old.handle).await.unwrap().reason, EndReason::Replaced);
    assert!(m.end(new.id, EndReason::Cancelled).await.unwrap());
    assert!(!m.end(new.id, EndReason::Cancelled).await.unwrap(), "ends once");
    assert_eq!(resolved(new.handle).await.unwrap().result, Some(7));
    assert_eq!(ends_of(&ends, old.id), [EndReason::Replaced]);
    assert_eq!(ends_of(&ends, new.id), [EndReason::Cancelled]);
}

#[tokio::test]
async fn update_filter_defaults_to_the_opener() {
    let (m, _clock, _ends, kind) = setup(idle(60));
    let s = m.start(&kind, &opener(), 0).await.unwrap();
    let stranger = Context::new().chat(-100).user(7);
    let anonymous = Context::new().chat(-100);
    for who in [stranger, anonymous] {
        assert_eq!(
            route(&m, &click_as(&m, s.id, "inc", who)).await,
            RouteOutcome::Refused { session: s.id, filter: "opener".into() }
        );
    }
    route(&m, &click(&m, s.id, "done")).await;
    assert_eq!(resolved(s.handle).await.unwrap().result, Some(0), "refused clicks changed nothing");
}

#[tokio::test]
async fn composed_filters_on_start_and_update() {
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let clock = ManualClock::new(T0);
    let m = manager(&store, &clock);
    let ends = EndLog::default();
    let mut poll = Counter::new(idle(60), &ends);
    poll.start_filter = Filter::new("in_a_group", |ctx, _| ctx.chat_id.is_some_and(|c| c < 0));
    poll.update_filter = Filter::same_chat() & !Filter::users("banned", [13]);
    let kind = m.register("poll", poll).unwrap();

    let refused = m.start(&kind, &Context::new().chat(42).user(42), 0).await.unwrap_err();
    assert!(matches!(refused, InteractiveError::StartRefused { ref filter, .. } if &**filter == "in_a_group"));

    let s = m.start(&kind, &opener(), 0).await.unwrap();
    for user in [1, 2, 3] {
        let who = Context::new().chat(-100).user(user);
        assert_eq!(route(&m, &click_as(&m, s.id, "inc", who)).await, handled(s.id));
    }
    let elsewhere = Context::new().chat(-200).user(1);
    let banned = Context::new().chat(-100).user(13);
    assert_eq!(
        route(&m, &click_as(&m, s.id, "inc", elsewhere)).await,
        RouteOutcome::Refused { session: s.id, filter: "same_chat".into() }
    );
    assert_eq!(
        route(&m, &click_as(&m, s.id, "inc", banned)).await,
        RouteOutcome::Refused { session: s.id, filter: "!banned".into() }
    );
    route(&m, &click(&m, s.id, "done")).await;
    assert_eq!(resolved(s.handle).await.unwrap().result, Some(3));
}

#[tokio::test]
async fn bad_ids_are_outcomes_and_touch_nothing() {
    let (m, _clock, ends, kind) = setup(idle(60));
    let s = m.start(&kind, &opener(), 0).await.unwrap();
    let good = m.codec().encode(&CustomId::new(s.id, "inc")).unwrap();

    assert_eq!(route(&m, &opener()).await, RouteOutcome::NotOurs);
    assert_eq!(route(&m, &opener().custom_id("other-bot:whatever")).await, RouteOutcome::NotOurs);
    let edited = good.replacen(":inc:", ":done:", 1);
    assert!(matches!(route(&m, &opener().custom_id(&edited)).await, RouteOutcome::Forged { .. }));
    let truncated = &good[..good.len() - 1];
    assert!(matches!(route(&m, &opener().custom_id(truncated)).await, RouteOutcome::Forged { .. }));
    assert!(matches!(route(&m, &opener().custom_id("t:")).await, RouteOutcome::Forged { .. }));

    // An unsigned codec: malformed ids are told apart from forged ones.
    let plain = Manager::builder(
        MemoryStore::without_sweeper(),
        bot_sessions::interactive::CustomIdCodec::new("t", bot_sessions::interactive::Target::Discord).unwrap(),
    )
    .build()
    .unwrap();
    assert!(matches!(route(&plain, &opener().custom_id("t:short:inc")).await, RouteOutcome::Malformed { .. }));
    assert!(matches!(
        route(&plain, &opener().custom_id(format!("t:{}:x:%zz", s.id))).await,
        RouteOutcome::Malformed { .. }
    ));

    // A well-formed, correctly signed id of a session that does not exist.
    let ghost = SessionId::random();
    assert_eq!(route(&m, &click(&m, ghost, "inc")).await, RouteOutcome::Unknown { session: ghost });

    // A component the kind does not know: its error, nothing written.
    let err = m.route(&click(&m, s.id, "explode")).await.unwrap_err();
    assert!(matches!(err, InteractiveError::Session { stage: "update", session, .. } if session == s.id));

    route(&m, &click(&m, s.id, "done")).await;
    assert_eq!(resolved(s.handle).await.unwrap().result, Some(0));
    assert_eq!(ends.lock().unwrap().len(), 1);
}

/// A signed id that routed once is not checked again when it comes back unchanged
/// (`Local` keeps it): every edit of it, however small, is still forged, and only the
/// unchanged clicks count.
#[tokio::test]
async fn a_remembered_signed_id_lets_no_edit_through() {
    let (m, _clock, _ends, kind) = setup(idle(60));
    let s = m.start(&kind, &opener(), 0).await.unwrap();
    let good = m.codec().encode(&CustomId::new(s.id, "inc")).unwrap();
    let (body, tag) = good.rsplit_once(':').unwrap();
    let flipped: String =
        tag.chars().enumerate().map(|(i, c)| if i == 0 { if c == 'A' { 'B' } else { 'A' } } else { c }).collect();
    let edits = [
        good.replacen(":inc:", ":done:", 1),
        good.replacen(":inc:", ":inc:x:", 1),
        good[..good.len() - 1].to_owned(),
        format!("{good}A"),
        format!("{body}:{flipped}"),
        body.to_owned(),
    ];
    for round in 0..3 {
        assert_eq!(route(&m, &opener().custom_id(&good)).await, handled(s.id), "round {round}");
        for edit in &edits {
            assert!(
                matches!(route(&m, &opener().custom_id(edit)).await, RouteOutcome::Forged { .. }),
                "round {round}: {edit:?}"
            );
        }
    }
    // Another button of the session verifies in its own right and takes the place.
    let other = m.codec().encode(&CustomId::new(s.id, "inc").push("t")).unwrap();
    assert_eq!(route(&m, &opener().custom_id(&other)).await, handled(s.id));
    assert_eq!(route(&m, &opener().custom_id(&good)).await, handled(s.id));
    route(&m, &click(&m, s.id, "done")).await;
    assert_eq!(resolved(s.handle).await.unwrap().result, Some(5));
}

#[tokio::test]
async fn tokens_reach_update() {
    let (m, _clock, _ends, kind) = setup(idle(60));
    let s = m.start(&kind, &opener(), 0).await.unwrap();
    let add = m.codec().encode(&CustomId::new(s.id, "add").push("40")).unwrap();
    assert_eq!(route(&m, &opener().custom_id(add)).await, handled(s.id));
    route(&m, &click(&m, s.id, "done")).await;
    assert_eq!(resolved(s.handle).await.unwrap().result, Some(40));
}

#[tokio::test]
async fn kinds_must_be_registered() {
    let (m, _clock, ends, kind) = setup(idle(60));
    assert!(matches!(m.register("counter", Counter::new(idle(1), &ends)), Err(InteractiveError::DuplicateKind { .. })));
    assert!(matches!(m.register("no spaces", Counter::new(idle(1), &ends)), Err(InteractiveError::InvalidName { .. })));

    // A kind registered with another manager cannot start here.
    let other = manager(m.store(), &ManualClock::new(T0));
    assert!(matches!(other.start(&kind, &opener(), 0).await, Err(InteractiveError::NotRegistered { .. })));

    // A manager that lacks the kind cannot route its clicks, and says which.
    let s = m.start(&kind, &opener(), 0).await.unwrap();
    let err = other.route(&click(&other, s.id, "inc")).await.unwrap_err();
    assert!(matches!(err, InteractiveError::UnknownKind { ref kind, session } if kind == "counter" && session == s.id));
    // Also when it has exactly one other kind (the fast path that skips the header).
    other.register("poll", Counter::new(idle(1), &ends)).unwrap();
    let err = other.route(&click(&other, s.id, "inc")).await.unwrap_err();
    assert!(matches!(err, InteractiveError::UnknownKind { ref kind, session } if kind == "counter" && session == s.id));
    assert_eq!(m.route(&click(&m, s.id, "inc")).await.unwrap(), handled(s.id), "nothing was touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clicks_are_applied_one_at_a_time() {
    let (m, _clock, _ends, kind) = setup(idle(60));
    let s = m.start(&kind, &opener(), 0).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let m = m.clone();
        let ctx = click(&m, s.id, "inc");
        tasks.push(tokio::spawn(async move { m.route(&ctx).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), handled(s.id));
    }
    route(&m, &click(&m, s.id, "done")).await;
    assert_eq!(resolved(s.handle).await.unwrap().result, Some(200));
}

#[tokio::test]
async fn sweeper_expires_in_the_background() {
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let clock = ManualClock::new(T0);
    let m = manager(&store, &clock);
    let ends = EndLog::default();
    let kind = m.register("counter", Counter::new(idle(60), &ends)).unwrap();
    let s = m.start(&kind, &opener(), 0).await.unwrap();
    let _sweeper = m.spawn_sweeper(Duration::from_millis(5), 10).unwrap();
    clock.advance(Duration::from_secs(60));
    // The sweeper runs on real time; the session's time is the manual clock's. The
    // handle resolves on the sweeper's first pass after the advance.
    let ended = tokio::time::timeout(Duration::from_secs(30), s.handle).await.unwrap().unwrap();
    assert_eq!(ended.reason, EndReason::Expired);
    assert!(m.spawn_sweeper(Duration::ZERO, 1).is_err());
}
