//! Sessions that see what the user did and answer it: replies from start, update and
//! end; dispatch by component kind (button, select menu, modal); per-session TTL; end
//! events across managers. Time is a `ManualClock`; nothing sleeps.
#![cfg(feature = "interactive")]

mod interactive_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::interactive::*;
use bot_sessions::store::BoxError;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{Clock, Context, DynStore, ManualClock, Ttl};
use interactive_support::{T0, codec, opener};

/// An order form: a select menu for the size, a button that opens a modal for the
/// address, and the modal's submit that finishes the order.
struct Order;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Draft {
    size: Option<String>,
    buttons: u32,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Placed {
    size: String,
    name: String,
    address: String,
}

fn form(cx: &UpdateCx<'_>) -> Result<Modal, BoxError> {
    Ok(Modal::new(cx.encode(&cx.custom_id("address"))?, "Where to?")
        .field(TextField::new("name", "Name"))
        .field(TextField::new("address", "Address").paragraph()))
}

impl Interactive for Order {
    type State = Draft;
    type Args = Option<Ttl>;
    type Output = Placed;

    async fn start(&self, cx: &mut StartCx<'_>, ttl: Option<Ttl>) -> Result<Draft, BoxError> {
        if let Some(ttl) = ttl {
            cx.set_ttl(ttl);
        }
        let size = Select::new(cx.encode(&cx.custom_id("size"))?)
            .option(SelectOption::new("Small", "s"))
            .option(SelectOption::new("Large", "l"));
        let next = Button::new("Address", cx.encode(&cx.custom_id("form"))?);
        cx.reply(Reply::message(View::text("pick a size").row([size]).row([next])));
        Ok(Draft::default())
    }

    async fn on_select(&self, cx: &mut UpdateCx<'_>, draft: &mut Draft) -> Result<Step<Placed>, BoxError> {
        draft.size = cx.values().first().cloned();
        cx.reply(Reply::notice(format!("size: {}", draft.size.as_deref().unwrap_or("?"))));
        Ok(Step::refresh())
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, draft: &mut Draft) -> Result<Step<Placed>, BoxError> {
        draft.buttons += 1;
        cx.reply(Reply::modal(form(cx)?));
        Ok(Step::keep())
    }

    async fn on_modal(&self, cx: &mut UpdateCx<'_>, draft: &mut Draft) -> Result<Step<Placed>, BoxError> {
        let (Some(name), Some(address)) = (cx.field("name"), cx.field("address")) else {
            cx.reply(Reply::notice("both fields, please"));
            return Ok(Step::keep());
        };
        let size = draft.size.clone().unwrap_or_else(|| "s".into());
        Ok(Step::Finish(Placed { size, name: name.into(), address: address.into() }))
    }

    async fn end(&self, cx: &mut EndCx<'_>, _: Draft) -> Result<Option<Placed>, BoxError> {
        cx.reply(Reply::close(format!("order {:?}", cx.reason())));
        Ok(None)
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(60))
    }
}

fn setup() -> (Manager, Kind<Order>, ManualClock) {
    let clock = ManualClock::new(T0);
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let m = Manager::builder(store, codec()).clock(clock.clone()).build().unwrap();
    let kind = m.register("order", Order).unwrap();
    (m, kind, clock)
}

/// The custom id of the component named `component` in a reply's message.
fn id_of(m: &Manager, reply: &Reply, component: &str) -> String {
    let message = reply.as_message().expect("a message");
    message
        .custom_ids()
        .find(|id| m.codec().decode(id).is_ok_and(|d| d.component() == component))
        .unwrap_or_else(|| panic!("no {component} in {reply}"))
        .to_owned()
}

#[tokio::test]
async fn a_session_answers_selects_buttons_and_modals() {
    let (m, kind, _clock) = setup();
    let started = m.start(&kind, &opener(), None).await.unwrap();
    let first = started.reply.clone().expect("start replied");
    assert!(matches!(first, Reply::Message(_)));
    let size = id_of(&m, &first, "size");
    let button = id_of(&m, &first, "form");
    assert!(first.to_string().starts_with("pick a size\n{select} "), "{first}");

    // The record exists before the reply goes out: an immediate choice is handled.
    let routed = m.handle(&opener().select(&size, ["l"])).await.unwrap();
    assert_eq!(routed.outcome, RouteOutcome::Handled { session: started.id, ended: None });
    assert_eq!(routed.reply, Some(Reply::notice("size: l")), "on_select saw the chosen value");

    let routed = m.handle(&opener().button(&button)).await.unwrap();
    let Some(Reply::Modal(modal)) = &routed.reply else { panic!("on_button answers with a modal: {routed:?}") };
    assert_eq!(modal.fields.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["name", "address"]);

    let half = opener().modal_submit(&modal.custom_id, [("name", "Ada")]);
    assert_eq!(m.handle(&half).await.unwrap().reply, Some(Reply::notice("both fields, please")));

    let full = opener().modal_submit(&modal.custom_id, [("name", "Ada"), ("address", "12 St James's Sq")]);
    let routed = m.handle(&full).await.unwrap();
    assert_eq!(routed.outcome, RouteOutcome::Handled { session: started.id, ended: Some(EndReason::Finished) });
    assert_eq!(routed.reply, None, "on_modal gave no reply of its own");
    assert_eq!(routed.end_reply, Some(Reply::close("order Finished")), "the end's reply reaches the click");
    assert_eq!(routed.answer(|_| None), Some(Reply::close("order Finished")));

    let ended = started.handle.await.unwrap();
    let placed = ended.result.expect("a result");
    assert_eq!((placed.size.as_str(), placed.name.as_str()), ("l", "Ada"));
}

#[tokio::test]
async fn a_session_can_have_its_own_ttl() {
    let (m, kind, clock) = setup();
    let short = m.start(&kind, &opener(), Some(Ttl::idle(Duration::from_secs(10)))).await.unwrap();
    let long = m.start(&kind, &opener(), None).await.unwrap();
    let size = |s: &Started<Placed>| id_of(&m, s.reply.as_ref().unwrap(), "size");
    let (short_size, long_size) = (size(&short), size(&long));
    // An idle refresh keeps the session's own period.
    clock.advance(Duration::from_secs(8));
    m.handle(&opener().select(&short_size, ["s"])).await.unwrap();
    clock.advance(Duration::from_secs(8));
    let still = m.handle(&opener().select(&short_size, ["l"])).await.unwrap();
    assert_eq!(still.outcome, RouteOutcome::Handled { session: short.id, ended: None }, "refreshed by 10 s");
    clock.advance(Duration::from_secs(11));
    let gone = m.handle(&opener().select(&short_size, ["l"])).await.unwrap();
    assert_eq!(gone.outcome, RouteOutcome::Expired { session: short.id });
    assert_eq!(gone.reply, Some(Reply::close("order Expired")), "the expired session's end answers the click");
    let alive = m.handle(&opener().select(&long_size, ["l"])).await.unwrap();
    assert_eq!(alive.outcome, RouteOutcome::Handled { session: long.id, ended: None }, "the kind's 60 s");
}

#[tokio::test]
async fn each_end_is_published_once_across_managers() {
    let clock = ManualClock::starting_now();
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let (m1, m2) = (
        Manager::builder(store.clone(), codec()).clock(clock.clone()).build().unwrap(),
        Manager::builder(store.clone(), codec()).clock(clock.clone()).build().unwrap(),
    );
    let (k1, _k2) = (m1.register("order", Order).unwrap(), m2.register("order", Order).unwrap());
    let (mut e1, mut e2) = (m1.subscribe(), m2.subscribe());

    let finished = m1.start(&k1, &opener(), None).await.unwrap();
    let expired = m1.start(&k1, &opener(), Some(Ttl::idle(Duration::from_secs(5)))).await.unwrap();
    let cancelled = m1.start(&k1, &opener(), None).await.unwrap();
    let untouched = m1.start(&k1, &opener(), None).await.unwrap();

    let form_id = id_of(&m2, finished.reply.as_ref().unwrap(), "form");
    let Some(Reply::Modal(modal)) = m2.handle(&opener().button(&form_id)).await.unwrap().reply else {
        panic!("a modal")
    };
    m2.handle(&opener().modal_submit(&modal.custom_id, [("name", "A"), ("address", "B")])).await.unwrap();
    clock.advance(Duration::from_secs(6));
    // Both managers look for due sessions: the expired one ends in exactly one.
    let (r1, r2) = tokio::join!(m1.expire_scan(clock.now()), m2.expire_scan(clock.now()));
    assert_eq!(r1.unwrap().expired + r2.unwrap().expired, 1);
    assert!(m2.end(cancelled.id, EndReason::Cancelled).await.unwrap());

    let mut seen: HashMap<SessionId, Vec<(EndReason, usize)>> = HashMap::new();
    for (n, rx) in [&mut e1, &mut e2].into_iter().enumerate() {
        while let Ok(event) = rx.try_recv() {
            assert_eq!(&*event.kind, "order");
            assert_eq!(event.origin.user, opener().user_id, "the event names the opener");
            seen.entry(event.session).or_default().push((event.reason, n + 1));
        }
    }
    assert_eq!(seen.len(), 3, "three ends: {seen:?}");
    assert_eq!(seen[&finished.id], [(EndReason::Finished, 2)], "published by the manager that ran `end`");
    assert_eq!(seen[&expired.id].len(), 1);
    assert_eq!(seen[&expired.id][0].0, EndReason::Expired);
    assert_eq!(seen[&cancelled.id], [(EndReason::Cancelled, 2)]);
    assert!(!seen.contains_key(&untouched.id));
}

#[tokio::test]
async fn an_end_event_carries_the_result_and_the_end_reply() {
    let (m, kind, clock) = setup();
    let mut events = m.subscribe();
    let s = m.start(&kind, &Context::new().chat(5).user(9), Some(Ttl::absolute(Duration::from_secs(1)))).await.unwrap();
    clock.advance(Duration::from_secs(2));
    let report = m.expire_due(clock.now()).await;
    assert_eq!(report.expired, 1);
    let event = events.try_recv().expect("one event");
    assert_eq!((event.session, event.reason, event.result), (s.id, EndReason::Expired, None));
    assert_eq!(event.reply, Some(Reply::close("order Expired")), "what the transport shows for an expiry");
    assert_eq!((event.origin.chat, event.origin.user), (Some(5), Some(9)));
    assert!(events.try_recv().is_err(), "one event per end");
}

#[tokio::test]
async fn the_transport_records_the_message_id_for_the_end() {
    let (m, kind, clock) = setup();
    let mut events = m.subscribe();
    let s = m.start(&kind, &Context::new().chat(5).user(9), Some(Ttl::idle(Duration::from_secs(5)))).await.unwrap();
    assert!(m.set_message(s.id, 777).await.unwrap(), "the session exists");
    assert!(!m.set_message(SessionId::random(), 1).await.unwrap(), "an unknown session");
    clock.advance(Duration::from_secs(6));
    assert_eq!(m.expire_due(clock.now()).await.expired, 1);
    let event = events.try_recv().unwrap();
    assert_eq!(event.origin.message, Some(777), "the expiry knows which message to edit");
}
