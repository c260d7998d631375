//! The endpoint end to end with signed requests: a session opened by a command, driven
//! by buttons, a select menu and a modal, refused for a stranger and a forged id,
//! answered `expired` once over; the bot's handler for the rest; deferred answers
//! sent over REST.
#![cfg(feature = "discord")]

mod discord_common;

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::discord::{Rest, Texts};
use discord_common::*;
use serde_json::json;
use tokio::sync::Notify;

#[tokio::test]
async fn a_session_through_buttons_a_select_and_a_modal() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    assert_eq!(
        interact(&bot.router, &json!({"type": 1, "id": "1", "token": "t", "version": 1})).await,
        json!({"type": 1})
    );

    // /menu: a new message with the session's components.
    let opened = interact(&bot.router, &command("menu", OWNER, "tok-open")).await;
    assert_eq!(opened["type"], 4);
    assert_eq!(opened["data"]["content"], "value: 0");
    assert_eq!(opened["data"].get("flags"), None, "not ephemeral");
    assert_eq!(opened["data"]["allowed_mentions"], json!({"parse": []}));
    let rows = opened["data"]["components"].as_array().unwrap();
    assert_eq!(
        (rows.len(), rows[0]["type"].as_u64(), rows[1]["components"][0]["type"].as_u64()),
        (2, Some(1), Some(3))
    );
    let ids = custom_ids(&opened);
    let (plus, form, done, size) = (ids[1].clone(), ids[2].clone(), ids[3].clone(), ids[4].clone());
    let session = bot.manager.codec().decode(&plus).unwrap().session();

    // Where its message is: the command's token, the channel, no message id yet.
    let noted = bot.endpoint.messages().unwrap().get(session).await.unwrap().unwrap();
    assert_eq!((noted.application_id, noted.channel_id, noted.message_id), (APP, Some(CHANNEL), None));
    assert_eq!(noted.token.as_deref(), Some("tok-open"));

    // +1: UPDATE_MESSAGE with the new text and the same components.
    let clicked = interact(&bot.router, &click(&plus, OWNER, 900, "tok-1")).await;
    assert_eq!((clicked["type"].as_u64(), clicked["data"]["content"].as_str()), (Some(7), Some("value: 1")));
    assert_eq!(custom_ids(&clicked), ids);
    assert_eq!(clicked["data"].get("flags"), None);
    let noted = bot.endpoint.messages().unwrap().get(session).await.unwrap().unwrap();
    assert_eq!((noted.message_id, noted.token.as_deref()), (Some(900), Some("tok-1")));

    // A select menu: its values reach the session.
    let chosen = interact(&bot.router, &choose(&size, &["large"], OWNER, 900, "tok-2")).await;
    assert_eq!((chosen["type"].as_u64(), chosen["data"]["content"].as_str()), (Some(7), Some("value: 1, size: large")));

    // A button that opens a modal: MODAL with a text input in an action row.
    let modal = interact(&bot.router, &click(&form, OWNER, 900, "tok-3")).await;
    assert_eq!(modal["type"], 9);
    assert_eq!(modal["data"]["title"], "Your name");
    let input = &modal["data"]["components"][0]["components"][0];
    assert_eq!((input["type"].as_u64(), input["custom_id"].as_str()), (Some(4), Some("name")));
    let modal_id = modal["data"]["custom_id"].as_str().unwrap().to_owned();
    assert_eq!(bot.manager.codec().decode(&modal_id).unwrap().session(), session);

    // Its submit (opened from the message, so it can update it).
    let submitted = interact(&bot.router, &submit(&modal_id, &[("name", "Ada")], OWNER, Some(900), "tok-4")).await;
    assert_eq!(submitted["type"], 7);
    assert_eq!(submitted["data"]["content"], "value: 1, size: large, name: Ada");

    // A stranger: an ephemeral `not yours`; nothing changes.
    let refused = interact(&bot.router, &click(&plus, STRANGER, 900, "tok-5")).await;
    assert_eq!((refused["type"].as_u64(), refused["data"]["flags"].as_u64()), (Some(4), Some(64)));
    assert_eq!(refused["data"]["content"], Texts::default().not_yours);

    // A forged id (its signature changed): refused, nothing changes.
    let mut forged = plus.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let answer = interact(&bot.router, &click(&forged, OWNER, 900, "tok-6")).await;
    assert_eq!((answer["type"].as_u64(), answer["data"]["flags"].as_u64()), (Some(4), Some(64)));
    assert_eq!(answer["data"]["content"], Texts::default().forged);
    assert_eq!(bot.handler_calls(), 1, "only /menu reached the handler");

    // Done: the end's reply, without components.
    let finished = interact(&bot.router, &click(&done, OWNER, 900, "tok-7")).await;
    assert_eq!((finished["type"].as_u64(), finished["data"]["content"].as_str()), (Some(7), Some("final: 1")));
    assert_eq!(finished["data"]["components"], json!([]));

    // A late click: `expired`.
    let late = interact(&bot.router, &click(&plus, OWNER, 900, "tok-8")).await;
    assert_eq!((late["type"].as_u64(), late["data"]["flags"].as_u64()), (Some(4), Some(64)));
    assert_eq!(late["data"]["content"], Texts::default().expired);

    let stats = bot.endpoint.stats();
    assert_eq!((stats.pings, stats.routed, stats.handled, stats.deferred, stats.failures), (1, 8, 1, 0, 0));
}

#[tokio::test]
async fn other_components_and_commands_go_to_the_handler() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    let foreign = interact(&bot.router, &click("other:thing", OWNER, 900, "tok")).await;
    assert_eq!(foreign["data"]["content"], "not mine: other:thing");
    let count = interact(&bot.router, &command("count", OWNER, "tok")).await;
    assert_eq!((count["type"].as_u64(), count["data"]["content"].as_str()), (Some(4), Some("you ran /count")));
    let modal = interact(&bot.router, &submit("elsewhere", &[("a", "b")], OWNER, None, "tok")).await;
    assert_eq!(modal["data"]["content"], "not mine: elsewhere");
    // Autocomplete gets no choices, without the handler.
    let mut auto = command("count", OWNER, "tok");
    auto["type"] = 4.into();
    assert_eq!(interact(&bot.router, &auto).await, json!({"type": 8, "data": {"choices": []}}));
    assert_eq!(bot.handler_calls(), 3);
    assert_eq!(bot.endpoint.stats().routed, 0);
}

/// The handler holds its answer past the window: DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
/// at once, then the answer edits the original response over REST.
#[tokio::test]
async fn a_slow_handler_is_deferred_and_its_answer_follows_over_rest() {
    let mut fake = FakeRest::start().await;
    let gate = Arc::new(Notify::new());
    let mut options = BotOptions::new(Rest::builder().base_url(&fake.base).build().unwrap());
    options.defer_after = Duration::from_millis(50);
    options.handler_gate = Some(gate.clone());
    let bot = TestBot::new(options);

    let response = interact(&bot.router, &command("count", OWNER, "tok-slow")).await;
    assert_eq!(response, json!({"type": 5}));
    assert_eq!(bot.endpoint.stats().deferred, 1);
    gate.notify_one();
    let call = fake.next().await;
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("PATCH", &*format!("/api/v10/webhooks/{APP}/tok-slow/messages/@original"))
    );
    assert_eq!(call.body["content"], "you ran /count");
    assert_eq!(call.authorization, None, "webhook routes need no bot token");

    // A component of another namespace: DEFERRED_UPDATE_MESSAGE, then the handler's
    // notice as an ephemeral follow-up.
    let response = interact(&bot.router, &click("other:x", OWNER, 900, "tok-slow-2")).await;
    assert_eq!(response, json!({"type": 6}));
    gate.notify_one();
    let call = fake.next().await;
    assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", &*format!("/api/v10/webhooks/{APP}/tok-slow-2")));
    assert_eq!((call.body["content"].as_str(), call.body["flags"].as_u64()), (Some("not mine: other:x"), Some(64)));

    // A notice (to a modal submit opened by a command) after a public "thinking…":
    // that goes, the notice follows, ephemeral.
    let response = interact(&bot.router, &submit("elsewhere", &[("a", "b")], OWNER, None, "tok-slow-3")).await;
    assert_eq!(response, json!({"type": 5}));
    gate.notify_one();
    let call = fake.next().await;
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("DELETE", &*format!("/api/v10/webhooks/{APP}/tok-slow-3/messages/@original"))
    );
    let call = fake.next().await;
    assert_eq!((call.method.as_str(), call.body["flags"].as_u64()), ("POST", Some(64)));
    assert_eq!(call.body["content"], "not mine: elsewhere");
    assert_eq!(bot.endpoint.stats().deferred, 3);
}

/// A session's update holds its answer past the window: DEFERRED_UPDATE_MESSAGE, then
/// the edit of the component's message over REST; the message record is noted.
#[tokio::test]
async fn a_slow_session_is_deferred_and_its_edit_follows_over_rest() {
    let mut fake = FakeRest::start().await;
    let gate = Arc::new(Notify::new());
    let mut options = BotOptions::new(Rest::builder().base_url(&fake.base).build().unwrap());
    options.defer_after = Duration::from_millis(50);
    options.picker = Picker { gate: Some(gate.clone()) };
    let bot = TestBot::new(options);

    let opened = interact(&bot.router, &command("menu", OWNER, "tok-open")).await;
    let plus = custom_ids(&opened)[1].clone();
    let response = interact(&bot.router, &click(&plus, OWNER, 901, "tok-click")).await;
    assert_eq!(response, json!({"type": 6}));
    gate.notify_one();
    let call = fake.next().await;
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("PATCH", &*format!("/api/v10/webhooks/{APP}/tok-click/messages/@original"))
    );
    assert_eq!(call.body["content"], "value: 1");
    assert_eq!(call.body["components"][0]["components"][1]["custom_id"], plus.as_str());
    let session = bot.manager.codec().decode(&plus).unwrap().session();
    // Noted after the edit went out.
    for _ in 0..1000 {
        let noted = bot.endpoint.messages().unwrap().get(session).await.unwrap().unwrap();
        if noted.message_id == Some(901) {
            assert_eq!(noted.token.as_deref(), Some("tok-click"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the deferred edit was not noted");
}

/// A failure routing a click (here: the manager shut down) is answered with the
/// `failed` text, ephemeral.
#[tokio::test]
async fn a_failing_session_answers_failed() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    let opened = interact(&bot.router, &command("menu", OWNER, "tok-open")).await;
    let plus = custom_ids(&opened)[1].clone();
    bot.manager.shutdown_detached();
    let answer = interact(&bot.router, &click(&plus, OWNER, 900, "tok")).await;
    assert_eq!((answer["type"].as_u64(), answer["data"]["flags"].as_u64()), (Some(4), Some(64)));
    assert_eq!(answer["data"]["content"], Texts::default().failed);
    assert_eq!(bot.endpoint.stats().failures, 1);
}
