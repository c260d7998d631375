//! `examples/twilight_gateway.rs`, driven: its `serve` answers the
//! `INTERACTION_CREATE` events its twilight-gateway loop forwards (here put in the
//! channel by the test, built from the real payloads of `tests/data/discord/`, see
//! SOURCES.md there) with interaction callbacks to the fake Discord REST API.
#![cfg(feature = "discord")]

mod discord_common;

#[path = "../examples/twilight_gateway.rs"]
#[allow(dead_code)]
mod twilight_gateway;

use std::sync::Arc;

use bot_sessions::discord::twilight_model::gateway::payload::incoming::InteractionCreate;
use bot_sessions::discord::{Rest, parse_interaction};
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::testing::discord::FakeRest;
use discord_common::{APP, CHANNEL, OWNER, STRANGER, custom_ids, fixture, interaction_id};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const GUILD_COMMAND: &str = "application_command_chat_input_guild__discord_docs.json";
const BUTTON: &str = "message_component_button_guild__discord_docs.json";

/// The fixture `name` as a gateway event: by `user`, answered with `token`.
fn event(name: &str, user: u64, token: &str, data: Value) -> (InteractionCreate, String) {
    let mut body: Value = serde_json::from_slice(&fixture(name)).unwrap();
    let id = interaction_id();
    body["id"] = json!(id);
    body["token"] = json!(token);
    body["application_id"] = json!(APP.to_string());
    body["version"] = json!(1);
    body["channel_id"] = json!(CHANNEL.to_string());
    body["member"]["user"]["id"] = json!(user.to_string());
    if body.get("message").is_some() {
        body["message"]["channel_id"] = json!(CHANNEL.to_string());
    }
    body["data"] = data;
    let interaction = parse_interaction(&serde_json::to_vec(&body).unwrap()).unwrap();
    (InteractionCreate(interaction), format!("/api/v10/interactions/{id}/{token}/callback"))
}

fn command(name: &str, user: u64, token: &str) -> (InteractionCreate, String) {
    event(GUILD_COMMAND, user, token, json!({"id": "771825006014889984", "name": name, "type": 1}))
}

fn click(custom_id: &str, user: u64, token: &str) -> (InteractionCreate, String) {
    event(BUTTON, user, token, json!({"custom_id": custom_id, "component_type": 2}))
}

/// Sends `event` and returns the callback it got (the next call must be it).
async fn answered(
    tx: &mpsc::Sender<InteractionCreate>,
    fake: &mut FakeRest,
    (event, path): (InteractionCreate, String),
) -> Value {
    tx.send(event).await.unwrap();
    let call = fake.next().await;
    assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", path.as_str()));
    assert_eq!(call.authorization, None, "a callback needs no bot token");
    call.body
}

fn content(response: &Value) -> &str {
    response["data"]["content"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn gateway_interactions_are_answered_by_callback_with_sessions() {
    let mut fake = FakeRest::start().await;
    let rest = Rest::builder().base_url(fake.base.clone()).bot_token("test-token").build().unwrap();
    let (endpoint, _manager) = twilight_gateway::endpoint(Arc::new(MemoryStore::new())).unwrap();
    let (tx, rx) = mpsc::channel(8);
    let served = tokio::spawn(twilight_gateway::serve(endpoint, rest, rx));

    // /counter: a new message with the session's buttons.
    let counter = answered(&tx, &mut fake, command("counter", OWNER, "c0")).await;
    assert_eq!((counter["type"].as_u64(), content(&counter)), (Some(4), "count: 0"), "{counter}");
    let [inc, done] = <[String; 2]>::try_from(custom_ids(&counter)).unwrap();
    // Clicks route back to it; a stranger's is refused in private.
    let one = answered(&tx, &mut fake, click(&inc, OWNER, "c1")).await;
    assert_eq!((one["type"].as_u64(), content(&one)), (Some(7), "count: 1"));
    let stranger = answered(&tx, &mut fake, click(&inc, STRANGER, "c2")).await;
    assert_eq!((stranger["type"].as_u64(), stranger["data"]["flags"].as_u64()), (Some(4), Some(64)));
    let end = answered(&tx, &mut fake, click(&done, OWNER, "c3")).await;
    assert_eq!((end["type"].as_u64(), content(&end)), (Some(7), "final: 1"));

    // /visits: a data session per user per guild.
    for (n, token) in [(1, "v1"), (2, "v2")] {
        let visits = answered(&tx, &mut fake, command("visits", OWNER, token)).await;
        assert_eq!(content(&visits), format!("visits here: {n}"));
    }
    let theirs = answered(&tx, &mut fake, command("visits", STRANGER, "v3")).await;
    assert_eq!(content(&theirs), "visits here: 1");

    drop(tx);
    served.await.unwrap();
    assert!(fake.received().is_empty());
}
