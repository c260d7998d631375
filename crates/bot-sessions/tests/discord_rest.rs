//! The REST client and the ends of sessions against a fake Discord REST server on
//! 127.0.0.1: routes, bodies, the bot token, 429 `retry_after` honoured and counted,
//! timeouts, tokens kept out of errors; an expired session's message edited through
//! its interaction token, through the channel with the bot token once the token is
//! gone, and after a restart.
#![cfg(feature = "discord")]

mod discord_common;

use std::time::{Duration, Instant};

use bot_sessions::discord::{EndError, EndShown, Rest, RestError};
use bot_sessions::interactive::{Button, EndReason, View};
use bot_sessions::{Clock, DynStore};
use discord_common::*;
use serde_json::json;

fn rest(fake: &FakeRest) -> Rest {
    Rest::builder().base_url(&fake.base).build().unwrap()
}

#[tokio::test]
async fn each_call_has_its_route_body_and_token() {
    let mut fake = FakeRest::start().await;
    let rest = Rest::builder().base_url(&fake.base).bot_token("bot-secret").build().unwrap();
    let menu = View::text("value: 1").row([Button::new("+1", "t:x:inc")]);

    rest.edit_original(APP, "tok", &View::text("closed")).await.unwrap();
    let call = fake.next().await;
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("PATCH", &*format!("/api/v10/webhooks/{APP}/tok/messages/@original"))
    );
    assert_eq!(
        call.body,
        json!({"content": "closed", "components": [], "embeds": [], "allowed_mentions": {"parse": []}})
    );
    assert_eq!(call.authorization, None);

    rest.followup(APP, "tok", &menu.clone().ephemeral()).await.unwrap();
    let call = fake.next().await;
    assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", &*format!("/api/v10/webhooks/{APP}/tok")));
    assert_eq!(
        (call.body["flags"].as_u64(), call.body["components"][0]["components"][0]["custom_id"].as_str()),
        (Some(64), Some("t:x:inc"))
    );

    rest.delete_original(APP, "tok").await.unwrap();
    let call = fake.next().await;
    assert_eq!((call.method.as_str(), call.body.clone()), ("DELETE", serde_json::Value::Null));

    rest.edit_message(CHANNEL, 900, &menu.clone().ephemeral()).await.unwrap();
    let call = fake.next().await;
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("PATCH", &*format!("/api/v10/channels/{CHANNEL}/messages/900"))
    );
    assert_eq!(call.authorization.as_deref(), Some("Bot bot-secret"));
    assert_eq!(call.body.get("flags"), None, "an edit cannot make a message ephemeral");

    rest.create_message(CHANNEL, &menu).await.unwrap();
    let call = fake.next().await;
    assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", &*format!("/api/v10/channels/{CHANNEL}/messages")));
    assert_eq!(rest.rate_limited(), 0);

    // Without a bot token the channel routes are refused before any request.
    let no_bot = Rest::builder().base_url(&fake.base).build().unwrap();
    assert!(matches!(no_bot.edit_message(1, 2, &menu).await, Err(RestError::NoBotToken { .. })));
    // A token that is not a token never reaches a URL.
    assert!(matches!(rest.edit_original(APP, "../../channels", &menu).await, Err(RestError::BadToken)));
    assert!(fake.calls.try_recv().is_err());
}

#[tokio::test]
async fn a_429_waits_retry_after_and_is_counted() {
    let mut fake = FakeRest::start().await;
    let rest = rest(&fake);
    fake.answer(429, json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false}));
    let started = Instant::now();
    rest.edit_original(APP, "tok", &View::text("x")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "retried after {:?}", started.elapsed());
    assert_eq!(rest.rate_limited(), 1);
    let (first, second) = (fake.next().await, fake.next().await);
    assert_eq!((first.path, first.body), (second.path, second.body), "the same request again");
}

#[tokio::test]
async fn rate_limits_beyond_the_bounds_are_errors() {
    let mut fake = FakeRest::start().await;
    let rest = Rest::builder().base_url(&fake.base).max_retries(2).max_wait(Duration::from_secs(5)).build().unwrap();
    for _ in 0..3 {
        fake.answer(429, json!({"retry_after": 0.01}));
    }
    let err = rest.edit_original(APP, "tok", &View::text("x")).await.unwrap_err();
    assert!(matches!(err, RestError::RateLimited { .. }), "{err}");
    assert_eq!(rest.rate_limited(), 3, "the first try and two retries");
    for _ in 0..3 {
        fake.next().await;
    }
    // Asked to wait longer than allowed: an error at once, no retry.
    fake.answer(429, json!({"retry_after": 60.0}));
    let err = rest.edit_original(APP, "tok", &View::text("x")).await.unwrap_err();
    assert!(matches!(err, RestError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(60)));
    fake.next().await;
    assert!(fake.calls.try_recv().is_err());
}

#[tokio::test]
async fn errors_name_the_route_never_the_token() {
    let fake = FakeRest::start().await;
    let secret = "interaction-secret-token";
    let rest = Rest::builder().base_url(&fake.base).bot_token("bot-secret").build().unwrap();
    fake.answer(401, json!({"message": "Invalid Webhook Token", "code": 50027}));
    let err = rest.edit_original(APP, secret, &View::text("x")).await.unwrap_err();
    assert!(err.is_token_gone());
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("{token}") && shown.contains("50027") && !shown.contains(secret), "{shown}");

    let refused = no_rest();
    let err = refused.edit_original(APP, secret, &View::text("x")).await.unwrap_err();
    assert!(matches!(err, RestError::Transport { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains(secret));
    assert!(!format!("{rest:?}").contains("bot-secret"));
}

#[tokio::test]
async fn requests_time_out() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v10", silent.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let rest = Rest::builder().base_url(base).timeout(Duration::from_millis(200)).build().unwrap();
    let err = rest.edit_original(APP, "tok", &View::text("x")).await.unwrap_err();
    assert!(matches!(err, RestError::Timeout { .. }), "{err}");
}

/// A session that expires unclicked: its `end` reply edits the message the command's
/// response posted, with that interaction's token (the follower task does it).
#[tokio::test]
async fn an_expired_session_edits_its_original_message() {
    let mut fake = FakeRest::start().await;
    let options = BotOptions::new(rest(&fake));
    let clock = options.clock.clone();
    let bot = TestBot::new(options);
    let follower = bot.endpoint.ends().spawn(&bot.manager);

    interact(&bot.router, &command("menu", OWNER, "tok-open")).await;
    clock.advance(Duration::from_secs(61));
    assert_eq!(bot.manager.expire_due(clock.now()).await.expired, 1);
    let call = fake.next().await;
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("PATCH", &*format!("/api/v10/webhooks/{APP}/tok-open/messages/@original"))
    );
    assert_eq!(call.body["content"], "expired (value: 0)");
    assert_eq!(call.body["components"], json!([]));
    follower.abort();
}

/// Once the token is gone (15 minutes), the bot token edits the channel message a
/// click made known; a webhook that refuses the token falls back the same way.
#[tokio::test]
async fn past_the_token_the_channel_message_is_edited_with_the_bot_token() {
    let mut fake = FakeRest::start().await;
    let options = BotOptions::new(Rest::builder().base_url(&fake.base).bot_token("bot-secret").build().unwrap());
    let clock = options.clock.clone();
    let bot = TestBot::new(options);
    let mut events = bot.manager.subscribe();
    let ends = bot.endpoint.ends();

    let opened = interact(&bot.router, &command("menu", OWNER, "tok-open")).await;
    let plus = custom_ids(&opened)[1].clone();
    interact(&bot.router, &click(&plus, OWNER, 900, "tok-1")).await;
    clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(bot.manager.expire_due(clock.now()).await.expired, 1);
    let event = events.recv().await.unwrap();
    assert_eq!(event.reason, EndReason::Expired);
    assert_eq!(ends.show(&event).await.unwrap(), EndShown::EditedChannelMessage);
    let call = fake.next().await;
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("PATCH", &*format!("/api/v10/channels/{CHANNEL}/messages/900"))
    );
    assert_eq!(call.authorization.as_deref(), Some("Bot bot-secret"));
    assert_eq!(call.body["content"], "expired (value: 1)");
    let session = bot.manager.codec().decode(&plus).unwrap().session();
    assert!(bot.endpoint.messages().unwrap().get(session).await.unwrap().is_none(), "the record is gone");

    // A fresh token the webhook refuses (401): the channel route.
    let opened = interact(&bot.router, &command("menu", OWNER, "tok-open-2")).await;
    let plus = custom_ids(&opened)[1].clone();
    interact(&bot.router, &click(&plus, OWNER, 901, "tok-2")).await;
    clock.advance(Duration::from_secs(61));
    bot.manager.expire_due(clock.now()).await;
    let event = events.recv().await.unwrap();
    fake.answer(401, json!({"message": "Invalid Webhook Token", "code": 50027}));
    assert_eq!(ends.show(&event).await.unwrap(), EndShown::EditedChannelMessage);
    assert_eq!(fake.next().await.path, format!("/api/v10/webhooks/{APP}/tok-2/messages/@original"));
    assert_eq!(fake.next().await.path, format!("/api/v10/channels/{CHANNEL}/messages/901"));
}

#[tokio::test]
async fn without_a_fresh_token_or_a_bot_token_there_is_no_route() {
    let mut fake = FakeRest::start().await;
    let options = BotOptions::new(rest(&fake));
    let clock = options.clock.clone();
    let bot = TestBot::new(options);
    let mut events = bot.manager.subscribe();
    interact(&bot.router, &command("menu", OWNER, "tok-open")).await;
    clock.advance(Duration::from_secs(16 * 60));
    bot.manager.expire_due(clock.now()).await;
    let err = bot.endpoint.ends().show(&events.recv().await.unwrap()).await.unwrap_err();
    assert!(matches!(err, EndError::NoRoute { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("tok-open"));
    assert!(fake.calls.try_recv().is_err());
}

/// Done answered the click itself: its end event shows nothing more.
#[tokio::test]
async fn a_finished_session_is_not_shown_twice() {
    let mut fake = FakeRest::start().await;
    let bot = TestBot::new(BotOptions::new(rest(&fake)));
    let mut events = bot.manager.subscribe();
    let opened = interact(&bot.router, &command("menu", OWNER, "tok-open")).await;
    let done = custom_ids(&opened)[3].clone();
    interact(&bot.router, &click(&done, OWNER, 900, "tok-done")).await;
    let event = events.recv().await.unwrap();
    assert_eq!(event.reason, EndReason::Finished);
    assert_eq!(bot.endpoint.ends().show(&event).await.unwrap(), EndShown::Nothing);
    assert!(fake.calls.try_recv().is_err());
}

/// The message record lives in the store: after a restart (a new manager and endpoint
/// on the same store), the expiry found by a scan edits the message with the token the
/// first process noted.
#[tokio::test]
async fn after_a_restart_the_expiry_still_edits_the_message() {
    let mut fake = FakeRest::start().await;
    let options = BotOptions::new(rest(&fake));
    let (store, clock): (DynStore, _) = (options.store.clone(), options.clock.clone());
    let before = TestBot::new(options);
    interact(&before.router, &command("menu", OWNER, "tok-open")).await;
    before.manager.shutdown_detached();
    drop(before);

    let mut options = BotOptions::new(rest(&fake));
    (options.store, options.clock) = (store, clock.clone());
    let after = TestBot::new(options);
    let mut events = after.manager.subscribe();
    clock.advance(Duration::from_secs(61));
    assert_eq!(after.manager.expire_scan(clock.now()).await.unwrap().expired, 1);
    assert_eq!(after.endpoint.ends().show(&events.recv().await.unwrap()).await.unwrap(), EndShown::EditedOriginal);
    let call = fake.next().await;
    assert_eq!(call.path, format!("/api/v10/webhooks/{APP}/tok-open/messages/@original"));
    assert_eq!(call.body["content"], "expired (value: 0)");
}

/// A forget-user ends nothing (no end event): the bot closes the user's messages
/// first, then forgets; the records go with the user's sessions.
#[tokio::test]
async fn closing_a_users_messages_before_forgetting_them() {
    let mut fake = FakeRest::start().await;
    let options = BotOptions::new(rest(&fake));
    let clock = options.clock.clone();
    let bot = TestBot::new(options);
    let opened = interact(&bot.router, &command("menu", OWNER, "tok-a")).await;
    interact(&bot.router, &command("menu", STRANGER, "tok-b")).await;
    let ends = bot.endpoint.ends();

    assert_eq!(ends.close_user_messages(OWNER as i64, &View::text("forgotten")).await.unwrap(), 1);
    let call = fake.next().await;
    assert_eq!(call.path, format!("/api/v10/webhooks/{APP}/tok-a/messages/@original"));
    assert_eq!((call.body["content"].as_str(), &call.body["components"]), (Some("forgotten"), &json!([])));
    assert!(fake.calls.try_recv().is_err(), "only the user's own");

    bot.manager.store().forget_user(OWNER as i64, clock.now()).await.unwrap();
    let session = bot.manager.codec().decode(&custom_ids(&opened)[0]).unwrap().session();
    assert!(bot.endpoint.messages().unwrap().get(session).await.unwrap().is_none());
    assert_eq!(ends.close_user_messages(OWNER as i64, &View::text("forgotten")).await.unwrap(), 0);
}
