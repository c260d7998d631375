//! Shared by the Discord tests: a signing key, signed requests to a router, interaction
//! bodies, a fake Discord REST server on 127.0.0.1, and a session kind with buttons, a
//! select menu and a modal.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bot_sessions::Ttl;
use bot_sessions::discord::{PublicKey, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use bot_sessions::interactive::{
    Button, ButtonStyle, EndCx, EndReason, Interactive, Modal, Reply, Select, SelectOption, StartCx, Step, TextField,
    UpdateCx, View,
};
use bot_sessions::store::BoxError;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tower::ServiceExt;

/// RFC 8032 §7.1 test 1: the key the signature vectors were made with.
pub const SECRET_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
pub const PUBLIC_HEX: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
pub const APP: u64 = 290926444748734465;
pub const GUILD: u64 = 290926798626357999;
pub const CHANNEL: u64 = 345626669114982999;
pub const OWNER: u64 = 53908232506183680;
pub const STRANGER: u64 = 7;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&unhex(SECRET_HEX).try_into().unwrap())
}

pub fn public_key() -> PublicKey {
    PublicKey::from_hex(PUBLIC_HEX).unwrap()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/discord/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A POST of `body` with these headers (`None`: left out).
pub fn request(path: &str, body: &[u8], signature: Option<&str>, timestamp: Option<&str>) -> Request<Body> {
    let mut req = Request::post(path).header("content-type", "application/json");
    if let Some(s) = signature {
        req = req.header(SIGNATURE_HEADER, s);
    }
    if let Some(t) = timestamp {
        req = req.header(TIMESTAMP_HEADER, t);
    }
    req.body(Body::from(body.to_vec())).unwrap()
}

/// Now, as the endpoint's timestamp header says it (decimal Unix seconds).
pub fn now_timestamp() -> String {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string()
}

/// A POST of `body` signed with the test key, timestamped now.
pub fn signed(body: &[u8]) -> Request<Body> {
    signed_at(&now_timestamp(), body)
}

/// A POST of `body` signed with the test key, with this timestamp header.
pub fn signed_at(timestamp: &str, body: &[u8]) -> Request<Body> {
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body);
    let signature = hex(&signing_key().sign(&message).to_bytes());
    request("/interactions", body, Some(&signature), Some(timestamp))
}

/// Sends a request through the router; the status and the body (JSON, or the text as
/// a JSON string).
pub async fn send(router: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

/// Sends an interaction body signed; its JSON response (asserting 200).
pub async fn interact(router: &axum::Router, body: &Value) -> Value {
    let (status, response) = send(router, signed(&serde_json::to_vec(body).unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    response
}

fn member(user: u64) -> Value {
    json!({"user": {"id": user.to_string(), "username": format!("u{user}"), "discriminator": "0", "avatar": null},
           "roles": [], "joined_at": "2020-11-02T19:25:47.248000+00:00", "deaf": false, "mute": false, "flags": 0})
}

/// A new interaction id: the endpoint refuses an id it has seen (a replay), so every
/// body gets its own (random per process: the seen ids may live in a shared server).
pub fn interaction_id() -> String {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
    let next = NEXT.get_or_init(|| std::sync::atomic::AtomicU64::new((rand::random::<u64>() >> 2) | 1));
    next.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string()
}

fn base(kind: u8, user: u64, token: &str) -> Value {
    json!({"id": interaction_id(), "application_id": APP.to_string(), "type": kind, "token": token,
           "version": 1, "guild_id": GUILD.to_string(), "channel_id": CHANNEL.to_string(),
           "authorizing_integration_owners": {}, "attachment_size_limit": 8388608, "member": member(user)})
}

fn message(id: u64) -> Value {
    json!({"id": id.to_string(), "channel_id": CHANNEL.to_string(), "type": 0, "content": "",
           "timestamp": "2021-05-19T02:12:51.710000+00:00", "edited_timestamp": null, "tts": false,
           "pinned": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
           "embeds": [], "flags": 0, "author": {"id": APP.to_string(), "username": "bot", "discriminator": "0", "avatar": null}})
}

/// A slash command `/name` by `user`.
pub fn command(name: &str, user: u64, token: &str) -> Value {
    let mut body = base(2, user, token);
    body["data"] = json!({"id": "771825006014889984", "name": name, "type": 1});
    body
}

/// A click on button `custom_id` of message `message_id` by `user`.
pub fn click(custom_id: &str, user: u64, message_id: u64, token: &str) -> Value {
    let mut body = base(3, user, token);
    body["message"] = message(message_id);
    body["data"] = json!({"custom_id": custom_id, "component_type": 2});
    body
}

/// A choice in select menu `custom_id`.
pub fn choose(custom_id: &str, values: &[&str], user: u64, message_id: u64, token: &str) -> Value {
    let mut body = base(3, user, token);
    body["message"] = message(message_id);
    body["data"] = json!({"custom_id": custom_id, "component_type": 3, "values": values});
    body
}

/// A modal submit (opened from a component of `message_id`, if given).
pub fn submit(custom_id: &str, fields: &[(&str, &str)], user: u64, message_id: Option<u64>, token: &str) -> Value {
    let mut body = base(5, user, token);
    if let Some(id) = message_id {
        body["message"] = message(id);
    }
    let rows: Vec<Value> = fields
        .iter()
        .enumerate()
        .map(|(i, (id, value))| {
            let i = i32::try_from(i).unwrap();
            json!({"type": 1, "id": 2 * i + 1, "components": [{"type": 4, "id": 2 * i + 2, "custom_id": id, "value": value}]})
        })
        .collect();
    body["data"] = json!({"custom_id": custom_id, "components": rows});
    body
}

/// The custom ids of a response's components, row by row.
pub fn custom_ids(response: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for row in response["data"]["components"].as_array().into_iter().flatten() {
        for c in row["components"].as_array().into_iter().flatten() {
            if let Some(id) = c["custom_id"].as_str() {
                out.push(id.to_owned());
            }
        }
    }
    out
}

/// One request the fake REST server got.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// A fake Discord REST API on 127.0.0.1: records every request; answers from a
/// script of (status, body), then 200 `{}`.
pub struct FakeRest {
    pub base: String,
    pub calls: mpsc::UnboundedReceiver<Call>,
    pub script: Arc<Mutex<VecDeque<(u16, Value)>>>,
}

impl FakeRest {
    pub async fn start() -> Self {
        let (tx, calls) = mpsc::unbounded_channel();
        let script: Arc<Mutex<VecDeque<(u16, Value)>>> = Arc::default();
        let answers = script.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let (tx, answers) = (tx.clone(), answers.clone());
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let authorization = parts.headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let _ = tx.send(Call {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    authorization,
                    body,
                });
                let (status, answer) = answers.lock().unwrap().pop_front().unwrap_or((200, json!({})));
                (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], answer.to_string())
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/api/v10", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeRest { base, calls, script }
    }

    /// Queues an answer for the next request.
    pub fn answer(&self, status: u16, body: Value) {
        self.script.lock().unwrap().push_back((status, body));
    }

    /// The next request (waits up to 10 s).
    pub async fn next(&mut self) -> Call {
        tokio::time::timeout(Duration::from_secs(10), self.calls.recv()).await.expect("no REST call").unwrap()
    }
}

/// A session with a value (−1 / +1 / Done), a size (select) and a name (a modal opened
/// by a button). A gate, when set, holds every click until the test releases it.
#[derive(Default)]
pub struct Picker {
    pub gate: Option<Arc<Notify>>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PickerState {
    pub value: i64,
    pub size: Option<String>,
    pub name: Option<String>,
}

fn render(encode: impl Fn(&str) -> Result<String, BoxError>, s: &PickerState) -> Result<View, BoxError> {
    let mut text = format!("value: {}", s.value);
    if let Some(size) = &s.size {
        text.push_str(&format!(", size: {size}"));
    }
    if let Some(name) = &s.name {
        text.push_str(&format!(", name: {name}"));
    }
    Ok(View::text(text)
        .row([
            Button::new("-1", encode("dec")?),
            Button::new("+1", encode("inc")?),
            Button::new("Form", encode("form")?),
            Button::new("Done", encode("done")?).style(ButtonStyle::Success),
        ])
        .row([Select::new(encode("size")?)
            .option(SelectOption::new("Small", "small"))
            .option(SelectOption::new("Large", "large"))]))
}

impl Interactive for Picker {
    type State = PickerState;
    type Args = ();
    type Output = i64;

    async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<PickerState, BoxError> {
        let state = PickerState::default();
        cx.reply(Reply::message(render(|c| Ok(cx.encode(&cx.custom_id(c))?), &state)?));
        Ok(state)
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, s: &mut PickerState) -> Result<Step<i64>, BoxError> {
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        match cx.component() {
            "dec" => s.value -= 1,
            "inc" => s.value += 1,
            "done" => return Ok(Step::Finish(s.value)),
            "form" => {
                let modal =
                    Modal::new(cx.encode(&cx.custom_id("name"))?, "Your name").field(TextField::new("name", "Name"));
                cx.reply(Reply::modal(modal));
                return Ok(Step::keep());
            }
            _ => return Ok(Step::keep()),
        }
        cx.reply(Reply::edit(render(|c| Ok(cx.encode(&cx.custom_id(c))?), s)?));
        Ok(Step::refresh())
    }

    async fn on_select(&self, cx: &mut UpdateCx<'_>, s: &mut PickerState) -> Result<Step<i64>, BoxError> {
        s.size = cx.values().first().cloned();
        cx.reply(Reply::edit(render(|c| Ok(cx.encode(&cx.custom_id(c))?), s)?));
        Ok(Step::refresh())
    }

    async fn on_modal(&self, cx: &mut UpdateCx<'_>, s: &mut PickerState) -> Result<Step<i64>, BoxError> {
        s.name = cx.field("name").map(str::to_owned);
        cx.reply(Reply::edit(render(|c| Ok(cx.encode(&cx.custom_id(c))?), s)?));
        Ok(Step::refresh())
    }

    async fn end(&self, cx: &mut EndCx<'_>, s: PickerState) -> Result<Option<i64>, BoxError> {
        cx.reply(Reply::close(match cx.reason() {
            EndReason::Finished => format!("final: {}", s.value),
            _ => format!("expired (value: {})", s.value),
        }));
        Ok(Some(s.value))
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(60))
    }
}

/// A bot: a manager with the [`Picker`] kind (`/menu` opens one), an endpoint, and a
/// count of the calls its handler got.
pub struct TestBot {
    pub manager: bot_sessions::interactive::Manager,
    pub endpoint: bot_sessions::discord::Endpoint,
    pub router: axum::Router,
    pub handler_calls: Arc<std::sync::atomic::AtomicUsize>,
}

/// The custom id signing key of the test bots.
pub const CODEC_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

pub struct BotOptions {
    pub store: bot_sessions::DynStore,
    pub clock: bot_sessions::ManualClock,
    pub rest: bot_sessions::discord::Rest,
    pub picker: Picker,
    pub defer_after: Duration,
    /// Held by the handler until released (the deferred path).
    pub handler_gate: Option<Arc<Notify>>,
    /// The endpoint's clock for request timestamps (`None`: the system clock).
    pub endpoint_clock: Option<bot_sessions::ManualClock>,
}

impl BotOptions {
    pub fn new(rest: bot_sessions::discord::Rest) -> Self {
        BotOptions {
            store: Arc::new(bot_sessions::store::memory::MemoryStore::new()),
            clock: bot_sessions::ManualClock::new(1_700_000_000_000),
            rest,
            picker: Picker::default(),
            defer_after: Duration::from_millis(2500),
            handler_gate: None,
            endpoint_clock: None,
        }
    }
}

impl TestBot {
    pub fn new(options: BotOptions) -> Self {
        use bot_sessions::discord::{Command, Endpoint};
        use bot_sessions::interactive::{CustomIdCodec, Manager, SigningKeys, Target};
        use std::sync::atomic::{AtomicUsize, Ordering};

        let keys = SigningKeys::new([CODEC_SECRET.to_vec()]).unwrap();
        let codec = CustomIdCodec::new("t", Target::Discord).unwrap().signed(keys);
        let manager = Manager::builder(options.store, codec).clock(options.clock).build().unwrap();
        let kind = manager.register("picker", options.picker).unwrap();
        let handler_calls = Arc::new(AtomicUsize::new(0));
        let (calls, starter, gate) = (handler_calls.clone(), manager.clone(), options.handler_gate);
        let mut endpoint = Endpoint::builder(public_key());
        if let Some(clock) = options.endpoint_clock {
            endpoint = endpoint.clock(clock);
        }
        let endpoint = endpoint
            .manager(manager.clone())
            .rest(options.rest)
            .defer_after(options.defer_after)
            .handler(move |ctx: bot_sessions::Context, _interaction| {
                calls.fetch_add(1, Ordering::SeqCst);
                let (manager, kind, gate) = (starter.clone(), kind.clone(), gate.clone());
                async move {
                    if let Some(gate) = gate {
                        gate.notified().await;
                    }
                    let name = ctx.extensions.get::<Command>().map(|c| c.name.clone());
                    Ok(match name.as_deref() {
                        Some("menu") => manager.start(&kind, &ctx, ()).await?.reply,
                        Some(other) => Some(Reply::message(View::text(format!("you ran /{other}")))),
                        None => Some(Reply::notice(format!("not mine: {}", ctx.custom_id.unwrap_or_default()))),
                    })
                }
            })
            .build()
            .unwrap();
        let router = endpoint.router();
        TestBot { manager, endpoint, router, handler_calls }
    }

    pub fn handler_calls(&self) -> usize {
        self.handler_calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A REST client that reaches nothing (for tests that must not call REST).
pub fn no_rest() -> bot_sessions::discord::Rest {
    bot_sessions::discord::Rest::builder().base_url("http://127.0.0.1:9/api/v10").build().unwrap()
}
