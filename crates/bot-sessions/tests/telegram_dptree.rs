//! dptree handlers with sessions injected by `telegram::enter`, several session types
//! side by side, dispatching fixture updates.
#![cfg(feature = "telegram")]

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::telegram::{self, Session};
use bot_sessions::{Context, DynStore, KeyError, KeyStrategy, Scope, SessionError, SessionKey, Sessions};
use serde::{Deserialize, Serialize};
use teloxide::dispatching::{DpHandlerDescription, UpdateFilterExt};
use teloxide::dptree::{self, Handler};
use teloxide::types::{Message, Update};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    messages: Vec<i64>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Clicks {
    n: u64,
}

fn fixture(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/telegram").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// An `Update` fixture, parsed from its text as teloxide does.
fn update(file: &str) -> Update {
    serde_json::from_str(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A `Message` object fixture as a `message` update.
fn message_update(file: &str) -> Update {
    let message: serde_json::Value = serde_json::from_str(&fixture(file)).expect("json");
    let update = serde_json::json!({ "update_id": 1, "message": message });
    serde_json::from_str(&update.to_string()).expect("update")
}

/// What the message handler answers.
#[derive(Debug, PartialEq)]
enum Out {
    /// The counter after this message, and how many messages the chat has seen.
    Counted {
        n: u64,
        chat_messages: usize,
    },
    /// The per-user counter could not be keyed; the per-chat session still worked.
    NoUser {
        error: String,
        chat_messages: usize,
    },
    Clicked(u64),
}

async fn on_message(msg: Message, counter: Session<Counter>, seen: Session<Seen>) -> Result<Out, SessionError> {
    let id = i64::from(msg.id.0);
    let chat_messages = seen
        .update(|s| {
            s.messages.push(id);
            Ok::<_, SessionError>(s.messages.len())
        })
        .await?;
    match counter
        .update(|c| {
            c.n += 1;
            Ok::<_, SessionError>(c.n)
        })
        .await
    {
        Ok(n) => Ok(Out::Counted { n, chat_messages }),
        Err(SessionError::Key(e)) => Ok(Out::NoUser { error: e.to_string(), chat_messages }),
        Err(e) => Err(e),
    }
}

async fn on_click(clicks: Session<Clicks>) -> Result<Out, SessionError> {
    clicks
        .update(|c| {
            c.n += 1;
            Ok::<_, SessionError>(Out::Clicked(c.n))
        })
        .await
}

struct Bot {
    store: DynStore,
    counters: Sessions<Counter>,
    seen: Sessions<Seen>,
    clicks: Sessions<Clicks>,
    tree: Handler<'static, Result<Out, SessionError>, DpHandlerDescription>,
}

impl Bot {
    fn new() -> Bot {
        let store: DynStore = Arc::new(MemoryStore::new());
        // Per user in a topic (per user in the chat outside topics), per topic or chat,
        // per chat_instance: three types, three strategies, one store.
        let counters = Sessions::<Counter>::builder(store.clone())
            .namespace("counter")
            .key(KeyStrategy::TopicOrChatUser)
            .build()
            .expect("counters");
        let seen = Sessions::<Seen>::builder(store.clone())
            .namespace("seen")
            .key(KeyStrategy::TopicOrChat)
            .build()
            .expect("seen");
        let clicks = Sessions::<Clicks>::builder(store.clone())
            .namespace("clicks")
            .key(KeyStrategy::ChatInstance)
            .build()
            .expect("clicks");
        let tree = dptree::entry()
            .branch(
                Update::filter_message()
                    .chain(telegram::enter::<Counter, _>())
                    .chain(telegram::enter::<Seen, _>())
                    .endpoint(on_message),
            )
            .branch(Update::filter_callback_query().chain(telegram::enter::<Clicks, _>()).endpoint(on_click));
        Bot { store, counters, seen, clicks, tree }
    }

    async fn dispatch(&self, update: Update) -> Out {
        let deps = dptree::deps![update, self.counters.clone(), self.seen.clone(), self.clicks.clone()];
        dptree::type_check(self.tree.sig(), &deps, &[]);
        match self.tree.dispatch(deps).await {
            ControlFlow::Break(out) => out.expect("handler succeeds"),
            ControlFlow::Continue(_) => panic!("no handler took the update"),
        }
    }
}

const FORUM: i64 = -1001234567489;

#[tokio::test]
async fn sessions_of_several_types_are_injected_per_update() {
    let bot = Bot::new();
    // Two messages of user 123456 in forum topic 33, then one in the General topic.
    assert_eq!(
        bot.dispatch(update("forum_topic_message__nutgram.json")).await,
        Out::Counted { n: 1, chat_messages: 1 }
    );
    assert_eq!(
        bot.dispatch(update("forum_topic_message_2__nutgram.json")).await,
        Out::Counted { n: 2, chat_messages: 2 }
    );
    assert_eq!(
        bot.dispatch(update("forum_general_topic_message__nutgram.json")).await,
        Out::Counted { n: 1, chat_messages: 1 }
    );
    // A reply in the General topic carries a thread id that is no topic: the chat's
    // sessions, not a topic's.
    assert_eq!(
        bot.dispatch(update("forum_general_topic_reply__nutgram.json")).await,
        Out::Counted { n: 2, chat_messages: 2 }
    );

    let topic =
        SessionKey::new(bot.counters.namespace().clone(), Scope::TopicUser { chat: FORUM, topic: 33, user: 123456 });
    assert_eq!(bot.counters.get(&topic).await.expect("get"), Some(Counter { n: 2 }));
    let chat = SessionKey::new(bot.seen.namespace().clone(), Scope::Chat(FORUM));
    assert_eq!(bot.seen.get(&chat).await.expect("get"), Some(Seen { messages: vec![35, 68] }));
    // Nothing else was stored: 2 counters and 2 "seen" sessions.
    assert_eq!(bot.store.count(None, bot_sessions::Timestamp::now()).await.expect("count"), 4);
}

#[tokio::test]
async fn an_anonymous_admin_gets_the_chat_session_and_a_typed_error_for_the_user_one() {
    let bot = Bot::new();
    let out = bot.dispatch(message_update("message_object_anonymous_admin_sender_chat__teloxide_issue419.json")).await;
    let expected = KeyError::MissingUser { strategy: "topic_or_chat_user" }.to_string();
    assert_eq!(out, Out::NoUser { error: expected, chat_messages: 1 });
    // No per-user session was invented for GroupAnonymousBot.
    assert_eq!(
        bot.store.count(Some(bot.counters.namespace()), bot_sessions::Timestamp::now()).await.expect("count"),
        0
    );
}

#[tokio::test]
async fn callback_queries_get_their_own_sessions() {
    let bot = Bot::new();
    assert_eq!(bot.dispatch(update("callback_query_with_message__nutgram.json")).await, Out::Clicked(1));
    // Another query of the same chat_instance (its message is gone): the same session.
    assert_eq!(bot.dispatch(update("callback_query_message_null__nutgram.json")).await, Out::Clicked(2));
    assert_eq!(bot.dispatch(update("callback_query__westacks_telebot.json")).await, Out::Clicked(1));
    let key = SessionKey::new(bot.clicks.namespace().clone(), Scope::ChatInstance("1628661761791766620".into()));
    assert_eq!(bot.clicks.get(&key).await.expect("get"), Some(Clicks { n: 2 }));
}

#[tokio::test]
async fn updates_no_handler_takes_fall_through_untouched() {
    let bot = Bot::new();
    let deps = dptree::deps![update("poll__nutgram.json"), bot.counters.clone(), bot.seen.clone(), bot.clicks.clone()];
    assert!(matches!(bot.tree.dispatch(deps).await, ControlFlow::Continue(_)));
    assert_eq!(bot.store.count(None, bot_sessions::Timestamp::now()).await.expect("count"), 0);
}

#[tokio::test]
async fn the_context_can_be_injected_too() {
    let handler: Handler<'static, Context, DpHandlerDescription> =
        telegram::inject_context().endpoint(|ctx: Context| async move { ctx });
    let deps = dptree::deps![update("forum_topic_reply__nutgram.json")];
    let ControlFlow::Break(ctx) = handler.dispatch(deps).await else { panic!("the endpoint runs") };
    assert_eq!((ctx.chat_id, ctx.user_id, ctx.topic_id), (Some(FORUM), Some(123456), Some(33)));
    assert!(ctx.extensions.get::<Update>().is_some());
}
