//! The bodies of the fuzz targets (`fuzz/` at the repository root, cargo-fuzz): one
//! function per target taking arbitrary bytes. They live here so that the fuzz targets
//! and the test replaying their committed corpora (`tests/fuzz_corpus.rs`) run the very
//! same code, and so they can reach the parsers the public API only uses inside `open`
//! or `load`.
//!
//! Each function panics only when an invariant breaks (a crash for the fuzzer): bad
//! input must come back as a typed error, never a panic, and what parses must print
//! back to the same text. The functions that need the whole feature set
//! (`interactive`, `telegram`, `discord`, the backends) are compiled when it is on.

use std::sync::{Arc, OnceLock};

use crate::{Context, KeyStrategy, Namespace, SessionKey};

/// Runs `f` on a single-threaded runtime kept for the thread (fuzzers call millions of
/// times; one runtime each would dominate).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("fuzz runtime: {e}"));
    }
    RUNTIME.with(|rt| rt.block_on(f))
}

/// Splits `n` leading bytes off (zeros when the input is shorter).
fn take<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut head = [0u8; N];
    let n = N.min(data.len());
    head[..n].copy_from_slice(&data[..n]);
    (head, &data[n..])
}

/// Target `session_key`: the textual key parser. What parses is in canonical form
/// (prints back to the input) and parses again to the same key.
pub fn session_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = text.parse::<SessionKey>() {
        assert_eq!(key.as_str(), text, "a parsed key prints back to its text");
        assert_eq!(key.to_string(), text);
        let again: SessionKey = key.as_str().parse().unwrap_or_else(|e| panic!("{key} does not parse again: {e}"));
        assert_eq!(again, key);
        let _ = (key.user_id(), key.namespace());
    }
    if let Ok(ns) = Namespace::new(text) {
        assert_eq!(ns.as_str(), text);
    }
}

#[cfg_attr(not(any(feature = "telegram", feature = "discord")), allow(dead_code))]
/// Every key strategy that derives from a context (not a closure).
const STRATEGIES: [KeyStrategy; 11] = [
    KeyStrategy::Chat,
    KeyStrategy::User,
    KeyStrategy::ChatUser,
    KeyStrategy::ChatTopic,
    KeyStrategy::TopicUser,
    KeyStrategy::BusinessConnection,
    KeyStrategy::TopicOrChat,
    KeyStrategy::TopicOrChatUser,
    KeyStrategy::Guild,
    KeyStrategy::GuildUser,
    KeyStrategy::ChatInstance,
];

#[cfg_attr(not(any(feature = "telegram", feature = "discord")), allow(dead_code))]
/// Derives a key from `ctx` with every strategy; each key's text (free text from the
/// update included: business connection ids, chat instances) must parse back to it.
fn keys_round_trip(ctx: &Context) {
    static NS: OnceLock<Namespace> = OnceLock::new();
    let ns = NS.get_or_init(|| Namespace::new("fz").unwrap_or_else(|e| panic!("{e}")));
    for strategy in &STRATEGIES {
        if let Ok(key) = strategy.key(ns, ctx) {
            let back: SessionKey = key.as_str().parse().unwrap_or_else(|e| panic!("key {key} from an update: {e}"));
            assert_eq!(back, key, "the key of an update round-trips through its text");
        }
    }
}

/// Target `store_url`: a store URL read as `store::open` reads it, without opening or
/// connecting anything. A password in a Redis or PostgreSQL URL never shows in the
/// error.
pub fn store_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::store::check_url(text);
    // The same text as what follows the password of a server URL.
    const PASSWORD: &str = "Pw0rdZq9";
    if text.contains(PASSWORD) {
        return;
    }
    for scheme in ["redis", "rediss", "postgres", "postgresql"] {
        let url = format!("{scheme}://bot:{PASSWORD}@{text}");
        if let Err(e) = crate::store::check_url(&url) {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(PASSWORD), "the password of {url:?} shows in its error: {shown}");
        }
    }
}

#[cfg(feature = "interactive")]
mod interactive_targets {
    use std::sync::OnceLock;

    use crate::interactive::{CustomIdCodec, SessionId, SigningKeys, Target, Unit};

    /// The codecs a custom id is read with: plain and signed, both platforms' limits.
    fn codecs() -> &'static [CustomIdCodec] {
        static CODECS: OnceLock<Vec<CustomIdCodec>> = OnceLock::new();
        CODECS.get_or_init(|| {
            let ok = |r: Result<CustomIdCodec, _>| r.unwrap_or_else(|e| panic!("fuzz codec: {e}"));
            let keys = SigningKeys::new([b"fuzzing key, 32 bytes long......"])
                .and_then(|k| k.tag_bytes(4))
                .unwrap_or_else(|e| panic!("fuzz keys: {e}"));
            vec![
                ok(CustomIdCodec::new("poll", Target::Discord)),
                ok(CustomIdCodec::new("m", Target::Telegram)),
                ok(CustomIdCodec::new("m", Target::Custom { limit: 4096, unit: Unit::Chars })),
                ok(CustomIdCodec::new("poll", Target::Telegram)).signed(keys),
            ]
        })
    }

    /// Target `custom_id`: custom id decoding. What decodes encodes back to the very
    /// same text (one spelling per id, under the limit, the same signature).
    pub fn custom_id(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else { return };
        for codec in codecs() {
            if let Ok(id) = codec.decode(text) {
                let back = codec.encode(&id).unwrap_or_else(|e| panic!("{text:?} decoded but does not encode: {e}"));
                assert_eq!(back, text, "a decoded id encodes back to its text");
            }
        }
        if let Some(sid) = SessionId::parse(text) {
            assert_eq!(sid.as_str(), text);
        }
    }
}
#[cfg(feature = "interactive")]
pub use interactive_targets::custom_id;

#[cfg(all(feature = "sqlite", feature = "redis"))]
mod record_targets {
    use rusqlite::types::ValueRef;

    use super::take;
    use crate::SessionKey;

    /// One SQLite column from the input: a type tag, then its payload.
    fn column<'a>(data: &mut &'a [u8]) -> ValueRef<'a> {
        let ([tag], rest) = take::<1>(data);
        *data = rest;
        match tag % 5 {
            0 => ValueRef::Null,
            1 | 2 => {
                let (raw, rest) = take::<8>(data);
                *data = rest;
                if tag % 5 == 1 {
                    ValueRef::Integer(i64::from_le_bytes(raw))
                } else {
                    ValueRef::Real(f64::from_le_bytes(raw))
                }
            }
            kind => {
                let ([len], rest) = take::<1>(data);
                let len = usize::from(len).min(rest.len());
                let (bytes, rest) = rest.split_at(len);
                *data = rest;
                if kind == 3 { ValueRef::Text(bytes) } else { ValueRef::Blob(bytes) }
            }
        }
    }

    /// Target `store_record`: a record's stored metadata as the SQLite and Redis
    /// backends read it back. Bad metadata is a typed error, and a parsed Redis record
    /// keeps the numbers its metadata says.
    pub fn store_record(data: &[u8]) {
        let ([flags], rest) = take::<1>(data);
        // Redis: `HMGET key value meta`, the input's first line the metadata.
        let (meta, value) = match rest.iter().position(|b| *b == b'\n') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &[][..]),
        };
        let key: SessionKey = "fz/chat:1/user:2".parse().unwrap_or_else(|e| panic!("{e}"));
        let fields = ((flags & 1 == 0).then(|| value.to_vec()), (flags & 2 == 0).then(|| meta.to_vec()));
        if let Ok(Some(record)) = crate::store::redis::parse_record(&key, fields) {
            let text = std::str::from_utf8(meta).unwrap_or_else(|_| panic!("non-UTF-8 metadata parsed"));
            // Leading zeros are accepted (`08` is 8): the number is what counts.
            let first = text.split(' ').next().and_then(|v| v.parse::<u64>().ok());
            assert_eq!(first, Some(record.version), "version of {text:?}");
            assert_eq!(record.value, value);
        }
        // SQLite: the seven columns of a row.
        let mut input = data;
        let columns = [(); 7].map(|()| column(&mut input));
        if let Ok(record) = crate::store::sqlite::parse_record(columns) {
            assert!(i64::try_from(record.version).is_ok(), "a negative version came out positive");
        }
    }
}
#[cfg(all(feature = "sqlite", feature = "redis"))]
pub use record_targets::store_record;

/// The session type of target `session_value`: nested, optional and enum fields, as
/// real sessions have.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Form {
    step: Step,
    name: Option<String>,
    tags: Vec<String>,
    n: u64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
enum Step {
    #[default]
    Start,
    Name,
    Done {
        at: i64,
    },
}

/// Target `session_value`: stored bytes as a session type reads them (the TTL header,
/// the codec, migrations from older schemas, the decode policy). Input: schema version,
/// decode policy, expiry, then the stored bytes. A load that fails leaves the record
/// exactly as it was.
pub fn session_value(data: &[u8]) {
    use crate::store::memory::MemoryStore;
    use crate::{
        Clock, DecodePolicy, ManualClock, Migrations, Precondition, SessionError, Sessions, Store, Timestamp, Write,
    };
    let ([schema, policy, expiry], value) = take::<3>(data);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::without_sweeper());
    // v1 stored `{"name": ..}`; v2 renamed it `first`; v3 (current) is `Form`.
    let migrations = Migrations::new()
        .step(|mut v| {
            let name = v.get_mut("name").map(serde_json::Value::take);
            Ok(serde_json::json!({ "first": name }))
        })
        .step(|mut v| {
            let first = v.get_mut("first").map(serde_json::Value::take).unwrap_or_default();
            Ok(serde_json::json!({ "step": "Start", "name": first, "tags": [], "n": 0 }))
        });
    let policy = match policy % 3 {
        0 => DecodePolicy::Fail,
        1 => DecodePolicy::Reset,
        _ => DecodePolicy::Quarantine,
    };
    let sessions = Sessions::<Form>::builder(store.clone())
        .namespace("fz")
        .migrations(migrations)
        .on_decode_error(policy)
        .clock(clock.clone() as Arc<dyn Clock>)
        .build()
        .unwrap_or_else(|e| panic!("fuzz sessions: {e}"));
    let key: SessionKey = "fz/chat:1".parse().unwrap_or_else(|e| panic!("{e}"));
    let now = clock.now();
    let expires_at = match expiry % 3 {
        0 => None,
        1 => Some(Timestamp(now.as_millis() + 60_000)),
        _ => Some(Timestamp(i64::MAX)),
    };
    let write = Write::new(value, u32::from(schema % 5), expires_at);
    block_on(async {
        store.write(&key, write, Precondition::Any, now).await.unwrap_or_else(|e| panic!("memory write: {e}"));
        let before = store.load(&key, now).await.unwrap_or_else(|e| panic!("memory load: {e}"));
        let _ = sessions.meta(&key).await;
        let got = sessions.get(&key).await;
        let updated = sessions
            .update(&key, |f| {
                f.n = f.n.wrapping_add(1);
                Ok::<_, SessionError>(f.n)
            })
            .await;
        let after = store.load(&key, now).await.unwrap_or_else(|e| panic!("memory load: {e}"));
        if got.is_err() && updated.is_err() && policy == DecodePolicy::Fail {
            assert_eq!(before, after, "a session that fails to load is left untouched");
        }
        if let Ok(n) = updated {
            let stored = sessions.get(&key).await.unwrap_or_else(|e| panic!("a session just saved does not load: {e}"));
            assert_eq!(stored.map(|f| f.n), Some(n), "the saved value is what loads");
        }
    });
}

#[cfg(feature = "interactive")]
mod envelope_target {
    use std::sync::Arc;

    use super::{block_on, take};
    use crate::interactive::{
        CustomId, CustomIdCodec, EndCx, EndReason, Interactive, Manager, SessionId, StartCx, Step, Target, UpdateCx,
    };
    use crate::store::BoxError;
    use crate::store::memory::MemoryStore;
    use crate::{Context, ManualClock, Precondition, Scope, SessionKey, Store, Write};

    /// A kind whose state is a struct.
    struct Counter;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Count {
        n: u32,
        label: String,
    }

    impl Interactive for Counter {
        type State = Count;
        type Args = ();
        type Output = u32;

        async fn start(&self, _: &mut StartCx<'_>, (): ()) -> Result<Count, BoxError> {
            Ok(Count { n: 0, label: String::new() })
        }

        async fn update(&self, cx: &mut UpdateCx<'_>, s: &mut Count) -> Result<Step<u32>, BoxError> {
            s.n = s.n.wrapping_add(1);
            Ok(if cx.component() == "done" { Step::Finish(s.n) } else { Step::refresh() })
        }

        async fn end(&self, _: &mut EndCx<'_>, s: Count) -> Result<Option<u32>, BoxError> {
            Ok(Some(s.n))
        }
    }

    /// A second kind, so routing reads the stored kind name.
    struct Picker;

    impl Interactive for Picker {
        type State = Vec<String>;
        type Args = ();
        type Output = String;

        async fn start(&self, _: &mut StartCx<'_>, (): ()) -> Result<Vec<String>, BoxError> {
            Ok(Vec::new())
        }

        async fn update(&self, cx: &mut UpdateCx<'_>, s: &mut Vec<String>) -> Result<Step<String>, BoxError> {
            s.push(cx.component().to_owned());
            Ok(Step::keep())
        }
    }

    /// Target `envelope`: a stored interactive session (the envelope JSON) read by a
    /// manager: a click routed to it, its message set, an expiry scan and an explicit
    /// end. Input: the clicking user, how far the clock moves, then the stored bytes.
    /// Whatever the bytes, every step returns; none panics.
    pub fn envelope(data: &[u8]) {
        let ([user, advance, component], value) = take::<3>(data);
        let clock = ManualClock::new(1_700_000_000_000);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::without_sweeper());
        let codec = CustomIdCodec::new("fz", Target::Discord).unwrap_or_else(|e| panic!("{e}"));
        let manager = Manager::builder(store.clone(), codec)
            .clock(clock.clone())
            .build()
            .unwrap_or_else(|e| panic!("fuzz manager: {e}"));
        manager.register("counter", Counter).unwrap_or_else(|e| panic!("{e}"));
        manager.register("picker", Picker).unwrap_or_else(|e| panic!("{e}"));
        let sid = SessionId::parse("FuzzFuzzFuzzFuzz").unwrap_or_else(|| panic!("fuzz session id"));
        let key = SessionKey::new(manager.namespace().clone(), Scope::Custom { id: sid.as_str().into(), user: None });
        let component = if component & 1 == 0 { "plus" } else { "done" };
        let text = manager.codec().encode(&CustomId::new(sid, component)).unwrap_or_else(|e| panic!("{e}"));
        let ctx = Context::new().chat(1).user(i64::from(user % 4)).custom_id(text);
        block_on(async {
            use crate::Clock;
            let now = clock.now();
            store
                .write(&key, Write::new(value, 1, None), Precondition::Any, now)
                .await
                .unwrap_or_else(|e| panic!("memory write: {e}"));
            let _ = manager.route(&ctx).await;
            let _ = manager.set_message(sid, 5).await;
            clock.advance(std::time::Duration::from_secs(u64::from(advance) * 60));
            let _ = manager.expire_scan(clock.now()).await;
            let _ = manager.expire_due(clock.now()).await;
            let _ = manager.end(sid, EndReason::Cancelled).await;
            let _ = manager.shutdown().await;
        });
    }
}
#[cfg(feature = "interactive")]
pub use envelope_target::envelope;

/// Target `telegram_update`: an arbitrary JSON document read as a teloxide `Update`,
/// `Message` and `CallbackQuery`, each turned into a [`Context`]; every key derived from
/// it round-trips through its text.
#[cfg(feature = "telegram")]
pub fn telegram_update(data: &[u8]) {
    use teloxide::types::{CallbackQuery, Message, Update};
    if teloxide_panics_on(data) {
        return;
    }
    if let Ok(update) = serde_json::from_slice::<Update>(data) {
        keys_round_trip(&crate::telegram::context_of(&update));
    }
    if let Ok(message) = serde_json::from_slice::<Message>(data) {
        keys_round_trip(&crate::telegram::context_of_message(&message));
    }
    if let Ok(query) = serde_json::from_slice::<CallbackQuery>(data) {
        keys_round_trip(&crate::telegram::context_of_callback(&query));
    }
}

/// Whether `data` is an update that teloxide-core 0.13.0's own deserializer panics on,
/// which the fuzzer cannot tell from a crash of ours: a `poll_answer` with neither `user`
/// nor `voter_chat` (an `unwrap` in its `deserialize_voter`; found by this target, kept
/// in `tests/fuzz_regressions.rs`, which fails once teloxide stops panicking).
#[cfg(feature = "telegram")]
pub fn teloxide_panics_on(data: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return false };
    value.get("poll_answer").is_some_and(|answer| {
        answer.is_object()
            && ["user", "voter_chat"].iter().all(|k| answer.get(k).is_none_or(serde_json::Value::is_null))
    })
}

/// Target `discord_interaction`: an arbitrary request body read as the endpoint reads
/// it (its type, then the interaction), turned into a [`Context`]; every key derived
/// from it round-trips through its text, and its custom id decodes or is refused.
#[cfg(feature = "discord")]
pub fn discord_interaction(data: &[u8]) {
    let _ = crate::discord::interaction_type(data);
    if let Ok(interaction) = crate::discord::parse_interaction(data) {
        let ctx = crate::discord::context_of(&interaction);
        keys_round_trip(&ctx);
        if let Some(id) = &ctx.custom_id {
            custom_id(id.as_bytes());
        }
    }
}
