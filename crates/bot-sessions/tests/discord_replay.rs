//! Replays: a signed request is good once, and only with a timestamp within the window;
//! a replay gets 401 and changes nothing, in this process or another sharing the store.
#![cfg(feature = "discord")]

mod discord_common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use bot_sessions::DynStore;
use bot_sessions::discord::{DEFAULT_REPLAY_WINDOW, Endpoint, EndpointError};
use discord_common::*;
use serde_json::{Value, json};

fn bytes(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Opens a menu; its +1 custom id and the session's value reader.
async fn open_menu(bot: &TestBot) -> String {
    let opened = interact(&bot.router, &command("menu", OWNER, "tok-open")).await;
    assert_eq!(opened["data"]["content"], "value: 0");
    custom_ids(&opened)[1].clone()
}

#[tokio::test]
async fn a_replayed_command_is_refused_and_reaches_nothing() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    let body = bytes(&command("count", OWNER, "tok"));
    let first = signed(&body);
    let (status, answer) = send(&bot.router, first).await;
    assert_eq!((status, answer["data"]["content"].as_str()), (StatusCode::OK, Some("you ran /count")));
    // The very same bytes and headers, twice more.
    let timestamp = now_timestamp();
    for _ in 0..2 {
        let (status, _) = send(&bot.router, signed_at(&timestamp, &body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(bot.handler_calls(), 1, "the replays reached no handler");
    let stats = bot.endpoint.stats();
    assert_eq!((stats.requests, stats.replays, stats.handled, stats.unauthorized), (3, 2, 1, 0));
}

#[tokio::test]
async fn a_replayed_click_is_refused_and_the_state_is_unchanged() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    let plus = open_menu(&bot).await;
    let click = bytes(&click(&plus, OWNER, 900, "tok-1"));
    let (status, clicked) = send(&bot.router, signed(&click)).await;
    assert_eq!((status, clicked["data"]["content"].as_str()), (StatusCode::OK, Some("value: 1")));
    let (status, _) = send(&bot.router, signed(&click)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the same click again");
    // A fresh click shows what the state is: one increment, not two.
    let (_, next) = send(&bot.router, signed(&bytes(&discord_common::click(&plus, OWNER, 900, "tok-2")))).await;
    assert_eq!(next["data"]["content"], "value: 2");
    assert_eq!(bot.endpoint.stats().replays, 1);
}

#[tokio::test]
async fn timestamps_that_are_not_recent_unix_times_are_refused() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    let now = unix_now();
    let hour_old = (now - 3600).to_string();
    let future = (now + 3600).to_string();
    let just_out = (now - DEFAULT_REPLAY_WINDOW.as_secs() - 5).to_string();
    let cases: [(&str, &str); 9] = [
        ("zero", "0"),
        ("not a time", "not-a-time"),
        ("empty", ""),
        ("an hour old", &hour_old),
        ("an hour ahead", &future),
        ("just out of the window", &just_out),
        ("signed", "+1700000000"),
        ("fractional", "1700000000.5"),
        ("too large", "99999999999999999999999"),
    ];
    for (what, timestamp) in cases {
        let body = bytes(&command("count", OWNER, "tok"));
        let (status, _) = send(&bot.router, signed_at(timestamp, &body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {timestamp:?}");
    }
    // A PING too.
    let ping = bytes(&json!({"type": 1, "id": "1", "token": "t", "version": 1}));
    assert_eq!(send(&bot.router, signed_at("0", &ping)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(bot.handler_calls(), 0);
    assert_eq!(bot.endpoint.stats().replays, 10);

    // Within the window, either way, is fine.
    for offset in [-240_i64, 0, 240] {
        let t = now.checked_add_signed(offset).unwrap().to_string();
        let (status, _) = send(&bot.router, signed_at(&t, &bytes(&command("count", OWNER, "tok")))).await;
        assert_eq!(status, StatusCode::OK, "{offset} s off");
    }
}

#[tokio::test]
async fn the_window_is_configurable_and_checked() {
    let manager = || {
        use bot_sessions::interactive::{CustomIdCodec, Manager, Target};
        let store = bot_sessions::store::memory::MemoryStore::new();
        Manager::builder(store, CustomIdCodec::new("t", Target::Discord).unwrap()).build().unwrap()
    };
    let narrow = Endpoint::builder(public_key())
        .manager(manager())
        .rest(no_rest())
        .replay_window(Duration::from_secs(10))
        .handler(|_ctx, _i| async { Ok(Some(bot_sessions::interactive::Reply::notice("ok"))) })
        .build()
        .unwrap();
    let router = narrow.router();
    let t = (unix_now() - 60).to_string();
    assert_eq!(send(&router, signed_at(&t, &bytes(&command("a", OWNER, "t")))).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&router, signed(&bytes(&command("a", OWNER, "t")))).await.0, StatusCode::OK);

    for (window, what) in [(Duration::ZERO, "zero"), (Duration::from_secs(2 * 24 * 3600), "two days")] {
        let built = Endpoint::builder(public_key()).rest(no_rest()).replay_window(window).build();
        assert!(
            matches!(built, Err(EndpointError::Zero(_) | EndpointError::Config { .. })),
            "{what}: {:?}",
            built.err()
        );
    }
}

/// Two endpoints (two processes' worth: each its own in-process set) on one store:
/// a request that one took is refused by the other; concurrent copies of one click
/// spread over both apply once.
async fn replays_across_two_endpoints(a: DynStore, b: DynStore) {
    // Today's time: Redis expires records by its own clock.
    let clock = bot_sessions::ManualClock::starting_now();
    let first = TestBot::new(BotOptions { store: a, clock: clock.clone(), ..BotOptions::new(no_rest()) });
    let second = TestBot::new(BotOptions { store: b, clock, ..BotOptions::new(no_rest()) });

    let body = bytes(&command("count", OWNER, "tok"));
    let timestamp = now_timestamp();
    assert_eq!(send(&first.router, signed_at(&timestamp, &body)).await.0, StatusCode::OK);
    assert_eq!(send(&second.router, signed_at(&timestamp, &body)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(first.handler_calls() + second.handler_calls(), 1);

    // A menu opened on the first, clicked on both at once with one request.
    let plus = open_menu(&first).await;
    let click = bytes(&click(&plus, OWNER, 900, "tok-1"));
    let copies = 16;
    let tasks: Vec<_> = (0..copies)
        .map(|i| {
            let router = if i % 2 == 0 { first.router.clone() } else { second.router.clone() };
            let request = signed_at(&timestamp, &click);
            tokio::spawn(async move { send(&router, request).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        if status == StatusCode::OK {
            assert_eq!(answer["data"]["content"], "value: 1");
        }
        statuses.push(status);
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert_eq!((ok, refused), (1, copies - 1), "{statuses:?}");
    let (_, next) = send(&second.router, signed(&bytes(&discord_common::click(&plus, OWNER, 900, "tok-2")))).await;
    assert_eq!(next["data"]["content"], "value: 2", "the click applied once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_across_two_endpoints_on_one_memory_store() {
    let store: DynStore = Arc::new(bot_sessions::store::memory::MemoryStore::new());
    replays_across_two_endpoints(store.clone(), store).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_across_two_endpoints_on_one_sqlite_file() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("discord-replay");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("replay-{:016x}.db", rand::random::<u64>()));
    let url = format!("sqlite://{}", path.display());
    // Two handles on the file, as two processes would have.
    let a = bot_sessions::store::open(&url).await.unwrap();
    let b = bot_sessions::store::open(&url).await.unwrap();
    replays_across_two_endpoints(a, b).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_across_two_endpoints_on_one_redis() {
    use bot_sessions::store::redis::{RedisConfig, RedisStore};
    let url = std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let prefix = format!("bstest{:x}:", rand::random::<u64>());
    let connect = || RedisStore::connect_with(&url, RedisConfig::default().prefix(prefix.clone()));
    let a: DynStore = Arc::new(connect().await.expect("the Redis tests need a server"));
    let b: DynStore = Arc::new(connect().await.expect("the Redis tests need a server"));
    replays_across_two_endpoints(a, b).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_across_two_endpoints_on_one_postgres() {
    use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};
    let url =
        std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("discord_replay_{:x}", rand::random::<u32>());
    let connect = || PostgresStore::connect_with(&url, PostgresConfig::default().schema(schema.clone()));
    let a: DynStore = Arc::new(connect().await.expect("the PostgreSQL tests need a server"));
    let b: DynStore = Arc::new(connect().await.expect("the PostgreSQL tests need a server"));
    replays_across_two_endpoints(a, b).await;
}
