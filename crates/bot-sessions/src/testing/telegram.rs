//! Test support for Telegram bots (features `testing` and `telegram`): a fake Bot API
//! on 127.0.0.1 that teloxide talks to.
//!
//! It serves `getUpdates` from a queue the test fills, holding long polls until an
//! update arrives and forgetting updates only when an `offset` confirms them (as
//! Telegram does, so a restarted bot gets what its predecessor did not confirm);
//! answers `getMe`, `getWebhookInfo`, `deleteWebhook`, `setWebhook`, `sendMessage`,
//! `editMessageText`, `editMessageReplyMarkup`, `answerCallbackQuery` and
//! `answerInlineQuery` with plausible
//! results (or, on demand, edits with Telegram's "message is not modified"); and
//! records every request. HTTP/1.1 with keep-alive, `Content-Length` bodies only (what
//! reqwest sends for JSON and for teloxide's text-only multipart forms).
//!
//! ```no_run
//! use bot_sessions::testing::telegram::FakeApi;
//!
//! # async fn run() {
//! let api = FakeApi::start().await;
//! let bot = api.bot(); // a teloxide::Bot talking to the fake
//! // ... drive the bot ...
//! let answer = api.answer_of("4382bfdwdsb323b2d9").await; // its answerCallbackQuery
//! assert_eq!(answer.method, "AnswerCallbackQuery");
//! # let _ = bot; }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// How long a test waits for the bot before it calls the bot hung. Only a guard: the
/// waits end as soon as the awaited request is recorded.
pub const HANG_GUARD: Duration = Duration::from_secs(40);

/// The bot's own user id.
pub const BOT_ID: i64 = 7_000_000_001;

/// The Bot API methods the demo may call (as teloxide names them in the URL).
pub const ALLOWED: &[&str] = &[
    "GetMe",
    "GetWebhookInfo",
    "DeleteWebhook",
    "SetWebhook",
    "GetUpdates",
    "SendMessage",
    "EditMessageText",
    "EditMessageReplyMarkup",
    "AnswerCallbackQuery",
    "AnswerInlineQuery",
];

/// One request the bot sent, and what the fake answered.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method as teloxide names it in the URL (`SendMessage`, ...).
    pub method: String,
    /// The JSON body.
    pub body: Value,
    /// The `result` of the answer (`null` until answered, for `getUpdates`).
    pub result: Value,
}

impl Call {
    /// The `text` of the body.
    pub fn text(&self) -> &str {
        self.body["text"].as_str().unwrap_or_default()
    }

    /// The labels and callback data of the body's inline keyboard, row by row flattened.
    pub fn buttons(&self) -> Vec<(String, String)> {
        self.body["reply_markup"]["inline_keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .map(|b| {
                (
                    b["text"].as_str().unwrap_or_default().to_owned(),
                    b["callback_data"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The callback data of the button labelled `label`.
    pub fn button(&self, label: &str) -> String {
        self.buttons()
            .into_iter()
            .find(|(l, _)| l == label)
            .map(|(_, d)| d)
            .unwrap_or_else(|| panic!("no {label} in {self:?}"))
    }
}

struct State {
    calls: Vec<Call>,
    /// Updates not yet confirmed, in order.
    queue: Vec<Value>,
    /// Updates below this id are confirmed (forgotten).
    confirmed: i64,
    next_update: i64,
    next_message: HashMap<i64, i64>,
    /// The webhook `getWebhookInfo` reports until `deleteWebhook`.
    webhook: String,
    /// Answer edits with Telegram's "message is not modified" error.
    not_modified: bool,
}

/// The server: its URL, the update queue, and what it recorded.
#[derive(Clone)]
pub struct FakeApi {
    /// `http://127.0.0.1:PORT/`: the `TELOXIDE_API_URL`.
    pub url: String,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

impl FakeApi {
    /// Starts a server whose `getWebhookInfo` first reports a webhook (so the bot must
    /// delete it before polling).
    pub async fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the fake Bot API server: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("fake Bot API server address: {e}"));
        let url = format!("http://{addr}/");
        let state = Arc::new(Mutex::new(State {
            calls: Vec::new(),
            queue: Vec::new(),
            confirmed: 0,
            next_update: 1000,
            next_message: HashMap::new(),
            webhook: "https://example.invalid/old-webhook".into(),
            not_modified: false,
        }));
        let api = FakeApi { url, state, changed: Arc::new(Notify::new()) };
        let server = api.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(server.clone().serve(conn));
            }
        });
        api
    }

    /// A teloxide bot talking to this server.
    pub fn bot(&self) -> teloxide::Bot {
        // `http://127.0.0.1:PORT/` always parses.
        let url = self.url.parse().unwrap_or_else(|e| panic!("fake Bot API URL {}: {e}", self.url));
        teloxide::Bot::new("1234:TEST").set_api_url(url)
    }

    /// Every request so far, forgotten by the server.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner).calls)
    }

    /// Makes edits fail with "message is not modified" (or succeed again).
    pub fn not_modified(&self, on: bool) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).not_modified = on;
    }

    /// Queues updates (their `update_id`s are replaced by increasing ones); returns
    /// the ids given.
    pub fn push(&self, updates: impl IntoIterator<Item = Value>) -> Vec<i64> {
        let ids = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let mut ids = Vec::new();
            for mut update in updates {
                let id = state.next_update;
                state.next_update += 1;
                update["update_id"] = json!(id);
                state.queue.push(update);
                ids.push(id);
            }
            ids
        };
        self.changed.notify_waiters();
        ids
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).calls.clone()
    }

    /// The requests of `method` so far.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// Waits until `found` finds something in the requests so far. The bound only
    /// guards against a hang.
    pub async fn wait_for<T>(&self, what: &str, found: impl Fn(&[Call]) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(t) = found(&state.calls) {
                    return t;
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("the bot never did: {what}; it sent {:#?}", self.calls());
            }
        }
    }

    /// Waits for the `sendMessage` that answers message `message_id` in `chat` (the
    /// demo replies to messages in groups), and checks it is the only one.
    pub async fn reply_to(&self, chat: i64, message_id: i64) -> Call {
        let is_reply = move |c: &Call| {
            c.method == "SendMessage"
                && c.body["chat_id"] == json!(chat)
                && c.body["reply_parameters"]["message_id"] == json!(message_id)
        };
        let reply = self
            .wait_for(&format!("reply to message {message_id} in chat {chat}"), |calls| {
                calls.iter().find(|c| is_reply(c)).cloned()
            })
            .await;
        assert_eq!(self.calls().iter().filter(|c| is_reply(c)).count(), 1, "message {message_id} answered once");
        reply
    }

    /// Waits for the answer to callback query `id`, and checks it is the only one.
    pub async fn answer_of(&self, id: &str) -> Call {
        let is_answer = |c: &Call| c.method == "AnswerCallbackQuery" && c.body["callback_query_id"] == json!(id);
        let answer = self
            .wait_for(&format!("answer callback query {id}"), |calls| calls.iter().find(|c| is_answer(c)).cloned())
            .await;
        assert_eq!(self.calls().iter().filter(|c| is_answer(c)).count(), 1, "callback query {id} answered once");
        answer
    }

    /// Waits until the bot has edited messages `n` times (`editMessageText`); returns
    /// the edits' texts. (A click is answered first, then the menu edited.)
    pub async fn edits(&self, n: usize) -> Vec<String> {
        self.wait_for(&format!("{n} edits"), |calls| {
            let edits: Vec<String> =
                calls.iter().filter(|c| c.method == "EditMessageText").map(|c| c.text().to_owned()).collect();
            (edits.len() >= n).then_some(edits)
        })
        .await
    }

    /// Checks that the bot called only the methods it is meant to.
    pub fn assert_only_allowed_methods(&self) {
        for call in self.calls() {
            assert!(ALLOWED.contains(&call.method.as_str()), "unexpected Bot API call {call:?}");
        }
    }

    async fn serve(self, conn: TcpStream) {
        let mut conn = BufReader::new(conn);
        loop {
            let mut request_line = String::new();
            if conn.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                return;
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let mut length = 0usize;
            let mut boundary = None;
            loop {
                let mut header = String::new();
                if conn.read_line(&mut header).await.unwrap_or(0) == 0 {
                    return;
                }
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-type")
                    && let Some((_, b)) = value.split_once("boundary=")
                {
                    boundary = Some(b.trim().trim_matches('"').to_owned());
                }
            }
            let mut body = vec![0; length];
            if conn.read_exact(&mut body).await.is_err() {
                return;
            }
            let body: Value = match &boundary {
                Some(boundary) => form_fields(&body, boundary),
                None => serde_json::from_slice(&body).unwrap_or(Value::Null),
            };
            let method = path.rsplit('/').next().unwrap_or_default().to_owned();
            let reply = if method == "GetUpdates" { self.get_updates(body).await } else { self.answer(&method, body) };
            let reply = reply.to_string();
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", reply.len());
            // One write: a head and a body written apart wait for a delayed ACK (Nagle).
            if conn.get_mut().write_all(format!("{head}{reply}").as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn record(&self, method: &str, body: Value, result: Value) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).calls.push(Call {
            method: method.to_owned(),
            body,
            result,
        });
        self.changed.notify_waiters();
    }

    /// Long polling: confirms what `offset` says, answers the pending updates at once,
    /// or waits for one until the request's `timeout`.
    async fn get_updates(&self, body: Value) -> Value {
        let offset = body["offset"].as_i64();
        let limit = body["limit"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
        let timeout = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0).min(30));
        let deadline = tokio::time::Instant::now() + timeout;
        self.record("GetUpdates", body, Value::Null);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(offset) = offset.filter(|&o| o > state.confirmed) {
                    state.confirmed = offset;
                    state.queue.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                }
                let updates: Vec<Value> = state.queue.iter().take(limit).cloned().collect();
                if !updates.is_empty() || tokio::time::Instant::now() >= deadline {
                    return json!({ "ok": true, "result": updates });
                }
            }
            let _ = tokio::time::timeout_at(deadline, changed).await;
        }
    }

    fn answer(&self, method: &str, body: Value) -> Value {
        let result = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match method {
                "GetMe" => json!({
                    "id": BOT_ID, "is_bot": true, "first_name": "Demo", "username": "demo_sessions_bot",
                    "can_join_groups": true, "can_read_all_group_messages": false,
                    "supports_inline_queries": false, "has_main_web_app": false,
                }),
                "GetWebhookInfo" => json!({
                    "url": state.webhook, "has_custom_certificate": false, "pending_update_count": state.queue.len(),
                }),
                "DeleteWebhook" => {
                    state.webhook.clear();
                    json!(true)
                }
                "SetWebhook" => {
                    state.webhook = body["url"].as_str().unwrap_or_default().to_owned();
                    json!(true)
                }
                "AnswerCallbackQuery" | "AnswerInlineQuery" => json!(true),
                "SendMessage" => {
                    let chat = body["chat_id"].as_i64().unwrap_or(0);
                    let next = state.next_message.entry(chat).or_insert(100);
                    *next += 1;
                    let id = *next;
                    message(id, &body)
                }
                "EditMessageText" | "EditMessageReplyMarkup" if state.not_modified => {
                    let description = if body.get("inline_message_id").is_some() {
                        // Another wording: recognized by its start.
                        "Bad Request: message is not modified"
                    } else {
                        // Telegram's wording, which teloxide knows.
                        "Bad Request: message is not modified: specified new message content and reply markup are \
                         exactly the same as a current content and reply markup of the message"
                    };
                    drop(state);
                    self.record(method, body, Value::Null);
                    return json!({ "ok": false, "error_code": 400, "description": description });
                }
                // An inline message's edit answers `true`, not the message.
                "EditMessageText" | "EditMessageReplyMarkup" if body.get("inline_message_id").is_some() => json!(true),
                "EditMessageText" | "EditMessageReplyMarkup" => {
                    message(body["message_id"].as_i64().unwrap_or(0), &body)
                }
                _ => Value::Null,
            }
        };
        let reply = if result.is_null() {
            json!({ "ok": false, "error_code": 404, "description": "Not Found" })
        } else {
            json!({ "ok": true, "result": result })
        };
        self.record(method, body, result);
        reply
    }
}

/// The text fields of a `multipart/form-data` body (teloxide sends `setWebhook` so) as
/// a JSON object of strings.
fn form_fields(body: &[u8], boundary: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let mut fields = serde_json::Map::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else { continue };
        let name = head.split("name=\"").nth(1).and_then(|n| n.split('"').next());
        if let Some(name) = name {
            fields.insert(name.to_owned(), json!(value.trim_end_matches("\r\n")));
        }
    }
    Value::Object(fields)
}

/// The chat `id` as Telegram describes it: users are positive, basic groups small
/// negative, supergroups (forums here) `-100...`.
pub fn chat(id: i64) -> Value {
    if id > 0 {
        json!({ "id": id, "first_name": "U", "type": "private" })
    } else if id < -1_000_000_000_000 {
        json!({ "id": id, "title": "Forum", "is_forum": true, "type": "supergroup" })
    } else {
        json!({ "id": id, "title": "Group", "type": "group" })
    }
}

/// The message the bot sent (or edited), as the Bot API returns it.
fn message(id: i64, body: &Value) -> Value {
    let mut m = json!({
        "message_id": id,
        "date": 1_700_000_000,
        "chat": chat(body["chat_id"].as_i64().unwrap_or(0)),
        "from": { "id": BOT_ID, "is_bot": true, "first_name": "Demo", "username": "demo_sessions_bot" },
        "text": body["text"],
    });
    if let Some(thread) = body.get("message_thread_id") {
        m["message_thread_id"] = thread.clone();
        m["is_topic_message"] = json!(true);
    }
    if let Some(markup) = body.get("reply_markup") {
        m["reply_markup"] = markup.clone();
    }
    m
}
