//! `import-teloxide`: dialogues written the way teloxide 0.17's own storages write them
//! (its `teloxide_dialogues` table on SQLite and PostgreSQL, bare chat-id keys on
//! Redis; the table definitions are teloxide's, from `sqlite_storage.rs` and
//! `postgres_storage/queries/create_teloxide_dialogues.sql`), with each of its
//! serializers (serde_json, bincode 1.3, CBOR), imported into a store and read back by
//! `DialogueStorage`; a second run imports nothing and succeeds.

mod support;

use bot_sessions::telegram::DialogueStorage;
use bot_sessions::{Codec, DynStore, Namespace, Scope, SessionKey, Timestamp};
use support::{Backend, Env, ok, rt, run, unique};
use teloxide::dispatching::dialogue::Storage as _;
use teloxide::types::ChatId;

/// A dialogue state as teloxide's examples write them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum State {
    Start,
    ReceiveName,
    ReceiveAge { name: String },
}

const SERIALIZERS: [&str; 3] = ["json", "bincode", "cbor"];

/// Three chats: a private one (its user owns it) and two groups.
fn dialogues() -> Vec<(i64, State)> {
    vec![(42, State::ReceiveAge { name: "Ada".into() }), (-1001, State::Start), (-1002, State::ReceiveName)]
}

/// `state` as teloxide's serializer `serializer` writes it.
fn serialize(serializer: &str, state: &State) -> Vec<u8> {
    match serializer {
        "json" => serde_json::to_vec(state).unwrap(),
        "bincode" => bincode::serialize(state).unwrap(),
        "cbor" => {
            let mut out = Vec::new();
            ciborium::into_writer(state, &mut out).unwrap();
            out
        }
        other => panic!("{other}"),
    }
}

/// Imports from `from` into a fresh SQLite store twice, and reads every dialogue back.
fn imports_and_reads_back(from: &str, serializer: &str) {
    let dst = Env::new(Backend::Sqlite);
    let first = ok(dst.cmd().args(["import-teloxide", "--from", from, "--serializer", serializer]));
    assert!(first.contains("imported 3 of 3 dialogues"), "{serializer}: {first}");
    let again = ok(dst.cmd().args(["import-teloxide", "--from", from, "--serializer", serializer]));
    assert!(again.contains("imported 0 of 3") && again.contains("3 already there, identical"), "{again}");

    let store = dst.store();
    let codec = if serializer == "bincode" { Codec::Bincode } else { Codec::Json };
    let storage = DialogueStorage::<State>::builder(store.clone()).codec(codec).build().unwrap();
    for (chat, state) in dialogues() {
        let read = rt().block_on(storage.clone().get_dialogue(ChatId(chat))).unwrap();
        assert_eq!(read, Some(state), "{serializer}: chat {chat}");
    }
    // The private chat's dialogue is its user's: erased with them.
    let key = SessionKey::new(Namespace::new("dialogue").unwrap(), Scope::Chat(42));
    let record = rt().block_on(store.load(&key, Timestamp::now())).unwrap().unwrap();
    assert_eq!(record.user_id, Some(42));
    assert_eq!(rt().block_on(store.forget_user(42, Timestamp::now())).unwrap(), 1);
}

fn sqlite_source(serializer: &str, extra: &[(i64, &[u8])]) -> (String, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("{}.db", unique("teloxide-")));
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS teloxide_dialogues (chat_id BIGINT PRIMARY KEY, dialogue BLOB NOT NULL);",
    )
    .unwrap();
    for (chat, state) in dialogues() {
        db.execute(
            "INSERT INTO teloxide_dialogues VALUES (?, ?)",
            rusqlite::params![chat, serialize(serializer, &state)],
        )
        .unwrap();
    }
    for (chat, bytes) in extra {
        db.execute("INSERT INTO teloxide_dialogues VALUES (?, ?)", rusqlite::params![chat, bytes]).unwrap();
    }
    (format!("sqlite://{}", path.display()), path)
}

#[test]
fn from_teloxides_sqlite_storage_with_each_serializer() {
    for serializer in SERIALIZERS {
        let (url, path) = sqlite_source(serializer, &[]);
        imports_and_reads_back(&url, serializer);
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn from_teloxides_postgres_storage_with_each_serializer() {
    let base =
        std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (server, _) = base.rsplit_once('/').unwrap();
    for serializer in SERIALIZERS {
        let db = unique("teloxide_");
        let url = format!("{server}/{db}");
        rt().block_on(async {
            let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.unwrap();
            let driver = tokio::spawn(conn);
            admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
            drop(admin);
            let _ = driver.await;
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            let driver = tokio::spawn(conn);
            client
                .batch_execute("CREATE TABLE IF NOT EXISTS teloxide_dialogues (chat_id BIGINT PRIMARY KEY, dialogue BYTEA NOT NULL)")
                .await
                .unwrap();
            for (chat, state) in dialogues() {
                let bytes = serialize(serializer, &state);
                client.execute("INSERT INTO teloxide_dialogues VALUES ($1, $2)", &[&chat, &bytes]).await.unwrap();
            }
            drop(client);
            let _ = driver.await;
        });
        imports_and_reads_back(&url, serializer);
        rt().block_on(async {
            let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.unwrap();
            let driver = tokio::spawn(conn);
            admin.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)")).await.unwrap();
            drop(admin);
            let _ = driver.await;
        });
    }
}

#[test]
fn from_teloxides_redis_storage_with_each_serializer() {
    use redis::AsyncCommands as _;
    // A database of its own: teloxide's keys are bare chat ids, so the source is a
    // whole database. Redis has 16; this test alone uses number 9, emptied first.
    let base = std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let url = format!("{}/9", base.rsplit_once('/').unwrap().0);
    for serializer in SERIALIZERS {
        rt().block_on(async {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let () = redis::cmd("FLUSHDB").query_async(&mut conn).await.unwrap();
            for (chat, state) in dialogues() {
                let () = conn.set(chat, serialize(serializer, &state)).await.unwrap();
            }
            // Keys that are not chat ids are not teloxide's: left alone.
            let () = conn.set("other:data", "x").await.unwrap();
        });
        imports_and_reads_back(&url, serializer);
    }
}

#[test]
fn bad_entries_are_reported_and_the_rest_goes_in() {
    let (url, path) = sqlite_source("json", &[(7, b"{not json"), (8, b"\xc1 not json either")]);
    let dst = Env::new(Backend::Sqlite);
    let (code, out, err) = run(dst.cmd().args(["import-teloxide", "--from", &url]));
    assert_eq!(code, 2, "bad entries: exit 2\n{out}\n{err}");
    assert!(out.contains("imported 3 of 3 dialogues"), "{out}");
    assert!(err.contains("chat 7: not JSON") && err.contains("chat 8:"), "{err}");
    let store: DynStore = dst.store();
    assert_eq!(rt().block_on(store.count(None, Timestamp::now())).unwrap(), 3);
    // A bincode dialogue that a session would read as its header is refused, not mangled.
    let (bin_url, bin_path) = sqlite_source("bincode", &[(9, &[0xC1, 1, 2])]);
    let (code, _, err) = run(dst.cmd().args(["import-teloxide", "--from", &bin_url, "--serializer", "bincode"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("chat 9") && err.contains("0xC1"), "{err}");
    let _ = (std::fs::remove_file(path), std::fs::remove_file(bin_path));
}

#[test]
fn a_different_dialogue_in_the_store_is_kept_unless_forced() {
    let (url, path) = sqlite_source("json", &[]);
    let dst = Env::new(Backend::Sqlite);
    ok(dst.cmd().args(["import-teloxide", "--from", &url]));
    ok(dst.cmd().args(["set", "dialogue/chat:-1001", r#""ReceiveName""#]));
    let (code, out, err) = run(dst.cmd().args(["import-teloxide", "--from", &url]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("dialogue/chat:-1001") && out.contains("1 different there"), "{out}\n{err}");
    let forced = ok(dst.cmd().args(["import-teloxide", "--from", &url, "--force", "--json"]));
    let report: serde_json::Value = serde_json::from_str(forced.trim()).unwrap();
    assert_eq!((report["written"].as_u64(), report["same"].as_u64()), (Some(1), Some(2)), "{forced}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_source_that_cannot_be_read_is_named_without_its_password() {
    let dst = Env::new(Backend::Sqlite);
    for from in ["postgres://postgres:TopSecretPw@127.0.0.1:1/x", "redis://:TopSecretPw@127.0.0.1:1/0"] {
        let (code, out, err) = run(dst.cmd().args(["import-teloxide", "--from", from]));
        assert_eq!(code, 3, "unreachable: exit 3\n{err}");
        assert!(!out.contains("TopSecretPw") && !err.contains("TopSecretPw"), "{out}\n{err}");
        assert!(err.contains("teloxide storage"), "{err}");
    }
    let (code, _, err) = run(dst.cmd().args(["import-teloxide", "--from", "mysql://x"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(dst.cmd().args(["import-teloxide", "--from", "sqlite:///nonexistent/dialogues.db"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no such file"), "{err}");
}
