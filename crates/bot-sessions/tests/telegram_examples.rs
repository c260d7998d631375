//! The Telegram examples, driven end to end: their handler trees (the ones their
//! `main` runs) through the real teloxide client against the fake Bot API, on updates
//! built from the recorded fixtures of `tests/data/telegram` (see SOURCES.md there).
//!
//! - `examples/telegram_dialogue.rs`: teloxide's dialogue, its state kept in SQLite
//!   across a restart (a new storage on the same file carries on).
//! - `examples/telegram_menu.rs`: a menu opened in one call, a stranger's click
//!   refused, the owner's pick saved in the typed session.
//! - `examples/telegram_webhook.rs`: two webhook servers on one store, secrets refused,
//!   concurrent counts exact.
#![cfg(feature = "telegram-webhook")]

#[path = "../examples/telegram_dialogue.rs"]
#[allow(dead_code)]
mod telegram_dialogue;

#[path = "../examples/telegram_menu.rs"]
#[allow(dead_code)]
mod telegram_menu;

#[path = "../examples/telegram_webhook.rs"]
#[allow(dead_code)]
mod telegram_webhook;

use std::sync::Arc;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::telegram::{SECRET_HEADER, UpdateDispatch, Webhook};
use bot_sessions::testing::telegram::{Call, FakeApi};
use bot_sessions::{DynStore, store};
use serde_json::{Value, json};
use teloxide::types::Update;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

const PRIVATE: &str = include_str!("data/telegram/private_message__teloxide.json");
const GROUP: &str = include_str!("data/telegram/getUpdates_response_private_channel_group__huginn.json");
const CLICK: &str = include_str!("data/telegram/callback_query_with_message__nutgram.json");

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture")
}

fn user(id: i64) -> Value {
    json!({ "id": id, "is_bot": false, "first_name": format!("User{id}") })
}

/// A text message from `from`: in their private chat, or in the fixtures' group.
fn text(from: i64, in_group: bool, text: &str) -> Value {
    let mut update = parse(PRIVATE);
    update["message"]["from"] = user(from);
    update["message"]["chat"] = if in_group {
        parse(GROUP)["result"][2]["message"]["chat"].clone()
    } else {
        json!({ "id": from, "first_name": format!("User{from}"), "type": "private" })
    };
    update["message"]["text"] = json!(text);
    update["message"]["message_id"] = json!(rand::random::<u16>());
    update
}

/// A click by `from` on `data` of `shown` (the message as the Bot API returned it).
fn click(from: i64, shown: &Value, data: &str) -> (Value, String) {
    let mut update = parse(CLICK);
    let id = format!("cq{}", rand::random::<u32>());
    update["callback_query"]["id"] = json!(id);
    update["callback_query"]["from"] = user(from);
    update["callback_query"]["message"] = shown.clone();
    update["callback_query"]["data"] = json!(data);
    (update, id)
}

fn update(value: &Value) -> Update {
    // teloxide's `Update` is parsed from text (from a `Value` its kind is lost).
    serde_json::from_str(&value.to_string()).expect("an update")
}

/// Handles `value` and returns the requests it made.
async fn handle(api: &FakeApi, dispatch: &UpdateDispatch<Error>, value: &Value) -> Vec<Call> {
    dispatch.handle(update(value)).await.expect("handled");
    api.take()
}

/// The text of the one `sendMessage` among `calls`.
fn said(calls: &[Call]) -> String {
    let sent: Vec<&Call> = calls.iter().filter(|c| c.method == "SendMessage").collect();
    assert_eq!(sent.len(), 1, "{calls:?}");
    sent[0].text().to_owned()
}

#[tokio::test]
async fn the_dialogue_example_goes_through_its_states_across_a_restart() {
    let api = FakeApi::start().await;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("examples");
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join(format!("dialogue-{:016x}.db", rand::random::<u64>()));
    let url = format!("sqlite://{}", db.display());
    let start = |store: DynStore| {
        let bot = api.bot();
        async move {
            let storage = telegram_dialogue::storage(store).expect("storage");
            UpdateDispatch::new(bot, telegram_dialogue::schema(), teloxide::dptree::deps![storage])
                .await
                .expect("getMe")
        }
    };
    let first = start(store::open(&url).await.expect("sqlite")).await;
    api.take();
    let (ada, bob) = (31, 32);
    assert_eq!(said(&handle(&api, &first, &text(ada, false, "/start")).await), "Let's start! What's your full name?");
    assert_eq!(said(&handle(&api, &first, &text(bob, false, "hi")).await), "Let's start! What's your full name?");
    assert_eq!(said(&handle(&api, &first, &text(ada, false, "Ada Lovelace")).await), "How old are you?");
    assert_eq!(said(&handle(&api, &first, &text(ada, false, "old")).await), "Send me a number.");
    assert_eq!(said(&handle(&api, &first, &text(ada, false, "36")).await), "What's your location?");
    drop(first);

    // A new process on the same file carries on where each dialogue was.
    let second = start(store::open(&url).await.expect("sqlite")).await;
    api.take();
    assert_eq!(
        said(&handle(&api, &second, &text(ada, false, "London")).await),
        "Full name: Ada Lovelace\nAge: 36\nLocation: London"
    );
    assert_eq!(said(&handle(&api, &second, &text(bob, false, "Bob Kahn")).await), "How old are you?");
    // Ada's dialogue exited: she starts again.
    assert_eq!(said(&handle(&api, &second, &text(ada, false, "again")).await), "Let's start! What's your full name?");
    let _ = std::fs::remove_file(&db);
}

#[tokio::test]
async fn the_menu_example_saves_the_openers_pick_in_the_typed_session() {
    let api = FakeApi::start().await;
    let store: DynStore = Arc::new(MemoryStore::new());
    let parts = telegram_menu::parts(store, b"a signing key of 32 bytes.......").expect("parts");
    let tree = telegram_menu::schema(parts.menus.clone());
    let deps = teloxide::dptree::deps![parts.prefs.clone(), parts.menus.clone(), parts.kind];
    let dispatch = UpdateDispatch::new(api.bot(), tree, deps).await.expect("getMe");
    api.take();
    let (owner, stranger) = (41, 42);

    assert_eq!(said(&handle(&api, &dispatch, &text(owner, true, "/prefs")).await), "no size yet: /size");
    let calls = handle(&api, &dispatch, &text(owner, true, "/size")).await;
    let menu = calls.iter().find(|c| c.method == "SendMessage").expect("the menu").clone();
    assert_eq!(menu.text(), "Pick a size");
    let labels: Vec<String> = menu.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["S", "M", "L"]);
    assert!(menu.body["reply_parameters"]["message_id"].is_i64(), "answers /size in the group");

    // A stranger's click: answered, refused, nothing saved or edited.
    let (q, id) = click(stranger, &menu.result, &menu.button("M"));
    let calls = handle(&api, &dispatch, &q).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].method.as_str(), &calls[0].body["callback_query_id"]), ("AnswerCallbackQuery", &json!(id)));
    assert_eq!(calls[0].body["text"], json!("not yours"));

    // The opener's: saved in the typed session, the menu closed with the pick.
    let (q, _) = click(owner, &menu.result, &menu.button("M"));
    let calls = handle(&api, &dispatch, &q).await;
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods, ["AnswerCallbackQuery", "EditMessageText"]);
    assert_eq!((calls[1].text(), &calls[1].body["message_id"]), ("size: M", &menu.result["message_id"]));
    assert!(calls[1].body.get("reply_markup").is_none(), "no buttons left");
    assert_eq!(said(&handle(&api, &dispatch, &text(owner, true, "/prefs")).await), "size: M (picked 1 times)");
    assert_eq!(said(&handle(&api, &dispatch, &text(stranger, true, "/prefs")).await), "no size yet: /size");

    // The menu ended: a late click is answered `expired`.
    let (q, _) = click(owner, &menu.result, &menu.button("L"));
    let calls = handle(&api, &dispatch, &q).await;
    assert_eq!(calls[0].body["text"], json!("expired"));
}

/// POSTs `body` to `addr` at `/telegram` with `secret` (if any); the status code.
async fn post(addr: std::net::SocketAddr, secret: Option<&str>, body: &Value) -> u16 {
    let body = body.to_string();
    let header = secret.map(|s| format!("{SECRET_HEADER}: {s}\r\n")).unwrap_or_default();
    let request = format!(
        "POST /telegram HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{header}\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.expect("read");
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_example_counts_exactly_over_two_servers_and_refuses_bad_secrets() {
    let api = FakeApi::start().await;
    let store: DynStore = Arc::new(MemoryStore::new());
    let secret = "example_secret-1";
    let mut servers = Vec::new();
    for _ in 0..2 {
        let webhook = Webhook::new("https://bot.example.invalid/telegram", secret).expect("webhook");
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = telegram_webhook::serve(api.bot(), store.clone(), webhook, tcp, async move {
            let _ = stopped.await;
        });
        servers.push((addr, stop, tokio::spawn(async move { served.await.map_err(|e| e.to_string()) })));
    }
    let addrs: Vec<_> = servers.iter().map(|(a, _, _)| *a).collect();

    for secret in [None, Some("wrong"), Some("example_secret-")] {
        assert_eq!(post(addrs[0], secret, &text(51, true, "/count")).await, 401, "{secret:?}");
    }
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (addr, update) = (addrs[i % 2], text(51, true, "/count"));
        posts.spawn(async move { post(addr, Some(secret), &update).await });
    }
    while let Some(status) = posts.join_next().await {
        assert_eq!(status.expect("no panic"), 200);
    }
    let mut counts: Vec<String> = api.calls_of("SendMessage").iter().map(|c| c.text().to_owned()).collect();
    counts.sort_by_key(|c| c.trim_start_matches("count: ").parse::<u32>().unwrap_or(0));
    assert_eq!(counts, (1..=10).map(|n| format!("count: {n}")).collect::<Vec<_>>(), "refused ones not counted");

    for (_, stop, task) in servers {
        let _ = stop.send(());
        task.await.expect("no panic").expect("served");
    }
    let sets = api.calls_of("SetWebhook");
    assert_eq!(sets.len(), 2);
    assert!(sets.iter().all(|s| s.body["secret_token"] == json!(secret)));
    assert!(api.calls_of("GetUpdates").is_empty());
}
