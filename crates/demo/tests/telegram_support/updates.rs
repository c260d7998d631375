//! Updates as Telegram sends them, built from the library's recorded fixtures
//! (`crates/bot-sessions/tests/data/telegram/`, see SOURCES.md there) with the ids,
//! senders and texts a test needs.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};

use bot_sessions::testing::telegram::chat;

/// A private text message (teloxide's own test data).
const PRIVATE: &str = include_str!("../../../bot-sessions/tests/data/telegram/private_message__teloxide.json");
/// A basic group among real getUpdates results (Huginn's test data).
const GROUP: &str =
    include_str!("../../../bot-sessions/tests/data/telegram/getUpdates_response_private_channel_group__huginn.json");
/// A message in a forum topic, replying to the topic's creation (Nutgram's test data).
const TOPIC: &str = include_str!("../../../bot-sessions/tests/data/telegram/forum_topic_message__nutgram.json");
/// A callback query on a bot's message with an inline keyboard (Nutgram's test data).
const CALLBACK: &str =
    include_str!("../../../bot-sessions/tests/data/telegram/callback_query_with_message__nutgram.json");
/// An anonymous group admin's message (teloxide issue 419).
const ANONYMOUS: &str = include_str!(
    "../../../bot-sessions/tests/data/telegram/message_object_anonymous_admin_sender_chat__teloxide_issue419.json"
);

/// The group chat of the fixtures (a basic group).
pub const GROUP_CHAT: i64 = -217_850_512;
/// The forum of the fixtures (a supergroup with topics).
pub const FORUM: i64 = -1_001_234_567_489;
/// The forum topic of the fixtures.
pub const TOPIC_ID: i64 = 33;

static NEXT_MESSAGE: AtomicI64 = AtomicI64::new(5000);

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture")
}

fn user(id: i64) -> Value {
    json!({ "id": id, "is_bot": false, "first_name": format!("User{id}"), "language_code": "en" })
}

/// A text message from `from` in `chat` (private when `chat` is the user's id):
/// the update and the message's id.
pub fn text(from: i64, chat_id: i64, text: &str) -> (Value, i64) {
    let mut update = parse(PRIVATE);
    let id = NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed);
    let message = &mut update["message"];
    message["message_id"] = json!(id);
    message["from"] = user(from);
    message["chat"] =
        if chat_id == GROUP_CHAT { parse(GROUP)["result"][2]["message"]["chat"].clone() } else { chat(chat_id) };
    message["text"] = json!(text);
    (update, id)
}

/// A text message from `from` in the fixtures' basic group.
pub fn in_group(from: i64, text_: &str) -> (Value, i64) {
    text(from, GROUP_CHAT, text_)
}

/// A text message from `from` in forum topic `topic` of [`FORUM`].
pub fn in_topic(from: i64, topic: i64, text: &str) -> (Value, i64) {
    let mut update = parse(TOPIC);
    let id = NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed);
    let message = &mut update["message"];
    message["message_id"] = json!(id);
    message["from"] = user(from);
    message["message_thread_id"] = json!(topic);
    message["reply_to_message"]["message_id"] = json!(topic);
    message["reply_to_message"]["message_thread_id"] = json!(topic);
    message["text"] = json!(text);
    assert_eq!(message["chat"]["id"], json!(FORUM));
    (update, id)
}

/// A message of an anonymous admin of the group (no user).
pub fn anonymous_admin(text: &str) -> (Value, i64) {
    let mut message = parse(ANONYMOUS);
    let id = NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed);
    message["message_id"] = json!(id);
    message["text"] = json!(text);
    (json!({ "update_id": 0, "message": message }), id)
}

/// A click by `from` on the button with `data` of `shown` (the bot's message as the Bot
/// API returned it): the update and the callback query's id.
pub fn click(from: i64, shown: &Value, data: &str) -> (Value, String) {
    let mut update = parse(CALLBACK);
    let id = format!("cq{}", NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed));
    let query = &mut update["callback_query"];
    query["id"] = json!(id);
    query["from"] = user(from);
    query["message"] = shown.clone();
    query["chat_instance"] = json!(format!("ci{}", shown["chat"]["id"]));
    query["data"] = json!(data);
    (update, id)
}
