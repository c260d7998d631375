//! A tiny fake Bot API on 127.0.0.1: records every request teloxide sends (method and
//! JSON body) and answers `ok` with a plausible result. HTTP/1.1 with keep-alive,
//! `Content-Length` bodies only (what reqwest sends for JSON).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request the bot sent.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method as teloxide names it in the URL (`AnswerCallbackQuery`, ...).
    pub method: String,
    /// The JSON body.
    pub body: Value,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// Answer edits with Telegram's "message is not modified" error.
    not_modified: bool,
}

/// The server: its URL for `Bot::set_api_url`, and what it recorded.
#[derive(Clone)]
pub struct FakeApi {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, shared.clone()));
            }
        });
        FakeApi { url, state }
    }

    /// A teloxide bot talking to this server.
    pub fn bot(&self) -> teloxide::Bot {
        teloxide::Bot::new("1234:TEST").set_api_url(self.url.parse().expect("url"))
    }

    /// Everything recorded so far, and forgets it.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.state.lock().expect("lock").calls)
    }

    /// Makes edits fail with "message is not modified" (or succeed again).
    pub fn not_modified(&self, on: bool) {
        self.state.lock().expect("lock").not_modified = on;
    }
}

async fn serve(conn: TcpStream, state: Arc<Mutex<State>>) {
    let mut conn = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        if conn.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let mut length = 0usize;
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
        }
        let mut body = vec![0; length];
        if conn.read_exact(&mut body).await.is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let method = path.rsplit('/').next().unwrap_or_default().to_owned();
        let reply = {
            let mut state = state.lock().expect("lock");
            state.calls.push(Call { method: method.clone(), body: body.clone() });
            answer(&method, &body, state.not_modified)
        };
        let reply = reply.to_string();
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", reply.len());
        let out = conn.get_mut();
        // One write: a head and a body in two segments wait on the peer's delayed ACK.
        if out.write_all(format!("{head}{reply}").as_bytes()).await.is_err() {
            return;
        }
    }
}

fn answer(method: &str, body: &Value, not_modified: bool) -> Value {
    let message = || {
        json!({
            "message_id": body.get("message_id").cloned().unwrap_or(json!(1)),
            "date": 0,
            "chat": { "id": body["chat_id"].as_i64().unwrap_or(1), "type": "private", "first_name": "U" },
            "text": body.get("text").cloned().unwrap_or(json!("")),
        })
    };
    match method {
        "AnswerCallbackQuery" => json!({ "ok": true, "result": true }),
        "EditMessageText" | "EditMessageReplyMarkup" if not_modified => json!({
            "ok": false,
            "error_code": 400,
            "description": if body.get("inline_message_id").is_some() {
                // Another wording: recognized by its start.
                "Bad Request: message is not modified"
            } else {
                // Telegram's wording, which teloxide knows.
                "Bad Request: message is not modified: specified new message content and reply markup are exactly \
                 the same as a current content and reply markup of the message"
            },
        }),
        "EditMessageText" | "EditMessageReplyMarkup" if body.get("inline_message_id").is_some() => {
            json!({ "ok": true, "result": true })
        }
        "EditMessageText" | "EditMessageReplyMarkup" | "SendMessage" => json!({ "ok": true, "result": message() }),
        _ => json!({ "ok": false, "error_code": 404, "description": "Not Found" }),
    }
}
