//! Where each interactive session's message is on Discord (see [`Messages`]).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::interactive::SessionId;
use crate::session::IntoDynStore;
use crate::session::sealer::Sealer;
use crate::{
    Clock, DynStore, KeyError, Namespace, Precondition, Scope, SessionKey, StoreError, SystemClock, Timestamp, Write,
};

/// The store namespace of the records, unless configured.
pub const DEFAULT_NAMESPACE: &str = "discord_messages";

/// How long an interaction token can edit its response: 15 minutes.
pub const TOKEN_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// How many sessions a user's index lists (the latest): what [`Messages::of_user`]
/// finds at most.
pub const INDEX_LIMIT: usize = 64;

/// How many times a note tries again after a conflict.
const NOTE_ATTEMPTS: usize = 5;

/// How old a noted token gets before a click on the same message notes a newer one.
const RENEW_AFTER: Duration = Duration::from_secs(5 * 60);

/// Where one session's message is.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageRef {
    /// The application whose interaction showed it.
    pub application_id: u64,
    /// The token of the latest interaction whose original response is this message
    /// (a secret: never in `Debug`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When that interaction came in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_at: Option<Timestamp>,
    /// The channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<u64>,
    /// The message, once known (a response that edited it tells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u64>,
    /// Only its user sees it (the channel route cannot edit it).
    #[serde(default)]
    pub ephemeral: bool,
}

impl std::fmt::Debug for MessageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageRef")
            .field("application_id", &self.application_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_at", &self.token_at)
            .field("channel_id", &self.channel_id)
            .field("message_id", &self.message_id)
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

impl MessageRef {
    /// The token, if it can still edit the message at `now` (with a minute of margin
    /// before the 15 minutes run out).
    pub fn fresh_token(&self, now: Timestamp) -> Option<&str> {
        let at = self.token_at?;
        let until = at.saturating_add(TOKEN_VALIDITY - Duration::from_secs(60));
        if now < until { self.token.as_deref() } else { None }
    }
}

/// What one interaction response says about a session's message: the interaction's
/// original response shows it, so its token can edit it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shown {
    /// The application.
    pub application_id: u64,
    /// The interaction token (a secret: never in `Debug`).
    pub token: String,
    /// The channel.
    pub channel_id: Option<u64>,
    /// The message, when the response edited an existing one (`None`: a new message).
    pub message_id: Option<u64>,
    /// Whether the message is ephemeral.
    pub ephemeral: bool,
}

impl Shown {
    /// A note that the interaction `token` of `application_id` shows the message.
    pub fn new(application_id: u64, token: impl Into<String>) -> Self {
        Shown { application_id, token: token.into(), channel_id: None, message_id: None, ephemeral: false }
    }

    /// Sets the channel and the message (`None` for a new message).
    #[must_use]
    pub fn at(mut self, channel_id: Option<u64>, message_id: Option<u64>) -> Self {
        self.channel_id = channel_id;
        self.message_id = message_id;
        self
    }

    /// Marks the message ephemeral.
    #[must_use]
    pub fn ephemeral(mut self, ephemeral: bool) -> Self {
        self.ephemeral = ephemeral;
        self
    }
}

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shown")
            .field("application_id", &self.application_id)
            .field("token", &"<redacted>")
            .field("channel_id", &self.channel_id)
            .field("message_id", &self.message_id)
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

/// The records of where sessions' messages are.
///
/// They exist so that a session's message can be edited when the session ends with
/// no click to answer (expiry, shutdown).
///
/// A session's [`Origin`](crate::interactive::Origin) knows its channel and, after
/// the first click, its message id: enough for the channel route, which needs the bot
/// token. An app without a bot token (or a session nobody clicked yet) needs the
/// interaction token of the response that shows the message, and the origin cannot
/// hold it. [`Messages`] keeps it: the [`Endpoint`](super::Endpoint) notes, for every
/// response showing a session's components, the interaction token (valid 15 minutes),
/// the channel and the message id when known, in one small record per session in the
/// store (so another process, or the same one after a restart, can edit the message).
/// Records are owned by the user of the interaction, so forget-user erases them too,
/// and listed in a small index record of that user (so [`Messages::of_user`] reads
/// that user's records, not the namespace); both expire after [`Messages::keep`]. With encryption at rest (feature
/// `encryption`) they are sealed like sessions: the interaction token is a secret. The
/// [`Endpoint`](super::Endpoint)'s default `Messages` seals with its manager's key ring
/// ([`ManagerBuilder::encryption`](crate::interactive::ManagerBuilder::encryption)).
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::{Messages, Shown};
/// use bot_sessions::interactive::SessionId;
/// use bot_sessions::store::memory::MemoryStore;
/// use bot_sessions::{Clock, ManualClock};
/// use std::time::Duration;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let clock = ManualClock::new(0);
/// let messages = Messages::new(MemoryStore::new())?.clock(clock.clone());
/// let session = SessionId::random();
/// // A command's response posted the session's message (its id is not known yet)...
/// messages.note(session, Shown::new(1, "tok-1").at(Some(5), None), Some(42)).await?;
/// // ...and a click's UPDATE_MESSAGE response edited it: now the id is known.
/// messages.note(session, Shown::new(1, "tok-2").at(Some(5), Some(9)), Some(42)).await?;
///
/// let found = messages.get(session).await?.unwrap();
/// assert_eq!((found.channel_id, found.message_id), (Some(5), Some(9)));
/// assert_eq!(found.fresh_token(clock.now()), Some("tok-2"));
/// clock.advance(Duration::from_secs(15 * 60));
/// assert_eq!(found.fresh_token(clock.now()), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Messages {
    store: DynStore,
    namespace: Namespace,
    clock: Arc<dyn Clock>,
    keep: Duration,
    sealer: Sealer,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("namespace", &self.namespace)
            .field("keep", &self.keep)
            .field("encryption", &self.sealer)
            .finish()
    }
}

impl Messages {
    /// Records in `store` under [`DEFAULT_NAMESPACE`], kept 24 hours, on the system
    /// clock.
    ///
    /// # Errors
    ///
    /// None in practice: the default namespace is valid ([`KeyError`] is what
    /// [`Namespace::new`] returns).
    pub fn new(store: impl IntoDynStore) -> Result<Self, KeyError> {
        Ok(Messages {
            store: store.into_dyn_store(),
            namespace: Namespace::new(DEFAULT_NAMESPACE)?,
            clock: Arc::new(SystemClock),
            keep: Duration::from_secs(24 * 3600),
            sealer: Sealer::default(),
        })
    }

    /// Seals the records with `ring` (feature `encryption`; see
    /// [`SessionsBuilder::encryption`](crate::session::SessionsBuilder::encryption)):
    /// the stored bytes hold no token, channel or message id in the clear.
    #[cfg(feature = "encryption")]
    #[must_use]
    pub fn encryption(mut self, ring: impl Into<Arc<crate::encryption::KeyRing>>) -> Self {
        self.sealer = Sealer::new(ring.into());
        self
    }

    pub(crate) fn sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = sealer;
        self
    }

    /// Uses another namespace.
    ///
    /// # Errors
    ///
    /// A [`KeyError`] for a name [`Namespace::new`] refuses.
    pub fn namespace(mut self, name: &str) -> Result<Self, KeyError> {
        self.namespace = Namespace::new(name)?;
        Ok(self)
    }

    /// The clock that dates tokens (a [`ManualClock`](crate::ManualClock) in tests).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub(crate) fn clock_arc(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long a record lives after its last note (default 24 h; make it at least
    /// as long as the sessions live).
    #[must_use]
    pub fn keep(mut self, keep: Duration) -> Self {
        self.keep = keep;
        self
    }

    /// The clock's time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn key(&self, session: SessionId) -> SessionKey {
        SessionKey::new(self.namespace.clone(), Scope::Custom { id: session.as_str().into(), user: None })
    }

    /// Where `session`'s message is, if noted.
    ///
    /// # Errors
    ///
    /// Store errors; a record that does not decode is a backend error naming the key.
    pub async fn get(&self, session: SessionId) -> Result<Option<MessageRef>, StoreError> {
        let key = self.key(session);
        let Some(record) = self.store.load(&key, self.clock.now()).await? else { return Ok(None) };
        self.decode(&key, &record.value).map(Some)
    }

    /// A stored record's value, opened and decoded.
    fn decode(&self, key: &SessionKey, stored: &[u8]) -> Result<MessageRef, StoreError> {
        let plain = self.sealer.open(key, stored).map_err(|e| bad_record(key, e))?;
        serde_json::from_slice(&plain).map_err(|e| bad_record(key, e))
    }

    /// Notes that an interaction response shows `session`'s message (`owner`: the user
    /// the record is indexed under for forget-user and [`of_user`](Self::of_user)).
    /// Another message, or a new one, takes the new token at once; the same message
    /// keeps a token younger than 5 minutes, so clicks on one message do not write
    /// every time. Writes only when something changed, and with a precondition: a
    /// record created with *absent*, an update with its version, so a record erased
    /// meanwhile (forget-user, the session's end) is never brought back.
    ///
    /// # Errors
    ///
    /// Store errors; a conflict when the record kept changing under the note.
    pub async fn note(&self, session: SessionId, shown: Shown, owner: Option<i64>) -> Result<(), StoreError> {
        let key = self.key(session);
        let mut had_record = false;
        let mut last = None;
        for _ in 0..NOTE_ATTEMPTS {
            let now = self.clock.now();
            let loaded = self.store.load(&key, now).await?;
            let (old, precondition) = match &loaded {
                // A record that does not decode is replaced.
                Some(record) => (self.decode(&key, &record.value).ok(), Precondition::Version(record.version)),
                // It was there, and is gone: erased while the note ran. Leave it so.
                None if had_record => return Ok(()),
                None => (None, Precondition::Absent),
            };
            had_record = loaded.is_some();
            let new = noted(old.clone(), &shown, now);
            if old.as_ref() == Some(&new) {
                return Ok(());
            }
            if loaded.is_none()
                && let Some(user) = owner
            {
                // Listed before it exists: a listed record that is not there is skipped.
                self.index_add(user, session, now).await?;
            }
            let value = serde_json::to_vec(&new).map_err(|e| bad_record(&key, e))?;
            let value = self.sealer.seal(&key, value).map_err(|e| bad_record(&key, e))?;
            let write = Write::new(&value, 1, Some(now.saturating_add(self.keep))).with_owner(owner);
            match self.store.write(&key, write, precondition, now).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => last = Some(e),
                Err(e) if e.is_ambiguous() => match self.store.load(&key, self.clock.now()).await? {
                    Some(record) if record.version == write.version => return Ok(()),
                    _ => last = Some(e),
                },
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Conflict { key: key.as_str().to_owned() }))
    }

    /// Every record noted for `user` (the user whose interaction noted it: for a
    /// session opened by a command, its opener), through the user's index: one load
    /// for the index and one per listed record (at most the [`INDEX_LIMIT`] latest of
    /// the [`keep`](Self::keep) period), whatever other users hold.
    ///
    /// # Errors
    ///
    /// Store errors; records that do not decode are skipped, and so is an index that
    /// does not.
    pub async fn of_user(&self, user: i64) -> Result<Vec<(SessionId, MessageRef)>, StoreError> {
        let now = self.clock.now();
        let Some((entries, _)) = self.index(user, now).await? else { return Ok(Vec::new()) };
        let mut found = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(session) = SessionId::parse(&entry.session) else { continue };
            let key = self.key(session);
            let Some(record) = self.store.load(&key, now).await? else { continue };
            if record.user_id != Some(user) {
                continue;
            }
            if let Ok(r) = self.decode(&key, &record.value) {
                found.push((session, r));
            }
        }
        Ok(found)
    }

    /// The key of `user`'s index (the user's own key: forget-user erases it).
    fn index_key(&self, user: i64) -> SessionKey {
        SessionKey::new(self.namespace.clone(), Scope::User(user))
    }

    /// `user`'s index and its version; `None` when absent or unreadable (then it is
    /// rebuilt from the next note).
    async fn index(&self, user: i64, now: Timestamp) -> Result<Option<(Vec<Listed>, u64)>, StoreError> {
        let key = self.index_key(user);
        let Some(record) = self.store.load(&key, now).await? else { return Ok(None) };
        let entries = self
            .sealer
            .open(&key, &record.value)
            .ok()
            .and_then(|plain| serde_json::from_slice::<Vec<Listed>>(&plain).ok())
            .unwrap_or_default();
        Ok(Some((entries, record.version)))
    }

    /// Lists `session` in `user`'s index (compare-and-set), dropping entries past
    /// [`keep`](Self::keep) and beyond the [`INDEX_LIMIT`] latest.
    async fn index_add(&self, user: i64, session: SessionId, now: Timestamp) -> Result<(), StoreError> {
        let key = self.index_key(user);
        let mut last = None;
        for _ in 0..NOTE_ATTEMPTS {
            let (mut entries, precondition) = match self.index(user, now).await? {
                Some((entries, version)) => (entries, Precondition::Version(version)),
                None => (Vec::new(), Precondition::Absent),
            };
            let oldest = now.as_millis().saturating_sub(i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX));
            entries.retain(|e| e.at > oldest && e.session != session.as_str());
            entries.push(Listed { session: session.as_str().to_owned(), at: now.as_millis() });
            let excess = entries.len().saturating_sub(INDEX_LIMIT);
            entries.drain(..excess);
            let value = serde_json::to_vec(&entries).map_err(|e| bad_record(&key, e))?;
            let value = self.sealer.seal(&key, value).map_err(|e| bad_record(&key, e))?;
            let write = Write::new(&value, 1, Some(now.saturating_add(self.keep)));
            match self.store.write(&key, write, precondition, now).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() || e.is_ambiguous() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Conflict { key: key.as_str().to_owned() }))
    }

    /// Forgets `session`'s record (its session ended).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn remove(&self, session: SessionId) -> Result<(), StoreError> {
        self.store.delete(&self.key(session), Precondition::Any, self.clock.now()).await.map(|_| ())
    }
}

/// The record after a note of `shown` at `now` (see [`Messages::note`]).
fn noted(old: Option<MessageRef>, shown: &Shown, now: Timestamp) -> MessageRef {
    let mut new = old.unwrap_or_default();
    let same_message = shown.message_id.is_some() && new.message_id == shown.message_id;
    let young = new.token.is_some() && new.token_at.is_some_and(|at| now < at.saturating_add(RENEW_AFTER));
    if !(same_message && young) {
        new.token = Some(shown.token.clone());
        new.token_at = Some(now);
    }
    new.application_id = shown.application_id;
    new.channel_id = shown.channel_id.or(new.channel_id);
    new.message_id = shown.message_id;
    new.ephemeral = shown.ephemeral;
    new
}

/// One session listed in a user's index.
#[derive(Serialize, Deserialize)]
struct Listed {
    /// The session id.
    #[serde(rename = "s")]
    session: String,
    /// When it was listed (milliseconds).
    at: i64,
}

/// A record of `key` that cannot be encoded, sealed, opened or decoded: a backend error
/// naming the key.
fn bad_record(key: &SessionKey, e: impl Into<crate::store::BoxError>) -> StoreError {
    StoreError::backend("discord", Some(key.as_str()), false, e)
}
