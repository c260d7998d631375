//! `telegram::DialogueStorage` as a teloxide `Storage<D>`: the checks of teloxide's own
//! storage tests (teloxide/teloxide `crates/teloxide/tests/{sqlite,redis,postgres}.rs`:
//! three chats, get before any update is `None`, get after update, remove, get after
//! remove, removing a missing dialogue is `DialogueNotFound`) against every backend,
//! then what this storage adds: TTL, migrations, an atomic remove, `Dialogue` and
//! `dialogue::enter` unchanged.
//!
//! Redis (`redis://127.0.0.1:6379/0`, or `BOT_SESSIONS_REDIS_URL`) and PostgreSQL
//! (`postgres://postgres@127.0.0.1:5432/test`, or `BOT_SESSIONS_POSTGRES_URL`) must be
//! up when their features are on: an unreachable server fails the test, nothing is
//! skipped.
#![cfg(feature = "telegram")]

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::telegram::{DialogueStorage, DialogueStorageError};
use bot_sessions::testing::unique_namespace;
use bot_sessions::{DynStore, ManualClock, Migrations, SessionError, Timestamp, Ttl, Write};
use serde::{Deserialize, Serialize};
use teloxide::dispatching::dialogue::{self, Dialogue, Storage};
use teloxide::dispatching::{DpHandlerDescription, UpdateFilterExt};
use teloxide::dptree::{self, Handler};
use teloxide::types::{ChatId, Update};

type Dialogue_ = String;

macro_rules! test_dialogues {
    ($storage:expr, $_0:expr, $_1:expr, $_2:expr) => {
        assert_eq!(Arc::clone(&$storage).get_dialogue(ChatId(1)).await.unwrap(), $_0);
        assert_eq!(Arc::clone(&$storage).get_dialogue(ChatId(11)).await.unwrap(), $_1);
        assert_eq!(Arc::clone(&$storage).get_dialogue(ChatId(256)).await.unwrap(), $_2);
    };
}

/// teloxide's storage test, check for check.
async fn teloxide_checks(storage: Arc<DialogueStorage<Dialogue_>>) {
    test_dialogues!(storage, None, None, None);

    Arc::clone(&storage).update_dialogue(ChatId(1), "ABC".to_owned()).await.unwrap();
    Arc::clone(&storage).update_dialogue(ChatId(11), "DEF".to_owned()).await.unwrap();
    Arc::clone(&storage).update_dialogue(ChatId(256), "GHI".to_owned()).await.unwrap();

    test_dialogues!(storage, Some("ABC".to_owned()), Some("DEF".to_owned()), Some("GHI".to_owned()));

    Arc::clone(&storage).remove_dialogue(ChatId(1)).await.unwrap();
    Arc::clone(&storage).remove_dialogue(ChatId(11)).await.unwrap();
    Arc::clone(&storage).remove_dialogue(ChatId(256)).await.unwrap();

    test_dialogues!(storage, None, None, None);

    // Check that a try to remove a non-existing dialogue results in an error.
    assert!(matches!(
        Arc::clone(&storage).remove_dialogue(ChatId(1)).await.unwrap_err(),
        DialogueStorageError::DialogueNotFound
    ));

    // teloxide's `test_erased`: the same through an erased storage.
    let erased = Arc::clone(&storage).erase();
    Arc::clone(&erased).update_dialogue(ChatId(123), "1".to_owned()).await.unwrap();
    assert_eq!(Arc::clone(&erased).get_dialogue(ChatId(123)).await.unwrap().unwrap(), "1");
    Arc::clone(&erased).remove_dialogue(ChatId(123)).await.unwrap();
    assert_eq!(Arc::clone(&erased).get_dialogue(ChatId(123)).await.unwrap(), None);
    assert!(Arc::clone(&erased).remove_dialogue(ChatId(123)).await.is_err());

    // An update replaces the stored dialogue.
    Arc::clone(&storage).update_dialogue(ChatId(-100), "one".to_owned()).await.unwrap();
    Arc::clone(&storage).update_dialogue(ChatId(-100), "two".to_owned()).await.unwrap();
    assert_eq!(Arc::clone(&storage).get_dialogue(ChatId(-100)).await.unwrap().as_deref(), Some("two"));
    Arc::clone(&storage).remove_dialogue(ChatId(-100)).await.unwrap();
}

fn storage_over(store: DynStore) -> Arc<DialogueStorage<Dialogue_>> {
    DialogueStorage::builder(store).namespace(unique_namespace("dialogue").as_str()).build().expect("storage")
}

#[tokio::test]
async fn teloxide_storage_checks_on_memory() {
    teloxide_checks(storage_over(Arc::new(MemoryStore::new()))).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread")]
async fn teloxide_storage_checks_on_sqlite() {
    let dir =
        std::env::temp_dir().join(format!("bot-sessions-tg-storage-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("dialogues.db").display());
    let store = bot_sessions::store::open(&url).await.expect("sqlite store");
    teloxide_checks(storage_over(store)).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn teloxide_storage_checks_on_redis() {
    let url = std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let store = bot_sessions::store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("this test needs Redis at {url} (set BOT_SESSIONS_REDIS_URL): {e}"));
    teloxide_checks(storage_over(store)).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread")]
async fn teloxide_storage_checks_on_postgres() {
    let url =
        std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let with_schema = format!("{url}{}schema=bot_sessions_test", if url.contains('?') { '&' } else { '?' });
    let store = bot_sessions::store::open(&with_schema)
        .await
        .unwrap_or_else(|e| panic!("this test needs PostgreSQL at {url} (set BOT_SESSIONS_POSTGRES_URL): {e}"));
    teloxide_checks(storage_over(store)).await;
}

#[tokio::test]
async fn an_expired_dialogue_is_gone_and_cannot_be_removed() {
    let clock = ManualClock::new(1_000_000);
    let storage = DialogueStorage::<Dialogue_>::builder(MemoryStore::new())
        .ttl(Ttl::idle(Duration::from_secs(60)))
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("storage");
    Arc::clone(&storage).update_dialogue(ChatId(5), "waiting".into()).await.unwrap();
    clock.advance(Duration::from_secs(59));
    // An update restarts the idle TTL.
    Arc::clone(&storage).update_dialogue(ChatId(5), "still waiting".into()).await.unwrap();
    clock.advance(Duration::from_secs(59));
    assert_eq!(Arc::clone(&storage).get_dialogue(ChatId(5)).await.unwrap().as_deref(), Some("still waiting"));
    clock.advance(Duration::from_secs(2));
    assert_eq!(Arc::clone(&storage).get_dialogue(ChatId(5)).await.unwrap(), None);
    assert!(matches!(
        Arc::clone(&storage).remove_dialogue(ChatId(5)).await,
        Err(DialogueStorageError::DialogueNotFound)
    ));
}

/// A state whose first version was a bare step number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Form {
    step: u32,
    lang: String,
}

#[tokio::test]
async fn stored_states_are_migrated_and_newer_ones_are_refused() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let migrations = Migrations::new().step(|v| Ok(serde_json::json!({ "step": v, "lang": "en" })));
    let storage = DialogueStorage::<Form>::builder(store.clone()).migrations(migrations).build().expect("storage");
    // Written by the first version of the bot: schema 1, the step alone.
    let now = Timestamp::now();
    store
        .write(&storage.key(ChatId(7)), Write::new(b"3", 1, None), bot_sessions::Precondition::Absent, now)
        .await
        .unwrap();
    let form = Arc::clone(&storage).get_dialogue(ChatId(7)).await.unwrap();
    assert_eq!(form, Some(Form { step: 3, lang: "en".into() }));

    // Written by newer code: an error, not a reset.
    store
        .write(&storage.key(ChatId(8)), Write::new(b"{}", 9, None), bot_sessions::Precondition::Absent, now)
        .await
        .unwrap();
    let err = Arc::clone(&storage).get_dialogue(ChatId(8)).await.unwrap_err();
    assert!(matches!(err, DialogueStorageError::Session(SessionError::NewerSchema { found: 9, .. })), "{err}");
}

#[tokio::test]
async fn of_concurrent_removes_exactly_one_succeeds() {
    let store: DynStore = Arc::new(MemoryStore::new());
    for round in 0..20 {
        // Two storages (two processes) over one store.
        let a = DialogueStorage::<Dialogue_>::builder(store.clone()).build().expect("a");
        let b = DialogueStorage::<Dialogue_>::builder(store.clone()).build().expect("b");
        Arc::clone(&a).update_dialogue(ChatId(round), "x".into()).await.unwrap();
        let (ra, rb) =
            tokio::join!(Arc::clone(&a).remove_dialogue(ChatId(round)), Arc::clone(&b).remove_dialogue(ChatId(round)));
        let ok = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {ra:?} {rb:?}");
        assert!([ra, rb].into_iter().any(|r| matches!(r, Err(DialogueStorageError::DialogueNotFound))));
    }
}

#[tokio::test]
async fn bots_sharing_a_store_keep_their_dialogues_apart() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let one = DialogueStorage::<Dialogue_>::builder(store.clone()).bot_id(1).build().expect("one");
    let two = DialogueStorage::<Dialogue_>::builder(store.clone()).bot_id(2).build().expect("two");
    Arc::clone(&one).update_dialogue(ChatId(9), "one's".into()).await.unwrap();
    assert_eq!(Arc::clone(&two).get_dialogue(ChatId(9)).await.unwrap(), None);
    assert_eq!(one.key(ChatId(9)).as_str(), "dialogue@1/chat:9");
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
enum State {
    #[default]
    Start,
    ReceiveName,
    ReceiveAge {
        name: String,
    },
}

type MyDialogue = Dialogue<State, DialogueStorage<State>>;

async fn step(dialogue: MyDialogue, state: State, msg: teloxide::types::Message) -> Result<State, String> {
    let text = msg.text().unwrap_or_default().to_owned();
    let next = match state {
        State::Start => State::ReceiveName,
        State::ReceiveName => State::ReceiveAge { name: text },
        State::ReceiveAge { .. } => {
            dialogue.exit().await.map_err(|e| e.to_string())?;
            return Ok(State::Start);
        }
    };
    dialogue.update(next.clone()).await.map_err(|e| e.to_string())?;
    Ok(next)
}

fn text_update(id: i32, text: &str) -> Update {
    let json = serde_json::json!({"update_id": id, "message": {
        "message_id": id, "date": 0, "text": text,
        "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
        "chat": {"id": 42, "first_name": "Ann", "type": "private"}}});
    serde_json::from_str(&json.to_string()).expect("update")
}

#[tokio::test]
async fn teloxide_dialogues_run_on_it_unchanged() {
    let storage = DialogueStorage::<State>::builder(MemoryStore::new()).build().expect("storage");
    let handler: Handler<'static, Result<State, String>, DpHandlerDescription> =
        Update::filter_message().chain(dialogue::enter::<Update, DialogueStorage<State>, State, _>()).endpoint(step);
    let mut states = Vec::new();
    for (i, text) in ["/start", "Ann", "41"].into_iter().enumerate() {
        let deps = dptree::deps![text_update(i as i32 + 1, text), storage.clone()];
        match handler.dispatch(deps).await {
            ControlFlow::Break(state) => states.push(state.expect("step")),
            ControlFlow::Continue(_) => panic!("the dialogue handler runs"),
        }
    }
    assert_eq!(states, [State::ReceiveName, State::ReceiveAge { name: "Ann".into() }, State::Start]);
    assert_eq!(Arc::clone(&storage).get_dialogue(ChatId(42)).await.unwrap(), None);
}
