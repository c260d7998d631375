//! Per-component rules: filters per component, the one-call encoded id, the context
//! trait shared by start, update and end, and session limits with displacement.
#![cfg(feature = "interactive")]

mod interactive_support;

use bot_sessions::interactive::{
    Button, CustomIdError, EndCx, EndReason, Filter, Interactive, Kind, Limit, Manager, Reply, RouteOutcome, SessionCx,
    StartCx, Step, UpdateCx, View,
};
use bot_sessions::store::BoxError;
use bot_sessions::{Context, DynStore, ManualClock, Ttl};
use interactive_support::*;

/// The poll's message, rendered by one helper from every context.
fn render(cx: &impl SessionCx, votes: u32) -> Result<View, CustomIdError> {
    Ok(View::text(format!("votes: {votes}"))
        .row([Button::new("Vote", cx.id("vote")?), Button::new("Close", cx.id("close")?)]))
}

/// Anyone may vote, only the opener may close; at most `limit` open per the limit's scope.
struct Poll {
    limit: Option<Limit>,
}

impl Interactive for Poll {
    type State = u32;
    type Args = ();
    type Output = u32;

    async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<u32, BoxError> {
        assert_eq!(cx.id("vote")?, cx.encode(&cx.custom_id("vote"))?, "one call, the same id");
        let message = render(cx, 0)?;
        cx.reply(Reply::message(message));
        Ok(0)
    }

    async fn update(&self, cx: &mut UpdateCx<'_>, votes: &mut u32) -> Result<Step<u32>, BoxError> {
        match cx.component() {
            "vote" => {
                *votes += 1;
                let message = render(cx, *votes)?;
                cx.reply(Reply::edit(message));
                Ok(Step::refresh())
            }
            _ => Ok(Step::Finish(*votes)),
        }
    }

    async fn end(&self, cx: &mut EndCx<'_>, votes: u32) -> Result<Option<u32>, BoxError> {
        let message = render(cx, votes)?;
        cx.reply(Reply::edit(message));
        Ok(Some(votes))
    }

    fn ttl(&self) -> Ttl {
        idle(60)
    }

    fn update_filter(&self) -> Filter {
        Filter::allow_all()
    }

    fn component_filters(&self) -> Vec<(&'static str, Filter)> {
        vec![("close", Filter::opener())]
    }

    fn limit(&self) -> Option<Limit> {
        self.limit
    }
}

fn polls(store: &DynStore, clock: &ManualClock, ns: &str, limit: Option<Limit>) -> (Manager, Kind<Poll>) {
    let m = manager_in(store, clock, ns);
    let k = m.register("poll", Poll { limit }).unwrap();
    (m, k)
}

fn ns() -> String {
    format!("rl-{:016x}", rand::random::<u64>())
}

#[tokio::test]
async fn anyone_votes_only_the_opener_closes() {
    let store = bot_sessions::store::open("memory://").await.unwrap();
    let clock = ManualClock::starting_now();
    let (m, k) = polls(&store, &clock, &ns(), None);
    let started = m.start(&k, &opener(), ()).await.unwrap();
    let id = started.id;
    let stranger = Context::new().chat(-100).user(7);
    let voted = m.handle(&click_as(&m, id, "vote", stranger.clone())).await.unwrap();
    assert_eq!(voted.outcome, RouteOutcome::Handled { session: id, ended: None });
    assert!(voted.reply.unwrap().to_string().starts_with("votes: 1"));
    assert_eq!(
        m.route(&click_as(&m, id, "close", stranger)).await.unwrap(),
        RouteOutcome::Refused { session: id, filter: "opener".into() }
    );
    m.route(&click(&m, id, "vote")).await.unwrap();
    let closed = m.handle(&click(&m, id, "close")).await.unwrap();
    assert_eq!(closed.outcome, RouteOutcome::Handled { session: id, ended: Some(EndReason::Finished) });
    assert!(closed.end_reply.unwrap().to_string().starts_with("votes: 2"), "end renders with the same helper");
    assert_eq!(resolved(started.handle).await.unwrap().result, Some(2));
}

/// Two managers on one store (two processes): a third poll of one user ends the
/// oldest, wherever it was started; other users' and ended polls do not count.
pub async fn a_limit_displaces_the_oldest(s1: DynStore, s2: DynStore) {
    let clock = ManualClock::starting_now();
    let ns = ns();
    let (m1, k1) = polls(&s1, &clock, &ns, Some(Limit::per_user(2)));
    let (m2, k2) = polls(&s2, &clock, &ns, Some(Limit::per_user(2)));
    let me = opener();
    let other = Context::new().chat(-100).user(7);
    let first = m1.start(&k1, &me, ()).await.unwrap();
    let theirs = m1.start(&k1, &other, ()).await.unwrap();
    let second = m2.start(&k2, &me, ()).await.unwrap();
    let third = m2.start(&k2, &me, ()).await.unwrap();
    // The end ran in the other manager; the starter's next pass collects it.
    clock.advance(std::time::Duration::from_secs(1));
    m1.expire_due(bot_sessions::Clock::now(&clock)).await;
    assert_eq!(resolved(first.handle).await.unwrap().reason, EndReason::Replaced);
    for (m, s) in [(&m1, second.id), (&m2, third.id), (&m1, theirs.id)] {
        assert_eq!(m.route(&click(m, s, "vote")).await.unwrap(), RouteOutcome::Handled { session: s, ended: None });
    }
    assert_eq!(
        m1.route(&click(&m1, first.id, "vote")).await.unwrap(),
        RouteOutcome::Ended { session: first.id, reason: EndReason::Replaced }
    );
    // An ended poll leaves room: closing the second, then a fourth, ends nothing.
    m1.route(&click(&m1, second.id, "close")).await.unwrap();
    let fourth = m1.start(&k1, &me, ()).await.unwrap();
    for s in [third.id, fourth.id] {
        assert_eq!(m1.route(&click(&m1, s, "vote")).await.unwrap(), RouteOutcome::Handled { session: s, ended: None });
    }
}

/// A limit per chat counts every user's sessions in the chat.
pub async fn a_chat_limit_counts_everyone_in_the_chat(s1: DynStore, s2: DynStore) {
    let clock = ManualClock::starting_now();
    let ns = ns();
    let (m1, k1) = polls(&s1, &clock, &ns, Some(Limit::per_chat(1)));
    let (m2, k2) = polls(&s2, &clock, &ns, Some(Limit::per_chat(1)));
    let first = m1.start(&k1, &opener(), ()).await.unwrap();
    let elsewhere = m1.start(&k1, &Context::new().chat(-200).user(42), ()).await.unwrap();
    let second = m2.start(&k2, &Context::new().chat(-100).user(7), ()).await.unwrap();
    // The end ran in the other manager; the starter's next pass collects it.
    clock.advance(std::time::Duration::from_secs(1));
    m1.expire_due(bot_sessions::Clock::now(&clock)).await;
    assert_eq!(resolved(first.handle).await.unwrap().reason, EndReason::Replaced);
    for s in [elsewhere.id, second.id] {
        let who = if s == second.id { Context::new().chat(-100).user(7) } else { Context::new().chat(-200).user(42) };
        assert_eq!(
            m2.route(&click_as(&m2, s, "vote", who)).await.unwrap(),
            RouteOutcome::Handled { session: s, ended: None }
        );
    }
}

macro_rules! limit_tests {
    ($pair:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_limit_displaces_the_oldest() {
            let (a, b) = $pair().await;
            super::a_limit_displaces_the_oldest(a, b).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_chat_limit_counts_everyone_in_the_chat() {
            let (a, b) = $pair().await;
            super::a_chat_limit_counts_everyone_in_the_chat(a, b).await;
        }
    };
}

on_every_backend!(limit_tests);
