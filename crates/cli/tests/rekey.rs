//! `rekey`, and `get` / `set` on sessions encrypted at rest, through the binary on
//! SQLite, Redis and PostgreSQL.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bot_sessions::encryption::KeyRing;
use bot_sessions::interactive::{CustomIdCodec, Manager, Target};
use bot_sessions::{Context, Namespace, Scope, SessionError, SessionKey, Sessions, Timestamp};
use support::{Backend, Env, Menu, ok, rt, run};

const SECRET: &str = "ada.lovelace@example.com";

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Profile {
    email: String,
    n: u32,
}

fn keys(ids: &[u32]) -> String {
    ids.iter().map(|id| format!("{id}={}", format!("{:02x}", id + 0x30).repeat(32))).collect::<Vec<_>>().join(",")
}

fn fill(env: &Env, ns: &str, users: std::ops::Range<i64>, ring: Option<&[u32]>) -> Vec<SessionKey> {
    let b = Sessions::<Profile>::builder(env.store()).namespace(ns);
    let s = match ring {
        Some(ids) => b.encryption(KeyRing::parse(&keys(ids)).unwrap()),
        None => b,
    }
    .build()
    .unwrap();
    let ns = Namespace::new(ns).unwrap();
    rt().block_on(async {
        let mut out = Vec::new();
        for u in users {
            let k = SessionKey::new(ns.clone(), Scope::User(u));
            s.update(&k, |p| {
                p.email = SECRET.into();
                p.n += 1;
                Ok::<_, SessionError>(())
            })
            .await
            .unwrap();
            out.push(k);
        }
        out
    })
}

/// The key id of every stored record of `keys` (`None`: plaintext).
fn sealed_with(env: &Env, keys: &[SessionKey]) -> Vec<Option<u32>> {
    let store = env.store();
    rt().block_on(async {
        let mut out = Vec::new();
        for k in keys {
            out.push(KeyRing::sealed_with(&store.load(k, Timestamp::now()).await.unwrap().unwrap().value));
        }
        out
    })
}

fn rekey(backend: Backend) {
    let env = Env::new(backend);
    let profiles = fill(&env, "profile", 0..25, Some(&[1]));
    let legacy = fill(&env, "legacy", 100..103, None);
    let first = profiles[0].to_string();

    // get: sealed values are said to be sealed, and shown with the ring.
    let shown = ok(env.cmd().args(["get", &first]));
    assert!(shown.contains("sealed:   key id 1") && shown.contains("encrypted with key id 1"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    let shown = ok(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[1])).args(["get", &first]));
    assert!(shown.contains(SECRET), "{shown}");
    let shown = ok(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[1, 2])).args(["--json", "get", &first]));
    let j: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!((j["value"]["email"].as_str(), j["sealed_with"].as_u64()), (Some(SECRET), Some(1)));

    // rekey needs a ring; a malformed one is a usage error that does not echo it.
    let (code, _, err) = run(env.cmd().arg("rekey"));
    assert_eq!(code, 2, "{err}");
    let bad = "1=".to_string() + &"zz".repeat(32);
    let bad_file = std::env::temp_dir().join(support::unique("bad-ring-"));
    std::fs::write(&bad_file, &bad).unwrap();
    let (code, _, err) = run(env.cmd().arg("rekey").arg("--keys-file").arg(&bad_file));
    let _ = std::fs::remove_file(&bad_file);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--keys-file") && !err.contains(&"zz".repeat(32)), "{err}");
    // A ring on the command line shows in `ps`: refused, not echoed.
    let (code, _, err) = run(env.cmd().args(["get", &first, "--keys", &keys(&[1])]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("BOT_SESSIONS_KEYS") && !err.contains(&keys(&[1])), "{err}");
    // A file and the environment at once: which one is meant is not guessed.
    let ring_file = std::env::temp_dir().join(support::unique("ring-"));
    std::fs::write(&ring_file, keys(&[1]) + "\n").unwrap();
    let shown = ok(env.cmd().arg("get").arg(&first).arg("--keys-file").arg(&ring_file));
    assert!(shown.contains(SECRET), "{shown}");
    let (code, _, err) =
        run(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[1])).arg("get").arg(&first).arg("--keys-file").arg(&ring_file));
    let _ = std::fs::remove_file(&ring_file);
    assert_eq!(code, 2, "{err}");

    // Rotation: everything in `profile` moves to key 2; a second run has nothing to do.
    let out = ok(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[1, 2])).args(["rekey", "--namespace", "profile"]));
    assert!(out.contains("25 sessions scanned, 25 re-sealed, 0 already current, 0 unreadable"), "{out}");
    assert!(sealed_with(&env, &profiles).iter().all(|id| *id == Some(2)));
    let out = ok(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[1, 2])).args(["--json", "rekey", "-n", "profile"]));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((j["resealed"].as_u64(), j["already_current"].as_u64()), (Some(0), Some(25)), "{out}");

    // Every namespace: the plaintext ones are reported, left alone, exit 1...
    let (code, out, err) = run(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[2])).args(["rekey"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("not re-sealed: `{}`: the value is not encrypted", legacy[0])), "{err}");
    assert_eq!(sealed_with(&env, &legacy), [None, None, None]);
    // ... and sealed with --accept-plaintext.
    let out = ok(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[2])).args(["rekey", "--accept-plaintext"]));
    assert!(out.contains("28 sessions scanned, 3 re-sealed, 25 already current"), "{out}");
    assert_eq!(sealed_with(&env, &legacy), [Some(2), Some(2), Some(2)]);

    // The ring [2] alone reads everything back.
    let s = Sessions::<Profile>::builder(env.store())
        .namespace("profile")
        .encryption(KeyRing::parse(&keys(&[2])).unwrap())
        .build()
        .unwrap();
    rt().block_on(async {
        for k in &profiles {
            assert_eq!(s.get(k).await.unwrap().map(|p| p.n), Some(1));
        }
    });

    // set: refused on a sealed session without the ring, sealed with it.
    let (code, _, err) = run(env.cmd().args(["set", &first, r#"{"email":"x","n":7}"#]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is encrypted"), "{err}");
    ok(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[2])).args(["set", &first, r#"{"email":"x","n":7}"#]));
    assert_eq!(sealed_with(&env, &profiles[..1]), [Some(2)]);
    assert_eq!(rt().block_on(s.get(&profiles[0])).unwrap().map(|p| p.n), Some(7));
}

/// `interactive list` and `interactive end` on sessions a manager seals: readable and
/// ended with the ring (the state sealed again), refused without it.
fn sealed_interactive(backend: Backend) {
    let env = Env::new(backend);
    let store = env.store();
    let ends = Arc::new(AtomicUsize::new(0));
    let manager = Manager::builder(store.clone(), CustomIdCodec::new("m", Target::Telegram).unwrap())
        .encryption(KeyRing::parse(&keys(&[1])).unwrap())
        .build()
        .unwrap();
    let kind = manager.register("menu", Menu(ends.clone())).unwrap();
    let started = rt().block_on(manager.start(&kind, &Context::new().chat(5).user(42), ())).unwrap();
    let id = started.id.to_string();

    let (_, out, err) = run(env.cmd().args(["interactive", "list"]));
    assert!(!out.contains(&id) && err.contains("encrypted with key id 1"), "{out}{err}");
    let listed = ok(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[1])).args(["interactive", "list"]));
    let row = listed.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(&row.split_whitespace().collect::<Vec<_>>()[..5], [id.as_str(), "menu", "live", "42", "5"]);

    let (code, _, err) = run(env.cmd().args(["interactive", "end", &id]));
    assert_eq!(code, 2, "{err}");
    assert!(
        ok(env.cmd().env("BOT_SESSIONS_KEYS", keys(&[1])).args(["interactive", "end", &id])).contains("marked expired")
    );
    rt().block_on(manager.expire_scan(Timestamp::now())).unwrap();
    assert_eq!(ends.load(Ordering::SeqCst), 1, "end runs exactly once");
    let ended = rt().block_on(started.handle).unwrap();
    assert_eq!(ended.reason, bot_sessions::interactive::EndReason::Expired);
}

#[test]
fn rekey_help_has_an_example_and_hides_the_keys() {
    let out = ok(assert_cmd::Command::cargo_bin("bot-sessions")
        .unwrap()
        .env("BOT_SESSIONS_KEYS", keys(&[1]))
        .args(["rekey", "--help"]));
    assert!(out.contains("Example:") && out.contains("rekey"), "{out}");
    assert!(!out.contains(&keys(&[1])), "the key ring's value is hidden: {out}");
}

macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite { $( #[test] fn $test() { super::$test(super::Backend::Sqlite) } )* }
        mod redis { $( #[test] fn $test() { super::$test(super::Backend::Redis) } )* }
        mod postgres { $( #[test] fn $test() { super::$test(super::Backend::Postgres) } )* }
    };
}

on_every_backend!(rekey, sealed_interactive);
