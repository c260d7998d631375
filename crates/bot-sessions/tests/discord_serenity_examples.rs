//! The gateway examples, driven: `examples/serenity_poll.rs` (its `Bot::handle`, what
//! its serenity event handler calls) against the fake Discord API through serenity's
//! `Http`, and `examples/poise_profile.rs` (its `/profile` body on the session
//! `ctx.session::<Profile>()` gives: the per-user-per-guild key of a real command
//! payload; its poise command's registration).
#![cfg(feature = "poise")]

mod discord_common;

#[path = "../examples/serenity_poll.rs"]
#[allow(dead_code)]
mod serenity_poll;

#[path = "../examples/poise_profile.rs"]
#[allow(dead_code)]
mod poise_profile;

use std::sync::Arc;

use bot_sessions::discord::serenity::{Session, command_context};
use bot_sessions::discord::{EndShown, Ends, Rest};
use bot_sessions::interactive::EndReason;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::testing::discord::FakeRest;
use bot_sessions::{SessionError, store};
use discord_common::{APP, CHANNEL, OWNER, STRANGER, click, command, fixture};
use serde_json::{Value, json};
use serenity::all::{CommandInteraction, HttpBuilder, Interaction};

fn completed(mut body: Value) -> Value {
    for (field, value) in [
        ("application_id", json!(APP.to_string())),
        ("version", json!(1)),
        ("locale", json!("en-US")),
        ("entitlements", json!([])),
        ("authorizing_integration_owners", json!({})),
        ("attachment_size_limit", json!(8388608)),
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

fn interaction(body: Value) -> Interaction {
    serde_json::from_value(completed(body)).unwrap()
}

fn message_json(id: u64) -> Value {
    json!({"id": id.to_string(), "channel_id": CHANNEL.to_string(), "type": 0, "content": "",
           "timestamp": "2021-05-19T02:12:51.710000+00:00", "edited_timestamp": null, "tts": false,
           "pinned": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
           "embeds": [], "flags": 0,
           "author": {"id": APP.to_string(), "username": "bot", "discriminator": "0", "avatar": null}})
}

#[tokio::test]
async fn the_poll_takes_anyones_vote_and_only_the_opener_closes_it() {
    let mut fake = FakeRest::start().await;
    let http = HttpBuilder::new("Bot test-token")
        .proxy(fake.base.trim_end_matches("/api/v10"))
        .ratelimiter_disabled(true)
        .application_id(APP.into())
        .build();
    let bot = serenity_poll::Bot::new(Arc::new(MemoryStore::new()), b"a secret of 32 bytes or more....").unwrap();

    // /poll question: Lunch? options: Pizza, Sushi
    let mut open = command("poll", OWNER, "tok-poll");
    open["data"]["options"] = json!([{"name": "question", "type": 3, "value": "Lunch?"},
                                     {"name": "options", "type": 3, "value": "Pizza, Sushi"}]);
    fake.answer(204, Value::Null);
    fake.answer(200, message_json(900));
    bot.handle(&http, &interaction(open)).await.unwrap();
    let posted = fake.next().await;
    assert_eq!(posted.body["type"], 4);
    assert_eq!(posted.body["data"]["content"], "Lunch?\nPizza: 0\nSushi: 0");
    let ids = discord_common::custom_ids(&posted.body);
    assert_eq!(ids.len(), 3, "{ids:?}"); // Pizza, Sushi, Close
    assert_eq!(fake.next().await.method, "GET"); // the new message's id, for later edits

    // Anyone votes; a second click changes the vote.
    for (user, option, token) in [(OWNER, 0, "t1"), (STRANGER, 1, "t2"), (STRANGER, 0, "t3")] {
        fake.answer(204, Value::Null);
        bot.handle(&http, &interaction(click(&ids[option], user, 900, token))).await.unwrap();
        assert_eq!(fake.next().await.body["type"], 7);
    }
    // A stranger cannot close it.
    fake.answer(204, Value::Null);
    bot.handle(&http, &interaction(click(&ids[2], STRANGER, 900, "t4"))).await.unwrap();
    let refused = fake.next().await;
    assert_eq!((refused.body["type"].as_u64(), refused.body["data"]["flags"].as_u64()), (Some(4), Some(64)));
    // The opener closes it: the message shows the result, without buttons.
    fake.answer(204, Value::Null);
    bot.handle(&http, &interaction(click(&ids[2], OWNER, 900, "t5"))).await.unwrap();
    let closed = fake.next().await;
    assert_eq!(closed.body["type"], 7);
    assert_eq!(closed.body["data"]["content"], "Poll closed.\nLunch?\nPizza: 2\nSushi: 0");
    assert_eq!(closed.body["data"]["components"], json!([]));
    assert!(fake.received().is_empty());
}

/// A poll nobody closes: its end edits the message that `Router::start` recorded.
#[tokio::test]
async fn an_unclosed_polls_end_edits_its_recorded_message() {
    let mut fake = FakeRest::start().await;
    let http = HttpBuilder::new("Bot test-token")
        .proxy(fake.base.trim_end_matches("/api/v10"))
        .ratelimiter_disabled(true)
        .application_id(APP.into())
        .build();
    let bot = serenity_poll::Bot::new(Arc::new(MemoryStore::new()), b"a secret of 32 bytes or more....").unwrap();
    let mut ended = bot.router.manager().subscribe();
    fake.answer(204, Value::Null);
    fake.answer(200, message_json(900));
    bot.handle(&http, &interaction(command("poll", OWNER, "tok-poll"))).await.unwrap();
    let session = {
        let posted = fake.next().await;
        let id = discord_common::custom_ids(&posted.body)[0].clone();
        fake.next().await; // GET @original
        bot_sessions::interactive::SessionId::parse(id.split(':').nth(1).unwrap()).unwrap()
    };
    assert!(bot.router.manager().end(session, EndReason::Cancelled).await.unwrap());
    let event = ended.recv().await.unwrap();
    let rest = Rest::builder().base_url(fake.base.clone()).bot_token("test-token").build().unwrap();
    let shown = Ends::new(rest, bot.router.message_records().cloned()).show(&event).await.unwrap();
    assert_eq!(shown, EndShown::EditedOriginal);
    let edit = fake.next().await;
    assert_eq!(
        (edit.method.as_str(), edit.path.as_str()),
        ("PATCH", format!("/api/v10/webhooks/{APP}/tok-poll/messages/@original").as_str())
    );
    assert_eq!(edit.body["content"], "Poll closed.\n?\nYes: 0\nNo: 0");
}

fn command_of(name: &str) -> CommandInteraction {
    match interaction(serde_json::from_slice(&fixture(name)).unwrap()) {
        Interaction::Command(c) => c,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn profile_is_one_session_per_user_per_guild() {
    let profiles = poise_profile::profiles(Arc::new(MemoryStore::new()) as store::DynStore).unwrap();
    let guild = command_context(&command_of("application_command_chat_input_guild__discord_docs.json"));
    let session = Session::new(&profiles, &guild).unwrap();
    assert_eq!(session.key().as_str(), "profile/guild:290926798626357999/user:53908232506183680");
    assert_eq!(poise_profile::show(&session, None).await.unwrap(), "bio: - (viewed 1 times)");
    assert_eq!(poise_profile::show(&session, Some("hi".into())).await.unwrap(), "bio: hi (viewed 2 times)");
    // The same user in another guild has another profile.
    let other = command_context(&command_of("application_command_chat_input_guild__fischl_capture.json"));
    assert_ne!(other.guild_id, guild.guild_id);
    let elsewhere = Session::new(&profiles, &other).unwrap();
    assert_eq!(poise_profile::show(&elsewhere, None).await.unwrap(), "bio: - (viewed 1 times)");
    // A DM has no guild: the command is guild-only, and the key says why.
    let dm = command_context(&command_of("application_command_chat_input_dm_user_install__fischl_capture.json"));
    assert!(matches!(Session::new(&profiles, &dm), Err(SessionError::Key(_))));
}

#[test]
fn the_profile_command_registers_as_a_guild_only_slash_command() {
    let command = poise_profile::profile().create_as_slash_command().expect("a slash command");
    let json = serde_json::to_value(command).unwrap();
    assert_eq!(json["name"], "profile");
    assert_eq!(json["options"][0]["name"], "bio");
    assert_eq!(json["options"][0]["required"], false);
    assert_eq!(json["contexts"], json!([0]), "guild only: {json}");
}
