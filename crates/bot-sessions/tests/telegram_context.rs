//! Every Telegram fixture (`tests/data/telegram/`, sources in its `SOURCES.md`) through
//! context extraction, with the expected fields asserted per file.
#![cfg(feature = "telegram")]

use std::path::{Path, PathBuf};

use bot_sessions::telegram::{context_of, context_of_callback, context_of_message};
use bot_sessions::{ChatKind, ComponentKind, Context, KeyError, KeyStrategy, Scope};
use teloxide::types::{CallbackQuery, Message, Update, UpdateKind};

/// The fields asserted for one update.
#[derive(Debug, Clone, Copy)]
struct Want {
    chat: Option<i64>,
    kind: Option<ChatKind>,
    user: Option<i64>,
    thread: Option<i64>,
    topic: Option<i64>,
    message: Option<i64>,
    business: Option<&'static str>,
    /// A callback query: its `chat_instance`, data and id.
    instance: Option<&'static str>,
    data: Option<&'static str>,
    callback: Option<&'static str>,
    inline: Option<&'static str>,
}

const NONE: Want = Want {
    chat: None,
    kind: None,
    user: None,
    thread: None,
    topic: None,
    message: None,
    business: None,
    instance: None,
    data: None,
    callback: None,
    inline: None,
};

/// A message of `user` in chat `chat` of `kind`.
const fn msg(chat: i64, kind: ChatKind, user: Option<i64>, message: i64) -> Want {
    Want { chat: Some(chat), kind: Some(kind), user, message: Some(message), ..NONE }
}

/// A private chat message (chat id = user id).
const fn private(user: i64, message: i64) -> Want {
    msg(user, ChatKind::Private, Some(user), message)
}

/// An update about chat `chat` caused by `user`, about no message.
const fn in_chat(chat: i64, kind: ChatKind, user: Option<i64>) -> Want {
    Want { chat: Some(chat), kind: Some(kind), user, ..NONE }
}

/// An update with a user and no chat.
const fn user_only(user: i64) -> Want {
    Want { user: Some(user), ..NONE }
}

const fn in_topic(w: Want, topic: i64) -> Want {
    Want { thread: Some(topic), topic: Some(topic), ..w }
}

const fn in_thread(w: Want, thread: i64) -> Want {
    Want { thread: Some(thread), ..w }
}

/// How a fixture file is read.
#[derive(Debug)]
enum Shape {
    /// A full `Update`.
    Update(Want),
    /// A `Message` object, through `context_of_message`.
    Message(Want),
    /// A `CallbackQuery` object, through `context_of_callback`.
    Callback(Want),
    /// A `Poll` object: wrapped into a `poll` update (there is no update without it).
    Poll(Want),
    /// A getUpdates response body: each update of `result`, in order (`None`: an entry
    /// teloxide reads as an unknown or malformed update, `UpdateKind::Error`).
    GetUpdates(Vec<Option<Want>>),
    /// A Bot API error body: no update in it, nothing to extract (checked to be an
    /// error body).
    ApiError,
    /// An update that teloxide 0.17 cannot read (a teloxide bug, `why`): it comes out as
    /// `UpdateKind::Error`, whose context is empty (nothing is guessed). With `fix`
    /// applied (the shape teloxide expects), it yields `want`.
    TeloxideUnreadable { why: &'static str, fix: fn(&mut serde_json::Value), want: Want },
}

use ChatKind::{Channel, Group, Private, Supergroup};

const FORUM: i64 = -1001234567489;

fn table() -> Vec<(&'static str, Shape)> {
    use Shape::*;
    vec![
        ("api_error_retry_after__teloxide.json", ApiError),
        ("api_error_terminated_by_other_getUpdates__teloxide.json", ApiError),
        ("business_connection__nutgram.json", Update(Want { business: Some("123456"), ..user_only(12345) })),
        // The fixture lacks `business_connection_id` (see SOURCES.md): none is invented.
        ("business_message_no_connection_id__nutgram.json", Update(private(456, 123))),
        (
            "callback_query__westacks_telebot.json",
            Update(Want {
                instance: Some("unique_chat_instance_id"),
                data: Some("yes"),
                callback: Some("abc123"),
                ..private(555666777, 103)
            }),
        ),
        (
            "callback_query_inaccessible_message__nutgram.json",
            Update(Want {
                instance: Some("1628661761791766620"),
                data: Some("thedata"),
                callback: Some("666728699048485871"),
                ..private(222222222, 69587)
            }),
        ),
        (
            "callback_query_message_null__nutgram.json",
            Update(Want {
                instance: Some("1628661761791766620"),
                data: Some("thedata"),
                callback: Some("666728699048485871"),
                ..user_only(222222222)
            }),
        ),
        (
            "callback_query_object_inline_message__teloxide.json",
            Callback(Want {
                instance: Some("123456"),
                data: Some("some_data"),
                callback: Some("id"),
                inline: Some("i_m_id"),
                ..user_only(12345)
            }),
        ),
        (
            // The message's sender is the bot (111111111); the user is who clicked.
            "callback_query_with_message__nutgram.json",
            Update(Want {
                instance: Some("1628661761791766620"),
                data: Some("thedata"),
                callback: Some("666728699048485871"),
                ..private(222222222, 69587)
            }),
        ),
        ("channel_post__westacks_telebot.json", Update(msg(-1001234567890, Channel, None, 104))),
        ("channel_post_no_from__huginn.json", Update(msg(-1001144599139, Channel, None, 4))),
        // Unrealistic `from` in a channel post: the poster is the channel, no user.
        ("channel_post_with_from__nutgram.json", Update(msg(456, Channel, None, 123))),
        ("chat_boost__teloxide.json", Update(in_chat(-1002236736395, Channel, Some(1459074222)))),
        ("chat_join_request__nutgram.json", Update(in_chat(987654321, Private, Some(123456789)))),
        ("chat_join_request__westacks_telebot.json", Update(in_chat(-1001234567890, Channel, Some(222111000)))),
        ("chat_member__nutgram.json", Update(in_chat(987654321, Private, Some(123456789)))),
        ("chat_member__westacks_telebot.json", Update(in_chat(-1009876543210, Supergroup, Some(999888777)))),
        ("chosen_inline_result__nutgram.json", Update(Want { inline: Some("123"), ..user_only(123456789) })),
        ("chosen_inline_result__westacks_telebot.json", Update(user_only(444555666))),
        (
            "deleted_business_messages__nutgram.json",
            TeloxideUnreadable {
                why: "teloxide reads `message_ids` as objects {\"message_id\": n}; the Bot API sends integers",
                fix: |v| {
                    let ids = &mut v["deleted_business_messages"]["message_ids"];
                    *ids = ids
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|id| serde_json::json!({ "message_id": id }))
                        .collect();
                },
                want: Want { business: Some("123"), ..in_chat(456, Private, None) },
            },
        ),
        ("edited_business_message__nutgram.json", Update(private(456, 123))),
        ("edited_channel_post__westacks_telebot.json", Update(msg(-1001234567890, Channel, None, 105))),
        ("edited_message__nutgram.json", Update(private(999999999, 23762))),
        ("edited_message__westacks_telebot.json", Update(private(987654321, 102))),
        // A forum's General topic: no thread, no topic.
        ("forum_general_topic_message__nutgram.json", Update(msg(FORUM, Supergroup, Some(123456), 35))),
        // A reply in the General topic: a thread id (the replied-to message), no topic.
        ("forum_general_topic_reply__nutgram.json", Update(in_thread(msg(FORUM, Supergroup, Some(123456), 68), 66))),
        ("forum_topic_message_2__nutgram.json", Update(in_topic(msg(FORUM, Supergroup, Some(123456), 70), 33))),
        ("forum_topic_message__nutgram.json", Update(in_topic(msg(FORUM, Supergroup, Some(123456), 35), 33))),
        ("forum_topic_reply__nutgram.json", Update(in_topic(msg(FORUM, Supergroup, Some(123456), 72), 33))),
        ("getUpdates_response_poll_answer__teloxide.json", GetUpdates(vec![Some(user_only(42))])),
        (
            "getUpdates_response_private_channel_group__huginn.json",
            GetUpdates(vec![
                Some(private(97201077, 15)),
                Some(msg(-1001144599139, Channel, None, 4)),
                Some(msg(-217850512, Group, Some(97201077), 18)),
            ]),
        ),
        (
            "getUpdates_response_with_malformed_updates__teloxide.json",
            GetUpdates(vec![Some(user_only(42)), None, Some(user_only(42)), None]),
        ),
        ("group_message_left_chat_member__huginn.json", Update(msg(-217850512, Group, Some(97201077), 18))),
        // The chat type the query was sent from, and no chat id.
        ("inline_query__nutgram.json", Update(Want { kind: Some(Private), ..user_only(123456789) })),
        ("inline_query__westacks_telebot.json", Update(user_only(111222333))),
        ("message__westacks_telebot.json", Update(private(123456789, 101))),
        // GroupAnonymousBot + sender_chat: no user.
        (
            "message_object_anonymous_admin_sender_chat__teloxide_issue419.json",
            Message(msg(-1001160242915, Supergroup, None, 1)),
        ),
        (
            "message_object_anonymous_admin_video_chat__teloxide_issue475.json",
            Message(msg(-1001331354980, Supergroup, None, 198295)),
        ),
        (
            "message_object_forum_topic_created__teloxide.json",
            Message(in_topic(msg(-1001847508954, Supergroup, Some(1253681278), 4), 4)),
        ),
        (
            "message_object_forum_topic_message__teloxide.json",
            Message(in_topic(msg(-1001847508954, Supergroup, Some(1253681278), 5), 4)),
        ),
        (
            "message_object_group_migrate_to_supergroup__teloxide_issue427.json",
            Message(msg(-599075523, Group, Some(729497414), 16)),
        ),
        (
            "message_object_supergroup_migrate_from__teloxide_issue427.json",
            Message(msg(-1001555296434, Supergroup, None, 1)),
        ),
        ("message_reaction__nutgram.json", Update(private(456, 123))),
        // Reacted on behalf of the chat (actor_chat): no user.
        ("message_reaction_actor_chat__teloxide.json", Update(msg(-1002199793788, Supergroup, None, 2))),
        ("message_reaction_count__teloxide.json", Update(msg(-1002236736395, Channel, None, 36))),
        ("message_reaction_user__teloxide.json", Update(msg(-1002184233434, Supergroup, Some(1459074222), 35))),
        ("my_chat_member__nutgram.json", Update(in_chat(987654321, Private, Some(123456789)))),
        ("my_chat_member__westacks_telebot.json", Update(in_chat(-1009876543210, Supergroup, Some(666777888)))),
        ("my_chat_member_private_kicked__teloxide_issue523.json", Update(in_chat(0, Private, Some(0)))),
        ("poll__nutgram.json", Update(NONE)),
        ("poll__westacks_telebot.json", Update(NONE)),
        ("poll_answer__nutgram.json", Update(user_only(123456789))),
        ("poll_answer__westacks_telebot.json", Update(user_only(333444555))),
        ("poll_object__teloxide.json", Poll(NONE)),
        (
            "pre_checkout_query__nutgram.json",
            TeloxideUnreadable {
                why: "teloxide refuses `\"order_info\": null` (it takes the field absent or an object)",
                fix: |v| {
                    if let Some(q) = v["pre_checkout_query"].as_object_mut() {
                        q.retain(|_, field| !field.is_null());
                    }
                },
                want: user_only(222222222),
            },
        ),
        ("pre_checkout_query__westacks_telebot.json", Update(user_only(222333444))),
        ("private_message_2__teloxide.json", Update(private(408258968, 154))),
        ("private_message__huginn.json", Update(private(97201077, 15))),
        ("private_message__nutgram.json", Update(private(12345678, 123456))),
        ("private_message__teloxide.json", Update(private(218485655, 6557))),
        ("shipping_query__westacks_telebot.json", Update(user_only(777888999))),
        (
            "supergroup_message_story__teloxide_issue1107.json",
            Update(msg(-1001293752024, Supergroup, Some(6962620676), 134545)),
        ),
        ("supergroup_pinned_message__teloxide.json", Update(msg(-1001276785818, Supergroup, Some(408258968), 20225))),
        // A reply in a supergroup that is no forum: a thread id, no topic.
        (
            "supergroup_reply_with_thread_id_not_forum__teloxide_issue1107.json",
            Update(in_thread(msg(-1001293752024, Supergroup, Some(5964236329), 134546), 134545)),
        ),
    ]
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/telegram")
}

fn read(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Parses from text, as teloxide does on the wire: teloxide's `Update` does not
/// deserialize from a `serde_json::Value` (it comes out as `UpdateKind::Error`).
fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &serde_json::Value) -> T {
    serde_json::from_str(&json.to_string()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn check(file: &str, ctx: &Context, want: &Want) {
    let pairs = [
        ("chat", format!("{:?}", ctx.chat_id), format!("{:?}", want.chat)),
        ("kind", format!("{:?}", ctx.chat_kind), format!("{:?}", want.kind)),
        ("user", format!("{:?}", ctx.user_id), format!("{:?}", want.user)),
        ("thread", format!("{:?}", ctx.thread_id), format!("{:?}", want.thread)),
        ("topic", format!("{:?}", ctx.topic_id), format!("{:?}", want.topic)),
        ("message", format!("{:?}", ctx.message_id), format!("{:?}", want.message)),
        ("reply.message", format!("{:?}", ctx.reply.message_id), format!("{:?}", want.message)),
        ("business", format!("{:?}", ctx.business_connection_id.as_deref()), format!("{:?}", want.business)),
        ("chat_instance", format!("{:?}", ctx.chat_instance.as_deref()), format!("{:?}", want.instance)),
        ("custom_id", format!("{:?}", ctx.custom_id.as_deref()), format!("{:?}", want.data)),
        ("callback_query_id", format!("{:?}", ctx.reply.callback_query_id.as_deref()), format!("{:?}", want.callback)),
        ("inline_message_id", format!("{:?}", ctx.reply.inline_message_id.as_deref()), format!("{:?}", want.inline)),
        ("bot", format!("{:?}", ctx.bot_id), "None".to_owned()),
        ("guild", format!("{:?}", ctx.guild_id), "None".to_owned()),
    ];
    for (field, got, want) in pairs {
        assert_eq!(got, want, "{file}: {field}");
    }
    // A callback query is a component of kind Callback; nothing else is a component.
    let kind = if want.callback.is_some() { Some(ComponentKind::Callback) } else { None };
    assert_eq!(ctx.component_kind(), kind, "{file}: component kind");
    // A topic is always a thread too.
    if ctx.topic_id.is_some() {
        assert_eq!(ctx.thread_id, ctx.topic_id, "{file}: topic is a thread");
    }
}

#[test]
fn every_telegram_fixture_yields_the_expected_context() {
    let table = table();
    let mut listed: Vec<&str> = table.iter().map(|(f, _)| *f).collect();
    listed.sort_unstable();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort_unstable();
    assert_eq!(listed, files, "every fixture file has exactly one row in the table");

    for (file, shape) in &table {
        let json = read(file);
        match shape {
            Shape::Update(want) => {
                let update: Update = parse(file, &json);
                assert!(!matches!(update.kind, UpdateKind::Error(_)), "{file}: teloxide knows the update kind");
                let ctx = context_of(&update);
                check(file, &ctx, want);
                assert!(ctx.extensions.get::<Update>().is_some(), "{file}: the update travels along");
            }
            Shape::Message(want) => {
                let message: Message = parse(file, &json);
                let ctx = context_of_message(&message);
                check(file, &ctx, want);
                assert!(ctx.extensions.get::<Message>().is_some(), "{file}: the message travels along");
            }
            Shape::Callback(want) => {
                let query: CallbackQuery = parse(file, &json);
                let ctx = context_of_callback(&query);
                check(file, &ctx, want);
                assert!(ctx.extensions.get::<CallbackQuery>().is_some(), "{file}: the query travels along");
            }
            Shape::Poll(want) => {
                let update = serde_json::json!({ "update_id": 0, "poll": json });
                let update: Update = parse(file, &update);
                check(file, &context_of(&update), want);
            }
            Shape::GetUpdates(wants) => {
                assert_eq!(json["ok"], true, "{file}: a successful response");
                let results = json["result"].as_array().unwrap_or_else(|| panic!("{file}: result array"));
                assert_eq!(results.len(), wants.len(), "{file}: one row per update");
                for (i, (raw, want)) in results.iter().zip(wants.iter()).enumerate() {
                    let update: Update = parse(&format!("{file}[{i}]"), raw);
                    let ctx = context_of(&update);
                    match want {
                        Some(want) => check(&format!("{file}[{i}]"), &ctx, want),
                        None => {
                            assert!(matches!(update.kind, UpdateKind::Error(_)), "{file}[{i}]: unreadable update");
                            check(&format!("{file}[{i}]"), &ctx, &NONE);
                        }
                    }
                }
            }
            Shape::TeloxideUnreadable { why, fix, want } => {
                let update: Update = parse(file, &json);
                assert!(matches!(update.kind, UpdateKind::Error(_)), "{file}: unreadable by teloxide ({why})");
                check(file, &context_of(&update), &NONE);
                let mut fixed = json.clone();
                fix(&mut fixed);
                let update: Update = parse(file, &fixed);
                assert!(!matches!(update.kind, UpdateKind::Error(_)), "{file}: readable once fixed");
                check(&format!("{file} (fixed)"), &context_of(&update), want);
            }
            Shape::ApiError => {
                // An error body carries no update: there is nothing to extract.
                assert_eq!(json["ok"], false, "{file}: an error response");
                assert!(json.get("result").is_none(), "{file}: no result");
            }
        }
    }
}

fn message_fixture(file: &str) -> Context {
    let message: Message = parse(file, &read(file));
    context_of_message(&message)
}

fn update_fixture(file: &str) -> Context {
    let update: Update = parse(file, &read(file));
    context_of(&update)
}

#[test]
fn an_anonymous_admin_has_no_per_user_session_but_has_the_chats() {
    let ctx = message_fixture("message_object_anonymous_admin_sender_chat__teloxide_issue419.json");
    for strategy in [KeyStrategy::User, KeyStrategy::ChatUser, KeyStrategy::TopicOrChatUser] {
        assert_eq!(strategy.scope(&ctx), Err(KeyError::MissingUser { strategy: strategy.name() }));
    }
    assert_eq!(KeyStrategy::Chat.scope(&ctx), Ok(Scope::Chat(-1001160242915)));
    assert_eq!(KeyStrategy::TopicOrChat.scope(&ctx), Ok(Scope::Chat(-1001160242915)));
}

#[test]
fn a_reply_thread_is_not_a_topic_for_key_strategies() {
    let reply = update_fixture("supergroup_reply_with_thread_id_not_forum__teloxide_issue1107.json");
    assert_eq!(
        KeyStrategy::TopicOrChatUser.scope(&reply),
        Ok(Scope::ChatUser { chat: -1001293752024, user: 5964236329 })
    );
    assert!(matches!(KeyStrategy::ChatTopic.scope(&reply), Err(KeyError::MissingTopic { .. })));
    let general = update_fixture("forum_general_topic_reply__nutgram.json");
    assert_eq!(KeyStrategy::TopicOrChat.scope(&general), Ok(Scope::Chat(FORUM)));
    let topic = update_fixture("forum_topic_reply__nutgram.json");
    assert_eq!(KeyStrategy::TopicOrChat.scope(&topic), Ok(Scope::Topic { chat: FORUM, topic: 33 }));
    assert_eq!(KeyStrategy::TopicUser.scope(&topic), Ok(Scope::TopicUser { chat: FORUM, topic: 33, user: 123456 }));
}

#[test]
fn polls_channel_posts_and_inline_callbacks_refuse_what_they_lack() {
    let poll = update_fixture("poll__nutgram.json");
    assert!(matches!(KeyStrategy::Chat.scope(&poll), Err(KeyError::MissingChat { .. })));
    assert!(matches!(KeyStrategy::User.scope(&poll), Err(KeyError::MissingUser { .. })));
    let post = update_fixture("channel_post_no_from__huginn.json");
    assert_eq!(KeyStrategy::Chat.scope(&post), Ok(Scope::Chat(-1001144599139)));
    assert!(matches!(KeyStrategy::ChatUser.scope(&post), Err(KeyError::MissingUser { .. })));
    let file = "callback_query_object_inline_message__teloxide.json";
    let query: CallbackQuery = parse(file, &read(file));
    let inline = context_of_callback(&query);
    assert!(matches!(KeyStrategy::Chat.scope(&inline), Err(KeyError::MissingChat { .. })));
    assert_eq!(KeyStrategy::ChatInstance.scope(&inline), Ok(Scope::ChatInstance("123456".into())));
    assert_eq!(KeyStrategy::User.scope(&inline), Ok(Scope::User(12345)));
}

#[test]
fn a_business_message_with_its_connection_id_carries_it() {
    // The nutgram fixtures lack `business_connection_id`, which real business messages
    // always have: the same message with the field added.
    let mut json = read("business_message_no_connection_id__nutgram.json");
    json["business_message"]["business_connection_id"] = "bc-1".into();
    let update: Update = parse("business message", &json);
    let ctx = context_of(&update);
    assert_eq!(ctx.business_connection_id.as_deref(), Some("bc-1"));
    assert_eq!(KeyStrategy::BusinessConnection.scope(&ctx), Ok(Scope::Business("bc-1".into())));
    assert_eq!((ctx.chat_id, ctx.user_id), (Some(456), Some(456)));
}
