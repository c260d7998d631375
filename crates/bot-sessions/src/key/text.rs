//! Parsing the canonical textual form of a [`SessionKey`] (rendered in `scope.rs`, where
//! the key is built).

use std::str::FromStr;

use super::{KeyError, Namespace, Scope, SessionKey};

fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape `%{hex}`"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escapes do not form UTF-8".to_string())
}

impl FromStr for SessionKey {
    type Err = KeyError;

    fn from_str(input: &str) -> Result<Self, KeyError> {
        let malformed = |reason: String| KeyError::Malformed { input: input.into(), reason };
        let mut parts = input.split('/');
        let head = parts.next().unwrap_or_default();
        let (ns, bot) = match head.split_once('@') {
            Some((ns, bot)) => {
                let bot = bot.parse::<i64>().map_err(|_| malformed(format!("bot id `{bot}` is not an integer")))?;
                (ns, Some(bot))
            }
            None => (head, None),
        };
        let namespace = Namespace::new_unchecked_reserved(ns)?;
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(3);
        for seg in parts {
            let (name, value) =
                seg.split_once(':').ok_or_else(|| malformed(format!("segment `{seg}` is not `name:value`")))?;
            fields.push((name, value));
        }
        let int =
            |name: &str, v: &str| v.parse::<i64>().map_err(|_| malformed(format!("{name} `{v}` is not an integer")));
        let text = |v: &str| unescape(v).map_err(malformed);
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        let scope = match (names.as_slice(), fields.as_slice()) {
            (["chat"], [(_, c)]) => Scope::Chat(int("chat", c)?),
            (["user"], [(_, u)]) => Scope::User(int("user", u)?),
            (["chat", "user"], [(_, c), (_, u)]) => Scope::ChatUser { chat: int("chat", c)?, user: int("user", u)? },
            (["chat", "topic"], [(_, c), (_, t)]) => Scope::Topic { chat: int("chat", c)?, topic: int("topic", t)? },
            (["chat", "topic", "user"], [(_, c), (_, t), (_, u)]) => {
                Scope::TopicUser { chat: int("chat", c)?, topic: int("topic", t)?, user: int("user", u)? }
            }
            (["biz"], [(_, b)]) => Scope::Business(text(b)?),
            (["guild"], [(_, g)]) => Scope::Guild(int("guild", g)?),
            (["guild", "user"], [(_, g), (_, u)]) => {
                Scope::GuildUser { guild: int("guild", g)?, user: int("user", u)? }
            }
            (["instance"], [(_, i)]) => Scope::ChatInstance(text(i)?),
            (["custom"], [(_, id)]) => Scope::Custom { id: text(id)?, user: None },
            (["custom", "user"], [(_, id), (_, u)]) => Scope::Custom { id: text(id)?, user: Some(int("user", u)?) },
            ([], _) => return Err(malformed("no scope after the namespace".into())),
            _ => return Err(malformed(format!("unknown scope layout `{}`", names.join("/")))),
        };
        let key = SessionKey::with_bot(namespace, bot, scope);
        // Reject non-canonical spellings (`chat:+5`, `chat:05`, lower-case escapes) so
        // one session never has two textual names.
        if key.as_str() != input {
            return Err(malformed(format!("not in canonical form (expected `{key}`)")));
        }
        Ok(key)
    }
}
