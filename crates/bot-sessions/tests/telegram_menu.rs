//! Menus in one call (`telegram::open_menu`, `answer_inline_menu`,
//! `record_chosen_inline`): the session started, its message sent with the keyboard
//! and recorded, through the real teloxide client against a fake Bot API; then the
//! end's edit reaches that message, in a group, in a business chat (through its
//! business connection) and as an inline message. Updates are the recorded fixtures
//! of `tests/data/telegram` (see SOURCES.md there).
#![cfg(feature = "telegram")]

use std::time::Duration;

use bot_sessions::interactive::{
    Button, CustomIdCodec, EndCx, EndReason, Interactive, Kind, Manager, Reply, SigningKeys, StartCx, Step, Target,
    UpdateCx, View,
};
use bot_sessions::store::BoxError;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::telegram::{CallbackRouter, answer_inline_menu, open_menu, record_chosen_inline, show_end};
use bot_sessions::testing::telegram::{Call, FakeApi};
use bot_sessions::{ManualClock, Timestamp, Ttl};
use serde_json::{Value, json};
use teloxide::types::{CallbackQuery, Update, UpdateKind};

const GROUP: &str = include_str!("data/telegram/getUpdates_response_private_channel_group__huginn.json");
const BUSINESS: &str = include_str!("data/telegram/business_message_no_connection_id__nutgram.json");
const CONNECTION: &str = include_str!("data/telegram/business_connection__nutgram.json");
const INLINE_QUERY: &str = include_str!("data/telegram/inline_query__nutgram.json");
const CHOSEN: &str = include_str!("data/telegram/chosen_inline_result__nutgram.json");
const INLINE_CLICK: &str = include_str!("data/telegram/callback_query_object_inline_message__teloxide.json");
const CLICK: &str = include_str!("data/telegram/callback_query_with_message__nutgram.json");

/// A counter with +1; expires after a minute without clicks.
struct Counter;

fn shown(cx_id: impl Fn(&str) -> Result<String, BoxError>, n: i64) -> Result<View, BoxError> {
    Ok(View::text(format!("n = {n}")).row([Button::new("+1", cx_id("inc")?)]))
}

impl Interactive for Counter {
    type State = i64;
    type Args = i64;
    type Output = i64;

    async fn start(&self, cx: &mut StartCx<'_>, from: i64) -> Result<i64, BoxError> {
        let message = shown(|c| Ok(cx.id(c)?), from)?;
        cx.reply(Reply::message(message));
        Ok(from)
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, n: &mut i64) -> Result<Step<i64>, BoxError> {
        *n += 1;
        let message = shown(|c| Ok(cx.id(c)?), *n)?;
        cx.reply(Reply::edit(message));
        Ok(Step::refresh())
    }

    async fn end(&self, cx: &mut EndCx<'_>, n: i64) -> Result<Option<i64>, BoxError> {
        cx.reply(Reply::close(format!("closed at {n} ({})", cx.reason())));
        Ok(Some(n))
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(60))
    }
}

struct World {
    api: FakeApi,
    bot: teloxide::Bot,
    menus: Manager,
    kind: Kind<Counter>,
    clock: ManualClock,
}

impl World {
    async fn new() -> World {
        let api = FakeApi::start().await;
        let clock = ManualClock::new(1_000_000);
        let keys = SigningKeys::new([b"0123456789abcdef0123456789abcdef"]).expect("keys");
        let codec = CustomIdCodec::new("m", Target::Telegram).expect("codec").signed(keys);
        let menus = Manager::builder(MemoryStore::new(), codec).clock(clock.clone()).build().expect("manager");
        let kind = menus.register("counter", Counter).expect("register");
        World { bot: api.bot(), api, menus, kind, clock }
    }

    /// Expires every session and shows each end as the bot's runtime would.
    async fn expire_and_show(&self) -> Vec<Call> {
        let mut ends = self.menus.subscribe();
        self.clock.advance(Duration::from_secs(61));
        self.menus.expire_due(Timestamp(1_000_000 + 61_000)).await;
        while let Ok(event) = ends.try_recv() {
            assert_eq!(event.reason, EndReason::Expired);
            show_end(&self.bot, &event, None).await.expect("the end is shown");
        }
        self.api.take()
    }
}

fn update(text: &str) -> Update {
    serde_json::from_str(text).expect("fixture")
}

fn message_of(update: Update) -> teloxide::types::Message {
    match update.kind {
        UpdateKind::Message(m) | UpdateKind::BusinessMessage(m) => m,
        other => panic!("a message, not {other:?}"),
    }
}

/// A click by `from` on `data`, on the message the Bot API returned (`shown`).
fn click(from: Value, shown: &Value, data: &str) -> CallbackQuery {
    let mut q: Value = serde_json::from_str(CLICK).expect("fixture");
    let q = &mut q["callback_query"];
    q["from"] = from;
    q["message"] = shown.clone();
    q["data"] = json!(data);
    serde_json::from_str(&q.to_string()).expect("query")
}

#[tokio::test]
async fn a_menu_opened_from_a_group_message_is_sent_recorded_and_edited_at_its_end() {
    let w = World::new().await;
    let updates: Value = serde_json::from_str(GROUP).expect("fixture");
    let msg = message_of(update(&updates["result"][2].to_string()));
    let opened = open_menu(&w.bot, &w.menus, &w.kind, &msg, 5).await.expect("opened");

    let calls = w.api.take();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let sent = &calls[0];
    assert_eq!((sent.method.as_str(), sent.text()), ("SendMessage", "n = 5"));
    assert_eq!(sent.body["chat_id"], json!(msg.chat.id.0));
    assert_eq!(sent.body["reply_parameters"]["message_id"], json!(msg.id.0), "answers the message in a group");
    assert_eq!(sent.buttons().len(), 1);
    assert_eq!(opened.message.id.0, sent.result["message_id"].as_i64().expect("id") as i32);

    // No click ever came, yet the end edits the sent message: it was recorded.
    let calls = w.expire_and_show().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].method.as_str(), calls[0].text()), ("EditMessageText", "closed at 5 (expired)"));
    assert_eq!(
        (&calls[0].body["chat_id"], &calls[0].body["message_id"]),
        (&sent.body["chat_id"], &sent.result["message_id"])
    );
    let ended = opened.handle.await.expect("ended");
    assert_eq!((ended.reason, ended.result), (EndReason::Expired, Some(5)));
}

#[tokio::test]
async fn a_menu_in_a_business_chat_passes_its_connection_to_every_request() {
    let w = World::new().await;
    let connection: Value = serde_json::from_str(CONNECTION).expect("fixture");
    let connection = connection["business_connection"]["id"].as_str().expect("id").to_owned();
    // The nutgram fixture lacks the connection id Telegram always sends: add it.
    let mut business: Value = serde_json::from_str(BUSINESS).expect("fixture");
    business["business_message"]["business_connection_id"] = json!(connection);
    let msg = message_of(update(&business.to_string()));
    let opened = open_menu(&w.bot, &w.menus, &w.kind, &msg, 0).await.expect("opened");

    let sent = w.api.take().pop().expect("sent");
    assert_eq!(sent.method, "SendMessage");
    assert_eq!(sent.body["business_connection_id"], json!(connection));
    assert!(sent.body.get("reply_parameters").is_none(), "a private chat: no quote");

    // A click on the business message: the edit goes through the connection.
    let mut on = sent.result.clone();
    on["business_connection_id"] = json!(connection);
    let router = CallbackRouter::new(w.menus.clone());
    let q = click(business["business_message"]["from"].clone(), &on, &sent.button("+1"));
    router.route(&w.bot, &q).await.expect("routed");
    let calls = w.api.take();
    let edit = calls.iter().find(|c| c.method == "EditMessageText").expect("an edit");
    assert_eq!((edit.text(), &edit.body["business_connection_id"]), ("n = 1", &json!(connection)));

    // And so does the end's.
    let calls = w.expire_and_show().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].text(), "closed at 1 (expired)");
    assert_eq!(calls[0].body["business_connection_id"], json!(connection));
    assert_eq!(calls[0].body["message_id"], sent.result["message_id"]);
    let _ = opened.handle.await.expect("ended");
}

#[tokio::test]
async fn an_inline_menu_is_answered_and_its_inline_message_edited_at_its_end() {
    let w = World::new().await;
    let UpdateKind::InlineQuery(query) = update(INLINE_QUERY).kind else { panic!("an inline query") };

    // Chosen (inline feedback on): the inline message is recorded from the result.
    let chosen_menu = answer_inline_menu(&w.bot, &w.menus, &w.kind, &query, "a counter", 3).await.expect("answered");
    let answer = w.api.take().pop().expect("answered");
    assert_eq!(answer.method, "AnswerInlineQuery");
    assert_eq!(answer.body["inline_query_id"], json!(query.id.0));
    let result = &answer.body["results"][0];
    assert_eq!(result["id"], json!(chosen_menu.id.to_string()));
    assert_eq!(result["input_message_content"]["message_text"], json!("n = 3"));
    assert_eq!(result["reply_markup"]["inline_keyboard"][0][0]["text"], json!("+1"));
    let mut chosen: Value = serde_json::from_str(CHOSEN).expect("fixture");
    chosen["chosen_inline_result"]["result_id"] = json!(chosen_menu.id.to_string());
    let UpdateKind::ChosenInlineResult(chosen) = update(&chosen.to_string()).kind else { panic!("a chosen result") };
    assert!(record_chosen_inline(&w.menus, &chosen).await.expect("recorded"));

    // Not chosen (no feedback): the first click records it.
    let clicked_menu = answer_inline_menu(&w.bot, &w.menus, &w.kind, &query, "a counter", 7).await.expect("answered");
    let answer = w.api.take().pop().expect("answered");
    let data = answer.body["results"][0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .expect("data")
        .to_owned();
    let mut q: Value = serde_json::from_str(INLINE_CLICK).expect("fixture");
    q["from"]["id"] = json!(query.from.id.0);
    q["data"] = json!(data);
    q.as_object_mut().expect("object").remove("game_short_name");
    let q: CallbackQuery = serde_json::from_str(&q.to_string()).expect("query");
    CallbackRouter::new(w.menus.clone()).route(&w.bot, &q).await.expect("routed");
    let edit = w.api.take().into_iter().find(|c| c.method == "EditMessageText").expect("the click's edit");
    assert_eq!((edit.text(), &edit.body["inline_message_id"]), ("n = 8", &json!("i_m_id")));

    let mut calls = w.expire_and_show().await;
    calls.sort_by_key(|c| c.text().to_owned());
    let edited: Vec<(&str, &Value)> = calls.iter().map(|c| (c.text(), &c.body["inline_message_id"])).collect();
    assert_eq!(edited, [("closed at 3 (expired)", &json!("123")), ("closed at 8 (expired)", &json!("i_m_id"))]);
    assert!(calls.iter().all(|c| c.method == "EditMessageText" && c.body.get("chat_id").is_none()));
    let _ = (chosen_menu.handle.await.expect("ended"), clicked_menu.handle.await.expect("ended"));
}
