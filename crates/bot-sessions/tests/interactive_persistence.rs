//! Interactive sessions shared by several managers on one store: clicks land on any
//! manager, each end happens once, handles learn of ends elsewhere, sessions outlive
//! their manager. Run on every backend this build has (memory always; SQLite, Redis
//! and PostgreSQL with their features, against the servers `.ci/run` starts).
#![cfg(feature = "interactive")]

mod interactive_support;

use std::collections::HashSet;
use std::time::Duration;

use bot_sessions::interactive::{EndReason, HandleError, RouteOutcome};
use bot_sessions::{Clock, DynStore};
use interactive_support::*;

/// A session started by one manager is clicked through a second, finished there, and
/// ends exactly once; the starter's handle gets the result.
pub async fn second_manager_updates_and_ends_once(s1: DynStore, s2: DynStore) {
    let p = Pair::new(s1, s2, idle(60));
    // This test is about the store fallback: m1 does not hear m2's end notice (heard,
    // it would resolve the handle before the pass below; `interactive_ends` tests that).
    p.m1.drop_end_notices(true);
    let started = p.m1.start(&p.k1, &opener(), 0).await.unwrap();
    let id = started.id;
    for i in 0..10 {
        let m = if i % 2 == 0 { &p.m2 } else { &p.m1 };
        assert_eq!(m.route(&click(m, id, "inc")).await.unwrap(), RouteOutcome::Handled { session: id, ended: None });
    }
    assert_eq!(
        p.m2.route(&click(&p.m2, id, "done")).await.unwrap(),
        RouteOutcome::Handled { session: id, ended: Some(EndReason::Finished) }
    );
    // The handle is in m1; the end happened in m1's "other process". m1's next pass
    // after one watch period reads the end from the store. Its listener may have read
    // it first: a store's notice connection that opens late (SQLite's, on a loaded
    // machine) reports notices missed, and the listener then re-reads every session
    // waited for. Either way the handle gets the end once, from the store.
    p.clock.advance(Duration::from_secs(1));
    let report = p.m1.expire_due(p.clock.now()).await;
    assert!(report.delivered <= 1 && (report.expired, report.errors) == (0, 0), "{report:?}");
    let ended = resolved(started.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Finished, Some(10)));
    for m in [&p.m1, &p.m2] {
        assert_eq!(
            m.route(&click(m, id, "inc")).await.unwrap(),
            RouteOutcome::Ended { session: id, reason: EndReason::Finished }
        );
    }
    p.clock.advance(Duration::from_secs(120));
    for m in [&p.m1, &p.m2] {
        assert_eq!(m.expire_due(p.clock.now()).await.expired, 0);
        assert_eq!(m.expire_scan(p.clock.now()).await.unwrap().expired, 0);
    }
    assert_eq!(ends_of(&p.ends, id), [EndReason::Finished]);
}

/// Both managers know every session and all run their expiry passes at once: each
/// session's `end` runs exactly once, and every handle resolves as expired.
pub async fn expiry_is_claimed_once_across_managers(s1: DynStore, s2: DynStore) {
    let p = Pair::new(s1, s2, idle(60));
    let mut handles = Vec::new();
    for i in 0..20 {
        let s = p.m1.start(&p.k1, &opener(), i).await.unwrap();
        // m2 routes one click of each, so it indexes (adopts) them too.
        p.m2.route(&click(&p.m2, s.id, "peek")).await.unwrap();
        handles.push(s);
    }
    p.clock.advance(Duration::from_secs(60));
    let now = p.clock.now();
    let (a, b, c, d) =
        tokio::join!(p.m1.expire_due(now), p.m2.expire_due(now), p.m1.expire_scan(now), p.m2.expire_scan(now));
    let (c, d) = (c.unwrap(), d.unwrap());
    assert_eq!(a.expired + b.expired + c.expired + d.expired, 20);
    assert_eq!(a.errors + b.errors + c.errors + d.errors, 0);
    // Where m2 won a claim while m1 looked, m1 filed the session again to collect the
    // end: its next pass, one watch period on, hands the handles what m2 recorded.
    p.clock.advance(Duration::from_secs(1));
    let e = p.m1.expire_due(p.clock.now()).await;
    assert_eq!((e.expired, e.errors), (0, 0));
    for (i, s) in handles.into_iter().enumerate() {
        let ended = resolved(s.handle).await.unwrap();
        assert_eq!((ended.reason, ended.result), (EndReason::Expired, Some(i as u64)));
    }
    let ends = p.ends.lock().unwrap().clone();
    assert_eq!(ends.len(), 20);
    assert_eq!(ends.iter().map(|(s, _)| *s).collect::<HashSet<_>>().len(), 20);
}

/// The starting manager dies; another finds its sessions by scanning and ends them
/// once; a third scan finds nothing left to do.
pub async fn sessions_of_a_dead_manager_expire_once(s1: DynStore, s2: DynStore) {
    let p = Pair::new(s1, s2.clone(), idle(60));
    let mut ids = Vec::new();
    for _ in 0..5 {
        let s = p.m1.start(&p.k1, &opener(), 1).await.unwrap();
        ids.push(s.id);
        drop(s.handle);
    }
    let Pair { m1, k1, m2, clock, ends, .. } = p;
    drop((m1, k1));
    clock.advance(Duration::from_secs(61));
    let report = m2.expire_scan(clock.now()).await.unwrap();
    assert_eq!((report.expired, report.errors), (5, 0));
    assert_eq!(m2.expire_scan(clock.now()).await.unwrap().expired, 0);
    for id in ids {
        assert_eq!(ends_of(&ends, id), [EndReason::Expired]);
    }
}

/// 200 clicks on one session, split over two managers and racing: compare-and-set
/// between the managers, key locks within each; the count is exact.
pub async fn concurrent_clicks_on_two_managers_count_exactly(s1: DynStore, s2: DynStore) {
    let p = Pair::new(s1, s2, idle(600));
    let started = p.m1.start(&p.k1, &opener(), 0).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let m = if i % 2 == 0 { p.m1.clone() } else { p.m2.clone() };
        let ctx = click(&m, started.id, "inc");
        tasks.push(tokio::spawn(async move { m.route(&ctx).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), RouteOutcome::Handled { session: started.id, ended: None });
    }
    p.m1.route(&click(&p.m1, started.id, "done")).await.unwrap();
    assert_eq!(resolved(started.handle).await.unwrap().result, Some(200));
    assert_eq!(ends_of(&p.ends, started.id), [EndReason::Finished]);
}

/// A restart: the manager shuts down detached, a new one (a fresh store handle)
/// carries the session on, and the old handle says it was detached.
pub async fn a_restart_keeps_sessions(s1: DynStore, s2: DynStore) {
    let p = Pair::new(s1, s2.clone(), idle(60));
    let started = p.m1.start(&p.k1, &opener(), 5).await.unwrap();
    p.m1.route(&click(&p.m1, started.id, "inc")).await.unwrap();
    p.m1.shutdown_detached();
    assert_eq!(resolved(started.handle).await.unwrap_err(), HandleError::Detached { session: started.id });
    let restarted = p.another(s2);
    assert_eq!(
        restarted.route(&click(&restarted, started.id, "inc")).await.unwrap(),
        RouteOutcome::Handled { session: started.id, ended: None }
    );
    restarted.route(&click(&restarted, started.id, "done")).await.unwrap();
    assert_eq!(ends_of(&p.ends, started.id), [EndReason::Finished]);
}

/// Forget-user reaches the interactive sessions a user opened (their keys carry no
/// user; the store indexes them by opener): the record is gone from every process, a
/// click finds nothing, and `end` does not run.
pub async fn forget_user_erases_opened_sessions(s1: DynStore, s2: DynStore) {
    let p = Pair::new(s1, s2.clone(), idle(60));
    let user = bot_sessions::testing::unique_user();
    let who = bot_sessions::Context::new().chat(-100).user(user);
    let started = p.m1.start(&p.k1, &who, 3).await.unwrap();
    let kept = p.m1.start(&p.k1, &opener(), 3).await.unwrap();
    assert_eq!(s2.forget_user(user, p.clock.now()).await.unwrap(), 1, "the opened session was indexed by its opener");
    let click_it = click_as(&p.m2, started.id, "inc", who);
    assert!(
        matches!(p.m2.route(&click_it).await.unwrap(), RouteOutcome::Unknown { .. } | RouteOutcome::Expired { .. }),
        "a forgotten session takes no clicks"
    );
    assert!(ends_of(&p.ends, started.id).is_empty(), "forgetting does not run `end`");
    assert_eq!(
        p.m2.route(&click(&p.m2, kept.id, "inc")).await.unwrap(),
        RouteOutcome::Handled { session: kept.id, ended: None },
        "other users' sessions stay"
    );
}

macro_rules! persistence_tests {
    ($pair:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn forget_user_erases_opened_sessions() {
            let (a, b) = $pair().await;
            super::forget_user_erases_opened_sessions(a, b).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn second_manager_updates_and_ends_once() {
            let (a, b) = $pair().await;
            super::second_manager_updates_and_ends_once(a, b).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn expiry_is_claimed_once_across_managers() {
            let (a, b) = $pair().await;
            super::expiry_is_claimed_once_across_managers(a, b).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sessions_of_a_dead_manager_expire_once() {
            let (a, b) = $pair().await;
            super::sessions_of_a_dead_manager_expire_once(a, b).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_clicks_on_two_managers_count_exactly() {
            let (a, b) = $pair().await;
            super::concurrent_clicks_on_two_managers_count_exactly(a, b).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_restart_keeps_sessions() {
            let (a, b) = $pair().await;
            super::a_restart_keeps_sessions(a, b).await;
        }
    };
}

on_every_backend!(persistence_tests);
