//! A group that becomes a supergroup changes its chat id: [`migrate_chat`] moves its
//! sessions to the new id.

use std::borrow::Cow;

use teloxide::types::{ChatId, Message};

#[cfg(feature = "encryption")]
use crate::encryption::KeyRing;

use crate::{
    Clock, DynStore, Namespace, Precondition, Record, Scope, SessionKey, StoreError, SystemClock, Timestamp, Write,
};

/// How many records [`migrate_chat`] reads per scan page.
const PAGE: usize = 256;

/// A group's move to a supergroup, as a service message reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatMigration {
    /// The basic group's id.
    pub from: ChatId,
    /// The supergroup's id.
    pub to: ChatId,
}

impl ChatMigration {
    /// The migration a message reports: `migrate_to_chat_id` (sent in the old group) or
    /// `migrate_from_chat_id` (sent in the new supergroup). Telegram sends both; either
    /// gives the same pair.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::telegram::ChatMigration;
    /// use teloxide::types::{ChatId, Message};
    ///
    /// let m: Message = serde_json::from_str(&serde_json::json!({
    ///     "message_id": 16, "date": 1629404938, "migrate_to_chat_id": -1001555296434i64,
    ///     "from": {"id": 729497414, "is_bot": false, "first_name": "n"},
    ///     "chat": {"id": -599075523, "title": "test", "type": "group"}}).to_string())?;
    /// assert_eq!(ChatMigration::of(&m), Some(ChatMigration { from: ChatId(-599075523), to: ChatId(-1001555296434) }));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn of(message: &Message) -> Option<Self> {
        if let Some(to) = message.migrate_to_chat_id() {
            return Some(ChatMigration { from: message.chat.id, to: *to });
        }
        message.migrate_from_chat_id().map(|from| ChatMigration { from: *from, to: message.chat.id })
    }
}

/// What [`migrate_chat`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// Sessions moved to the new chat id.
    pub moved: u64,
    /// Sessions already at the new id with the same value (an earlier run stopped
    /// between copy and delete): the old copy was deleted.
    pub finished: u64,
    /// Sessions left in place because the new chat already has a different session
    /// under the same key (written after the migration): their keys, old and new.
    pub kept: Vec<(SessionKey, SessionKey)>,
    /// Sessions that changed while being moved (another process wrote or deleted
    /// them): left for the next run.
    pub raced: u64,
    /// Sealed sessions (encryption at rest) left in place, unmoved: a sealed value is
    /// bound to its key and must be re-sealed for the new one, which takes the key
    /// ring (`migrate_chat_sealed`, feature `encryption`) and a ring that opens the
    /// value. Run again with the right ring; nothing is lost meanwhile.
    pub sealed: Vec<SessionKey>,
}

/// Moves every session of chat `from` in `namespaces` to chat `to`: keys per chat, per
/// user in the chat, per topic and per user in a topic (keys of other scopes are not
/// tied to a chat id and stay). The bot id qualifier, value, schema version, expiry,
/// forget-user index, creation and update times are kept (an absolute TTL still counts
/// from the session's creation).
///
/// A sealed value (encryption at rest) is bound to its key and would never open under
/// the new one: without the key ring it is not moved but reported in
/// [`MigrationReport::sealed`]; `migrate_chat_sealed` (feature `encryption`) re-seals
/// it for the new key.
///
/// Each session moves with compare-and-set: created at the new key only if absent,
/// then deleted at the old key only if unchanged since it was read. Re-running is
/// safe and finishes an interrupted run; a session that already exists at the new key
/// with another value is kept, not overwritten ([`MigrationReport::kept`]).
///
/// Cost: a scan of each namespace (every record is read), then two writes per moved
/// session. Interactive sessions are keyed by their own id and are not moved; their
/// stored origin keeps the old chat id.
///
/// # Errors
///
/// Store errors; sessions moved before the error stay moved, and a re-run completes
/// the rest.
///
/// # Examples
///
/// ```
/// use bot_sessions::telegram::migrate_chat;
/// use bot_sessions::{store::memory::MemoryStore, DynStore, Namespace, Scope, SessionError, SessionKey, Sessions};
/// use std::sync::Arc;
/// use teloxide::types::ChatId;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store: DynStore = Arc::new(MemoryStore::new());
/// let counters = Sessions::<u64>::builder(store.clone()).namespace("counter").build()?;
/// let old = SessionKey::new(counters.namespace().clone(), Scope::ChatUser { chat: -599075523, user: 7 });
/// counters.update(&old, |n| { *n = 3; Ok::<_, SessionError>(()) }).await?;
///
/// let report = migrate_chat(&store, ChatId(-599075523), ChatId(-1001555296434), &[Namespace::new("counter")?]).await?;
/// assert_eq!(report.moved, 1);
/// let new = SessionKey::new(counters.namespace().clone(), Scope::ChatUser { chat: -1001555296434, user: 7 });
/// assert_eq!(counters.get(&new).await?, Some(3));
/// assert_eq!(counters.get(&old).await?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn migrate_chat(
    store: &DynStore,
    from: ChatId,
    to: ChatId,
    namespaces: &[Namespace],
) -> Result<MigrationReport, StoreError> {
    migrate_chat_at(store, from, to, namespaces, &SystemClock).await
}

/// [`migrate_chat`] with the time from `clock` (the clock the sessions use, when it is
/// not the system's: a [`ManualClock`](crate::ManualClock) in tests).
///
/// # Errors
///
/// As [`migrate_chat`].
pub async fn migrate_chat_at(
    store: &DynStore,
    from: ChatId,
    to: ChatId,
    namespaces: &[Namespace],
    clock: &dyn Clock,
) -> Result<MigrationReport, StoreError> {
    migrate(store, from, to, namespaces, clock, Ring::default()).await
}

/// [`migrate_chat_at`] for sessions sealed at rest: each sealed value is opened with
/// `ring` under its old key and sealed again (with the ring's newest key) under the
/// new one. A value the ring does not open is left in place and reported in
/// [`MigrationReport::sealed`], never moved into a key where it could not open; values
/// that are not sealed move as they are.
///
/// # Errors
///
/// As [`migrate_chat`].
///
/// # Examples
///
/// ```
/// use bot_sessions::encryption::KeyRing;
/// use bot_sessions::telegram::migrate_chat_sealed;
/// use bot_sessions::{store::memory::MemoryStore, DynStore, Namespace, Scope, SessionKey, Sessions, SystemClock};
/// use std::sync::Arc;
/// use teloxide::types::ChatId;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let ring = Arc::new(KeyRing::new([(1, [7u8; 32])])?);
/// let store: DynStore = Arc::new(MemoryStore::new());
/// let notes = Sessions::<String>::builder(store.clone()).namespace("notes").encryption(ring.clone()).build()?;
/// let old = SessionKey::new(notes.namespace().clone(), Scope::Chat(-599075523));
/// notes.set(&old, &"secret".to_owned()).await?;
///
/// let ns = [Namespace::new("notes")?];
/// let report = migrate_chat_sealed(&store, ChatId(-599075523), ChatId(-1001555296434), &ns, &SystemClock, &ring).await?;
/// assert_eq!(report.moved, 1);
/// let new = SessionKey::new(notes.namespace().clone(), Scope::Chat(-1001555296434));
/// assert_eq!(notes.get(&new).await?.as_deref(), Some("secret"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[cfg(feature = "encryption")]
pub async fn migrate_chat_sealed(
    store: &DynStore,
    from: ChatId,
    to: ChatId,
    namespaces: &[Namespace],
    clock: &dyn Clock,
    ring: &KeyRing,
) -> Result<MigrationReport, StoreError> {
    migrate(store, from, to, namespaces, clock, Ring { ring: Some(ring) }).await
}

/// The key ring sealed values are re-sealed with, if any.
#[derive(Clone, Copy, Default)]
struct Ring<'a> {
    #[cfg(feature = "encryption")]
    ring: Option<&'a KeyRing>,
    #[cfg(not(feature = "encryption"))]
    ring: std::marker::PhantomData<&'a ()>,
}

impl Ring<'_> {
    /// The bytes to store under `new` for `stored`, read from `old`: as they are when
    /// not sealed, sealed again for `new` when they are; `None` when they cannot be
    /// (no ring, or one that does not open them).
    #[cfg_attr(not(feature = "encryption"), allow(clippy::unnecessary_wraps, clippy::unused_self, unused_variables))]
    fn reseal<'s>(self, old: &SessionKey, new: &SessionKey, stored: &'s [u8]) -> Option<Cow<'s, [u8]>> {
        #[cfg(feature = "encryption")]
        if KeyRing::sealed_with(stored).is_some() {
            let ring = self.ring?;
            let plain = ring.open(old, stored).ok()?;
            return ring.seal(new, &plain).ok().map(Cow::Owned);
        }
        Some(Cow::Borrowed(stored))
    }

    /// Whether `there`, at `new`, holds what `stored` held at `old` (an earlier run
    /// copied it): the same bytes, or the same plaintext sealed for each key.
    #[cfg_attr(not(feature = "encryption"), allow(clippy::unused_self, unused_variables))]
    fn same(self, old: &SessionKey, stored: &[u8], new: &SessionKey, there: &[u8]) -> bool {
        if stored == there {
            return true;
        }
        #[cfg(feature = "encryption")]
        if let Some(ring) = self.ring {
            return match (ring.open(old, stored), ring.open(new, there)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
        }
        false
    }
}

async fn migrate(
    store: &DynStore,
    from: ChatId,
    to: ChatId,
    namespaces: &[Namespace],
    clock: &dyn Clock,
    ring: Ring<'_>,
) -> Result<MigrationReport, StoreError> {
    let mut report = MigrationReport::default();
    if from == to {
        return Ok(report);
    }
    for namespace in namespaces {
        let mut cursor: Option<String> = None;
        loop {
            let page = store.scan(namespace, cursor.as_deref(), PAGE, clock.now()).await?;
            for (key, record) in &page.items {
                if let Some(scope) = moved_scope(key.scope(), from.0, to.0) {
                    let new_key = SessionKey::with_bot(key.namespace().clone(), key.bot_id(), scope);
                    move_one(store, key, record, new_key, clock.now(), ring, &mut report).await?;
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(report)
}

/// `scope` with chat `from` replaced by `to`; `None` when it is not `from`'s.
fn moved_scope(scope: &Scope, from: i64, to: i64) -> Option<Scope> {
    match *scope {
        Scope::Chat(chat) if chat == from => Some(Scope::Chat(to)),
        Scope::ChatUser { chat, user } if chat == from => Some(Scope::ChatUser { chat: to, user }),
        Scope::Topic { chat, topic } if chat == from => Some(Scope::Topic { chat: to, topic }),
        Scope::TopicUser { chat, topic, user } if chat == from => Some(Scope::TopicUser { chat: to, topic, user }),
        _ => None,
    }
}

/// Creates `new` holding `value` with the old record's schema version, expiry, owner
/// and times: created as of its `created_at`, written again as of its `updated_at`
/// when it was updated since (a store stamps a write with the time it is given).
/// `Ok(None)`: a record was live at `new` (as of the creation time).
async fn copy(
    store: &DynStore,
    new: &SessionKey,
    value: &[u8],
    record: &Record,
    now: Timestamp,
) -> Result<Option<u64>, StoreError> {
    let write = || Write::new(value, record.schema_version, record.expires_at).with_owner(record.user_id);
    let created = record.created_at.min(now);
    let first = match store.write(new, write(), Precondition::Absent, created).await {
        Ok(version) => version,
        Err(e) if e.is_conflict() => return Ok(None),
        Err(e) => return Err(e),
    };
    let updated = record.updated_at.min(now);
    if updated <= created {
        return Ok(Some(first));
    }
    match store.write(new, write(), Precondition::Version(first), updated).await {
        Ok(version) => Ok(Some(version)),
        // The bot wrote over the copy already: it is there, and newer.
        Err(e) if e.is_conflict() => Ok(Some(first)),
        Err(e) => Err(e),
    }
}

async fn move_one(
    store: &DynStore,
    old: &SessionKey,
    record: &Record,
    new: SessionKey,
    now: Timestamp,
    ring: Ring<'_>,
    report: &mut MigrationReport,
) -> Result<(), StoreError> {
    // A sealed value is bound to its key: sealed again for the new one, or not moved.
    let Some(value) = ring.reseal(old, &new, &record.value) else {
        report.sealed.push(old.clone());
        return Ok(());
    };
    let copied = match copy(store, &new, &value, record, now).await? {
        Some(version) => Some(version),
        None => match store.load(&new, now).await? {
            // An earlier run copied it and stopped before the delete.
            Some(there)
                if there.schema_version == record.schema_version
                    && ring.same(old, &record.value, &new, &there.value) =>
            {
                None
            }
            Some(_) => {
                report.kept.push((old.clone(), new));
                return Ok(());
            }
            // Nothing live at the new key now, yet something was as of the session's
            // creation time: a leftover that expired since. Copy as of now (the
            // creation time restarts) rather than never.
            None => {
                let write = Write::new(&value, record.schema_version, record.expires_at).with_owner(record.user_id);
                match store.write(&new, write, Precondition::Absent, now).await {
                    Ok(version) => Some(version),
                    Err(e) if e.is_conflict() => {
                        report.raced += 1;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
        },
    };
    match store.delete(old, Precondition::Version(record.version), now).await {
        Ok(_) if copied.is_some() => report.moved += 1,
        Ok(_) => report.finished += 1,
        // The old session changed after the scan read it: the copy at the new key is
        // stale. Remove our copy (unless it was written since) and leave the session
        // for a re-run.
        Err(e) if e.is_conflict() => {
            if let Some(version) = copied {
                match store.delete(&new, Precondition::Version(version), now).await {
                    Ok(_) => {}
                    Err(e) if e.is_conflict() => {}
                    Err(e) => return Err(e),
                }
            }
            report.raced += 1;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
