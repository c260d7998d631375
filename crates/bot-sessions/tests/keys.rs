//! Property tests of the textual key form the operator tool takes on its command line.

use bot_sessions::{KeyError, Namespace, Scope, SessionKey};
use proptest::prelude::*;

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
    fn arbitrary_text_never_panics(text in any::<String>()) {
        match text.parse::<SessionKey>() {
            Ok(key) => prop_assert_eq!(key.as_str(), text.as_str(), "only canonical text parses"),
            Err(KeyError::Malformed { input, .. }) => prop_assert_eq!(input, text),
            Err(KeyError::InvalidNamespace { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}
