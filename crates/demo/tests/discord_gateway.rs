//! The real `bot-sessions-demo discord --gateway` against a fake Discord on 127.0.0.1:
//! REST (axum) at `--api-url`, whose `GET /gateway/bot` names a fake gateway
//! (tokio-tungstenite) that says HELLO, expects IDENTIFY with the token, says READY and
//! then dispatches INTERACTION_CREATE and MESSAGE_CREATE events built from the real
//! payloads of `tests/data/discord/` (see SOURCES.md there). Every REST call the demo
//! makes is recorded: the interaction callbacks are its answers.

mod discord_support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use discord_support::fresh_db;
use discord_support::payloads::{APP, CHANNEL, GUILD, OWNER, STRANGER, click, command, custom_ids};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;

const TOKEN: &str = "gateway.test-token";

/// What the fake saw: a REST call, or an IDENTIFY on the gateway.
#[derive(Debug)]
enum Seen {
    Rest { method: String, path: String, authorization: Option<String>, body: Value },
    Identify(Value),
}

/// The fake Discord: REST and gateway, one recording of both.
struct FakeDiscord {
    api_url: String,
    seen: mpsc::UnboundedReceiver<Seen>,
    /// The dispatches to send on the current gateway connection.
    dispatch: Arc<Mutex<Option<mpsc::UnboundedSender<Value>>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A channel message as Discord returns it (id `id`).
fn message_json(id: u64, channel: &str, body: &Value) -> Value {
    json!({"id": id.to_string(), "channel_id": channel, "type": 0,
           "content": body.get("content").cloned().unwrap_or(json!("")),
           "timestamp": "2021-05-19T02:12:51.710000+00:00", "edited_timestamp": null, "tts": false,
           "pinned": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
           "embeds": [], "flags": 0,
           "author": {"id": APP.to_string(), "username": "demo", "discriminator": "0", "avatar": null, "bot": true}})
}

impl FakeDiscord {
    async fn start() -> Self {
        let (tx, seen) = mpsc::unbounded_channel();
        let gateway = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws_url = format!("ws://{}", gateway.local_addr().unwrap());
        let dispatch: Arc<Mutex<Option<mpsc::UnboundedSender<Value>>>> = Arc::default();

        let rest_tx = tx.clone();
        let url = ws_url.clone();
        let next_message = Arc::new(std::sync::atomic::AtomicU64::new(900));
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let (tx, url, next_message) = (rest_tx.clone(), url.clone(), next_message.clone());
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let (method, path) = (parts.method.to_string(), parts.uri.path().to_owned());
                let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let _ = tx.send(Seen::Rest { method: method.clone(), path: path.clone(), authorization, body: body.clone() });
                let segments: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
                let (status, answer) = match (method.as_str(), segments.as_slice()) {
                    ("GET", ["gateway", "bot"]) => (200, json!({"url": url, "shards": 1,
                        "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})),
                    ("GET", ["gateway"]) => (200, json!({"url": url})),
                    ("POST", ["interactions", _, _, "callback"]) => (204, Value::Null),
                    (_, ["webhooks", _, _, "messages", "@original"]) => {
                        (200, message_json(next_message.fetch_add(1, std::sync::atomic::Ordering::Relaxed), &CHANNEL.to_string(), &body))
                    }
                    ("POST", ["channels", channel, "messages"]) => {
                        (200, message_json(next_message.fetch_add(1, std::sync::atomic::Ordering::Relaxed), channel, &body))
                    }
                    _ => (200, json!({})),
                };
                let text = if answer.is_null() { String::new() } else { answer.to_string() };
                (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], text)
            }
        });
        let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}/api/v10", rest.local_addr().unwrap());
        let serve_rest = tokio::spawn(async move {
            let _ = axum::serve(rest, app).await;
        });

        let current = dispatch.clone();
        let serve_gateway = tokio::spawn(async move {
            while let Ok((tcp, _)) = gateway.accept().await {
                let (out, dispatches) = mpsc::unbounded_channel();
                *current.lock().unwrap() = Some(out);
                tokio::spawn(connection(tcp, ws_url.clone(), tx.clone(), dispatches));
            }
        });
        FakeDiscord { api_url, seen, dispatch, tasks: vec![serve_rest, serve_gateway] }
    }

    /// Sends `event` (`t`) with data `d` on the gateway connection of the running demo.
    fn dispatch(&self, t: &str, d: Value) {
        let current = self.dispatch.lock().unwrap();
        current.as_ref().expect("a gateway connection").send(json!({"t": t, "d": d})).unwrap();
    }

    /// The next thing seen that `pick` takes (others are skipped), within 20 s.
    async fn next<T>(&mut self, what: &str, mut pick: impl FnMut(Seen) -> Option<T>) -> T {
        let wait = async {
            loop {
                let seen = self.seen.recv().await.expect("the fake is running");
                if let Some(found) = pick(seen) {
                    return found;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait).await.unwrap_or_else(|_| panic!("no {what} within 20 s"))
    }

    /// The IDENTIFY of a new connection.
    async fn identify(&mut self) -> Value {
        self.next("IDENTIFY", |s| match s {
            Seen::Identify(d) => Some(d),
            Seen::Rest { .. } => None,
        })
        .await
    }

    /// The callback (the answer) of the interaction whose token is `token`.
    async fn callback(&mut self, token: &str) -> Value {
        let suffix = format!("/{token}/callback");
        self.next(&format!("callback for {token}"), |s| match s {
            Seen::Rest { method, path, body, .. } if method == "POST" && path.ends_with(&suffix) => Some(body),
            _ => None,
        })
        .await
    }
}

/// One gateway connection: HELLO, IDENTIFY (recorded), READY, then heartbeats acked and
/// dispatches sent in order with their sequence numbers.
async fn connection(
    tcp: tokio::net::TcpStream,
    ws_url: String,
    seen: mpsc::UnboundedSender<Seen>,
    mut dispatches: mpsc::UnboundedReceiver<Value>,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 45000}});
    if ws.send(Ws::Text(hello.to_string())).await.is_err() {
        return;
    }
    let mut seq = 0u64;
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let Some(Ok(Ws::Text(text))) = incoming else {
                    match incoming {
                        Some(Ok(_)) => continue,
                        _ => return,
                    }
                };
                let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match frame["op"].as_u64() {
                    Some(1) => {
                        let _ = ws.send(Ws::Text(json!({"op": 11}).to_string())).await;
                    }
                    Some(2) => {
                        let _ = seen.send(Seen::Identify(frame["d"].clone()));
                        seq += 1;
                        let ready = json!({"op": 0, "t": "READY", "s": seq, "d": {
                            "v": 10, "session_id": "fake-session", "resume_gateway_url": ws_url, "shard": [0, 1],
                            "user": {"id": APP.to_string(), "username": "demo", "discriminator": "0", "avatar": null, "bot": true},
                            "guilds": [], "application": {"id": APP.to_string(), "flags": 0}}});
                        if ws.send(Ws::Text(ready.to_string())).await.is_err() {
                            return;
                        }
                    }
                    _ => {}
                }
            }
            Some(event) = dispatches.recv() => {
                seq += 1;
                let frame = json!({"op": 0, "t": event["t"], "s": seq, "d": event["d"]});
                if ws.send(Ws::Text(frame.to_string())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// An interaction body of the HTTP tests as the gateway carries it: the fields the
/// docs' samples leave out and serenity's model requires, filled in.
fn on_gateway(mut body: Value) -> Value {
    for (field, value) in [
        ("application_id", json!(APP.to_string())),
        ("locale", json!("en-US")),
        ("entitlements", json!([])),
        ("authorizing_integration_owners", json!({})),
        // What the captured payloads carry (application_command_chat_input_guild__fischl_capture.json).
        ("attachment_size_limit", json!(10485760)),
    ] {
        if body.get(field).is_none() {
            body[field] = value;
        }
    }
    if let Some(member) = body.get_mut("member")
        && member.get("flags").is_none()
    {
        member["flags"] = json!(0);
    }
    body
}

/// A MESSAGE_CREATE: the message of the button fixture (a user's message, from the
/// docs), with this author, channel and text.
fn message_create(user: u64, channel: u64, text: &str) -> Value {
    let mut message = click("x", user, channel, 1, "unused")["message"].clone();
    message["id"] = json!(discord_support::payloads::interaction_id());
    message["author"]["id"] = json!(user.to_string());
    message["content"] = json!(text);
    message["components"] = json!([]);
    message["guild_id"] = json!(GUILD.to_string());
    message
}

/// The real binary on the gateway; its stderr echoed.
struct Demo(tokio::process::Child);

impl Demo {
    async fn start(fake: &FakeDiscord, store: &str) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
            .args(["discord", "--gateway", "--store", store, "--api-url", &fake.api_url])
            .env("DISCORD_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                assert!(!line.contains(TOKEN), "the token was printed: {line}");
                eprintln!("demo: {line}");
            }
        });
        Demo(child)
    }

    async fn kill(mut self) {
        self.0.kill().await.unwrap();
    }
}

fn content(callback: &Value) -> &str {
    callback["data"]["content"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_gateway_bot_counts_routes_menu_clicks_and_keeps_its_state_across_a_restart() {
    let mut fake = FakeDiscord::start().await;
    let store = format!("sqlite://{}", fresh_db().display());
    let demo = Demo::start(&fake, &store).await;

    // The token is checked where the gateway is asked for, then identifies the shard.
    let lookup = fake
        .next("GET /gateway/bot", |s| match s {
            Seen::Rest { method, path, authorization, .. } if method == "GET" && path == "/api/v10/gateway/bot" => {
                Some(authorization)
            }
            _ => None,
        })
        .await;
    assert_eq!(lookup.as_deref(), Some(format!("Bot {TOKEN}").as_str()));
    let identify = fake.identify().await;
    assert!(identify["token"].as_str().is_some_and(|t| t.ends_with(TOKEN)), "{identify}");
    let intents = identify["intents"].as_u64().unwrap();
    assert_ne!(intents & (1 << 15), 0, "Message Content, for the menu's Set: {intents}");

    // /count twice: 1, then 2 (what the HTTP endpoint answers).
    for (n, token) in [(1, "g-count-1"), (2, "g-count-2")] {
        fake.dispatch("INTERACTION_CREATE", on_gateway(command("count", OWNER, CHANNEL, token)));
        let answer = fake.callback(token).await;
        assert_eq!((answer["type"].as_u64(), content(&answer)), (Some(4), format!("count: {n}").as_str()));
    }

    // /menu, and a click that routes back to it; a stranger's is refused in private.
    fake.dispatch("INTERACTION_CREATE", on_gateway(command("menu", OWNER, CHANNEL, "g-menu")));
    let menu = fake.callback("g-menu").await;
    assert_eq!((menu["type"].as_u64(), content(&menu)), (Some(4), "value: 0"), "{menu}");
    let [_dec, inc, _done, set] = <[String; 4]>::try_from(custom_ids(&menu)).unwrap();
    fake.dispatch("INTERACTION_CREATE", on_gateway(click(&inc, OWNER, CHANNEL, 900, "g-inc")));
    let one = fake.callback("g-inc").await;
    assert_eq!((one["type"].as_u64(), content(&one)), (Some(7), "value: 1"), "{one}");
    fake.dispatch("INTERACTION_CREATE", on_gateway(click(&inc, STRANGER, CHANNEL, 900, "g-stranger")));
    let refused = fake.callback("g-stranger").await;
    assert!(content(&refused).contains("not yours") && refused["data"]["flags"] == 64, "{refused}");

    // Set: the opener's next message in the channel is the new value, in a new message.
    fake.dispatch("INTERACTION_CREATE", on_gateway(click(&set, OWNER, CHANNEL, 900, "g-set")));
    let asked = fake.callback("g-set").await;
    assert!(content(&asked).contains("number"), "{asked}");
    fake.dispatch("MESSAGE_CREATE", message_create(OWNER, CHANNEL, "42"));
    let channel_path = format!("/api/v10/channels/{CHANNEL}/messages");
    let sent = fake
        .next("the menu's new message", |s| match s {
            Seen::Rest { method, path, body, .. } if method == "POST" && path == channel_path => Some(body),
            _ => None,
        })
        .await;
    assert_eq!(sent["content"], "value: 42");
    let ids = {
        let wrapped = json!({"data": sent});
        custom_ids(&wrapped)
    };
    assert_eq!(ids.len(), 4, "{sent}");
    demo.kill().await;

    // Started again on the same file: the count and the menu go on.
    let demo = Demo::start(&fake, &store).await;
    fake.identify().await;
    fake.dispatch("INTERACTION_CREATE", on_gateway(command("count", OWNER, CHANNEL, "g-count-3")));
    assert_eq!(content(&fake.callback("g-count-3").await), "count: 3");
    fake.dispatch("INTERACTION_CREATE", on_gateway(click(&ids[1], OWNER, CHANNEL, 901, "g-inc-2")));
    let after = fake.callback("g-inc-2").await;
    assert_eq!((after["type"].as_u64(), content(&after)), (Some(7), "value: 43"), "{after}");
    demo.kill().await;
}

#[tokio::test]
async fn without_a_token_the_gateway_says_which_variable_is_missing() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["discord", "--gateway", "--store", "memory://"])
        .env_remove("DISCORD_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DISCORD_TOKEN"), "{stderr}");
    // The HTTP mode still needs its flags; --gateway takes neither.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["discord", "--store", "memory://"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["discord", "--gateway", "--listen", "127.0.0.1:0"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    let help = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["discord", "--help"])
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--gateway") && help.contains("Message Content"), "{help}");
}

#[tokio::test]
async fn a_refused_token_stops_the_start_with_a_clear_error() {
    // A fake whose /gateway/bot says 401.
    let refusing = axum::Router::new().fallback(|| async {
        (
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            r#"{"message": "401: Unauthorized", "code": 0}"#,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}/api/v10", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, refusing).await;
    });
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["discord", "--gateway", "--store", "memory://", "--api-url", &api_url])
        .env("DISCORD_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    server.abort();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the bot token in DISCORD_TOKEN") && !stderr.contains(TOKEN), "{stderr}");
}
