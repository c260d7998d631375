//! Handler-scoped sessions: [`SessionGuard`] (loaded now) and [`LazySession`]
//! (loaded on first use).

use std::ops::{Deref, DerefMut};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::locks::OwnedKeyLock;
use super::{Base, SessionError, Sessions};
use crate::SessionKey;

/// A loaded session that holds its key's in-process lock until it is committed or
/// dropped. Dropping it without [`commit`](Self::commit) writes nothing.
///
/// The commit is a compare-and-set against the version that was loaded: if another
/// process wrote the key meanwhile it fails with a conflict
/// ([`SessionError::Store`] with [`StoreError::Conflict`](crate::StoreError::Conflict))
/// instead of overwriting. Prefer [`Sessions::update`] where the change can simply be
/// re-run.
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
}

impl<T> SessionGuard<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(super) fn new(sessions: Sessions<T>, key: SessionKey, lock: OwnedKeyLock, value: T, base: Base) -> Self {
        SessionGuard { sessions, key, _lock: lock, value, base }
    }

    /// The key.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// Whether the session was in the store when loaded.
    pub fn existed(&self) -> bool {
        self.base.initial.is_none()
    }

    /// Saves the value if it changed (compare-and-set), then releases the lock.
    ///
    /// # Errors
    ///
    /// A conflict if another process wrote the key since the load; encode, size or store
    /// errors.
    pub async fn commit(self) -> Result<(), SessionError> {
        let now = self.sessions.inner.clock.now();
        self.sessions.save(&self.key, Some(&self.value), &self.base, now).await
    }

    /// Deletes the session (compare-and-set against the loaded version).
    ///
    /// # Errors
    ///
    /// A conflict if another process wrote the key since the load; store errors.
    pub async fn delete(self) -> Result<(), SessionError> {
        let now = self.sessions.inner.clock.now();
        self.sessions.save(&self.key, None, &self.base, now).await
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
            None => self.sessions.open(&self.key).await?,
        };
        Ok(&mut *self.loaded.insert(guard))
    }

    /// Saves the session if it was loaded and changed.
    ///
    /// # Errors
    ///
    /// As [`SessionGuard::commit`].
    pub async fn commit(self) -> Result<(), SessionError> {
        match self.loaded {
            Some(g) => g.commit().await,
            None => Ok(()),
        }
    }
}
