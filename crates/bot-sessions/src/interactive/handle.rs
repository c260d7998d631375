//! The starter's handle: a future of the session's end.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::{Ended, SessionId};

/// What the manager sends a handle: the typed end, boxed (the manager is not generic).
pub(crate) type Delivery = Result<Box<dyn Any + Send>, HandleError>;

/// Why a handle resolved without an end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The manager shut down with [`Manager::shutdown_detached`]: the session is still
    /// live in the store, for another process or a restart to carry on.
    ///
    /// [`Manager::shutdown_detached`]: super::Manager::shutdown_detached
    #[error("interactive session {session} was detached at shutdown; it lives on in the store")]
    Detached {
        /// The session.
        session: SessionId,
    },
    /// The manager was dropped, or failed to end the session at shutdown.
    #[error("the manager of interactive session {session} is gone")]
    Lost {
        /// The session.
        session: SessionId,
    },
    /// The session's record disappeared without an end (deleted by an operator or by
    /// forget-user, or its end record outlived the linger period).
    #[error("interactive session {session} disappeared from the store without an end")]
    Vanished {
        /// The session.
        session: SessionId,
    },
    /// The result stored for the session does not have the handle's type (the kind's
    /// `Output` changed between processes). The session did end.
    #[error("interactive session {session} ended with a result of another type")]
    ResultType {
        /// The session.
        session: SessionId,
    },
}

/// Resolves with the session's end: its reason and result.
///
/// It resolves after the session finished, expired (wherever the expiry ran), was
/// replaced or cancelled, and at shutdown. An end run in another process reaches it
/// through the store's end notices within milliseconds (see [Ends heard at
/// once](super#ends-heard-at-once)), or at the next watch period if the notice is lost. It is a plain future: await it, select on
/// it, or drop it (the session carries on without anybody waiting).
///
/// # Examples
///
/// See [`Manager`](super::Manager).
#[derive(Debug)]
#[must_use = "dropping the handle does not end the session; await it to get the result"]
pub struct SessionHandle<R> {
    session: SessionId,
    rx: oneshot::Receiver<Delivery>,
    manager: Manager,
    _result: PhantomData<fn() -> R>,
}

/// The manager that holds the handle's sender, told when the handle goes (so that it
/// drops the channel at once rather than keep it until the session ends).
struct Manager(Weak<dyn Release>);

/// What holds a handle's sender: told when the handle is dropped.
pub(crate) trait Release: Send + Sync {
    /// The handle of `session` is gone: drop its sender now.
    fn release(&self, session: SessionId);
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Manager")
    }
}

impl<R> Drop for SessionHandle<R> {
    fn drop(&mut self) {
        if let Some(manager) = self.manager.0.upgrade() {
            manager.release(self.session);
        }
    }
}

impl<R> SessionHandle<R> {
    pub(crate) fn new(session: SessionId, rx: oneshot::Receiver<Delivery>, manager: Weak<dyn Release>) -> Self {
        SessionHandle { session, rx, manager: Manager(manager), _result: PhantomData }
    }

    /// The session.
    pub fn session(&self) -> SessionId {
        self.session
    }
}

impl<R: 'static> Future for SessionHandle<R> {
    type Output = Result<Ended<R>, HandleError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let session = self.session;
        Pin::new(&mut self.rx).poll(cx).map(|delivery| match delivery {
            Ok(Ok(boxed)) => match boxed.downcast::<Ended<R>>() {
                Ok(ended) => Ok(*ended),
                Err(_) => Err(HandleError::ResultType { session }),
            },
            Ok(Err(e)) => Err(e),
            Err(_) => Err(HandleError::Lost { session }),
        })
    }
}

/// A started session: its id and the handle of its end.
#[derive(Debug)]
#[non_exhaustive]
pub struct Started<R> {
    /// The new session's id.
    pub id: SessionId,
    /// Resolves when it ends.
    pub handle: SessionHandle<R>,
    /// What `start` answered the opening update with (see [`StartCx::reply`]); the
    /// session is already stored.
    ///
    /// [`StartCx::reply`]: super::StartCx::reply
    pub reply: Option<super::Reply>,
}
