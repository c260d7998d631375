//! The one-call runtime: it runs the sweepers and the end hooks (an expiry is shown
//! with no task spawned by hand), and its shutdown ends or detaches the live sessions,
//! shows the last ends and leaves no task behind.
#![cfg(all(feature = "interactive", feature = "testing"))]

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::interactive::*;
use bot_sessions::runtime::{OnShutdown, Runtime};
use bot_sessions::store::BoxError;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{Context, DynStore, ManualClock, Sessions, Ttl};
use tokio::sync::mpsc;

/// A hang, not a timing assertion.
const DEADLINE: Duration = Duration::from_secs(30);

struct Menu;

impl Interactive for Menu {
    type State = u8;
    type Args = ();
    type Output = u8;

    async fn start(&self, _: &mut StartCx<'_>, _: ()) -> Result<u8, BoxError> {
        Ok(0)
    }

    async fn end(&self, cx: &mut EndCx<'_>, _: u8) -> Result<Option<u8>, BoxError> {
        cx.reply(Reply::edit(View::text(format!("closed: {}", cx.reason()))));
        Ok(None)
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(60))
    }
}

fn setup(store: DynStore, clock: ManualClock) -> (Manager, Kind<Menu>) {
    let codec = CustomIdCodec::new("r", Target::Telegram).unwrap();
    let manager = Manager::builder(store, codec).clock(clock).build().unwrap();
    let kind = manager.register("menu", Menu).unwrap();
    (manager, kind)
}

/// An end hook that hands every event to the test.
fn shown() -> (mpsc::UnboundedSender<EndEvent>, mpsc::UnboundedReceiver<EndEvent>) {
    mpsc::unbounded_channel()
}

async fn next(rx: &mut mpsc::UnboundedReceiver<EndEvent>) -> EndEvent {
    tokio::time::timeout(DEADLINE, rx.recv()).await.expect("an end is shown").expect("the hook is alive")
}

fn closed_text(event: &EndEvent) -> String {
    match &event.reply {
        Some(Reply::Edit(m)) => m.text.clone(),
        other => panic!("an edit, not {other:?}"),
    }
}

#[tokio::test]
async fn an_expiry_is_shown_without_any_task_spawned_by_hand() {
    let clock = ManualClock::new(1_000_000);
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let (manager, kind) = setup(store, clock.clone());
    let (tx, mut rx) = shown();
    let runtime = Runtime::builder()
        .manager(&manager)
        .sweep_every(Duration::from_millis(5))
        .on_end(move |event| {
            let tx = tx.clone();
            async move { drop(tx.send(event)) }
        })
        .start()
        .unwrap();
    let started = manager.start(&kind, &Context::new().chat(1).user(2), ()).await.unwrap();
    clock.advance(Duration::from_secs(61));
    let event = next(&mut rx).await;
    assert_eq!((event.session, event.reason), (started.id, EndReason::Expired));
    assert_eq!(closed_text(&event), "closed: expired");
    let ended = tokio::time::timeout(DEADLINE, started.handle).await.unwrap().unwrap();
    assert_eq!(ended.reason, EndReason::Expired);
    assert_eq!(runtime.shutdown().await.ended, 0, "nothing was left to end");
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Lets the scheduler drop tasks that were aborted or finished (a bounded number of
/// yields, no sleeping).
async fn settle(want: usize) -> usize {
    for _ in 0..1000 {
        if alive_tasks() == want {
            break;
        }
        tokio::task::yield_now().await;
    }
    alive_tasks()
}

#[tokio::test]
async fn shutdown_ends_live_sessions_shows_them_and_leaves_no_task() {
    let baseline = alive_tasks();
    let clock = ManualClock::new(1_000_000);
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let (manager, kind) = setup(store.clone(), clock.clone());
    let forms = Sessions::<Vec<String>>::builder(store).namespace("form").clock(Arc::new(clock)).build().unwrap();
    let (tx, mut rx) = shown();
    let runtime = Runtime::builder()
        .manager(&manager)
        .sessions(&forms)
        .on_end(move |event| {
            let tx = tx.clone();
            async move { drop(tx.send(event)) }
        })
        .start()
        .unwrap();
    assert!(alive_tasks() > baseline, "the runtime runs tasks");
    let ctx = Context::new().chat(1).user(2);
    let (a, b) = (manager.start(&kind, &ctx, ()).await.unwrap(), manager.start(&kind, &ctx, ()).await.unwrap());
    let report = runtime.shutdown().await;
    assert_eq!((report.ended, report.errors, report.hooks_cut), (2, 0, 0));
    let mut ended = [next(&mut rx).await, next(&mut rx).await];
    ended.sort_by_key(|e| e.session.to_string());
    let mut want = vec![a.id, b.id];
    want.sort_by_key(ToString::to_string);
    assert_eq!(ended.iter().map(|e| e.session).collect::<Vec<_>>(), want);
    assert!(ended.iter().all(|e| e.reason == EndReason::Shutdown && closed_text(e) == "closed: shutdown"));
    assert_eq!(a.handle.await.unwrap().reason, EndReason::Shutdown);
    assert_eq!(b.handle.await.unwrap().reason, EndReason::Shutdown);
    assert!(manager.is_shut_down());
    assert_eq!(settle(baseline).await, baseline, "every task the runtime started is gone");
}

#[tokio::test]
async fn shutdown_can_detach_sessions_for_a_restart() {
    let clock = ManualClock::new(1_000_000);
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let (manager, kind) = setup(store.clone(), clock.clone());
    let runtime = Runtime::builder().manager(&manager).on_shutdown(OnShutdown::Detach).start().unwrap();
    let started = manager.start(&kind, &Context::new().chat(1).user(2), ()).await.unwrap();
    let report = runtime.shutdown().await;
    assert_eq!((report.detached, report.ended), (1, 0));
    assert_eq!(started.handle.await.unwrap_err(), HandleError::Detached { session: started.id });
    // The session lives on: the next process can end it.
    let (next, _) = setup(store, clock);
    assert!(next.end(started.id, EndReason::Cancelled).await.unwrap(), "still live");
}

#[tokio::test]
async fn dropping_the_runtime_detaches() {
    let clock = ManualClock::new(1_000_000);
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let (manager, kind) = setup(store, clock);
    let runtime = Runtime::builder().manager(&manager).start().unwrap();
    let started = manager.start(&kind, &Context::new().chat(1).user(2), ()).await.unwrap();
    drop(runtime);
    assert!(manager.is_shut_down());
    assert_eq!(started.handle.await.unwrap_err(), HandleError::Detached { session: started.id });
}

#[test]
fn starting_outside_tokio_is_an_error() {
    assert!(matches!(Runtime::builder().start(), Err(bot_sessions::runtime::RuntimeError::NoTokio)));
}
