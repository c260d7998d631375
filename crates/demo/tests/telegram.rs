//! The demo bot on Telegram, end to end: the real teloxide client (long polling)
//! against a fake Bot API on 127.0.0.1 that serves updates built from the library's
//! Telegram fixtures and records every request. Most tests run the transport
//! ([`telegram::run`]) in process; one drives the real binary through a restart.
//!
//! Nothing sleeps and hopes: every step waits for the request it expects, with a
//! bound ([`HANG_GUARD`]) that only guards against a hang.

#[path = "telegram_support/updates.rs"]
mod updates;

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::testing::telegram::{Call, FakeApi, HANG_GUARD};
use bot_sessions::{DynStore, ManualClock};
use bot_sessions_demo::bot::{Bot, BotConfig, EXPIRED, NOT_MINE, NOT_YOURS, REFUSED};
use bot_sessions_demo::telegram::{self, TelegramError};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use updates::{FORUM, GROUP_CHAT, TOPIC_ID, anonymous_admin, click, in_group, in_topic, text};

/// The bot running on the fake Bot API, in this process.
struct Running {
    api: FakeApi,
    bot: Arc<Bot>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), TelegramError>>,
}

impl Running {
    /// Starts `bot` (configured as the binary configures it on Telegram) and waits
    /// until it polls.
    async fn start(config: BotConfig) -> Running {
        let store: DynStore = Arc::new(MemoryStore::without_sweeper());
        let bot = Arc::new(Bot::new(store, config.key(telegram::KEY)).await.expect("bot"));
        let api = FakeApi::start().await;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(telegram::run(bot.clone(), api.bot(), async move {
            let _ = stopped.await;
        }));
        api.wait_for("poll", |calls| calls.iter().find(|c| c.method == "GetUpdates").map(drop)).await;
        Running { api, bot, stop: Some(stop), task }
    }

    /// Sends a message and returns the bot's single reply to it.
    async fn say(&self, (update, id): (Value, i64)) -> Call {
        let chat = update["message"]["chat"]["id"].as_i64().expect("chat");
        self.api.push([update]);
        self.api.reply_to(chat, id).await
    }

    /// Stops the bot gracefully and checks it stopped cleanly and called only the
    /// methods it needs.
    async fn stop(mut self) -> FakeApi {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(HANG_GUARD, self.task).await.expect("the bot stops").expect("no panic");
        assert!(result.is_ok(), "{result:?}");
        self.api.assert_only_allowed_methods();
        self.api
    }
}

fn config() -> BotConfig {
    BotConfig::default()
}

/// The message a `sendMessage` created, as a later callback query carries it.
fn shown(call: &Call) -> Value {
    call.result.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_for_two_users_in_a_group_and_in_a_forum_topic() {
    let bot = Running::start(config()).await;
    let (ada, bob) = (11, 12);

    // In the group, both fill in their forms at the same time.
    assert!(bot.say(in_group(ada, "/onboard")).await.text().contains("What is your name?"));
    assert!(bot.say(in_group(bob, "/onboard")).await.text().contains("What is your name?"));
    assert!(bot.say(in_group(ada, "Ada Lovelace")).await.text().contains("nice to meet you, Ada Lovelace"));
    assert!(bot.say(in_group(bob, "Bob Kahn")).await.text().contains("nice to meet you, Bob Kahn"));
    assert!(
        bot.say(in_group(bob, "bob@example.com")).await.text().starts_with("name: Bob Kahn, email: bob@example.com")
    );
    assert!(
        bot.say(in_group(ada, "ada@example.com"))
            .await
            .text()
            .starts_with("name: Ada Lovelace, email: ada@example.com")
    );
    assert_eq!(bot.say(in_group(ada, "/confirm")).await.text(), "saved: Ada Lovelace <ada@example.com>");
    assert_eq!(bot.say(in_group(bob, "/cancel")).await.text(), "cancelled");

    // In a forum topic: separate forms from the group's, and from another topic's.
    let reply = bot.say(in_topic(ada, TOPIC_ID, "/onboard")).await;
    assert!(reply.text().contains("What is your name?"));
    assert_eq!(reply.body["chat_id"], json!(FORUM));
    assert_eq!(reply.body["message_thread_id"], json!(TOPIC_ID), "answered in the topic");
    assert!(bot.say(in_topic(bob, TOPIC_ID, "/onboard")).await.text().contains("What is your name?"));
    let elsewhere = bot.say(in_topic(ada, TOPIC_ID + 1, "Ada in another topic")).await;
    assert!(elsewhere.text().contains("only understand commands"), "no form in topic 34: {elsewhere:?}");
    assert_eq!(elsewhere.body["message_thread_id"], json!(TOPIC_ID + 1));
    assert!(bot.say(in_group(ada, "Ada in the group")).await.text().contains("only understand commands"));
    assert!(bot.say(in_topic(ada, TOPIC_ID, "Ada L.")).await.text().contains("nice to meet you, Ada L."));
    assert!(bot.say(in_topic(bob, TOPIC_ID, "Bob K.")).await.text().contains("nice to meet you, Bob K."));
    assert!(bot.say(in_topic(bob, TOPIC_ID, "bob@example.org")).await.text().starts_with("name: Bob K., email:"));
    assert_eq!(bot.say(in_topic(bob, TOPIC_ID, "/confirm")).await.text(), "saved: Bob K. <bob@example.org>");
    // The profile is per user, wherever it was saved.
    assert_eq!(bot.say(in_group(bob, "/profile")).await.text(), "profile: Bob K. <bob@example.org>");
    assert_eq!(bot.say(in_topic(ada, TOPIC_ID, "/profile")).await.text(), "profile: Ada Lovelace <ada@example.com>");

    let api = bot.stop().await;
    assert_eq!(api.calls_of("AnswerCallbackQuery").len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_per_user_in_a_chat_and_per_forum_topic() {
    let bot = Running::start(config()).await;
    for (n, user) in [(1, 21), (2, 21), (1, 22), (3, 21)] {
        assert_eq!(bot.say(in_group(user, "/count")).await.text(), format!("count: {n}"));
    }
    assert_eq!(bot.say(in_topic(21, TOPIC_ID, "/count")).await.text(), "count: 1");
    assert_eq!(bot.say(in_topic(21, TOPIC_ID, "/count@demo_sessions_bot")).await.text(), "count: 2");
    assert_eq!(bot.say(in_topic(21, TOPIC_ID + 1, "/count")).await.text(), "count: 1");
    assert_eq!(bot.say(in_group(21, "/count")).await.text(), "count: 4");

    // A private chat: answered without quoting (it is a one-to-one conversation).
    let (update, _) = text(21, 21, "/count");
    bot.api.push([update]);
    let private = bot
        .api
        .wait_for("a private answer", |calls| {
            calls.iter().find(|c| c.method == "SendMessage" && c.body["chat_id"] == json!(21)).cloned()
        })
        .await;
    assert_eq!(private.text(), "count: 1");
    assert!(private.body.get("reply_parameters").is_none());

    // An anonymous admin has no user: told so, nothing counted.
    let (update, id) = anonymous_admin("/count");
    let chat = update["message"]["chat"]["id"].as_i64().expect("chat");
    bot.api.push([update]);
    assert!(bot.api.reply_to(chat, id).await.text().contains("no user"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_menu_with_a_strangers_click_a_forged_callback_and_a_foreign_button() {
    let bot = Running::start(config()).await;
    let (owner, stranger) = (31, 32);
    let menu = bot.say(in_group(owner, "/menu")).await;
    assert_eq!(menu.text(), "value: 0");
    let labels: Vec<String> = menu.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["-1", "+1", "Done", "Set"]);
    for (_, data) in menu.buttons() {
        assert!(!data.is_empty() && data.len() <= 64, "callback data within Telegram's 64 bytes: {data}");
    }
    let (inc, done) = (menu.button("+1"), menu.button("Done"));
    let message_id = menu.result["message_id"].clone();

    // The owner's click: answered (no text), the menu edited.
    let (update, q) = click(owner, &shown(&menu), &inc);
    bot.api.push([update]);
    let answer = bot.api.answer_of(&q).await;
    assert!(answer.body.get("text").is_none(), "{answer:?}");
    let edit = bot.api.wait_for("an edit", |calls| calls.iter().find(|c| c.method == "EditMessageText").cloned()).await;
    assert_eq!(
        (edit.text(), &edit.body["message_id"], &edit.body["chat_id"]),
        ("value: 1", &message_id, &json!(GROUP_CHAT))
    );
    assert_eq!(edit.buttons().len(), 4, "the buttons stay");

    // A stranger's click: answered `not yours`, nothing edited.
    let (update, q) = click(stranger, &shown(&edit), &inc);
    bot.api.push([update]);
    let answer = bot.api.answer_of(&q).await;
    assert_eq!(answer.body["text"], json!(NOT_YOURS));
    assert!(answer.text().contains("not yours"));

    // Forged data (the signature edited): refused, answered, nothing edited.
    let forged = format!("{}{}", &inc[..inc.len() - 1], if inc.ends_with('A') { 'B' } else { 'A' });
    let (update, q) = click(owner, &shown(&edit), &forged);
    bot.api.push([update]);
    assert_eq!(bot.api.answer_of(&q).await.body["text"], json!(REFUSED));

    // A button that is none of the menus' (another bot's data): answered too.
    let (update, q) = click(owner, &shown(&edit), "like:17");
    bot.api.push([update]);
    assert_eq!(bot.api.answer_of(&q).await.body["text"], json!(NOT_MINE));

    // Done: the final value, without buttons; the profile keeps it. (The group's
    // updates are handled in order: the clicks above were all handled before.)
    let (update, q) = click(owner, &shown(&edit), &done);
    bot.api.push([update]);
    bot.api.answer_of(&q).await;
    assert_eq!(bot.api.edits(2).await, ["value: 1", "final: 1"], "only the owner's clicks edited the menu");
    let last = bot.api.calls_of("EditMessageText").pop().expect("the final edit");
    assert!(last.body.get("reply_markup").is_none(), "Done removes the buttons: {last:?}");
    assert_eq!(bot.say(in_group(owner, "/profile")).await.text(), "profile: menu: 1 (no name yet; /onboard)");

    // A click on the ended menu: `expired`.
    let (update, q) = click(owner, &shown(&edit), &inc);
    bot.api.push([update]);
    assert_eq!(bot.api.answer_of(&q).await.body["text"], json!(EXPIRED));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_menu_and_an_idle_form_expire_where_they_were_opened() {
    let clock = ManualClock::starting_now();
    let ttl = Duration::from_secs(60);
    let bot = Running::start(config().clock(Arc::new(clock.clone())).menu_ttl(ttl).onboarding_ttl(ttl)).await;
    let owner = 41;
    let menu = bot.say(in_topic(owner, TOPIC_ID, "/menu")).await;
    assert_eq!(menu.body["message_thread_id"], json!(TOPIC_ID));
    assert!(bot.say(in_topic(owner, TOPIC_ID, "/onboard")).await.text().contains("What is your name?"));
    // The forum's updates are handled in order: the menu's message id was recorded
    // before the /onboard above was answered.

    clock.advance(ttl + Duration::from_secs(1));
    assert_eq!(bot.bot.expire().await.expect("expire"), 2, "the menu and the form");
    let edit = bot
        .api
        .wait_for("the expiry edit", |calls| calls.iter().find(|c| c.method == "EditMessageText").cloned())
        .await;
    assert_eq!(edit.body["message_id"], menu.result["message_id"], "the menu's own message");
    assert_eq!(edit.body["chat_id"], json!(FORUM));
    assert_eq!(edit.text(), "expired (value: 0)");
    assert!(edit.body.get("reply_markup").is_none(), "no buttons left: {edit:?}");
    let notice = bot
        .api
        .wait_for("the form's expiry notice", |calls| {
            calls.iter().find(|c| c.method == "SendMessage" && c.text().contains("onboarding form expired")).cloned()
        })
        .await;
    assert_eq!((&notice.body["chat_id"], &notice.body["message_thread_id"]), (&json!(FORUM), &json!(TOPIC_ID)));

    // A late click on the expired menu is answered `expired`.
    let (update, q) = click(owner, &shown(&menu), &menu.button("+1"));
    bot.api.push([update]);
    assert_eq!(bot.api.answer_of(&q).await.body["text"], json!(EXPIRED));

    // A menu whose expiry no sweep found yet: the click ends it, says so and edits it.
    let second = bot.say(in_group(owner, "/menu")).await;
    clock.advance(ttl + Duration::from_secs(1));
    let (update, q) = click(owner, &shown(&second), &second.button("+1"));
    bot.api.push([update]);
    assert_eq!(bot.api.answer_of(&q).await.body["text"], json!(EXPIRED));
    let edit = bot
        .api
        .wait_for("the second menu's expiry edit", |calls| {
            calls
                .iter()
                .find(|c| c.method == "EditMessageText" && c.body["message_id"] == second.result["message_id"])
                .cloned()
        })
        .await;
    assert_eq!((edit.text(), edit.body.get("reply_markup")), ("expired (value: 0)", None));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_40_updates_is_all_answered_with_exact_counts() {
    let bot = Running::start(config()).await;
    let owner = 51;
    let menu = bot.say(in_group(owner, "/menu")).await;
    let inc = menu.button("+1");

    // 30 /count from 3 users in the group and in two topics, and 10 clicks on the
    // menu, all queued before the bot takes any.
    let mut updates = Vec::new();
    let mut messages = Vec::new();
    let mut queries = Vec::new();
    for round in 0..10 {
        for (i, user) in [51, 52, 53].into_iter().enumerate() {
            let (update, id) = match (round + i) % 3 {
                0 => in_group(user, "/count"),
                1 => in_topic(user, TOPIC_ID, "/count"),
                _ => in_topic(user, TOPIC_ID + 1, "/count"),
            };
            messages.push((update["message"]["chat"]["id"].as_i64().expect("chat"), id, user, (round + i) % 3));
            updates.push(update);
        }
        let (update, q) = click(owner, &shown(&menu), &inc);
        queries.push(q);
        updates.push(update);
    }
    assert_eq!(updates.len(), 40);
    bot.api.push(updates);

    let mut counts = std::collections::HashMap::<(i64, usize), Vec<u64>>::new();
    for (chat, id, user, place) in messages {
        let reply = bot.api.reply_to(chat, id).await;
        let n = reply.text().strip_prefix("count: ").and_then(|n| n.parse().ok()).expect("a count");
        counts.entry((user, place)).or_default().push(n);
    }
    for ((user, place), mut seen) in counts {
        seen.sort_unstable();
        let expected: Vec<u64> = (1..=seen.len() as u64).collect();
        assert_eq!(seen, expected, "user {user} in place {place}: every count once");
    }
    for q in &queries {
        bot.api.answer_of(q).await;
    }
    let expected: Vec<String> = (1..=10).map(|n| format!("value: {n}")).collect();
    assert_eq!(bot.api.edits(10).await, expected, "ten clicks, in order, each applied once");
    assert_eq!(bot.api.calls_of("SendMessage").len(), 31, "the menu and 30 counts");
    bot.stop().await;
}

// ---- the real binary ----

mod binary {
    use std::path::PathBuf;
    use std::process::Stdio;

    use super::*;
    use tokio::process::{Child, Command};

    fn fresh_db() -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-tests");
        std::fs::create_dir_all(&dir).expect("dir");
        dir.join(format!("telegram-{}-{:016x}.db", std::process::id(), rand::random::<u64>()))
    }

    /// `bot-sessions-demo telegram --store sqlite://DB` against the fake Bot API.
    fn spawn(api: &FakeApi, store: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
            .args(["telegram", "--store", store, "--menu-ttl", "3600"])
            .env("TELOXIDE_TOKEN", "1234:TEST")
            .env("TELOXIDE_API_URL", &api.url)
            .env_remove("TELOXIDE_PROXY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the demo")
    }

    /// Sends SIGTERM and waits for a clean exit.
    async fn stop(mut child: Child) {
        let pid = child.id().expect("running");
        let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill -TERM");
        assert!(status.success());
        let exit = tokio::time::timeout(HANG_GUARD, child.wait()).await.expect("the bot stops").expect("wait");
        assert!(exit.success(), "{exit:?}");
    }

    /// Waits for a `getUpdates` after the first `before` requests.
    async fn polls(api: &FakeApi, before: usize) {
        api.wait_for("poll", |calls| calls.iter().skip(before).any(|c| c.method == "GetUpdates").then_some(())).await;
    }

    async fn say(api: &FakeApi, (update, id): (Value, i64)) -> Call {
        let chat = update["message"]["chat"]["id"].as_i64().expect("chat");
        api.push([update]);
        api.reply_to(chat, id).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_binary_keeps_a_form_and_a_menu_across_a_restart() {
        let api = FakeApi::start().await;
        let db = fresh_db();
        let store = format!("sqlite://{}", db.display());
        let (ada, bob) = (61, 62);

        let first = spawn(&api, &store);
        polls(&api, 0).await;
        assert!(say(&api, in_group(ada, "/onboard")).await.text().contains("What is your name?"));
        assert!(say(&api, in_topic(bob, TOPIC_ID, "/onboard")).await.text().contains("What is your name?"));
        assert!(say(&api, in_group(ada, "Ada Lovelace")).await.text().contains("What is your email?"));
        assert_eq!(say(&api, in_group(ada, "/count")).await.text(), "count: 1");
        let menu = say(&api, in_group(ada, "/menu")).await;
        let (inc, done) = (menu.button("+1"), menu.button("Done"));
        let (update, q) = click(ada, &shown(&menu), &inc);
        let last = api.push([update])[0];
        api.answer_of(&q).await;
        assert_eq!(api.edits(1).await, ["value: 1"]);
        stop(first).await;
        // Stopping, the bot confirmed every update it took (a getUpdates that returns
        // at once); the next process gets none of them again (`say` and `answer_of`
        // check that each is answered once).
        let confirmed =
            |c: &Call| c.method == "GetUpdates" && c.body["timeout"] == json!(0) && c.body["offset"] == json!(last + 1);
        assert!(api.calls().iter().any(confirmed), "updates confirmed at stop");

        // A new process on the same SQLite file carries on.
        let before = api.calls().len();
        let second = spawn(&api, &store);
        polls(&api, before).await;
        let summary = say(&api, in_group(ada, "ada@example.com")).await;
        assert!(summary.text().starts_with("name: Ada Lovelace, email: ada@example.com"), "{summary:?}");
        assert_eq!(say(&api, in_group(ada, "/confirm")).await.text(), "saved: Ada Lovelace <ada@example.com>");
        assert!(say(&api, in_topic(bob, TOPIC_ID, "Bob")).await.text().contains("nice to meet you, Bob"));
        assert_eq!(say(&api, in_group(ada, "/count")).await.text(), "count: 2");

        // The menu opened before the restart still takes clicks; the key that signs
        // its buttons is in the store.
        let shown_now = json!({ "message_id": menu.result["message_id"], "date": 1, "chat": menu.result["chat"],
            "text": "value: 1", "reply_markup": menu.body["reply_markup"] });
        let (update, q) = click(ada, &shown_now, &inc);
        api.push([update]);
        api.answer_of(&q).await;
        let (update, q) = click(bob, &shown_now, &inc);
        api.push([update]);
        assert!(api.answer_of(&q).await.body["text"].as_str().unwrap_or_default().contains("not yours"));
        let (update, q) = click(ada, &shown_now, &format!("{inc}x"));
        api.push([update]);
        assert!(api.answer_of(&q).await.body["text"].as_str().unwrap_or_default().contains("refused"));
        let (update, q) = click(ada, &shown_now, &done);
        api.push([update]);
        api.answer_of(&q).await;
        assert_eq!(api.edits(3).await, ["value: 1", "value: 2", "final: 2"]);
        assert_eq!(
            say(&api, in_group(ada, "/profile")).await.text(),
            "profile: Ada Lovelace <ada@example.com>, menu: 2"
        );
        stop(second).await;

        // Every update was answered once across the two processes (`say` and
        // `answer_of` check it), with only the methods the demo needs.
        api.assert_only_allowed_methods();
        for method in ["GetMe", "GetWebhookInfo", "DeleteWebhook"] {
            assert!(!api.calls_of(method).is_empty(), "{method} called");
        }
        let _ = std::fs::remove_file(&db);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_binary_without_a_token_says_so() {
        let out = Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
            .args(["telegram", "--store", "memory://"])
            .env_remove("TELOXIDE_TOKEN")
            .output()
            .await
            .expect("run");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("TELOXIDE_TOKEN"), "{out:?}");
    }
}
