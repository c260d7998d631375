//! Interactive sessions at their edges: states that are JSON `null`, the state size
//! limit, and custom ids bound to one bot.
#![cfg(feature = "interactive")]

mod interactive_support;

use bot_sessions::interactive::{EndReason, Interactive, Manager, RouteOutcome, StartCx, Step, UpdateCx};
use bot_sessions::store::BoxError;
use bot_sessions::{Clock, DynStore, ManualClock, Ttl};
use interactive_support::*;

/// A session with no state at all (`()`): `done` finishes, anything else continues.
struct Unit;

#[async_trait::async_trait]
impl Interactive for Unit {
    type State = ();
    type Args = ();
    type Output = ();

    async fn start(&self, _: &mut StartCx<'_>, _: ()) -> Result<(), BoxError> {
        Ok(())
    }

    async fn update(&self, cx: &mut UpdateCx<'_>, _: &mut ()) -> Result<Step<()>, BoxError> {
        Ok(if cx.component() == "done" { Step::Finish(()) } else { Step::refresh() })
    }

    fn ttl(&self) -> Ttl {
        idle(60)
    }
}

/// A session whose state starts `None` (the README's `Order`): `pick` sets it, `done`
/// finishes with it.
struct Pick;

#[async_trait::async_trait]
impl Interactive for Pick {
    type State = Option<String>;
    type Args = ();
    type Output = Option<String>;

    async fn start(&self, _: &mut StartCx<'_>, _: ()) -> Result<Option<String>, BoxError> {
        Ok(None)
    }

    async fn update(&self, cx: &mut UpdateCx<'_>, s: &mut Option<String>) -> Result<Step<Option<String>>, BoxError> {
        match cx.component() {
            "peek" => Ok(Step::keep()),
            "pick" => {
                *s = Some(cx.token(0).ok_or("no choice")?.to_owned());
                Ok(Step::refresh())
            }
            _ => Ok(Step::Finish(s.clone())),
        }
    }

    fn ttl(&self) -> Ttl {
        idle(60)
    }
}

fn both(m: &Manager) -> (bot_sessions::interactive::Kind<Unit>, bot_sessions::interactive::Kind<Pick>) {
    (m.register("unit", Unit).unwrap(), m.register("pick", Pick).unwrap())
}

fn handled(id: bot_sessions::interactive::SessionId, ended: Option<EndReason>) -> RouteOutcome {
    RouteOutcome::Handled { session: id, ended }
}

/// `()` and `None` states take clicks, in the manager that started them and in a
/// second one on the same store (a restarted process), and end with their result.
/// On the old envelope the first click failed: "a live session without state".
#[tokio::test]
async fn null_states_take_clicks_across_a_restart() {
    let store: DynStore = bot_sessions::store::open("memory://").await.unwrap();
    let clock = ManualClock::starting_now();
    let m1 = manager_in(&store, &clock, "edges-null");
    let (unit, pick) = both(&m1);
    let u = m1.start(&unit, &opener(), ()).await.unwrap();
    let p = m1.start(&pick, &opener(), ()).await.unwrap();
    assert_eq!(m1.route(&click(&m1, u.id, "again")).await.unwrap(), handled(u.id, None));
    assert_eq!(m1.route(&click(&m1, p.id, "peek")).await.unwrap(), handled(p.id, None));

    let m2 = manager_in(&store, &clock, "edges-null");
    both(&m2);
    assert_eq!(m2.route(&click(&m2, u.id, "again")).await.unwrap(), handled(u.id, None));
    assert_eq!(m2.route(&click(&m2, u.id, "done")).await.unwrap(), handled(u.id, Some(EndReason::Finished)));
    assert_eq!(m2.route(&click(&m2, p.id, "peek")).await.unwrap(), handled(p.id, None));
    let id = bot_sessions::interactive::CustomId::new(p.id, "pick").push("tea");
    let pick_it = opener().custom_id(m2.codec().encode(&id).unwrap());
    assert_eq!(m2.route(&pick_it).await.unwrap(), handled(p.id, None));
    assert_eq!(m1.route(&click(&m1, p.id, "done")).await.unwrap(), handled(p.id, Some(EndReason::Finished)));

    let ended = resolved(p.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Finished, Some(Some("tea".to_owned()))));
    // The unit session ended in m2 while its handle waits in m1: m1 reads the stored
    // end, whose `()` result is there too.
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(m1.expire_due(clock.now()).await.errors, 0);
    let ended = resolved(u.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Finished, Some(())));
}
