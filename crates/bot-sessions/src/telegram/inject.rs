//! dptree integration: [`enter`] injects a typed [`Session<T>`] into handlers, the way
//! teloxide's `dialogue::enter` injects a `Dialogue`; [`inject_context`] injects the update's
//! [`Context`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use teloxide::dispatching::DpHandlerDescription;
use teloxide::dptree::{self, Handler};
use teloxide::types::Update;

use super::context::{context_of, of_update};
use crate::{Context, KeyError, SessionError, SessionGuard, SessionKey, Sessions};

/// The session of type `T` that one update belongs to: a [`Sessions<T>`] bound to the
/// key its strategy derives from the update. Cheap to clone.
///
/// Built by [`enter`] (or [`Session::of_update`] / [`Session::new`]). Nothing is loaded
/// until a method is called, so a handler that never touches its session costs no
/// store round trip. When the update lacks an id the strategy needs (a per-user key
/// and an anonymous admin, a per-chat key and an inline query), the handle is still
/// injected and every method returns that [`SessionError::Key`]: the handler decides
/// what to answer, nothing is guessed.
///
/// # Examples
///
/// ```
/// use bot_sessions::telegram::Session;
/// use bot_sessions::{store::memory::MemoryStore, Context, KeyStrategy, SessionError, Sessions};
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Counter { n: u64 }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let counters = Sessions::<Counter>::builder(MemoryStore::new())
///     .namespace("counter").key(KeyStrategy::ChatUser).build()?;
///
/// let session = Session::new(&counters, &Context::new().chat(1).user(42));
/// let n = session.update(|c| { c.n += 1; Ok::<_, SessionError>(c.n) }).await?;
/// assert_eq!(n, 1);
/// assert_eq!(session.key()?.as_str(), "counter/chat:1/user:42");
///
/// // An anonymous admin has no user: the per-user session is a typed error.
/// let anonymous = Session::new(&counters, &Context::new().chat(1));
/// assert!(matches!(anonymous.get().await, Err(SessionError::Key(_))));
/// # Ok::<(), SessionError>(())
/// # }).unwrap();
/// ```
pub struct Session<T> {
    sessions: Sessions<T>,
    key: Result<SessionKey, KeyError>,
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
    /// The session of `sessions` that the update `ctx` belongs to.
    pub fn new(sessions: &Sessions<T>, ctx: &Context) -> Self {
        let key = sessions.key(ctx).map_err(|e| match e {
            SessionError::Key(k) => k,
            other => KeyError::Custom(other.to_string()),
        });
        Session { sessions: sessions.clone(), key }
    }

    /// The session of `sessions` that a teloxide update belongs to (see
    /// [`context_of`](super::context_of) for what each update says).
    pub fn of_update(sessions: &Sessions<T>, update: &Update) -> Self {
        Self::new(sessions, &of_update(update))
    }

    /// The session type's [`Sessions`].
    pub fn sessions(&self) -> &Sessions<T> {
        &self.sessions
    }

    /// The key.
    ///
    /// # Errors
    ///
    /// [`SessionError::Key`] when the update lacks an id the key strategy needs.
    pub fn key(&self) -> Result<&SessionKey, SessionError> {
        self.key.as_ref().map_err(|e| SessionError::Key(e.clone()))
    }

    /// The stored value, if any ([`Sessions::get`]).
    ///
    /// # Errors
    ///
    /// As [`Session::key`], and [`Sessions::get`]'s.
    pub async fn get(&self) -> Result<Option<T>, SessionError> {
        self.sessions.get(self.key()?).await
    }

    /// Atomically changes the value, starting from the initial value when absent
    /// ([`Sessions::update`]; `f` may re-run after a conflict with another process).
    ///
    /// # Errors
    ///
    /// As [`Session::key`], `f`'s error, and [`Sessions::update`]'s.
    pub async fn update<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnMut(&mut T) -> Result<R, E> + Send,
        E: From<SessionError>,
    {
        let key = self.key()?;
        self.sessions.update(key, f).await
    }

    /// Like [`update`](Self::update) over an `Option`: `None` deletes the session
    /// ([`Sessions::update_option`]).
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update).
    pub async fn update_option<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnMut(&mut Option<T>) -> Result<R, E> + Send,
        E: From<SessionError>,
    {
        let key = self.key()?;
        self.sessions.update_option(key, f).await
    }

    /// Replaces the value whatever is stored ([`Sessions::set`]).
    ///
    /// # Errors
    ///
    /// As [`Session::key`], and [`Sessions::set`]'s.
    pub async fn set(&self, value: &T) -> Result<(), SessionError> {
        self.sessions.set(self.key()?, value).await
    }

    /// Deletes the session; returns whether one was stored ([`Sessions::delete`]).
    ///
    /// # Errors
    ///
    /// As [`Session::key`], and store errors.
    pub async fn delete(&self) -> Result<bool, SessionError> {
        self.sessions.delete(self.key()?).await
    }

    /// Loads the session and holds its in-process lock until committed
    /// ([`Sessions::open`]).
    ///
    /// # Errors
    ///
    /// As [`Session::key`], and [`Sessions::open`]'s.
    pub async fn open(&self) -> Result<SessionGuard<T>, SessionError> {
        self.sessions.open(self.key()?).await
    }
}

/// A dptree handler that injects the update's [`Session<T>`] into the handlers after
/// it, from the [`Sessions<T>`] among the dependencies (the way teloxide's
/// `dialogue::enter` injects a `Dialogue` from a storage).
///
/// One call per session type; several types sit side by side, each with its own key
/// strategy, namespace, TTL and store. Unlike `dialogue::enter`, an update whose key
/// cannot be derived is not filtered out: its handle returns the key error when used
/// (see [`Session`]). Nothing is loaded before a handler asks.
///
/// ## Dependency requirements
///
/// - [`Update`] (the `Dispatcher` provides it)
/// - [`Sessions<T>`]
///
/// # Examples
///
/// ```
/// use bot_sessions::telegram::{self, Session};
/// use bot_sessions::{store::memory::MemoryStore, KeyStrategy, SessionError, Sessions};
/// use teloxide::dispatching::{DpHandlerDescription, UpdateFilterExt};
/// use teloxide::dptree::{self, Handler};
/// use teloxide::types::{Message, Update};
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Counter { n: u64 }
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Prefs { lang: String }
///
/// async fn count(counter: Session<Counter>, prefs: Session<Prefs>) -> Result<u64, SessionError> {
///     let lang = prefs.get().await?.map(|p| p.lang);
///     # let _ = lang;
///     counter.update(|c| { c.n += 1; Ok(c.n) }).await
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = std::sync::Arc::new(MemoryStore::new());
/// let counters = Sessions::<Counter>::builder(store.clone())
///     .namespace("counter").key(KeyStrategy::ChatUser).build()?;
/// let prefs = Sessions::<Prefs>::builder(store).namespace("prefs").key(KeyStrategy::User).build()?;
///
/// let handler: Handler<'static, Result<u64, SessionError>, DpHandlerDescription> = Update::filter_message()
///     .chain(telegram::enter::<Counter, _>())
///     .chain(telegram::enter::<Prefs, _>())
///     .endpoint(count);
///
/// let update: Update = serde_json::from_str(&serde_json::json!({"update_id": 1, "message": {
///     "message_id": 1, "date": 0, "text": "/count",
///     "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
///     "chat": {"id": 42, "first_name": "Ann", "type": "private"}}}).to_string()).unwrap();
/// let out = handler.dispatch(dptree::deps![update, counters, prefs]).await;
/// assert!(matches!(out, std::ops::ControlFlow::Break(Ok(1))));
/// # Ok::<(), SessionError>(())
/// # }).unwrap();
/// ```
#[must_use]
#[track_caller]
pub fn enter<T, Output>() -> Handler<'static, Output, DpHandlerDescription>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Output: Send + Sync + 'static,
{
    dptree::map(|sessions: Sessions<T>, update: Update| Session::of_update(&sessions, &update))
}

/// A dptree handler that injects the update's [`Context`] (built by
/// [`context_of`](super::context_of)) into the handlers after it: for handlers that
/// derive keys themselves, start interactive sessions, or check what an update says.
///
/// ## Dependency requirements
///
/// - [`Update`]
///
/// # Examples
///
/// ```
/// use bot_sessions::{telegram, Context};
/// use teloxide::dispatching::DpHandlerDescription;
/// use teloxide::dptree::{self, Handler};
/// use teloxide::types::Update;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let handler: Handler<'static, Option<i64>, DpHandlerDescription> =
///     telegram::inject_context().endpoint(|ctx: Context| async move { ctx.user_id });
/// let update: Update = serde_json::from_str(&serde_json::json!({"update_id": 1, "poll_answer": {
///     "poll_id": "p", "user": {"id": 7, "is_bot": false, "first_name": "A"}, "option_ids": [0]}}).to_string()).unwrap();
/// assert!(matches!(handler.dispatch(dptree::deps![update]).await, std::ops::ControlFlow::Break(Some(7))));
/// # });
/// ```
#[must_use]
#[track_caller]
pub fn inject_context<Output>() -> Handler<'static, Output, DpHandlerDescription>
where
    Output: Send + Sync + 'static,
{
    dptree::map(|update: Update| context_of(&update))
}
