//! The real `bot-sessions-demo` binary on Discord: `discord` on a free port (a restart
//! in the middle of a menu, `--menu-ttl` expiry editing the message over REST at
//! `--api-url`) and `register` against a fake Discord API.

mod discord_support;

use bot_sessions::testing::discord::FakeRest;
use discord_support::payloads::{APP, CHANNEL, OWNER, STRANGER, click, command, content, custom_ids, is_ephemeral};
use discord_support::{Binary, fresh_db};

#[tokio::test]
async fn a_menu_survives_the_binary_being_killed_and_started_again() {
    let rest = FakeRest::start().await;
    let store = format!("sqlite://{}", fresh_db().display());
    let args = ["--store", &store, "--api-url", &rest.base];
    let first = Binary::start(&args).await;
    let menu = first.client.send(&command("menu", OWNER, CHANNEL, "b0")).await;
    assert_eq!(content(&menu), "value: 0");
    let inc = custom_ids(&menu)[1].clone();
    let one = first.client.send(&click(&inc, OWNER, CHANNEL, 600, "b1")).await;
    assert_eq!(content(&one), "value: 1");
    first.kill().await;

    let second = Binary::start(&args).await;
    let two = second.client.send(&click(&inc, OWNER, CHANNEL, 600, "b2")).await;
    assert_eq!((two["type"].as_u64(), content(&two)), (Some(7), "value: 2"));
    let stranger = second.client.send(&click(&inc, STRANGER, CHANNEL, 600, "b3")).await;
    assert!(is_ephemeral(&stranger) && content(&stranger).contains("not yours"), "{stranger}");
    let done = second.client.send(&click(&custom_ids(&two)[2], OWNER, CHANNEL, 600, "b4")).await;
    assert_eq!(content(&done), "final: 2");
    assert!(custom_ids(&done).is_empty());
    second.kill().await;
}

#[tokio::test]
async fn after_menu_ttl_idle_seconds_the_message_says_expired_without_buttons() {
    let mut rest = FakeRest::start().await;
    let store = format!("sqlite://{}", fresh_db().display());
    let bot = Binary::start(&["--store", &store, "--api-url", &rest.base, "--menu-ttl", "1"]).await;
    let menu = bot.client.send(&command("menu", OWNER, CHANNEL, "x0")).await;
    let inc = custom_ids(&menu)[1].clone();
    // The background sweeper finds it within a second or two of its TTL; the fake
    // API waits up to 10 s for the edit.
    let call = rest.next().await;
    assert_eq!(call.method, "PATCH");
    assert_eq!(call.path, format!("/api/v10/webhooks/{APP}/x0/messages/@original"));
    assert_eq!(call.body["content"], "expired (value: 0)");
    assert_eq!(call.body["components"], serde_json::json!([]));
    let late = bot.client.send(&click(&inc, OWNER, CHANNEL, 601, "x1")).await;
    assert!(is_ephemeral(&late) && content(&late).contains("expired"), "{late}");
    bot.kill().await;
}

/// `register ARGS` with the bot token in DISCORD_TOKEN (never a flag: it would show in `ps`).
async fn register(token: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .env("DISCORD_TOKEN", token)
        .arg("register")
        .args(args)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn register_puts_the_commands_globally_or_in_a_guild() {
    let mut rest = FakeRest::start().await;
    let out = register("tok.en", &["--application-id", "42", "--api-url", &rest.base]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let call = rest.next().await;
    assert_eq!((call.method.as_str(), call.path.as_str()), ("PUT", "/api/v10/applications/42/commands"));
    assert_eq!(call.authorization.as_deref(), Some("Bot tok.en"));
    let names: Vec<&str> = call.body.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["count", "onboard", "profile", "forget", "menu"]);

    let guild = ["--application-id", "42", "--guild", "7", "--api-url", &rest.base];
    let out = register("tok.en", &guild).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rest.next().await.path, "/api/v10/applications/42/guilds/7/commands");
    assert!(String::from_utf8_lossy(&out.stderr).contains("in guild 7"));
}

#[tokio::test]
async fn register_takes_the_token_from_a_file_and_refuses_it_as_a_flag() {
    let mut rest = FakeRest::start().await;
    let file = std::env::temp_dir().join(format!("demo-token-{}", std::process::id()));
    std::fs::write(&file, "fi.le\n").unwrap();
    let path = file.display().to_string();
    let out = register("", &["--token-file", &path, "--application-id", "42", "--api-url", &rest.base]).await;
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rest.next().await.authorization.as_deref(), Some("Bot fi.le"));

    let out = register("", &["--token", "se.cret", "--application-id", "42", "--api-url", &rest.base]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("DISCORD_TOKEN") && !stderr.contains("se.cret"), "{stderr}");
    let out = register("", &["--application-id", "42", "--api-url", &rest.base]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("no bot token"), "{stderr}");
    let help = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["register", "--help"])
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("DISCORD_TOKEN") && help.contains("--token-file") && help.contains("`ps`"), "{help}");
}

#[tokio::test]
async fn register_says_clearly_what_went_wrong() {
    let rest = FakeRest::start().await;
    rest.answer(401, serde_json::json!({"message": "401: Unauthorized", "code": 0}));
    let out = register("wrong", &["--application-id", "42", "--api-url", &rest.base]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401") && stderr.contains("bot token is wrong"), "{stderr}");

    let out = register("t", &["--application-id", "42", "--api-url", "http://127.0.0.1:1/api"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach http://127.0.0.1:1/api/applications/42/commands")
    );

    let out = register("t", &["--application-id", "not-a-number"]).await;
    assert!(!out.status.success());
}

#[tokio::test]
async fn a_bad_public_key_stops_the_start_with_a_clear_error() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["discord", "--listen", "127.0.0.1:0", "--public-key", "abc", "--store", "memory://"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public-key `abc` is not an Ed25519 public key"));
}
