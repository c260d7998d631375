//! The demo bot on Discord, end to end over HTTP: the endpoint served in process on a
//! free port, every request signed with the library's test key (RFC 8032 test 1),
//! bodies built from the real payloads in tests/data/discord/, REST calls recorded
//! by a fake Discord API.

mod discord_support;

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::discord::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use bot_sessions::testing::discord::{FakeRest, TestKey};
use bot_sessions::{DynStore, ManualClock};
use bot_sessions_demo::bot::{BotConfig, ONBOARD_CANCEL, ONBOARD_CONFIRM, ONBOARD_MODAL};
use discord_support::payloads::{
    APP, CHANNEL, OWNER, STRANGER, click, command, content, custom_ids, is_ephemeral, ping, submit,
};
use discord_support::{InProcess, fresh_db};
use serde_json::Value;
use tokio::sync::Barrier;

const MENU_TTL: Duration = Duration::from_secs(60);

async fn sqlite_at(db: &std::path::Path) -> DynStore {
    bot_sessions::store::open(&format!("sqlite://{}", db.display())).await.unwrap()
}

async fn sqlite() -> DynStore {
    sqlite_at(&fresh_db()).await
}

/// The bot on a fresh SQLite file, a manual clock, REST calls to `rest`.
async fn start(rest: &FakeRest) -> (InProcess, ManualClock) {
    let clock = ManualClock::starting_now();
    let config = BotConfig::default().menu_ttl(MENU_TTL).clock(Arc::new(clock.clone()));
    (InProcess::start(sqlite().await, config, &rest.base).await, clock)
}

#[tokio::test]
async fn a_ping_is_answered_pong() {
    let rest = FakeRest::start().await;
    let (bot, _) = start(&rest).await;
    let response = bot.client.send(&ping()).await;
    assert_eq!(response, serde_json::json!({"type": 1}));
    assert_eq!(bot.discord.endpoint().stats().pings, 1);
    bot.stop().await;
}

#[tokio::test]
async fn every_kind_of_bad_signature_gets_401_and_nothing_is_routed() {
    let mut rest = FakeRest::start().await;
    let (bot, _) = start(&rest).await;
    let client = &bot.client;
    let body = serde_json::to_vec(&command("count", OWNER, CHANNEL, "tok")).unwrap();
    let (good, ts) = client.key.sign(&body);
    let other_key = TestKey::from_secret([7; 32]);
    let by_other_key = other_key.sign_at(&ts, &body);
    let other_body = client.key.sign_at(&ts, b"{\"type\":2}");
    let other_time = client.key.sign_at("1", &body);
    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no headers", vec![]),
        ("no signature", vec![(TIMESTAMP_HEADER, &ts)]),
        ("no timestamp", vec![(SIGNATURE_HEADER, &good)]),
        ("not hex", vec![(SIGNATURE_HEADER, "zz"), (TIMESTAMP_HEADER, &ts)]),
        ("too short", vec![(SIGNATURE_HEADER, &good[..64]), (TIMESTAMP_HEADER, &ts)]),
        ("another key", vec![(SIGNATURE_HEADER, &by_other_key), (TIMESTAMP_HEADER, &ts)]),
        ("another body", vec![(SIGNATURE_HEADER, &other_body), (TIMESTAMP_HEADER, &ts)]),
        ("another timestamp", vec![(SIGNATURE_HEADER, &other_time), (TIMESTAMP_HEADER, &ts)]),
        ("a flipped digit", vec![(SIGNATURE_HEADER, &flipped), (TIMESTAMP_HEADER, &ts)]),
    ];
    for (what, headers) in &cases {
        let (status, text) = client.post_raw(body.clone(), headers).await;
        assert_eq!(status, 401, "{what}: {text}");
    }
    // A tampered body under a good signature.
    let mut tampered = body.clone();
    let at = tampered.len() - 2;
    tampered[at] = b' ';
    let (status, _) = client.post_raw(tampered, &[(SIGNATURE_HEADER, &good), (TIMESTAMP_HEADER, &ts)]).await;
    assert_eq!(status, 401, "tampered body");

    let stats = bot.discord.endpoint().stats();
    assert_eq!((stats.unauthorized, stats.routed, stats.handled), (cases.len() as u64 + 1, 0, 0));
    // Nothing counted: the first counted /count is 1.
    let response = client.send(&command("count", OWNER, CHANNEL, "tok")).await;
    assert_eq!(content(&response), "count: 1");
    assert!(rest.received().is_empty());
    bot.stop().await;
}

#[tokio::test]
async fn count_from_20_concurrent_requests_of_one_user_counts_exactly() {
    let rest = FakeRest::start().await;
    let (bot, _) = start(&rest).await;
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (client, barrier) = (bot.client.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let body = command("count", OWNER, CHANNEL, &format!("tok-{i}"));
            barrier.wait().await;
            client.send(&body).await
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response["type"], 4, "{response}");
        let n = content(&response).strip_prefix("count: ").unwrap_or_else(|| panic!("{response}"));
        counts.push(n.parse::<u64>().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<_>>());
    let next = bot.client.send(&command("count", OWNER, CHANNEL, "tok-21")).await;
    assert_eq!(content(&next), "count: 21");
    // Per user in the channel: someone else, or the same user elsewhere, starts at 1.
    let other = bot.client.send(&command("count", STRANGER, CHANNEL, "tok-s")).await;
    assert_eq!(content(&other), "count: 1");
    let elsewhere = bot.client.send(&command("count", OWNER, CHANNEL + 1, "tok-e")).await;
    assert_eq!(content(&elsewhere), "count: 1");
    bot.stop().await;
}

#[tokio::test]
async fn onboarding_by_modal_saves_the_profile_or_asks_to_confirm() {
    let rest = FakeRest::start().await;
    let (bot, _) = start(&rest).await;
    let c = &bot.client;

    let modal = c.send(&command("onboard", OWNER, CHANNEL, "t1")).await;
    assert_eq!(modal["type"], 9, "{modal}");
    assert_eq!(modal["data"]["custom_id"], ONBOARD_MODAL);
    assert_eq!(custom_ids(&modal), ["name", "email"]);

    let bad = c.send(&submit(ONBOARD_MODAL, &[("name", "Ada"), ("email", "ada")], OWNER, CHANNEL, "t2")).await;
    assert!(is_ephemeral(&bad), "{bad}");
    assert!(content(&bad).contains("does not look like an email"), "{bad}");
    let none = c.send(&command("profile", OWNER, CHANNEL, "t3")).await;
    assert!(content(&none).starts_with("no profile saved"), "{none}");

    let fields = [("name", "  Ada   Lovelace "), ("email", "ada@example.com")];
    let saved = c.send(&submit(ONBOARD_MODAL, &fields, OWNER, CHANNEL, "t4")).await;
    assert_eq!((saved["type"].as_u64(), content(&saved)), (Some(4), "saved: Ada Lovelace <ada@example.com>"));
    assert!(is_ephemeral(&saved));
    let profile = c.send(&command("profile", OWNER, CHANNEL, "t5")).await;
    assert_eq!(content(&profile), "profile: Ada Lovelace <ada@example.com>");
    assert!(is_ephemeral(&profile));

    // A different profile: asked first; "Keep mine" keeps it.
    let other = [("name", "Grace Hopper"), ("email", "grace@example.com")];
    let ask = c.send(&submit(ONBOARD_MODAL, &other, OWNER, CHANNEL, "t6")).await;
    assert!(content(&ask).contains("Replace it with Grace Hopper <grace@example.com>?"), "{ask}");
    assert_eq!(custom_ids(&ask), [ONBOARD_CONFIRM, ONBOARD_CANCEL]);
    assert!(is_ephemeral(&ask));
    let kept = c.send(&click(ONBOARD_CANCEL, OWNER, CHANNEL, 901, "t7")).await;
    assert_eq!((kept["type"].as_u64(), content(&kept)), (Some(7), "cancelled"));
    assert!(custom_ids(&kept).is_empty());
    let profile = c.send(&command("profile", OWNER, CHANNEL, "t8")).await;
    assert_eq!(content(&profile), "profile: Ada Lovelace <ada@example.com>");

    // Asked again; "Replace" saves it. A stranger's click confirms nothing of theirs.
    c.send(&submit(ONBOARD_MODAL, &other, OWNER, CHANNEL, "t9")).await;
    let stranger = c.send(&click(ONBOARD_CONFIRM, STRANGER, CHANNEL, 902, "t10")).await;
    assert!(content(&stranger).starts_with("nothing to confirm"), "{stranger}");
    let replaced = c.send(&click(ONBOARD_CONFIRM, OWNER, CHANNEL, 902, "t11")).await;
    assert_eq!((replaced["type"].as_u64(), content(&replaced)), (Some(7), "saved: Grace Hopper <grace@example.com>"));
    let profile = c.send(&command("profile", OWNER, CHANNEL, "t12")).await;
    assert_eq!(content(&profile), "profile: Grace Hopper <grace@example.com>");
    // The same profile again is simply saved.
    let same = c.send(&submit(ONBOARD_MODAL, &other, OWNER, CHANNEL, "t13")).await;
    assert_eq!(content(&same), "saved: Grace Hopper <grace@example.com>");
    bot.stop().await;
}

/// Opens a menu for OWNER; the response.
async fn open_menu(bot: &InProcess, token: &str) -> Value {
    let menu = bot.client.send(&command("menu", OWNER, CHANNEL, token)).await;
    assert_eq!((menu["type"].as_u64(), content(&menu)), (Some(4), "value: 0"), "{menu}");
    assert!(!is_ephemeral(&menu), "others must see the menu to click it");
    assert_eq!(custom_ids(&menu).len(), 4, "-1, +1, Done, Set");
    menu
}

#[tokio::test]
async fn a_strangers_click_is_answered_not_yours_in_private() {
    let rest = FakeRest::start().await;
    let (bot, _) = start(&rest).await;
    let c = &bot.client;
    let menu = open_menu(&bot, "m0").await;
    let [dec, inc, done, _set] = <[String; 4]>::try_from(custom_ids(&menu)).unwrap();

    let one = c.send(&click(&inc, OWNER, CHANNEL, 500, "m1")).await;
    assert_eq!((one["type"].as_u64(), content(&one)), (Some(7), "value: 1"));
    let stranger = c.send(&click(&inc, STRANGER, CHANNEL, 500, "m2")).await;
    assert_eq!(stranger["type"], 4);
    assert!(is_ephemeral(&stranger), "{stranger}");
    assert!(content(&stranger).contains("not yours"), "{stranger}");
    // The stranger changed nothing.
    let two = c.send(&click(&inc, OWNER, CHANNEL, 500, "m3")).await;
    assert_eq!(content(&two), "value: 2");
    let one = c.send(&click(&dec, OWNER, CHANNEL, 500, "m4")).await;
    assert_eq!(content(&one), "value: 1");

    let end = c.send(&click(&done, OWNER, CHANNEL, 500, "m5")).await;
    assert_eq!((end["type"].as_u64(), content(&end)), (Some(7), "final: 1"));
    assert!(custom_ids(&end).is_empty(), "{end}");
    let late = c.send(&click(&inc, OWNER, CHANNEL, 500, "m6")).await;
    assert!(is_ephemeral(&late) && content(&late).contains("expired"), "{late}");
    let profile = c.send(&command("profile", OWNER, CHANNEL, "m7")).await;
    assert!(content(&profile).contains("menu: 1"), "{profile}");
    bot.stop().await;
}

#[tokio::test]
async fn a_replayed_count_or_click_gets_401_and_counts_nothing() {
    let rest = FakeRest::start().await;
    let (bot, _) = start(&rest).await;
    let c = &bot.client;
    // One signed /count, sent three times with the same headers: counted once.
    let body = serde_json::to_vec(&command("count", OWNER, CHANNEL, "tok")).unwrap();
    let (signature, ts) = c.key.sign(&body);
    let headers = [(SIGNATURE_HEADER, signature.as_str()), (TIMESTAMP_HEADER, ts.as_str())];
    let statuses = [
        c.post_raw(body.clone(), &headers).await.0,
        c.post_raw(body.clone(), &headers).await.0,
        c.post_raw(body.clone(), &headers).await.0,
    ];
    assert_eq!(statuses, [200, 401, 401]);
    assert_eq!(content(&c.send(&command("count", OWNER, CHANNEL, "tok-2")).await), "count: 2");

    // Timestamps that are not recent Unix times, each correctly signed.
    let now: u64 = ts.parse().unwrap();
    let (hour_old, ahead) = ((now - 3600).to_string(), (now + 3600).to_string());
    for timestamp in ["0", "not-a-time", "", &hour_old, &ahead] {
        let body = serde_json::to_vec(&command("count", OWNER, CHANNEL, "tok-t")).unwrap();
        let signature = c.key.sign_at(timestamp, &body);
        let (status, text) = c.post_raw(body, &[(SIGNATURE_HEADER, &signature), (TIMESTAMP_HEADER, timestamp)]).await;
        assert_eq!(status, 401, "{timestamp:?}: {text}");
    }
    assert_eq!(content(&c.send(&command("count", OWNER, CHANNEL, "tok-3")).await), "count: 3");

    // A +1 click replayed: applied once.
    let menu = open_menu(&bot, "p0").await;
    let inc = custom_ids(&menu)[1].clone();
    let body = serde_json::to_vec(&click(&inc, OWNER, CHANNEL, 501, "p1")).unwrap();
    let (signature, ts) = c.key.sign(&body);
    let headers = [(SIGNATURE_HEADER, signature.as_str()), (TIMESTAMP_HEADER, ts.as_str())];
    let (status, text) = c.post_raw(body.clone(), &headers).await;
    let clicked: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, content(&clicked)), (200, "value: 1"));
    assert_eq!(c.post_raw(body, &headers).await.0, 401);
    assert_eq!(content(&c.send(&click(&inc, OWNER, CHANNEL, 501, "p2")).await), "value: 2");
    assert_eq!(bot.discord.endpoint().stats().replays, 2 + 5 + 1);
    bot.stop().await;
}

#[tokio::test]
async fn a_forged_custom_id_is_refused_and_changes_nothing() {
    let rest = FakeRest::start().await;
    let (bot, _) = start(&rest).await;
    let c = &bot.client;
    let menu = open_menu(&bot, "f0").await;
    let inc = custom_ids(&menu)[1].clone();
    // Another character at the end (the signature's), and the "done" id's signature on "inc".
    let mut forged = inc.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for id in [forged, format!("{inc}x"), "m:garbage".to_owned()] {
        let refused = c.send(&click(&id, OWNER, CHANNEL, 501, "f1")).await;
        assert!(is_ephemeral(&refused), "{id}: {refused}");
        assert!(content(&refused).starts_with("refused"), "{id}: {refused}");
    }
    let one = c.send(&click(&inc, OWNER, CHANNEL, 501, "f2")).await;
    assert_eq!(content(&one), "value: 1");
    // A button that is none of the bot's.
    let alien = c.send(&click("click_one", OWNER, CHANNEL, 501, "f3")).await;
    assert!(is_ephemeral(&alien) && content(&alien).contains("not one of mine"), "{alien}");
    bot.stop().await;
}

#[tokio::test]
async fn a_restarted_bot_takes_the_clicks_of_a_menu_opened_before() {
    let rest = FakeRest::start().await;
    let db = fresh_db();
    let config = || BotConfig::default().menu_ttl(MENU_TTL);
    let first = InProcess::start(sqlite_at(&db).await, config(), &rest.base).await;
    let menu = open_menu(&first, "r0").await;
    let inc = custom_ids(&menu)[1].clone();
    let one = first.client.send(&click(&inc, OWNER, CHANNEL, 502, "r1")).await;
    assert_eq!(content(&one), "value: 1");
    first.stop().await;

    let second = InProcess::start(sqlite_at(&db).await, config(), &rest.base).await;
    let two = second.client.send(&click(&inc, OWNER, CHANNEL, 502, "r2")).await;
    assert_eq!((two["type"].as_u64(), content(&two)), (Some(7), "value: 2"));
    let stranger = second.client.send(&click(&inc, STRANGER, CHANNEL, 502, "r3")).await;
    assert!(content(&stranger).contains("not yours"));
    second.stop().await;
}

#[tokio::test]
async fn an_expired_menu_has_its_original_message_edited_over_rest() {
    let mut rest = FakeRest::start().await;
    let (bot, clock) = start(&rest).await;
    let menu = open_menu(&bot, "tok-menu").await;
    let inc = custom_ids(&menu)[1].clone();
    let one = bot.client.send(&click(&inc, OWNER, CHANNEL, 503, "tok-click")).await;
    assert_eq!(content(&one), "value: 1");
    assert!(rest.received().is_empty(), "nothing over REST while the menu lives");

    clock.advance(MENU_TTL + Duration::from_secs(1));
    assert_eq!(bot.bot.expire().await.unwrap(), 1);
    let call = rest.next().await;
    assert_eq!(call.method, "PATCH");
    // The menu's message, through the latest interaction whose response showed it
    // (the click updated it in place, and its token has the longest to live).
    assert_eq!(call.path, format!("/api/v10/webhooks/{APP}/tok-click/messages/@original"));
    assert_eq!(call.authorization, None, "the interaction token is the credential");
    assert_eq!(call.body["content"], "expired (value: 1)");
    assert_eq!(call.body["components"], serde_json::json!([]), "{}", call.body);

    let late = bot.client.send(&click(&inc, OWNER, CHANNEL, 503, "tok-late")).await;
    assert!(is_ephemeral(&late) && content(&late).contains("expired"), "{late}");
    bot.stop().await;
}

#[tokio::test]
async fn forget_closes_the_users_menus_and_deletes_their_sessions() {
    let mut rest = FakeRest::start().await;
    let (bot, _) = start(&rest).await;
    let c = &bot.client;
    c.send(&command("count", OWNER, CHANNEL, "g0")).await;
    let menu = open_menu(&bot, "g1").await;
    let inc = custom_ids(&menu)[1].clone();
    let forgotten = c.send(&command("forget", OWNER, CHANNEL, "g2")).await;
    assert!(is_ephemeral(&forgotten));
    assert!(content(&forgotten).starts_with("forgotten: deleted"), "{forgotten}");
    let call = rest.next().await;
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("PATCH", &*format!("/api/v10/webhooks/{APP}/g1/messages/@original"))
    );
    assert_eq!(call.body["content"], "forgotten");
    let count = c.send(&command("count", OWNER, CHANNEL, "g3")).await;
    assert_eq!(content(&count), "count: 1");
    let late = c.send(&click(&inc, OWNER, CHANNEL, 504, "g4")).await;
    assert!(content(&late).contains("expired"), "{late}");
    bot.stop().await;
}
