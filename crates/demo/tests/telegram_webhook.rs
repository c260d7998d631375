//! Two processes of the demo bot under one Telegram webhook, on one store (SQLite,
//! Redis, PostgreSQL): the real binary (`bot-sessions-demo telegram --webhook-listen
//! ... --webhook-url ... --webhook-secret ...`) twice, talking to a fake Bot API on
//! 127.0.0.1, and the test in the load balancer's place, POSTing updates built from
//! the library's Telegram fixtures to either process.
//!
//! Nothing sleeps and hopes: a POST is answered once its update is handled, and every
//! other wait ends on the request it expects ([`HANG_GUARD`] only guards a hang).

#[path = "telegram_support/updates.rs"]
mod updates;

use std::process::Stdio;

use bot_sessions::telegram::SECRET_HEADER;
use bot_sessions::testing::telegram::{Call, FakeApi, HANG_GUARD};
use bot_sessions_demo::bot::NOT_YOURS;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use updates::{GROUP_CHAT, click, in_group};

/// The public URL both processes register; its path is what they serve.
const PUBLIC_URL: &str = "https://bot.example.invalid/telegram/hook";

/// How a process is given the secret.
#[derive(Clone, Copy)]
enum Given {
    Flag,
    Env,
}

/// One `bot-sessions-demo telegram` in webhook mode.
struct Process {
    child: Child,
    /// `http://127.0.0.1:PORT/telegram/hook`.
    url: String,
    /// Everything it wrote on stderr, once it exits.
    stderr: tokio::task::JoinHandle<String>,
}

async fn spawn(api: &FakeApi, store: &str, secret: &str, given: Given) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"));
    command
        .args(["telegram", "--store", store, "--menu-ttl", "3600"])
        .args(["--webhook-listen", "127.0.0.1:0", "--webhook-url", PUBLIC_URL])
        .env("TELOXIDE_TOKEN", "1234:TEST")
        .env("TELOXIDE_API_URL", &api.url)
        .env_remove("TELOXIDE_PROXY")
        .env_remove("BOT_SESSIONS_WEBHOOK_SECRET")
        .env_remove("BOT_SESSIONS_STORE")
        .env_remove("BOT_SESSIONS_KEYS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match given {
        Given::Flag => command.args(["--webhook-secret", secret]),
        Given::Env => command.env("BOT_SESSIONS_WEBHOOK_SECRET", secret),
    };
    let mut child = command.spawn().expect("spawn the demo");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut said = String::new();
    let url = tokio::time::timeout(HANG_GUARD, async {
        while let Some(line) = lines.next_line().await.expect("stderr") {
            eprintln!("demo: {line}");
            said.push_str(&line);
            said.push('\n');
            if let Some(at) = line.split(" served on ").nth(1) {
                return at.trim().to_owned();
            }
        }
        panic!("the demo exited before serving: {said}");
    })
    .await
    .expect("the demo serves its webhook");
    assert!(url.ends_with("/telegram/hook"), "{url}");
    let stderr = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("demo: {line}");
            said.push_str(&line);
            said.push('\n');
        }
        said
    });
    Process { child, url, stderr }
}

impl Process {
    /// Sends SIGTERM, waits for a clean exit, returns what it said.
    async fn stop(mut self) -> String {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(status.success());
        let exit = tokio::time::timeout(HANG_GUARD, self.child.wait()).await.expect("the bot stops").expect("wait");
        assert!(exit.success(), "{exit:?}");
        self.stderr.await.expect("stderr")
    }
}

/// POSTs `update` as Telegram does (with `secret` in its header, if any); the status.
async fn post(client: &reqwest::Client, to: &Process, secret: Option<&str>, update: &Value) -> u16 {
    let mut request = client.post(&to.url).json(update);
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    request.send().await.expect("POST").status().as_u16()
}

fn is_reply_to(c: &Call, message_id: i64) -> bool {
    c.method == "SendMessage" && c.body["reply_parameters"]["message_id"] == json!(message_id)
}

async fn two_processes_behave_as_one_bot(store: &str) {
    let api = FakeApi::start().await;
    let secret = format!("s3cret-{:016x}", rand::random::<u64>());
    let a = spawn(&api, store, &secret, Given::Flag).await;
    let b = spawn(&api, store, &secret, Given::Env).await;
    let client = reqwest::Client::new();

    // Both registered the webhook with its URL and secret.
    let sets = api.wait_for("two setWebhook", |calls| {
        let sets: Vec<Call> = calls.iter().filter(|c| c.method == "SetWebhook").cloned().collect();
        (sets.len() == 2).then_some(sets)
    });
    for set in sets.await {
        assert_eq!((&set.body["url"], &set.body["secret_token"]), (&json!(PUBLIC_URL), &json!(secret)));
    }

    // A missing or wrong secret: 401, nothing processed.
    let user = 71;
    let mut refused = Vec::new();
    for (to, given) in [(&a, None), (&b, Some("wrong")), (&a, Some(&secret[1..])), (&b, Some(&*format!("{secret}x")))] {
        let (update, id) = in_group(user, "/count");
        assert_eq!(post(&client, to, given, &update).await, 401, "secret {given:?}");
        refused.push(id);
    }

    // 24 /count of one user, sent at once, spread over both processes: each answered
    // 200 once handled, and every count seen exactly once.
    let mut sent = JoinSet::new();
    let mut ids = Vec::new();
    for i in 0..24 {
        let (update, id) = in_group(user, "/count");
        ids.push(id);
        let (client, url, secret) = (client.clone(), if i % 2 == 0 { &a.url } else { &b.url }.clone(), secret.clone());
        sent.spawn(async move {
            client.post(url).header(SECRET_HEADER, secret).json(&update).send().await.expect("POST").status().as_u16()
        });
    }
    while let Some(status) = sent.join_next().await {
        assert_eq!(status.expect("no panic"), 200);
    }
    let calls = api.calls();
    let mut counts: Vec<u64> = ids
        .iter()
        .map(|&id| {
            let replies: Vec<&Call> = calls.iter().filter(|c| is_reply_to(c, id)).collect();
            assert_eq!(replies.len(), 1, "message {id} answered once (before its 200)");
            replies[0].text().strip_prefix("count: ").and_then(|n| n.parse().ok()).expect("a count")
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=24).collect::<Vec<u64>>(), "every update counted once, none lost");
    for id in refused {
        assert!(!calls.iter().any(|c| is_reply_to(c, id)), "the refused message {id} was processed");
    }

    // A menu opened through one process, clicked through the other (and back).
    let (update, id) = in_group(user, "/menu");
    assert_eq!(post(&client, &a, Some(&secret), &update).await, 200);
    let menu = api.reply_to(GROUP_CHAT, id).await;
    assert_eq!(menu.text(), "value: 0");
    let (inc, done) = (menu.button("+1"), menu.button("Done"));
    for (n, to) in [(1, &b), (2, &a), (3, &b)] {
        let (update, q) = click(user, &menu.result, &inc);
        assert_eq!(post(&client, to, Some(&secret), &update).await, 200);
        api.answer_of(&q).await;
        assert_eq!(api.edits(n).await.last().map(String::as_str), Some(&*format!("value: {n}")));
    }
    let (update, q) = click(user + 1, &menu.result, &inc);
    assert_eq!(post(&client, &a, Some(&secret), &update).await, 200);
    assert_eq!(api.answer_of(&q).await.body["text"], json!(NOT_YOURS));
    let (update, q) = click(user, &menu.result, &done);
    assert_eq!(post(&client, &a, Some(&secret), &update).await, 200);
    api.answer_of(&q).await;
    assert_eq!(api.edits(4).await, ["value: 1", "value: 2", "value: 3", "final: 3"]);

    let said = [a.stop().await, b.stop().await].concat();
    assert!(!said.contains(&secret), "the secret was printed: {said}");
    api.assert_only_allowed_methods();
    for method in ["GetUpdates", "DeleteWebhook"] {
        assert!(api.calls_of(method).is_empty(), "{method} called in webhook mode");
    }
}

fn fresh(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_webhook_processes_on_sqlite() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-tests");
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join(format!("{}.db", fresh("webhook-")));
    two_processes_behave_as_one_bot(&format!("sqlite://{}", db.display())).await;
    let _ = std::fs::remove_file(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_webhook_processes_on_redis() {
    let base = std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    two_processes_behave_as_one_bot(&format!("{base}?prefix={}", fresh("wh"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_webhook_processes_on_postgres() {
    let base =
        std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    two_processes_behave_as_one_bot(&format!("{base}?schema=bot_sessions_test&table={}", fresh("wh_"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_flags_come_together_and_a_bad_secret_is_refused_unshown() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
            .args(["telegram", "--store", "memory://"])
            .args(args)
            .env("TELOXIDE_TOKEN", "1234:TEST")
            .env("TELOXIDE_API_URL", "http://127.0.0.1:9/")
            .env_remove("BOT_SESSIONS_WEBHOOK_SECRET")
            .output()
    };
    let out = run(&["--webhook-listen", "127.0.0.1:0"]).await.expect("run");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--webhook-url"), "{out:?}");
    let out = run(&["--webhook-listen", "127.0.0.1:0", "--webhook-url", PUBLIC_URL, "--webhook-secret", "bad secret!"])
        .await
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("secret token") && !stderr.contains("bad secret"), "{stderr}");
    let help = Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo")).args(["telegram", "--help"]).output();
    let help = String::from_utf8_lossy(&help.await.expect("help").stdout).into_owned();
    for needle in ["--webhook-listen", "--webhook-url", "--webhook-secret", "BOT_SESSIONS_WEBHOOK_SECRET", "proxy"] {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
}
