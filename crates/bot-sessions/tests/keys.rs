//! Key strategies over realistic updates, and property tests of the textual key form
//! the operator tool takes on its command line.

use bot_sessions::{ChatKind, Context, KeyError, KeyStrategy, Namespace, ReplyRef, Scope, SessionKey};
use proptest::prelude::*;

// Contexts as the platform adapters build them from real updates (see
// `shared/fixtures/`).

/// A message in forum topic 9 of a supergroup.
fn topic_message() -> Context {
    Context::new().bot(7).chat(-100123).chat_kind(ChatKind::Supergroup).user(42).topic(9).message(1)
}

/// A reply in a reply thread of a supergroup that is not a forum: `message_thread_id`
/// set, not a topic.
fn reply_thread_message() -> Context {
    Context::new().bot(7).chat(-100123).chat_kind(ChatKind::Supergroup).user(42).thread(77).message(2)
}

/// A plain group message, no thread.
fn group_message() -> Context {
    Context::new().bot(7).chat(-100123).chat_kind(ChatKind::Supergroup).user(42).message(3)
}

/// An anonymous group admin (`GroupAnonymousBot` with a `sender_chat`): no user.
fn anonymous_admin(topic: Option<i64>) -> Context {
    let ctx = Context::new().bot(7).chat(-100123).chat_kind(ChatKind::Supergroup).message(4);
    match topic {
        Some(t) => ctx.topic(t),
        None => ctx,
    }
}

/// A channel post: no user.
fn channel_post() -> Context {
    Context::new().bot(7).chat(-100999).chat_kind(ChatKind::Channel).message(5)
}

/// A callback of an inline message: no chat, no message, a `chat_instance`.
fn inline_callback() -> Context {
    Context::new()
        .bot(7)
        .user(12345)
        .chat_instance("123456")
        .callback("some_data")
        .reply_ref(ReplyRef::callback_query("id").inline_message("i_m_id"))
}

/// A poll update: neither chat nor user.
fn poll() -> Context {
    Context::new().bot(7)
}

/// A Discord button click in a thread of guild 1.
fn guild_click() -> Context {
    Context::new().guild(1).chat(555).chat_kind(ChatKind::Guild).user(42).thread(555).button("x")
}

/// A Discord button click in a DM: no guild.
fn dm_click() -> Context {
    Context::new().chat(9).chat_kind(ChatKind::Private).user(42).button("x")
}

fn missing_chat(strategy: &'static str) -> Result<Scope, KeyError> {
    Err(KeyError::MissingChat { strategy })
}
fn missing_user(strategy: &'static str) -> Result<Scope, KeyError> {
    Err(KeyError::MissingUser { strategy })
}

#[test]
fn topic_or_chat_is_the_topic_inside_one_and_the_chat_elsewhere() {
    let s = KeyStrategy::TopicOrChat;
    assert_eq!(s.name(), "topic_or_chat");
    assert_eq!(s.scope(&topic_message()), Ok(Scope::Topic { chat: -100123, topic: 9 }));
    assert_eq!(s.scope(&group_message()), Ok(Scope::Chat(-100123)));
    assert_eq!(s.scope(&reply_thread_message()), Ok(Scope::Chat(-100123)), "a reply thread is not a topic");
    assert_eq!(s.scope(&anonymous_admin(Some(9))), Ok(Scope::Topic { chat: -100123, topic: 9 }));
    assert_eq!(s.scope(&anonymous_admin(None)), Ok(Scope::Chat(-100123)));
    assert_eq!(s.scope(&channel_post()), Ok(Scope::Chat(-100999)));
    assert_eq!(s.scope(&inline_callback()), missing_chat("topic_or_chat"));
    assert_eq!(s.scope(&poll()), missing_chat("topic_or_chat"));
    // A topic without a chat is refused, not keyed by the topic alone.
    let mut topic_only = Context::new().topic(9);
    assert_eq!(s.scope(&topic_only), missing_chat("topic_or_chat"));
    topic_only.thread_id = None;
    assert_eq!(s.scope(&topic_only), missing_chat("topic_or_chat"));
    assert_eq!(s.key(&ns("forms"), &topic_message()).unwrap().as_str(), "forms@7/chat:-100123/topic:9");
}

#[test]
fn topic_or_chat_user_is_the_user_in_the_topic_or_in_the_chat() {
    let s = KeyStrategy::TopicOrChatUser;
    assert_eq!(s.name(), "topic_or_chat_user");
    assert_eq!(s.scope(&topic_message()), Ok(Scope::TopicUser { chat: -100123, topic: 9, user: 42 }));
    assert_eq!(s.scope(&group_message()), Ok(Scope::ChatUser { chat: -100123, user: 42 }));
    assert_eq!(s.scope(&reply_thread_message()), Ok(Scope::ChatUser { chat: -100123, user: 42 }));
    assert_eq!(s.scope(&anonymous_admin(Some(9))), missing_user("topic_or_chat_user"));
    assert_eq!(s.scope(&anonymous_admin(None)), missing_user("topic_or_chat_user"));
    assert_eq!(s.scope(&channel_post()), missing_user("topic_or_chat_user"));
    assert_eq!(s.scope(&inline_callback()), missing_chat("topic_or_chat_user"));
    assert_eq!(s.scope(&poll()), missing_chat("topic_or_chat_user"));
    let key = s.key(&ns("forms"), &topic_message()).unwrap();
    assert_eq!((key.as_str(), key.user_id()), ("forms@7/chat:-100123/topic:9/user:42", Some(42)));
}

#[test]
fn topic_strategies_read_the_topic_never_a_plain_thread() {
    let reply_thread = reply_thread_message();
    assert_eq!(KeyStrategy::ChatTopic.scope(&reply_thread), Err(KeyError::MissingTopic { strategy: "chat_topic" }));
    assert_eq!(KeyStrategy::TopicUser.scope(&reply_thread), Err(KeyError::MissingTopic { strategy: "topic_user" }));
    assert_eq!(KeyStrategy::ChatTopic.scope(&guild_click()), Err(KeyError::MissingTopic { strategy: "chat_topic" }));
    assert_eq!(KeyStrategy::ChatTopic.scope(&topic_message()), Ok(Scope::Topic { chat: -100123, topic: 9 }));
    assert_eq!(
        KeyStrategy::TopicUser.scope(&topic_message()),
        Ok(Scope::TopicUser { chat: -100123, topic: 9, user: 42 })
    );
    // A topic id that differs from the thread id (set by hand): the topic wins.
    let mut odd = topic_message();
    odd.thread_id = Some(1000);
    assert_eq!(KeyStrategy::ChatTopic.scope(&odd), Ok(Scope::Topic { chat: -100123, topic: 9 }));
    assert_eq!(KeyStrategy::TopicOrChat.scope(&odd), Ok(Scope::Topic { chat: -100123, topic: 9 }));
}

#[test]
fn guild_is_per_discord_guild() {
    let s = KeyStrategy::Guild;
    let missing = Err(KeyError::MissingGuild { strategy: "guild" });
    assert_eq!(s.name(), "guild");
    assert_eq!(s.scope(&guild_click()), Ok(Scope::Guild(1)));
    assert_eq!(s.scope(&Context::new().guild(1)), Ok(Scope::Guild(1)), "a guild alone is enough");
    assert_eq!(s.scope(&dm_click()), missing);
    assert_eq!(s.scope(&group_message()), missing);
    assert_eq!(s.scope(&channel_post()), missing);
    assert_eq!(s.scope(&anonymous_admin(None)), missing);
    assert_eq!(s.scope(&poll()), missing);
    let key = s.key(&ns("roles"), &guild_click()).unwrap();
    assert_eq!((key.as_str(), key.user_id()), ("roles/guild:1", None));
}

#[test]
fn guild_user_is_per_user_in_a_discord_guild() {
    let s = KeyStrategy::GuildUser;
    assert_eq!(s.name(), "guild_user");
    assert_eq!(s.scope(&guild_click()), Ok(Scope::GuildUser { guild: 1, user: 42 }));
    assert_eq!(s.scope(&dm_click()), Err(KeyError::MissingGuild { strategy: "guild_user" }));
    assert_eq!(s.scope(&Context::new().guild(1).chat(555)), missing_user("guild_user"));
    // Both missing: the guild is reported first.
    assert_eq!(s.scope(&poll()), Err(KeyError::MissingGuild { strategy: "guild_user" }));
    let key = s.key(&ns("roles"), &guild_click()).unwrap();
    assert_eq!((key.as_str(), key.user_id()), ("roles/guild:1/user:42", Some(42)));
}

#[test]
fn chat_instance_keys_callbacks_of_inline_messages() {
    let s = KeyStrategy::ChatInstance;
    let missing = Err(KeyError::MissingChatInstance { strategy: "chat_instance" });
    assert_eq!(s.name(), "chat_instance");
    assert_eq!(s.scope(&inline_callback()), Ok(Scope::ChatInstance("123456".into())));
    // A callback of a message in a chat has a chat_instance too.
    let chat_callback = group_message().chat_instance("-7284093287465123").callback("d");
    assert_eq!(s.scope(&chat_callback), Ok(Scope::ChatInstance("-7284093287465123".into())));
    assert_eq!(s.scope(&group_message()), missing);
    assert_eq!(s.scope(&channel_post()), missing);
    assert_eq!(s.scope(&anonymous_admin(Some(9))), missing);
    assert_eq!(s.scope(&poll()), missing);
    assert_eq!(s.scope(&Context::new().chat_instance("")), missing, "an empty chat_instance is none");
    let key = s.key(&ns("votes"), &inline_callback()).unwrap();
    assert_eq!((key.as_str(), key.user_id()), ("votes@7/instance:123456", None));
    assert_eq!(key.as_str().parse::<SessionKey>(), Ok(key));
}

#[test]
fn missing_id_errors_name_the_strategy() {
    let guild = KeyError::MissingGuild { strategy: "guild_user" }.to_string();
    assert!(guild.contains("guild id") && guild.contains("`guild_user`"), "{guild}");
    let instance = KeyError::MissingChatInstance { strategy: "chat_instance" }.to_string();
    assert!(instance.contains("chat_instance") && instance.contains("`chat_instance`"), "{instance}");
}

#[test]
fn new_scopes_parse_from_their_text() {
    let parse = |s: &str| s.parse::<SessionKey>().map(|k| k.scope().clone());
    assert_eq!(parse("roles/guild:1"), Ok(Scope::Guild(1)));
    assert_eq!(parse("roles@7/guild:-1/user:2"), Ok(Scope::GuildUser { guild: -1, user: 2 }));
    assert_eq!(parse("votes/instance:-72%2F8%25"), Ok(Scope::ChatInstance("-72/8%".into())));
    assert_eq!(parse("votes/instance:"), Ok(Scope::ChatInstance(String::new())));
    for bad in ["roles/guild:01", "roles/guild:+1", "roles/user:2/guild:1", "votes/instance:%2f", "votes/instance:%41"]
    {
        assert!(matches!(bad.parse::<SessionKey>(), Err(KeyError::Malformed { .. })), "{bad}");
    }
}

fn ns(s: &str) -> Namespace {
    Namespace::new(s).unwrap()
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        any::<i64>().prop_map(Scope::Chat),
        any::<i64>().prop_map(Scope::User),
        (any::<i64>(), any::<i64>()).prop_map(|(chat, user)| Scope::ChatUser { chat, user }),
        (any::<i64>(), any::<i64>()).prop_map(|(chat, topic)| Scope::Topic { chat, topic }),
        (any::<i64>(), any::<i64>(), any::<i64>()).prop_map(|(chat, topic, user)| Scope::TopicUser {
            chat,
            topic,
            user
        }),
        any::<String>().prop_map(Scope::Business),
        any::<i64>().prop_map(Scope::Guild),
        (any::<i64>(), any::<i64>()).prop_map(|(guild, user)| Scope::GuildUser { guild, user }),
        any::<String>().prop_map(Scope::ChatInstance),
        (any::<String>(), proptest::option::of(any::<i64>())).prop_map(|(id, user)| Scope::Custom { id, user }),
    ]
}

proptest! {
    #[test]
    fn every_key_round_trips(ns in "[A-Za-z0-9.-][A-Za-z0-9_.-]{0,63}", bot in proptest::option::of(any::<i64>()), scope in scope()) {
        let key = SessionKey::with_bot(Namespace::new(&ns).unwrap(), bot, scope);
        let parsed: SessionKey = key.as_str().parse().unwrap();
        prop_assert_eq!(&parsed, &key);
        prop_assert_eq!(parsed.user_id(), key.user_id());
    }

    #[test]
    fn guild_and_instance_keys_match_their_scope(guild in any::<i64>(), user in any::<i64>(), instance in any::<String>()) {
        let g = Context::new().guild(guild).user(user);
        prop_assert_eq!(KeyStrategy::Guild.scope(&g), Ok(Scope::Guild(guild)));
        prop_assert_eq!(KeyStrategy::GuildUser.scope(&g), Ok(Scope::GuildUser { guild, user }));
        let i = Context::new().chat_instance(instance.clone());
        let expected = if instance.is_empty() {
            Err(KeyError::MissingChatInstance { strategy: "chat_instance" })
        } else {
            Ok(Scope::ChatInstance(instance))
        };
        prop_assert_eq!(KeyStrategy::ChatInstance.scope(&i), expected);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        match text.parse::<SessionKey>() {
            Ok(key) => prop_assert_eq!(key.as_str(), text.as_str(), "only canonical text parses"),
            Err(KeyError::Malformed { input, .. }) => prop_assert_eq!(input, text),
            Err(KeyError::InvalidNamespace { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn guild_and_instance_text_never_panics(value in "[-+0-9a-zA-Z%/:]{0,24}", user in "[-+0-9]{0,4}") {
        for text in [format!("ns/guild:{value}"), format!("ns/guild:{value}/user:{user}"), format!("ns/instance:{value}")] {
            if let Ok(key) = text.parse::<SessionKey>() {
                prop_assert_eq!(key.as_str(), text.as_str(), "only canonical text parses");
            }
        }
    }
}
