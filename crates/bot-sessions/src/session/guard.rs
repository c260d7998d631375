//! Handler-scoped sessions: [`SessionGuard`] (loaded now) and [`LazySession`]
//! (loaded on first use).

use std::ops::{Deref, DerefMut};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::locks::OwnedKeyLock;
use super::{Base, Meta, SessionError, Sessions, Ttl, Via};
use crate::SessionKey;
use crate::observe::Op;

/// A loaded session that holds its key's in-process lock until it is committed or
/// dropped. Dropping it without [`commit`](Self::commit) writes nothing.
///
/// The commit is a compare-and-set against the version that was loaded: if another
/// process wrote the key meanwhile it fails with a conflict
/// ([`SessionError::Store`] with [`StoreError::Conflict`](crate::StoreError::Conflict))
/// instead of overwriting. Prefer [`Sessions::update`] where the change can simply be
/// re-run.
///
/// With a [near cache](crate::store::near_cache), [`Sessions::open`] starts from the
/// cached record when there is one, without a load: the commit then also fails with a
/// conflict when another process wrote the key *before* the open (the cache has
/// forgotten the key by then, so opening again loads it). A commit that changes
/// nothing checks the version with a load instead.
///
/// # Examples
///
/// ```
/// use bot_sessions::{store::memory::MemoryStore, Scope, SessionKey, Sessions};
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Form { name: Option<String> }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let forms = Sessions::<Form>::builder(MemoryStore::new()).namespace("form").build()?;
/// let key = SessionKey::new(forms.namespace().clone(), Scope::User(7));
/// let mut form = forms.open(&key).await?;
/// form.name = Some("Ada".into());
/// form.commit().await?;
/// # Ok::<(), bot_sessions::SessionError>(())
/// # }).unwrap();
/// ```
#[must_use = "a guard that is dropped without commit() writes nothing"]
pub struct SessionGuard<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    sessions: Sessions<T>,
    key: SessionKey,
    _lock: OwnedKeyLock,
    value: T,
    base: Base,
    /// The session's own TTL that the commit writes.
    ttl: Option<Ttl>,
}

impl<T> SessionGuard<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(super) fn new(sessions: Sessions<T>, key: SessionKey, lock: OwnedKeyLock, value: T, base: Base) -> Self {
        let ttl = base.own_ttl();
        SessionGuard { sessions, key, _lock: lock, value, base, ttl }
    }

    /// The key.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// Whether the session was in the store when loaded.
    pub fn existed(&self) -> bool {
        self.base.initial.is_none()
    }

    /// The session's times and version as loaded; `None` when it was not stored.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Scope, SessionKey, Sessions};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let notes = Sessions::<Vec<String>>::builder(MemoryStore::new()).namespace("notes").build()?;
    /// let key = SessionKey::new(notes.namespace().clone(), Scope::User(7));
    /// let mut s = notes.open(&key).await?;
    /// assert!(s.meta().is_none(), "new");
    /// s.push("tea".into());
    /// s.commit().await?;
    /// let s = notes.open(&key).await?;
    /// let meta = s.meta().unwrap();
    /// assert_eq!(meta.created_at, meta.updated_at);
    /// # Ok::<(), bot_sessions::SessionError>(())
    /// # }).unwrap();
    /// ```
    pub fn meta(&self) -> Option<&Meta> {
        self.base.meta.as_ref()
    }

    /// The session's own TTL as the commit will write it (`None`: the session type's).
    pub fn ttl(&self) -> Option<Ttl> {
        self.ttl
    }

    /// Gives this session its own TTL from the commit on (igniter's per-session
    /// `expiresAt`): an idle one counts from each write, an absolute one from the
    /// session's creation. Later saves that do not mention the TTL keep it. Setting
    /// only the TTL of a stored session is a change: the commit writes. An untouched
    /// initial value is still not stored.
    ///
    /// A zero duration is refused by the commit ([`SessionError::Config`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Scope, SessionKey, Sessions, Ttl};
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let carts = Sessions::<Vec<String>>::builder(MemoryStore::new())
    ///     .namespace("cart")
    ///     .ttl(Ttl::idle(Duration::from_secs(3600)))
    ///     .build()?;
    /// let key = SessionKey::new(carts.namespace().clone(), Scope::User(7));
    /// let mut cart = carts.open(&key).await?;
    /// cart.push("tea".into());
    /// cart.set_ttl(Ttl::idle(Duration::from_secs(7 * 24 * 3600))); // this one keeps a week
    /// cart.commit().await?;
    /// assert_eq!(carts.meta(&key).await?.unwrap().ttl, Some(Ttl::idle(Duration::from_secs(7 * 24 * 3600))));
    /// # Ok::<(), bot_sessions::SessionError>(())
    /// # }).unwrap();
    /// ```
    pub fn set_ttl(&mut self, ttl: Ttl) {
        self.ttl = Some(ttl);
    }

    /// Drops the session's own TTL from the commit on: the session type's applies
    /// again.
    pub fn clear_ttl(&mut self) {
        self.ttl = None;
    }

    /// Saves the value if it changed (compare-and-set), then releases the lock.
    ///
    /// # Errors
    ///
    /// A conflict if another process wrote the key since the load, or the session
    /// expired since; encode, size or store errors.
    pub async fn commit(self) -> Result<(), SessionError> {
        self.save_held().await
    }

    /// [`commit`](Self::commit) without giving the guard up (the caller drops it, which
    /// releases the lock): what a [`LazySession`] commits with, so its future does not
    /// hold the guard twice.
    async fn save_held(&self) -> Result<(), SessionError> {
        let now = self.sessions.inner.clock.now();
        let sessions = &self.sessions;
        sessions
            .inner
            .obs
            .run(Op::Commit, || sessions.save(&self.key, Some(&self.value), self.ttl, &self.base, now))
            .await
    }

    /// Deletes the session (compare-and-set against the loaded version).
    ///
    /// # Errors
    ///
    /// A conflict if another process wrote the key since the load; store errors.
    pub async fn delete(self) -> Result<(), SessionError> {
        let now = self.sessions.inner.clock.now();
        let sessions = &self.sessions;
        sessions.inner.obs.run(Op::Delete, || sessions.save(&self.key, None, self.ttl, &self.base, now)).await
    }
}

impl<T> Deref for SessionGuard<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for SessionGuard<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// A session that is loaded (and locked) on first [`get`](Self::get): a handler that
/// never reads it costs nothing. Several of them, one per session type, make a
/// multi-session handler.
///
/// # Examples
///
/// ```
/// use bot_sessions::{store::memory::MemoryStore, Context, KeyStrategy, Sessions};
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Cart { items: Vec<String> }
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Prefs { lang: Option<String> }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let carts = Sessions::<Cart>::builder(store.clone()).namespace("cart").key(KeyStrategy::ChatUser).build()?;
/// let prefs = Sessions::<Prefs>::builder(store).namespace("prefs").key(KeyStrategy::User).build()?;
///
/// let ctx = Context::new().chat(1).user(2);
/// let mut cart = carts.lazy(&carts.key(&ctx)?);
/// let prefs_session = prefs.lazy(&prefs.key(&ctx)?); // never read: no round trip
/// cart.get().await?.items.push("tea".into());
/// cart.commit().await?;
/// prefs_session.commit().await?; // nothing loaded, nothing written
/// # Ok::<(), bot_sessions::SessionError>(())
/// # }).unwrap();
/// ```
#[must_use = "a lazy session that is dropped without commit() writes nothing"]
pub struct LazySession<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    sessions: Sessions<T>,
    key: SessionKey,
    loaded: Option<SessionGuard<T>>,
}

impl<T> LazySession<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(super) fn new(sessions: Sessions<T>, key: SessionKey) -> Self {
        LazySession { sessions, key, loaded: None }
    }

    /// The key.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// Whether the session has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.is_some()
    }

    /// Loads the session (first call only) and returns it.
    ///
    /// # Errors
    ///
    /// As [`Sessions::open`].
    pub async fn get(&mut self) -> Result<&mut T, SessionError> {
        let guard = match self.loaded.take() {
            Some(g) => g,
            None => self.sessions.open_via(&self.key, Via::Read).await?,
        };
        Ok(&mut *self.loaded.insert(guard))
    }

    /// Saves the session if it was loaded and changed.
    ///
    /// # Errors
    ///
    /// As [`SessionGuard::commit`].
    #[allow(clippy::manual_async_fn)] // on purpose, see below
    pub fn commit(self) -> impl Future<Output = Result<(), SessionError>> + Send {
        // An `async` block rather than an `async fn`: the latter would keep a second
        // copy of `self` (argument and local) in the future.
        async move {
            match &self.loaded {
                Some(g) => g.save_held().await,
                None => Ok(()),
            }
        }
    }
}
