//! State routing (`telegram::enter_state`, `Transition`): teloxide's dialogue routed
//! with `dptree::case!` on the state of a typed session, and a transition that loses a
//! race with another process: reported as a conflict, nothing overwritten. Updates are
//! the recorded private message of `tests/data/telegram` (see SOURCES.md there).
#![cfg(feature = "telegram")]

use std::ops::ControlFlow;
use std::sync::Arc;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::telegram::{self, Transition, TransitionError};
use bot_sessions::{DynStore, KeyStrategy, SessionError, Sessions};
use serde_json::json;
use teloxide::dispatching::{DpHandlerDescription, UpdateFilterExt};
use teloxide::dptree::{self, Handler};
use teloxide::types::{Message, Update};

const PRIVATE: &str = include_str!("data/telegram/private_message__teloxide.json");

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
enum State {
    #[default]
    Start,
    ReceiveFullName,
    ReceiveAge {
        full_name: String,
    },
}

type Out = Result<String, TransitionError>;

/// The other process's sessions (a type of its own: dptree keeps one value per type).
#[derive(Clone)]
struct Other(Sessions<State>);

fn update(from: i64, text: &str) -> Update {
    let mut update: serde_json::Value = serde_json::from_str(PRIVATE).expect("fixture");
    update["message"]["from"]["id"] = json!(from);
    update["message"]["chat"]["id"] = json!(from);
    update["message"]["text"] = json!(text);
    serde_json::from_str(&update.to_string()).expect("update")
}

async fn start(t: Transition<State>) -> Out {
    t.to(State::ReceiveFullName).await?;
    Ok("What's your full name?".into())
}

async fn receive_full_name(msg: Message, t: Transition<State>) -> Out {
    t.to(State::ReceiveAge { full_name: msg.text().unwrap_or_default().into() }).await?;
    Ok("How old are you?".into())
}

async fn receive_age(full_name: String, msg: Message, t: Transition<State>) -> Out {
    match msg.text().and_then(|t| t.parse::<u8>().ok()) {
        Some(age) => {
            t.exit().await?;
            Ok(format!("{full_name}, {age}"))
        }
        None => Ok("Send me a number.".into()),
    }
}

fn tree() -> Handler<'static, Out, DpHandlerDescription> {
    Update::filter_message()
        .chain(telegram::enter::<State, _>())
        .chain(telegram::enter_state::<State, _>())
        .branch(dptree::case![State::Start].endpoint(start))
        .branch(dptree::case![State::ReceiveFullName].endpoint(receive_full_name))
        .branch(dptree::case![State::ReceiveAge { full_name }].endpoint(receive_age))
}

fn states(store: &DynStore) -> Sessions<State> {
    Sessions::<State>::builder(store.clone()).namespace("dialogue").key(KeyStrategy::Chat).build().expect("sessions")
}

async fn say(
    tree: &Handler<'static, Out, DpHandlerDescription>,
    sessions: &Sessions<State>,
    from: i64,
    text: &str,
) -> Out {
    match tree.dispatch(dptree::deps![update(from, text), sessions.clone()]).await {
        ControlFlow::Break(out) => out,
        ControlFlow::Continue(_) => panic!("no branch took {text:?}"),
    }
}

#[tokio::test]
async fn handlers_are_routed_on_the_state_with_its_fields() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let sessions = states(&store);
    let tree = tree();
    assert_eq!(say(&tree, &sessions, 7, "/start").await.unwrap(), "What's your full name?");
    assert_eq!(say(&tree, &sessions, 8, "hi").await.unwrap(), "What's your full name?");
    assert_eq!(say(&tree, &sessions, 7, "Ada Lovelace").await.unwrap(), "How old are you?");
    assert_eq!(say(&tree, &sessions, 7, "old").await.unwrap(), "Send me a number.");
    let key = sessions.key(&bot_sessions::Context::new().chat(7)).unwrap();
    assert_eq!(sessions.get(&key).await.unwrap(), Some(State::ReceiveAge { full_name: "Ada Lovelace".into() }));
    assert_eq!(say(&tree, &sessions, 7, "36").await.unwrap(), "Ada Lovelace, 36");
    assert_eq!(sessions.get(&key).await.unwrap(), None, "exit deletes the session");
    assert_eq!(say(&tree, &sessions, 7, "again").await.unwrap(), "What's your full name?");
    let other = sessions.key(&bot_sessions::Context::new().chat(8)).unwrap();
    assert_eq!(sessions.get(&other).await.unwrap(), Some(State::ReceiveFullName), "chat 8 kept its own state");
}

#[tokio::test]
async fn a_transition_that_lost_a_race_with_another_process_is_a_conflict_and_writes_nothing() {
    let store: DynStore = Arc::new(MemoryStore::new());
    // Two processes: two `Sessions` on one store (each with its own in-process locks).
    let (here, there) = (states(&store), states(&store));
    let tree = tree();
    assert_eq!(say(&tree, &here, 9, "/start").await.unwrap(), "What's your full name?");
    let key = here.key(&bot_sessions::Context::new().chat(9)).unwrap();

    // An update routed here on `ReceiveFullName`; while its handler runs, the other
    // process moves the same session on. The handler's transition then fails.
    let racing: Handler<'static, Out, DpHandlerDescription> = Update::filter_message()
        .chain(telegram::enter::<State, _>())
        .chain(telegram::enter_state::<State, _>())
        .branch(dptree::case![State::ReceiveFullName].endpoint(|t: Transition<State>, there: Other| async move {
            let key = t.key().clone();
            there
                .0
                .update(&key, |s| {
                    *s = State::ReceiveAge { full_name: "from the other process".into() };
                    Ok::<_, SessionError>(())
                })
                .await
                .expect("the other process writes");
            t.to(State::ReceiveAge { full_name: "from this process".into() }).await?;
            Ok("How old are you?".to_owned())
        }));
    let out = match racing.dispatch(dptree::deps![update(9, "Ada"), here.clone(), Other(there.clone())]).await {
        ControlFlow::Break(out) => out,
        ControlFlow::Continue(_) => panic!("not routed"),
    };
    assert!(matches!(&out, Err(TransitionError::Conflict { key: k }) if *k == key.to_string()), "{out:?}");
    assert_eq!(
        here.get(&key).await.unwrap(),
        Some(State::ReceiveAge { full_name: "from the other process".into() }),
        "the other process's state stands"
    );

    // Run again, the update sees the new state and is routed on it.
    assert_eq!(say(&tree, &here, 9, "36").await.unwrap(), "from the other process, 36");

    // One transition per update.
    let twice: Handler<'static, Out, DpHandlerDescription> = Update::filter_message()
        .chain(telegram::enter::<State, _>())
        .chain(telegram::enter_state::<State, _>())
        .endpoint(|t: Transition<State>| async move {
            t.to(State::ReceiveFullName).await?;
            t.to(State::Start).await?;
            Ok(String::new())
        });
    let out = twice.dispatch(dptree::deps![update(9, "x"), here.clone()]).await;
    assert!(matches!(out, ControlFlow::Break(Err(TransitionError::Done { .. }))), "{out:?}");
    assert_eq!(here.get(&key).await.unwrap(), Some(State::ReceiveFullName));
}
