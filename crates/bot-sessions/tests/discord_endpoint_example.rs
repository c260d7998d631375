//! `examples/discord_endpoint.rs`, driven: its endpoint (the `App` its `main` serves)
//! answers requests signed with the RFC 8032 test key, built from the real payloads of
//! `tests/data/discord/` (see SOURCES.md there): `/clicker` starts a game only its
//! opener plays, Done adds it to the player's score in that server, `/score` shows the
//! score of this user in this server, and a game that ends unclicked has its message
//! edited over REST.
#![cfg(feature = "discord")]

mod discord_common;

#[path = "../examples/discord_endpoint.rs"]
#[allow(dead_code)]
mod discord_endpoint;

use std::sync::Arc;

use axum::http::StatusCode;
use bot_sessions::discord::Rest;
use bot_sessions::interactive::{EndReason, SessionId};
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::testing::discord::FakeRest;
use discord_common::{OWNER, STRANGER, custom_ids, fixture, interact, interaction_id, public_key, request, send};
use serde_json::{Value, json};

const GUILD_COMMAND: &str = "application_command_chat_input_guild__discord_docs.json";
/// The same kind of command in another guild (a capture).
const OTHER_GUILD_COMMAND: &str = "application_command_chat_input_guild__fischl_capture.json";
const BUTTON: &str = "message_component_button_guild__discord_docs.json";

fn from_fixture(name: &str, user: u64, token: &str) -> Value {
    let mut body: Value = serde_json::from_slice(&fixture(name)).unwrap();
    body["id"] = json!(interaction_id());
    body["token"] = json!(token);
    body["application_id"] = json!(discord_common::APP.to_string());
    body["version"] = json!(1);
    body["member"]["user"]["id"] = json!(user.to_string());
    // One channel for the command and the clicks on its message.
    body["channel_id"] = json!(discord_common::CHANNEL.to_string());
    for object in ["message", "channel"] {
        if body.get(object).is_some() {
            let field = if object == "message" { "channel_id" } else { "id" };
            body[object][field] = json!(discord_common::CHANNEL.to_string());
        }
    }
    body
}

/// `/name` by `user`, in the guild of `fixture_name`.
fn command(fixture_name: &str, name: &str, user: u64, token: &str) -> Value {
    let mut body = from_fixture(fixture_name, user, token);
    body["data"] = json!({"id": "771825006014889984", "name": name, "type": 1});
    body
}

/// A click by `user` on `custom_id` of the game's message.
fn click(custom_id: &str, user: u64, token: &str) -> Value {
    let mut body = from_fixture(BUTTON, user, token);
    body["data"] = json!({"custom_id": custom_id, "component_type": 2});
    body
}

fn content(response: &Value) -> &str {
    response["data"]["content"].as_str().unwrap_or_default()
}

fn ephemeral(response: &Value) -> bool {
    response["data"]["flags"].as_u64().is_some_and(|f| f & 64 != 0)
}

fn app(rest: Rest) -> discord_endpoint::App {
    discord_endpoint::app(Arc::new(MemoryStore::new()), public_key(), rest).unwrap()
}

#[tokio::test]
async fn a_game_is_the_openers_and_done_adds_it_to_the_score_in_that_server() {
    let app = app(discord_common::no_rest());
    let router = app.endpoint.router();

    let game = interact(&router, &command(GUILD_COMMAND, "clicker", OWNER, "t0")).await;
    assert_eq!((game["type"].as_u64(), content(&game)), (Some(4), "clicks: 0"), "{game}");
    let [inc, done] = <[String; 2]>::try_from(custom_ids(&game)).unwrap();
    for (n, token) in [(1, "t1"), (2, "t2")] {
        let clicked = interact(&router, &click(&inc, OWNER, token)).await;
        assert_eq!((clicked["type"].as_u64(), content(&clicked)), (Some(7), format!("clicks: {n}").as_str()));
    }
    // Someone else's click is refused in private and counts nothing.
    let stranger = interact(&router, &click(&inc, STRANGER, "t3")).await;
    assert!(ephemeral(&stranger), "{stranger}");
    let finished = interact(&router, &click(&done, OWNER, "t4")).await;
    assert_eq!((finished["type"].as_u64(), content(&finished)), (Some(7), "done: 2 clicks (your best here: 2)"));
    assert_eq!(finished["data"]["components"], json!([]));
    let late = interact(&router, &click(&inc, OWNER, "t5")).await;
    assert!(ephemeral(&late), "an ended game's button: {late}");

    let score = interact(&router, &command(GUILD_COMMAND, "score", OWNER, "t6")).await;
    assert!(ephemeral(&score));
    assert_eq!(content(&score), "games: 1, best: 2");
    // A second, shorter game: one more game, the best stays.
    let game = interact(&router, &command(GUILD_COMMAND, "clicker", OWNER, "t7")).await;
    let [inc, done] = <[String; 2]>::try_from(custom_ids(&game)).unwrap();
    interact(&router, &click(&inc, OWNER, "t8")).await;
    let finished = interact(&router, &click(&done, OWNER, "t9")).await;
    assert_eq!(content(&finished), "done: 1 clicks (your best here: 2)");
    let score = interact(&router, &command(GUILD_COMMAND, "score", OWNER, "t10")).await;
    assert_eq!(content(&score), "games: 2, best: 2");
    // The same user in another server has a score of their own there.
    let elsewhere = interact(&router, &command(OTHER_GUILD_COMMAND, "score", OWNER, "t11")).await;
    assert_eq!(content(&elsewhere), "games: 0, best: 0");
    // The stranger's score here is untouched by the owner's games.
    let theirs = interact(&router, &command(GUILD_COMMAND, "score", STRANGER, "t12")).await;
    assert_eq!(content(&theirs), "games: 0, best: 0");
}

#[tokio::test]
async fn an_unsigned_request_is_refused_and_the_commands_are_the_two_registered() {
    let app = app(discord_common::no_rest());
    let body = serde_json::to_vec(&command(GUILD_COMMAND, "clicker", OWNER, "u0")).unwrap();
    let (status, _) = send(&app.endpoint.router(), request("/interactions", &body, None, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let names: Vec<&str> = app.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["clicker", "score"]);
}

/// A game nobody finishes: its end edits the message the command's response showed.
#[tokio::test]
async fn a_game_that_ends_unclicked_has_its_message_edited() {
    let mut fake = FakeRest::start().await;
    let rest = Rest::builder().base_url(fake.base.clone()).bot_token("test-token").build().unwrap();
    let app = app(rest);
    let mut ended = app.manager.subscribe();
    let game = interact(&app.endpoint.router(), &command(GUILD_COMMAND, "clicker", OWNER, "e0")).await;
    let id = custom_ids(&game)[0].clone();
    let session = SessionId::parse(id.split(':').nth(1).unwrap()).unwrap();
    assert!(app.manager.end(session, EndReason::Cancelled).await.unwrap());
    let event = ended.recv().await.unwrap();
    app.endpoint.ends().show(&event).await.unwrap();
    let edit = fake.next().await;
    assert_eq!(
        (edit.method.as_str(), edit.path.as_str()),
        ("PATCH", format!("/api/v10/webhooks/{}/e0/messages/@original", discord_common::APP).as_str())
    );
    assert_eq!(edit.body["content"], "game over: 0 clicks, not counted");
    assert_eq!(edit.body["components"], json!([]));
}
