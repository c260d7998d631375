use super::*;
use crate::Context;

fn ns(s: &str) -> Namespace {
    Namespace::new(s).unwrap()
}

#[test]
fn every_scope_round_trips() {
    let scopes = [
        Scope::Chat(-100123),
        Scope::User(42),
        Scope::ChatUser { chat: 1, user: 2 },
        Scope::Topic { chat: -5, topic: 9 },
        Scope::TopicUser { chat: -5, topic: 9, user: 3 },
        Scope::Business("AbC/%x\n".into()),
        Scope::Guild(81384788765712384),
        Scope::GuildUser { guild: -1, user: 2 },
        Scope::ChatInstance("-7284093287465123".into()),
        Scope::ChatInstance("a/b:%c\u{7f}".into()),
        Scope::Custom { id: "a/b:c%d é".into(), user: None },
        Scope::Custom { id: String::new(), user: Some(7) },
    ];
    for scope in scopes {
        for bot in [None, Some(777)] {
            let key = SessionKey::with_bot(ns("n.s-1_x"), bot, scope.clone());
            let parsed: SessionKey = key.as_str().parse().unwrap();
            assert_eq!(parsed, key, "{key}");
        }
    }
}

#[test]
fn new_scopes_have_their_textual_form() {
    let text = |scope| SessionKey::new(ns("s"), scope).to_string();
    assert_eq!(text(Scope::Guild(1)), "s/guild:1");
    assert_eq!(text(Scope::GuildUser { guild: 1, user: 2 }), "s/guild:1/user:2");
    assert_eq!(text(Scope::ChatInstance("-72/8%".into())), "s/instance:-72%2F8%25");
}

#[test]
fn malformed_keys_are_typed_errors() {
    for bad in [
        "",
        "ns",
        "ns/",
        "ns/chat",
        "ns/chat:x",
        "ns/chat:1/chat:2",
        "ns/topic:1",
        "ns/chat:+1",
        "ns/chat:01",
        "ns@x/chat:1",
        "n s/chat:1",
        "ns/custom:%zz",
        "ns/custom:%4",
        "ns/custom:%ff",
        "ns/custom:%2f",
        "ns/user:1/extra:2",
        "ns/guild",
        "ns/guild:x",
        "ns/guild:+1",
        "ns/guild:01",
        "ns/guild:-0",
        "ns/guild:1/user:02",
        "ns/user:2/guild:1",
        "ns/guild:1/chat:2",
        "ns/guild:1/user:2/extra:3",
        "ns/chat:1/guild:1",
        "ns/instance",
        "ns/instance:%2f",
        "ns/instance:%zz",
        "ns/instance:a%",
        "ns/instance:%41",
        "ns/instance:1/user:2",
    ] {
        let err = bad.parse::<SessionKey>().unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. } | KeyError::InvalidNamespace { .. }), "{bad:?} gave {err:?}");
    }
}

#[test]
fn namespaces_are_validated() {
    assert!(Namespace::new("onboarding").is_ok());
    for bad in ["", "_quarantine", "a/b", "a b", "ä", &"x".repeat(65)] {
        assert!(matches!(Namespace::new(bad), Err(KeyError::InvalidNamespace { .. })), "{bad:?}");
    }
}

#[test]
fn strategies_report_the_missing_id() {
    let poll = Context::new();
    let channel_post = Context::new().chat(-1001);
    let no_topic = Context::new().chat(-1001).user(5);
    assert_eq!(KeyStrategy::Chat.scope(&poll), Err(KeyError::MissingChat { strategy: "chat" }));
    assert_eq!(KeyStrategy::User.scope(&channel_post), Err(KeyError::MissingUser { strategy: "user" }));
    assert_eq!(KeyStrategy::ChatUser.scope(&channel_post), Err(KeyError::MissingUser { strategy: "chat_user" }));
    assert_eq!(KeyStrategy::ChatTopic.scope(&no_topic), Err(KeyError::MissingTopic { strategy: "chat_topic" }));
    assert_eq!(
        KeyStrategy::BusinessConnection.scope(&no_topic),
        Err(KeyError::MissingBusinessConnection { strategy: "business_connection" })
    );
    assert_eq!(KeyStrategy::Guild.scope(&no_topic), Err(KeyError::MissingGuild { strategy: "guild" }));
    assert_eq!(
        KeyStrategy::ChatInstance.scope(&no_topic),
        Err(KeyError::MissingChatInstance { strategy: "chat_instance" })
    );
    let custom = KeyStrategy::custom(|c| {
        Ok(Scope::Custom {
            id: format!("m{}", c.message_id.ok_or(KeyError::Custom("no message".into()))?),
            user: c.user_id,
        })
    });
    assert_eq!(
        custom.scope(&Context::new().message(3).user(1)).unwrap(),
        Scope::Custom { id: "m3".into(), user: Some(1) }
    );
    assert_eq!(custom.scope(&poll), Err(KeyError::Custom("no message".into())));
}

#[test]
fn bot_id_qualifies_the_key() {
    let k = KeyStrategy::Chat.key(&ns("c"), &Context::new().bot(9).chat(1)).unwrap();
    assert_eq!(k.as_str(), "c@9/chat:1");
}
