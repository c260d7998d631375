//! Every command of `bot-sessions`, through the binary, on SQLite, Redis and PostgreSQL
//! (real servers; each test has its own file, key prefix or table).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bot_sessions::interactive::{CustomIdCodec, Manager, Target};
use bot_sessions::session::{encode_value, list_quarantined};
use bot_sessions::{Codec, Context, DecodePolicy, KeyStrategy, Sessions, Timestamp, Ttl};
use support::{Backend, Env, Menu, export, key, ok, record, rt, run, seed};

/// `list`, `get` (JSON, MessagePack behind a TTL header, `--raw`, `--json`), `set`
/// (compare-and-set, conflict, new key), `delete`.
fn browse_and_edit(backend: Backend) {
    let env = Env::new(backend);
    let store = env.store();
    let plain = key("onboarding/chat:1/user:42");
    seed(&store, &plain, &record(br#"{"name":"Ada","step":"email"}"#, 60_000, 1_000, Some(3_600_000)));
    let packed = key("cart/chat:-100/user:7");
    let ttl = Some(Ttl::idle(Duration::from_secs(1800)));
    let bytes = encode_value(&serde_json::json!({"items": [1, 2], "total": 30}), Codec::MessagePack, ttl).unwrap();
    seed(&store, &packed, &record(&bytes, 5_000, 5_000, None));

    let listed = ok(env.cmd().arg("list"));
    assert!(listed.starts_with("KEY"), "{listed}");
    assert!(listed.contains("onboarding/chat:1/user:42") && listed.contains("cart/chat:-100/user:7"), "{listed}");
    let lines = ok(env.cmd().args(["list", "--json", "--namespace", "cart"]));
    let objects: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(objects.len(), 1, "{lines}");
    assert_eq!(objects[0]["key"], "cart/chat:-100/user:7");
    assert_eq!(objects[0]["size"], bytes.len());
    assert_eq!(ok(env.cmd().args(["list", "--json", "--limit", "1"])).lines().count(), 1);

    let shown = ok(env.cmd().args(["get", "cart/chat:-100/user:7"]));
    assert!(shown.contains("codec:    msgpack"), "{shown}");
    assert!(shown.contains("own ttl:  idle 30m"), "{shown}");
    assert!(shown.contains("\"total\": 30"), "pretty JSON of a MessagePack value: {shown}");
    let raw = env.cmd().args(["get", "--raw", "cart/chat:-100/user:7"]).output().unwrap();
    assert_eq!(raw.stdout, bytes, "--raw gives the stored bytes");
    let j: serde_json::Value =
        serde_json::from_str(&ok(env.cmd().args(["--json", "get", "onboarding/chat:1/user:42"]))).unwrap();
    assert_eq!(
        (j["value"]["name"].as_str(), j["user_id"].as_i64(), j["codec"].as_str()),
        (Some("Ada"), Some(42), Some("json"))
    );
    let version = j["version"].as_u64().unwrap();

    // set: compare-and-set on the version given; a stale one is a conflict (exit 1).
    let out = ok(env.cmd().args([
        "set",
        "onboarding/chat:1/user:42",
        r#"{"name":"Ada L."}"#,
        "--if-version",
        &version.to_string(),
    ]));
    assert!(out.contains("set onboarding/chat:1/user:42: version"), "{out}");
    let (code, _, err) =
        run(env.cmd().args(["set", "onboarding/chat:1/user:42", "{}", "--if-version", &version.to_string()]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("conflict on key `onboarding/chat:1/user:42`"), "{err}");
    let after = rt().block_on(store.load(&plain, Timestamp::now())).unwrap().unwrap();
    assert_eq!(after.value, br#"{"name":"Ada L."}"#);
    assert_eq!(after.expires_at.map(|t| t.as_millis() > Timestamp::now().as_millis()), Some(true), "expiry kept");
    // The MessagePack session stays MessagePack behind its TTL header.
    ok(env.cmd().args(["set", "cart/chat:-100/user:7", r#"{"items":[],"total":0}"#]));
    let inspected =
        bot_sessions::session::inspect(&rt().block_on(store.load(&packed, Timestamp::now())).unwrap().unwrap().value)
            .unwrap();
    assert_eq!((inspected.codec, inspected.ttl, inspected.value["total"].as_i64()), (Codec::MessagePack, ttl, Some(0)));
    // A new key.
    ok(env.cmd().args(["set", "counter/chat:5", r#"{"n":1}"#]));
    assert!(ok(env.cmd().args(["get", "counter/chat:5"])).contains("\"n\": 1"));

    // delete, then it is gone (exit 1).
    assert!(ok(env.cmd().args(["delete", "counter/chat:5"])).contains("deleted counter/chat:5"));
    let (code, _, err) = run(env.cmd().args(["get", "counter/chat:5"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no session under key `counter/chat:5`"), "{err}");
    let (code, _, _) = run(env.cmd().args(["delete", "counter/chat:5"]));
    assert_eq!(code, 1);
}

/// `forget-user`, `purge-expired`, `stats`.
fn erase_purge_stats(backend: Backend) {
    let env = Env::new(backend);
    let store = env.store();
    for k in ["a/chat:1/user:7", "a/chat:2/user:7", "b/user:7", "b/user:8"] {
        seed(&store, &key(k), &record(b"{\"x\":1}", 1_000, 1_000, None));
    }
    // Stored, expired, not purged yet.
    seed(&store, &key("b/chat:9"), &record(b"{}", 10_000, 10_000, Some(-5_000)));

    let stats = ok(env.cmd().arg("stats"));
    let row = |ns: &str| {
        stats
            .lines()
            .find(|l| l.starts_with(ns))
            .unwrap_or_else(|| panic!("{ns}: {stats}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("a "), ["a", "2", "14", "0", "0"], "{stats}");
    assert_eq!(row("b "), ["b", "2", "14", "1", "0"], "{stats}");

    let out = ok(env.cmd().args(["forget-user", "7"]));
    assert_eq!(out.trim(), "forgot user 7: 3 sessions deleted");
    assert_eq!(rt().block_on(store.count(None, Timestamp::now())).unwrap(), 1, "user 8's session stays");
    let out = ok(env.cmd().args(["--json", "purge-expired"]));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["purged"], 1);
    let stats = ok(env.cmd().args(["stats", "--json"]));
    let b: Vec<serde_json::Value> = stats.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(b.len(), 1, "{stats}");
    assert_eq!(
        (b[0]["namespace"].as_str(), b[0]["sessions"].as_u64(), b[0]["expired"].as_u64()),
        (Some("b"), Some(1), Some(0))
    );
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Form {
    name: String,
}

/// `quarantine list|show|restore|drop`, and `stats` counting what is quarantined.
fn quarantine(backend: Backend) {
    let env = Env::new(backend);
    let store = env.store();
    let sessions = Sessions::<Form>::builder(store.clone())
        .namespace("form")
        .key(KeyStrategy::ChatUser)
        .on_decode_error(DecodePolicy::Quarantine)
        .build()
        .unwrap();
    for user in [1, 2] {
        let k = key(&format!("form/chat:1/user:{user}"));
        let bad = bot_sessions::Record { schema_version: 1, ..record(b"{\"name\": 42}", 1_000, 1_000, None) };
        seed(&store, &k, &bad);
        rt().block_on(sessions.get(&k)).unwrap();
    }
    let quarantined = rt().block_on(list_quarantined(store.as_ref(), None, Timestamp::now())).unwrap();
    assert_eq!(quarantined.len(), 2);
    let stats = ok(env.cmd().arg("stats"));
    assert!(
        stats.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["form", "2", "24", "0", "2"]),
        "{stats}"
    );

    let listed = ok(env.cmd().args(["quarantine", "list", "--json", "--namespace", "form"]));
    let entries: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), 2, "{listed}");
    let (q1, q2) = (entries[0]["key"].as_str().unwrap(), entries[1]["key"].as_str().unwrap());
    assert_eq!(entries[0]["original"], "form/chat:1/user:1");
    let shown = ok(env.cmd().args(["quarantine", "show", q1]));
    assert!(shown.contains("original: form/chat:1/user:1") && shown.contains("\"name\": 42"), "{shown}");

    // The original is still there: restore refuses without --force, then replaces it.
    let (code, _, err) = run(env.cmd().args(["quarantine", "restore", q1]));
    assert_eq!(code, 1, "{err}");
    ok(env.cmd().args(["set", "form/chat:1/user:1", r#"{"name":"fixed"}"#]));
    ok(env.cmd().args(["quarantine", "restore", "--force", q1]));
    let back = rt().block_on(store.load(&key("form/chat:1/user:1"), Timestamp::now())).unwrap().unwrap();
    assert_eq!(back.value, b"{\"name\": 42}");
    assert!(ok(env.cmd().args(["quarantine", "drop", q2])).contains("dropped"));
    assert_eq!(ok(env.cmd().args(["quarantine", "list", "--json"])).lines().count(), 0);
    let (code, _, _) = run(env.cmd().args(["quarantine", "drop", q2]));
    assert_eq!(code, 1, "already dropped");
    let (code, _, err) = run(env.cmd().args(["quarantine", "show", "form/chat:1/user:1"]));
    assert_eq!(code, 2, "{err}");
}

/// `interactive list` and `interactive end`: the bot's sweeper runs `end` once.
fn interactive(backend: Backend) {
    let env = Env::new(backend);
    let store = env.store();
    let ends = Arc::new(AtomicUsize::new(0));
    let manager = Manager::builder(store.clone(), CustomIdCodec::new("m", Target::Telegram).unwrap()).build().unwrap();
    let kind = manager.register("menu", Menu(ends.clone())).unwrap();
    let started = rt().block_on(manager.start(&kind, &Context::new().chat(5).user(42), ())).unwrap();
    let id = started.id.to_string();

    let listed = ok(env.cmd().args(["interactive", "list"]));
    let row = listed.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{listed}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..5], [id.as_str(), "menu", "live", "42", "5"], "{listed}");

    assert!(ok(env.cmd().args(["interactive", "end", &id])).contains("marked expired"));
    // The bot's sweeper passes: the first ends it, later ones find nothing to do.
    for _ in 0..3 {
        rt().block_on(manager.expire_scan(Timestamp::now())).unwrap();
    }
    assert_eq!(ends.load(Ordering::SeqCst), 1, "end runs exactly once");
    let ended = rt().block_on(started.handle).unwrap();
    assert_eq!(ended.reason, bot_sessions::interactive::EndReason::Expired);
    let (code, _, err) = run(env.cmd().args(["interactive", "end", &id]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already ended"), "{err}");
    let (code, _, _) = run(env.cmd().args(["interactive", "end", "AAAAAAAAAAAAAAAA"]));
    assert_eq!(code, 1, "no such session");
    // Ids are base64url: one may begin with `-` and is still an id, not a flag.
    let (code, _, err) = run(env.cmd().args(["interactive", "end", "--AAAAAAAAAAAAA-"]));
    assert_eq!(code, 1, "an id that begins with a hyphen: {err}");
    let (code, _, _) = run(env.cmd().args(["interactive", "end", "not-an-id"]));
    assert_eq!(code, 2);
}

/// Records of every shape: JSON and MessagePack, TTL header, expiry, owner, updated
/// after creation, a key without a user, the quarantine namespace.
fn varied(env: &Env) {
    let store = env.store();
    let msgpack = encode_value(
        &serde_json::json!({"a": [1, 2]}),
        Codec::MessagePack,
        Some(Ttl::absolute(Duration::from_secs(60))),
    )
    .unwrap();
    seed(&store, &key("one/chat:1/user:1"), &record(br#"{"n":1}"#, 90_000, 30_000, Some(600_000)));
    seed(&store, &key("one/chat:2"), &record(&msgpack, 5_000, 5_000, None));
    let mut owned = record(b"\"owned\"", 2_000, 1_000, None);
    owned.user_id = Some(77);
    seed(&store, &key("two/custom:order%2F17"), &owned);
    seed(&store, &key("two@9/guild:3/user:4"), &record(&[0xC1, 0xFF, 0x00], 1_000, 1_000, None));
    seed(&store, &key("_quarantine/custom:one%2Fchat:3#v5@6/user:3"), &record(b"bad", 1_000, 1_000, None));
}

/// export -> import into an empty store -> export again gives the same bytes; a second
/// import skips everything; a newer record is kept unless --force.
fn export_import(backend: Backend) {
    let (a, b) = (Env::new(backend), Env::new(backend));
    varied(&a);
    let file = std::env::temp_dir().join(support::unique("cli-export-") + ".jsonl");
    ok(a.cmd().args(["export", "-o"]).arg(&file));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 5, "{exported}");

    let out = ok(b.cmd().arg("import").arg(&file));
    assert!(out.contains("imported 5 of 5 sessions"), "{out}");
    assert_eq!(export(&b), exported, "round trip is byte-identical, metadata included");
    let out = ok(b.cmd().arg("import").arg(&file));
    assert!(out.contains("imported 0 of 5") && out.contains("5 already there with the same version"), "{out}");

    // A newer record in the target is kept, and said so (exit 1); --force replaces it.
    ok(b.cmd().args(["set", "one/chat:2", "[1]"]));
    let (code, out, err) = run(b.cmd().arg("import").arg(&file));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("skipped one/chat:2: newer in the target"), "{err}");
    ok(b.cmd().args(["import", "--force"]).arg(&file));
    assert_eq!(export(&b), exported);
    let _ = std::fs::remove_file(file);
}

macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite { $( #[test] fn $test() { super::$test(super::Backend::Sqlite) } )* }
        mod redis { $( #[test] fn $test() { super::$test(super::Backend::Redis) } )* }
        mod postgres { $( #[test] fn $test() { super::$test(super::Backend::Postgres) } )* }
    };
}

on_every_backend!(browse_and_edit, erase_purge_stats, quarantine, interactive, export_import);
