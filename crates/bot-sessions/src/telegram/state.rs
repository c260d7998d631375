//! State routing: per-state handlers on the state held in a typed session, as
//! teloxide's `dptree::case!` routes on a `Dialogue`'s state, with a transition that is
//! a compare-and-set.
//!
//! [`enter_state`] (after [`enter`](super::enter)) loads the update's session (the
//! initial value when there is none), holds its key's in-process lock while the
//! handlers run, and injects the state `T` (so `dptree::case![State::Age { name }]`
//! routes on it and hands the handler its fields) and a [`Transition<T>`]. The
//! handler moves on with [`Transition::to`] or leaves with [`Transition::exit`]: a
//! write against the version it loaded. If another process wrote the session
//! meanwhile, nothing is written and the transition reports
//! [`TransitionError::Conflict`]: the other process's state stands, never overwritten.
//! Answer the user, or let the update run again (it then sees the new state).
//!
//! In one process, updates of one key wait for each other (the lock), so conflicts
//! come only from other processes.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use teloxide::dispatching::DpHandlerDescription;
use teloxide::dptree::{self, Handler};
use tokio::sync::Mutex;

use super::inject::Session;
use crate::{SessionError, SessionGuard, SessionKey};

/// A transition did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// Another process changed the session since this update loaded it: nothing was
    /// written (its state stands).
    #[error("the state of session `{key}` changed in another process since this update loaded it; nothing was written")]
    Conflict {
        /// The session's key.
        key: String,
    },
    /// This update already made its transition (one per update).
    #[error("the update already made its transition of session `{key}`")]
    Done {
        /// The session's key.
        key: String,
    },
    /// Encoding, size or store errors.
    #[error(transparent)]
    Session(SessionError),
}

/// The way out of the state an update was routed on: one transition per update,
/// written with compare-and-set against the version loaded (see the
/// [module](self)). Cloning gives the same transition.
pub struct Transition<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    key: SessionKey,
    guard: Arc<Mutex<Option<SessionGuard<T>>>>,
}

impl<T> Clone for Transition<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn clone(&self) -> Self {
        Transition { key: self.key.clone(), guard: self.guard.clone() }
    }
}

impl<T> std::fmt::Debug for Transition<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transition").field("key", &self.key).finish_non_exhaustive()
    }
}

impl<T> Transition<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The session's key.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// Moves the session to `next` (compare-and-set against the version loaded).
    ///
    /// # Errors
    ///
    /// [`TransitionError::Conflict`] (nothing written), [`TransitionError::Done`],
    /// [`TransitionError::Session`].
    pub async fn to(&self, next: T) -> Result<(), TransitionError> {
        let mut guard = self.take().await?;
        *guard = next;
        guard.commit().await.map_err(|e| self.error(e))
    }

    /// Ends the session: deleted (compare-and-set), so the next update starts from the
    /// initial state.
    ///
    /// # Errors
    ///
    /// As [`to`](Self::to).
    pub async fn exit(&self) -> Result<(), TransitionError> {
        let guard = self.take().await?;
        if !guard.existed() {
            return Ok(());
        }
        guard.delete().await.map_err(|e| self.error(e))
    }

    async fn take(&self) -> Result<SessionGuard<T>, TransitionError> {
        self.guard.lock().await.take().ok_or_else(|| TransitionError::Done { key: self.key.to_string() })
    }

    fn error(&self, e: SessionError) -> TransitionError {
        match e {
            SessionError::Store(s) if s.is_conflict() => TransitionError::Conflict { key: self.key.to_string() },
            other => TransitionError::Session(other),
        }
    }
}

/// A dptree handler that loads the state of the update's [`Session<T>`] (injected by
/// [`enter`](super::enter) before it) and injects the state `T` and its
/// [`Transition<T>`] into the handlers after it; route on `T` with
/// `dptree::case!`. See the [module](self).
///
/// An update whose key cannot be derived, or whose session cannot be loaded, is
/// logged (`tracing`, with the key and the error) and goes on to the next branches,
/// as teloxide's `enter_dialogue` does with a storage error.
///
/// ## Dependency requirements
///
/// - [`Session<T>`]
///
/// # Examples
///
/// ```
/// use bot_sessions::telegram::{self, Transition, TransitionError};
/// use bot_sessions::{store::memory::MemoryStore, KeyStrategy, Sessions};
/// use teloxide::dispatching::{DpHandlerDescription, UpdateFilterExt};
/// use teloxide::dptree::{self, Handler};
/// use teloxide::types::{Message, Update};
///
/// #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
/// enum State { #[default] Start, ReceiveAge { name: String } }
///
/// async fn start(msg: Message, t: Transition<State>) -> Result<String, TransitionError> {
///     t.to(State::ReceiveAge { name: msg.text().unwrap_or_default().into() }).await?;
///     Ok("How old are you?".into())
/// }
/// async fn age(name: String, t: Transition<State>) -> Result<String, TransitionError> {
///     t.exit().await?;
///     Ok(format!("thanks, {name}"))
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let states = Sessions::<State>::builder(MemoryStore::new()).namespace("dialogue").key(KeyStrategy::Chat).build()?;
/// let tree: Handler<'static, Result<String, TransitionError>, DpHandlerDescription> = Update::filter_message()
///     .chain(telegram::enter::<State, _>())
///     .chain(telegram::enter_state::<State, _>())
///     .branch(dptree::case![State::Start].endpoint(start))
///     .branch(dptree::case![State::ReceiveAge { name }].endpoint(age));
///
/// let update = |text: &str| -> Update { serde_json::from_str(&serde_json::json!({"update_id": 1, "message": {
///     "message_id": 1, "date": 0, "text": text, "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
///     "chat": {"id": 42, "first_name": "Ann", "type": "private"}}}).to_string()).unwrap() };
/// for (text, answer) in [("Ann", "How old are you?"), ("36", "thanks, Ann")] {
///     let out = tree.dispatch(dptree::deps![update(text), states.clone()]).await;
///     assert!(matches!(out, std::ops::ControlFlow::Break(Ok(ref a)) if a == answer));
/// }
/// # Ok::<(), bot_sessions::SessionError>(())
/// # }).unwrap();
/// ```
#[must_use]
#[track_caller]
pub fn enter_state<T, Output>() -> Handler<'static, Output, DpHandlerDescription>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    Output: Send + Sync + 'static,
{
    dptree::filter_map_async(|session: Session<T>| async move {
        let key = match session.key() {
            Ok(key) => key.clone(),
            Err(error) => {
                tracing::warn!(%error, "no state to route on: the update has no session key");
                return None;
            }
        };
        match session.open().await {
            Ok(guard) => Some(Transition { key, guard: Arc::new(Mutex::new(Some(guard))) }),
            Err(error) => {
                tracing::error!(key = %key, %error, "cannot load the state to route on");
                None
            }
        }
    })
    .filter_map_async(|transition: Transition<T>| async move {
        let guard = transition.guard.lock().await;
        guard.as_ref().map(|g| T::clone(g))
    })
}
