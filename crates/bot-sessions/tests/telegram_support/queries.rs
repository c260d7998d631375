//! Callback queries as tests build them.
#![allow(dead_code)]

use serde_json::{Value, json};
use teloxide::types::CallbackQuery;

/// A callback query on the bot's message `message_id` in private chat 42 showing `text`
/// with one row of `buttons` (label, data), clicked by `user`.
pub fn query_on(user: i64, message_id: i32, text: &str, buttons: &[(&str, &str)], data: &str) -> CallbackQuery {
    let row: Vec<Value> = buttons.iter().map(|(t, d)| json!({"text": t, "callback_data": d})).collect();
    let markup = if row.is_empty() { Value::Null } else { json!({"inline_keyboard": [row]}) };
    query_with(user, message_id, text, markup, data)
}

/// [`query_on`] with the message's `reply_markup` as JSON (`null`: none).
pub fn query_with(user: i64, message_id: i32, text: &str, markup: Value, data: &str) -> CallbackQuery {
    let mut message = json!({
        "message_id": message_id, "date": 1, "text": text,
        "from": {"id": 777, "is_bot": true, "first_name": "Bot"},
        "chat": {"id": 42, "first_name": "Ann", "type": "private"},
    });
    if !markup.is_null() {
        message["reply_markup"] = markup;
    }
    let query = json!({
        "id": format!("q{}", rand::random::<u32>()), "chat_instance": "ci-42", "data": data,
        "from": {"id": user, "is_bot": false, "first_name": "U"}, "message": message,
    });
    serde_json::from_str(&query.to_string()).expect("query")
}

/// A callback query on an inline message (no chat, no message).
pub fn inline_query(data: &str) -> CallbackQuery {
    let query = json!({
        "id": "qi", "chat_instance": "ci", "data": data, "inline_message_id": "AAQ",
        "from": {"id": 42, "is_bot": false, "first_name": "U"},
    });
    serde_json::from_str(&query.to_string()).expect("query")
}
