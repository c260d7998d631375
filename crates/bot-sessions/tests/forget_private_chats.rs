//! Forget-user reaches what a user owns without their id in its key: a private chat's
//! sessions (a Telegram private chat's id is its user's id; a Discord DM channel is its
//! user's) and a teloxide dialogue of a private chat. On every backend, from real
//! payloads (tests/data, see SOURCES.md there) with the user's id made unique, since
//! the servers are shared.
#![cfg(all(feature = "telegram", feature = "discord"))]

use std::path::Path;
use std::sync::Arc;

use bot_sessions::telegram::DialogueStorage;
use bot_sessions::testing::{unique_namespace, unique_user};
use bot_sessions::{ChatKind, Clock, Context, DynStore, KeyStrategy, SessionError, Sessions, SystemClock};
use teloxide::dispatching::dialogue::Storage;
use teloxide::types::{ChatId, Update};

fn fixture(dir: &str, file: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(dir).join(file);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{file}: {e}"))).unwrap()
}

/// A private message from `user` (teloxide's `private_message` payload, its ids changed).
fn telegram_private(user: i64) -> Context {
    let mut update = fixture("telegram", "private_message__teloxide.json");
    update["message"]["from"]["id"] = user.into();
    update["message"]["chat"]["id"] = user.into();
    // From text, as teloxide reads updates (its `Update` does not read from a `Value`).
    let update: Update = serde_json::from_str(&update.to_string()).unwrap();
    bot_sessions::telegram::context_of(&update)
}

/// A slash command in `user`'s DM with the bot (a captured user-install interaction).
fn discord_dm(user: i64) -> Context {
    let mut body = fixture("discord", "application_command_chat_input_dm_user_install__fischl_capture.json");
    body["user"]["id"] = user.to_string().into();
    let interaction = bot_sessions::discord::parse_interaction(&serde_json::to_vec(&body).unwrap()).unwrap();
    bot_sessions::discord::context_of(&interaction)
}

#[derive(Clone, Default, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum State {
    #[default]
    Start,
    Name,
}

async fn private_chats_are_forgotten_with_their_user(store: DynStore) {
    // Telegram user ids are below 2^40 (teloxide's `ChatId::is_user`).
    let user = (1 << 39) + unique_user() % (1 << 39);
    let tg = telegram_private(user);
    let dm = discord_dm(user);
    assert_eq!((tg.chat_kind, tg.chat_id, tg.user_id), (Some(ChatKind::Private), Some(user), Some(user)));
    assert_eq!((dm.chat_kind, dm.user_id), (Some(ChatKind::Private), Some(user)));
    assert_ne!(dm.chat_id, Some(user), "a DM channel's id is not its user's");
    let group = Context::new().chat(-1_000_000_000_001).chat_kind(ChatKind::Supergroup).user(user);

    let ns = unique_namespace("private");
    let per_chat =
        Sessions::<u64>::builder(store.clone()).namespace(ns.as_str()).key(KeyStrategy::Chat).build().unwrap();
    let per_topic_or_chat = Sessions::<u64>::builder(store.clone())
        .namespace(&format!("{ns}-t"))
        .key(KeyStrategy::TopicOrChat)
        .build()
        .unwrap();
    for (sessions, ctx) in [(&per_chat, &tg), (&per_chat, &dm), (&per_chat, &group), (&per_topic_or_chat, &tg)] {
        let key = sessions.key(ctx).unwrap();
        sessions
            .update(&key, |n| {
                *n += 1;
                Ok::<_, SessionError>(())
            })
            .await
            .unwrap();
    }
    let dialogues = DialogueStorage::<State>::builder(store.clone()).namespace(&format!("{ns}-d")).build().unwrap();
    dialogues.clone().update_dialogue(ChatId(user), State::Name).await.unwrap();
    dialogues.clone().update_dialogue(ChatId(-1_000_000_000_001), State::Name).await.unwrap();

    // The Telegram private chat (two session types), the DM, the private dialogue.
    assert_eq!(store.forget_user(user, SystemClock.now()).await.unwrap(), 4);
    for ctx in [&tg, &dm] {
        assert_eq!(per_chat.get(&per_chat.key(ctx).unwrap()).await.unwrap(), None);
    }
    assert_eq!(per_topic_or_chat.get(&per_topic_or_chat.key(&tg).unwrap()).await.unwrap(), None);
    assert_eq!(dialogues.clone().get_dialogue(ChatId(user)).await.unwrap(), None);
    // The group's sessions are the group's: they stay.
    assert_eq!(per_chat.get(&per_chat.key(&group).unwrap()).await.unwrap(), Some(1));
    assert_eq!(dialogues.clone().get_dialogue(ChatId(-1_000_000_000_001)).await.unwrap(), Some(State::Name));
}

#[tokio::test]
async fn private_chats_are_forgotten_in_memory() {
    private_chats_are_forgotten_with_their_user(Arc::new(bot_sessions::store::memory::MemoryStore::new())).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread")]
async fn private_chats_are_forgotten_in_sqlite() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("forget-private");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("f-{}-{:016x}.db", std::process::id(), rand::random::<u64>()));
    private_chats_are_forgotten_with_their_user(
        bot_sessions::store::open(&format!("sqlite://{}", file.display())).await.unwrap(),
    )
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn private_chats_are_forgotten_in_redis() {
    let url = std::env::var("BOT_SESSIONS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    private_chats_are_forgotten_with_their_user(
        bot_sessions::store::open(&url).await.unwrap_or_else(|e| panic!("redis: {e}")),
    )
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread")]
async fn private_chats_are_forgotten_in_postgres() {
    let url =
        std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let url = format!("{url}?schema=bot_sessions_forget_private_test");
    private_chats_are_forgotten_with_their_user(
        bot_sessions::store::open(&url).await.unwrap_or_else(|e| panic!("postgres: {e}")),
    )
    .await;
}
