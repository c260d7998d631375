//! [`DialogueStorage`]: a teloxide dialogue [`Storage`] backed by any of this crate's
//! stores.
//!
//! ## What it adds to teloxide's storages
//!
//! - **Backends**: any [`Store`](crate::Store) (memory, SQLite, Redis, PostgreSQL, or
//!   your own), shared with the bot's other sessions, under a namespace of its own
//!   (default `dialogue`), optionally qualified by the bot id so several bots share one
//!   store.
//! - **TTL**: an idle or absolute [`Ttl`]; an expired dialogue is gone on every backend
//!   at once (`get_dialogue` returns `None`, `remove_dialogue` says not found), whether
//!   or not a sweeper has run.
//! - **Migrations**: stored states are migrated on load ([`Migrations`] on JSON), so a
//!   state enum can change shape without breaking running dialogues; a state written by
//!   newer code is an error, not a panic or a reset.
//! - **An atomic remove**: `remove_dialogue` is one conditional delete that reports
//!   whether a live dialogue was there, so of two processes removing the same dialogue
//!   exactly one succeeds and the other gets [`DialogueStorageError::DialogueNotFound`].
//! - Size limits, decode policies (fail, reset or quarantine), operator tooling (scan,
//!   count, forget-user) as for every other session.
//!
//! ## What a blind `update_dialogue` cannot give
//!
//! teloxide's `Dialogue` reads with `get_dialogue` and writes the next state with
//! `update_dialogue(chat_id, state)`: the write does not say which state it replaces.
//! So there is no compare-and-set: when two updates of one chat are handled at the same
//! time (two processes, or a dispatcher that does not serialize a chat's updates), both
//! read state A, and the last `update_dialogue` wins; the other transition is lost
//! without an error. This storage cannot change that through the `Storage` interface.
//! Code that must not lose a transition should use [`Sessions::update`] (or the
//! [`Session<T>`](super::Session) handle), whose read-modify-write is atomic on every
//! backend and re-runs after a conflict.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde::ser::{Serialize, Serializer};
use teloxide::dispatching::dialogue::Storage;
use teloxide::types::ChatId;

use crate::session::IntoDynStore;
use crate::{Codec, DecodePolicy, Migrations, Scope, SessionError, SessionKey, Sessions, Ttl};

/// The namespace dialogues are stored under unless configured otherwise.
pub const DEFAULT_DIALOGUE_NAMESPACE: &str = "dialogue";

/// An error of [`DialogueStorage`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialogueStorageError {
    /// `remove_dialogue` found no dialogue (never stored, removed, or expired), as
    /// teloxide's own storages report it.
    #[error("row not found")]
    DialogueNotFound,
    /// Loading, decoding, migrating or saving failed (see [`SessionError`]).
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// A teloxide dialogue storage over any store: `Dialogue<D, DialogueStorage<D>>` code
/// keeps working and gets this crate's backends, TTL and migrations. One dialogue per
/// chat (`Scope::Chat`), as teloxide keys them.
///
/// It behaves as teloxide's storages do: `get_dialogue` is `None` until a state is
/// stored, `update_dialogue` stores (replacing whatever is there), and
/// `remove_dialogue` of a dialogue that is not there fails with
/// [`DialogueStorageError::DialogueNotFound`]. See the [module documentation](self)
/// for what it adds and for what `update_dialogue` cannot give.
///
/// # Examples
///
/// ```
/// use bot_sessions::telegram::DialogueStorage;
/// use bot_sessions::{store::memory::MemoryStore, Ttl};
/// use teloxide::dispatching::dialogue::{Dialogue, Storage};
/// use teloxide::types::ChatId;
/// use std::time::Duration;
///
/// #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
/// enum State { #[default] Start, ReceiveName, ReceiveAge { name: String } }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let storage = DialogueStorage::<State>::builder(MemoryStore::new())
///     .ttl(Ttl::idle(Duration::from_secs(3600)))
///     .build()?;
/// let dialogue = Dialogue::new(storage.clone(), ChatId(42));
/// dialogue.update(State::ReceiveAge { name: "Ann".into() }).await?;
/// assert_eq!(dialogue.get().await?, Some(State::ReceiveAge { name: "Ann".into() }));
/// dialogue.exit().await?;
/// assert!(storage.remove_dialogue(ChatId(42)).await.is_err()); // not found
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct DialogueStorage<D> {
    sessions: Sessions<Slot<D>>,
    bot_id: Option<i64>,
}

impl<D> std::fmt::Debug for DialogueStorage<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialogueStorage").field("sessions", &self.sessions).field("bot_id", &self.bot_id).finish()
    }
}

impl<D> DialogueStorage<D>
where
    D: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Starts configuring a storage over `store`.
    pub fn builder(store: impl IntoDynStore) -> DialogueStorageBuilder<D> {
        DialogueStorageBuilder { builder: Sessions::builder(store).namespace(DEFAULT_DIALOGUE_NAMESPACE), bot_id: None }
    }

    /// The key a chat's dialogue is stored under. A private chat's id is its user's id
    /// (`ChatId::is_user`): the dialogue belongs to that user, and forget-user erases it.
    pub fn key(&self, chat_id: ChatId) -> SessionKey {
        let owner = chat_id.is_user().then_some(chat_id.0);
        SessionKey::with_bot(self.sessions.namespace().clone(), self.bot_id, Scope::Chat(chat_id.0)).owned_by(owner)
    }

    async fn get(&self, chat_id: ChatId) -> Result<Option<D>, DialogueStorageError> {
        Ok(self.sessions.get(&self.key(chat_id)).await?.and_then(|slot| slot.0))
    }

    async fn update(&self, chat_id: ChatId, dialogue: D) -> Result<(), DialogueStorageError> {
        Ok(self.sessions.set(&self.key(chat_id), &Slot(Some(dialogue))).await?)
    }

    async fn remove(&self, chat_id: ChatId) -> Result<(), DialogueStorageError> {
        match self.sessions.delete(&self.key(chat_id)).await? {
            true => Ok(()),
            false => Err(DialogueStorageError::DialogueNotFound),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<D> Storage<D> for DialogueStorage<D>
where
    D: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Error = DialogueStorageError;

    fn remove_dialogue(self: Arc<Self>, chat_id: ChatId) -> BoxFuture<Result<(), Self::Error>>
    where
        D: Send + 'static,
    {
        Box::pin(async move { self.remove(chat_id).await })
    }

    fn update_dialogue(self: Arc<Self>, chat_id: ChatId, dialogue: D) -> BoxFuture<Result<(), Self::Error>>
    where
        D: Send + 'static,
    {
        Box::pin(async move { self.update(chat_id, dialogue).await })
    }

    fn get_dialogue(self: Arc<Self>, chat_id: ChatId) -> BoxFuture<Result<Option<D>, Self::Error>> {
        Box::pin(async move { self.get(chat_id).await })
    }
}

/// Configures a [`DialogueStorage`]; see [`DialogueStorage::builder`].
#[must_use]
pub struct DialogueStorageBuilder<D> {
    builder: crate::session::SessionsBuilder<Slot<D>>,
    bot_id: Option<i64>,
}

impl<D> std::fmt::Debug for DialogueStorageBuilder<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialogueStorageBuilder").field("bot_id", &self.bot_id).finish_non_exhaustive()
    }
}

impl<D> DialogueStorageBuilder<D>
where
    D: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The namespace (default [`DEFAULT_DIALOGUE_NAMESPACE`]).
    pub fn namespace(mut self, name: &str) -> Self {
        self.builder = self.builder.namespace(name);
        self
    }

    /// Qualifies keys by the bot id, so several bots keep their dialogues apart in one
    /// store.
    pub fn bot_id(mut self, id: i64) -> Self {
        self.bot_id = Some(id);
        self
    }

    /// Time to live (default: forever). Each `update_dialogue` restarts an idle TTL.
    pub fn ttl(mut self, ttl: Ttl) -> Self {
        self.builder = self.builder.ttl(ttl);
        self
    }

    /// The schema history of the state type, applied when a dialogue is read.
    pub fn migrations(mut self, migrations: Migrations) -> Self {
        self.builder = self.builder.migrations(migrations);
        self
    }

    /// The codec (default: JSON).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.builder = self.builder.codec(codec);
        self
    }

    /// What happens to a stored state that does not decode (default: an error).
    pub fn on_decode_error(mut self, policy: DecodePolicy) -> Self {
        self.builder = self.builder.on_decode_error(policy);
        self
    }

    /// The clock (tests pass a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn crate::Clock>) -> Self {
        self.builder = self.builder.clock(clock);
        self
    }

    /// Checks the settings and builds the storage, shared as teloxide wants it.
    ///
    /// # Errors
    ///
    /// [`SessionError`] for an invalid namespace or setting.
    pub fn build(self) -> Result<Arc<DialogueStorage<D>>, SessionError> {
        Ok(Arc::new(DialogueStorage { sessions: self.builder.build()?, bot_id: self.bot_id }))
    }
}

/// A dialogue state, or none: stored as the state alone (so the stored JSON is the
/// state's, and migrations see it as it is). The `None` that [`Sessions`] starts from
/// is never stored: the storage only ever writes a state.
struct Slot<D>(Option<D>);

impl<D> Default for Slot<D> {
    fn default() -> Self {
        Slot(None)
    }
}

impl<D: Serialize> Serialize for Slot<D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(d) => d.serialize(serializer),
            None => serializer.serialize_unit(),
        }
    }
}

impl<'de, D: Deserialize<'de>> Deserialize<'de> for Slot<D> {
    fn deserialize<De: Deserializer<'de>>(deserializer: De) -> Result<Self, De::Error> {
        D::deserialize(deserializer).map(|d| Slot(Some(d)))
    }
}
