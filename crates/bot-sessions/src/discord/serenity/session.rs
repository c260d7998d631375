//! [`Session`]: a data session bound to an interaction's key.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Context, SessionError, SessionGuard, SessionKey, Sessions};

/// The session of type `T` an interaction belongs to: a [`Sessions<T>`] and the key
/// its strategy derives from the interaction's [`Context`]. Cheap to clone; nothing is
/// loaded until a method is called.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::serenity::Session;
/// use bot_sessions::{store::memory::MemoryStore, Context, KeyStrategy, SessionError, Sessions};
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Profile { bio: String }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let profiles = Sessions::<Profile>::builder(MemoryStore::new())
///     .namespace("profile").key(KeyStrategy::GuildUser).build()?;
/// let session = Session::new(&profiles, &Context::new().guild(7).chat(1).user(42))?;
/// session.update(|p| { p.bio = "hi".into(); Ok::<_, SessionError>(()) }).await?;
/// assert_eq!(session.get().await?.map(|p| p.bio), Some("hi".into()));
/// assert_eq!(session.key().as_str(), "profile/guild:7/user:42");
/// // A DM has no guild: the per-guild session is a typed error.
/// assert!(matches!(Session::new(&profiles, &Context::new().chat(1).user(42)), Err(SessionError::Key(_))));
/// # Ok::<(), SessionError>(())
/// # }).unwrap();
/// ```
pub struct Session<T> {
    sessions: Sessions<T>,
    key: SessionKey,
}

impl<T> Clone for Session<T> {
    fn clone(&self) -> Self {
        Session { sessions: self.sessions.clone(), key: self.key.clone() }
    }
}

impl<T> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("sessions", &self.sessions).field("key", &self.key).finish()
    }
}

impl<T> Session<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The session of `sessions` that `ctx` belongs to.
    ///
    /// # Errors
    ///
    /// [`SessionError::Key`] when the context lacks an id the key strategy needs (a
    /// per-guild key in a DM).
    pub fn new(sessions: &Sessions<T>, ctx: &Context) -> Result<Self, SessionError> {
        Ok(Session { sessions: sessions.clone(), key: sessions.key(ctx)? })
    }

    /// The session type's [`Sessions`].
    pub fn sessions(&self) -> &Sessions<T> {
        &self.sessions
    }

    /// The key.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// The stored value, if any ([`Sessions::get`]).
    ///
    /// # Errors
    ///
    /// [`Sessions::get`]'s.
    pub async fn get(&self) -> Result<Option<T>, SessionError> {
        self.sessions.get(&self.key).await
    }

    /// Atomically changes the value, starting from the initial value when absent
    /// ([`Sessions::update`]; `f` may re-run after a conflict with another process).
    ///
    /// # Errors
    ///
    /// `f`'s error, and [`Sessions::update`]'s.
    pub async fn update<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnMut(&mut T) -> Result<R, E> + Send,
        E: From<SessionError>,
    {
        self.sessions.update(&self.key, f).await
    }

    /// Replaces the value whatever is stored ([`Sessions::set`]).
    ///
    /// # Errors
    ///
    /// [`Sessions::set`]'s.
    pub async fn set(&self, value: &T) -> Result<(), SessionError> {
        self.sessions.set(&self.key, value).await
    }

    /// Deletes the session; returns whether one was stored ([`Sessions::delete`]).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn delete(&self) -> Result<bool, SessionError> {
        self.sessions.delete(&self.key).await
    }

    /// Loads the session and holds its in-process lock until committed
    /// ([`Sessions::open`]).
    ///
    /// # Errors
    ///
    /// [`Sessions::open`]'s.
    pub async fn open(&self) -> Result<SessionGuard<T>, SessionError> {
        self.sessions.open(&self.key).await
    }
}
