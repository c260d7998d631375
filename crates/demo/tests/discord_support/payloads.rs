//! Interaction bodies built from the real payloads in `tests/data/discord/` (see
//! SOURCES.md there): the user, channel, token and `data` changed, the rest kept.
//! Shared by the Discord tests and the load generator (`examples/discord_load.rs`).
#![allow(dead_code)]

use serde_json::{Value, json};

/// The application (the button fixture's).
pub const APP: u64 = 290926444748734465;
/// The guild of the fixtures.
pub const GUILD: u64 = 290926798626357999;
/// The channel of the button fixture.
pub const CHANNEL: u64 = 345626669114982999;
/// The user of the fixtures ("Mason").
pub const OWNER: u64 = 53908232506183680;
/// Someone else.
pub const STRANGER: u64 = 80351110224678912;

const PING: &str = include_str!("../data/discord/ping__discord_interactions_js.json");
const COMMAND: &str = include_str!("../data/discord/application_command_chat_input_guild__discord_docs.json");
const BUTTON: &str = include_str!("../data/discord/message_component_button_guild__discord_docs.json");
const MODAL: &str = include_str!("../data/discord/modal_submit_guild__discord_docs.json");

fn template(text: &str) -> Value {
    serde_json::from_str(text).expect("a fixture is JSON")
}

fn place(body: &mut Value, user: u64, channel: u64, token: &str) {
    body["application_id"] = json!(APP.to_string());
    body["guild_id"] = json!(GUILD.to_string());
    body["channel_id"] = json!(channel.to_string());
    // The modal fixture also carries the channel object: keep it consistent.
    if body.get("channel").is_some() {
        body["channel"]["id"] = json!(channel.to_string());
        body["channel"]["guild_id"] = json!(GUILD.to_string());
    }
    body["member"]["user"]["id"] = json!(user.to_string());
    body["token"] = json!(token);
    body["version"] = json!(1);
    body["id"] = json!(interaction_id());
}

/// A new interaction id: the endpoint refuses an id it has seen (a replay), so every
/// body gets its own (random per process: the seen ids may live in a shared server).
pub fn interaction_id() -> String {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
    let next = NEXT.get_or_init(|| std::sync::atomic::AtomicU64::new((rand::random::<u64>() >> 2) | 1));
    next.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string()
}

/// Discord's PING (the fixture as it is).
pub fn ping() -> Value {
    template(PING)
}

/// The slash command `/name` (no options) by `user` in `channel`.
pub fn command(name: &str, user: u64, channel: u64, token: &str) -> Value {
    let mut body = template(COMMAND);
    place(&mut body, user, channel, token);
    body["data"] = json!({"id": "771825006014889984", "name": name, "type": 1});
    body
}

/// A click by `user` on the button `custom_id` of message `message_id` in `channel`.
pub fn click(custom_id: &str, user: u64, channel: u64, message_id: u64, token: &str) -> Value {
    let mut body = template(BUTTON);
    place(&mut body, user, channel, token);
    body["message"]["id"] = json!(message_id.to_string());
    body["message"]["channel_id"] = json!(channel.to_string());
    body["message"]["author"]["id"] = json!(APP.to_string());
    body["data"] = json!({"custom_id": custom_id, "component_type": 2});
    body
}

/// The submit of modal `custom_id` (opened by a command) by `user` in `channel`, its
/// text inputs filled in.
pub fn submit(custom_id: &str, fields: &[(&str, &str)], user: u64, channel: u64, token: &str) -> Value {
    let mut body = template(MODAL);
    place(&mut body, user, channel, token);
    let rows: Vec<Value> = fields
        .iter()
        .map(|(id, value)| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "value": value}]}))
        .collect();
    body["data"] = json!({"custom_id": custom_id, "components": rows});
    body
}

/// The text of a response's message.
pub fn content(response: &Value) -> &str {
    response["data"]["content"].as_str().unwrap_or_default()
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

/// Whether the response's message is ephemeral (flag 64).
pub fn is_ephemeral(response: &Value) -> bool {
    response["data"]["flags"].as_u64().is_some_and(|f| f & 64 != 0)
}
