//! One value that runs what a bot needs besides its handlers: the interactive and
//! data-session sweepers, the end events and their rendering, and graceful shutdown.
//!
//! ```
//! use bot_sessions::interactive::{CustomIdCodec, EndEvent, Manager, Target};
//! use bot_sessions::runtime::{OnShutdown, Runtime};
//! use bot_sessions::{store::memory::MemoryStore, Sessions};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let menus = Manager::builder(store.clone(), CustomIdCodec::new("m", Target::Telegram)?).build()?;
//! let forms = Sessions::<Vec<String>>::builder(store).namespace("form").build()?;
//!
//! let runtime = Runtime::builder()
//!     .manager(&menus)
//!     .sessions(&forms)
//!     // The platform adapter shows ends that no click answered (an expiry edits the
//!     // message): `telegram::show_end`, `discord::Ends::show`.
//!     .on_end(|event: EndEvent| async move { println!("{} ended: {}", event.session, event.reason) })
//!     .on_shutdown(OnShutdown::End)
//!     .start()?;
//! // ... run the bot's handlers ...
//! let report = runtime.shutdown().await; // or drop it: sessions are detached
//! assert_eq!(report.ended, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::interactive::{EndEvent, InteractiveError, Manager, Sweeper};
use crate::session::ExpirySweeper;
use crate::{SessionError, Sessions};

/// How often the interactive sweeper looks at due sessions unless configured.
pub const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Every how many interactive sweeps one scans the whole namespace unless configured.
pub const DEFAULT_SCAN_EVERY: u32 = 60;
/// How often data sessions are swept for expiry unless configured.
pub const DEFAULT_SESSION_SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How long [`Runtime::shutdown`] waits for the end hooks unless configured.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

type Hook = Arc<dyn Fn(EndEvent) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What [`Runtime::shutdown`] does with the live sessions of its managers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnShutdown {
    /// End them with [`EndReason::Shutdown`](crate::interactive::EndReason::Shutdown):
    /// their `end` runs and the end hooks show it ([`Manager::shutdown`]).
    #[default]
    End,
    /// Leave them live in the store for a restart or another process
    /// ([`Manager::shutdown_detached`]).
    Detach,
}

/// Why a [`Runtime`] did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// [`RuntimeBuilder::start`] was called outside a tokio runtime.
    #[error("bot_sessions::Runtime::start needs a tokio runtime")]
    NoTokio,
    /// An interactive sweeper did not start (a zero period).
    #[error(transparent)]
    Interactive(#[from] InteractiveError),
    /// A data-session sweeper did not start (a zero period).
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// What [`Runtime::shutdown`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeReport {
    /// Sessions ended with `Shutdown` ([`OnShutdown::End`]).
    pub ended: u64,
    /// Sessions that had already ended elsewhere.
    pub already_ended: u64,
    /// Sessions left live in the store ([`OnShutdown::Detach`]).
    pub detached: u64,
    /// Sessions that could not be ended (see the log).
    pub errors: u64,
    /// End hooks still running at the shutdown timeout, stopped there.
    pub hooks_cut: u64,
}

/// A data-session type whose expiry sweeper the runtime runs.
trait Sweepable: Send + Sync {
    fn spawn(&self, period: Duration) -> Result<ExpirySweeper, SessionError>;
}

impl<T> Sweepable for Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn spawn(&self, period: Duration) -> Result<ExpirySweeper, SessionError> {
        self.spawn_sweeper(period)
    }
}

/// Configures a [`Runtime`]; see [`Runtime::builder`].
#[must_use]
pub struct RuntimeBuilder {
    managers: Vec<Manager>,
    sessions: Vec<Box<dyn Sweepable>>,
    hooks: Vec<Hook>,
    sweep_every: Duration,
    scan_every: u32,
    session_sweep_every: Duration,
    on_shutdown: OnShutdown,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("managers", &self.managers.len())
            .field("sessions", &self.sessions.len())
            .field("hooks", &self.hooks.len())
            .field("on_shutdown", &self.on_shutdown)
            .finish_non_exhaustive()
    }
}

impl RuntimeBuilder {
    /// Runs `manager`'s sweeper (expiry of its sessions, and of those whose process
    /// died, found by a scan every [`scan_every`](Self::scan_every) sweeps), hands its
    /// end events to the [end hooks](Self::on_end), and shuts it down with the runtime.
    pub fn manager(mut self, manager: &Manager) -> Self {
        self.managers.push(manager.clone());
        self
    }

    /// Runs the expiry sweeper of a data-session type, so its
    /// [`on_expire`](crate::session::SessionsBuilder::on_expire) hook hears of sessions
    /// that expire while nobody touches them.
    pub fn sessions<T>(mut self, sessions: &Sessions<T>) -> Self
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.sessions.push(Box::new(sessions.clone()));
        self
    }

    /// Runs `hook` for every end of every manager's sessions (one at a time per
    /// manager, in order): where the platform adapter shows an end that no click
    /// answered, e.g. an expiry that edits the session's message.
    pub fn on_end<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(EndEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.push(Arc::new(move |event| Box::pin(hook(event))));
        self
    }

    /// How often the interactive sweepers run (default [`DEFAULT_SWEEP_EVERY`]).
    pub fn sweep_every(mut self, period: Duration) -> Self {
        self.sweep_every = period;
        self
    }

    /// Every how many sweeps one also scans the whole namespace for sessions whose
    /// process died (default [`DEFAULT_SCAN_EVERY`]; `0`: never).
    pub fn scan_every(mut self, sweeps: u32) -> Self {
        self.scan_every = sweeps;
        self
    }

    /// How often data sessions are swept (default [`DEFAULT_SESSION_SWEEP_EVERY`]);
    /// each sweep reads the whole namespace.
    pub fn session_sweep_every(mut self, period: Duration) -> Self {
        self.session_sweep_every = period;
        self
    }

    /// What [`Runtime::shutdown`] does with live sessions (default [`OnShutdown::End`]).
    pub fn on_shutdown(mut self, what: OnShutdown) -> Self {
        self.on_shutdown = what;
        self
    }

    /// How long [`Runtime::shutdown`] waits for the end hooks to show the last ends
    /// (default [`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts everything.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NoTokio`] outside a tokio runtime; a sweeper's error for a zero
    /// period.
    pub fn start(self) -> Result<Runtime, RuntimeError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RuntimeError::NoTokio);
        }
        let mut sweepers = Vec::new();
        for manager in &self.managers {
            sweepers.push(manager.spawn_sweeper(self.sweep_every, self.scan_every)?);
        }
        let mut expiry = Vec::new();
        for sessions in &self.sessions {
            expiry.push(sessions.spawn(self.session_sweep_every)?);
        }
        let (stop, stopped) = watch::channel(false);
        let hooks: Arc<[Hook]> = self.hooks.into();
        let followers = if hooks.is_empty() {
            Vec::new()
        } else {
            self.managers.iter().map(|m| tokio::spawn(follow(m.subscribe(), hooks.clone(), stopped.clone()))).collect()
        };
        Ok(Runtime {
            managers: self.managers,
            sweepers,
            expiry,
            followers,
            stop,
            on_shutdown: self.on_shutdown,
            shutdown_timeout: self.shutdown_timeout,
        })
    }
}

/// Hands `events` to the hooks until told to stop; then the events already sent
/// (the shutdown's ends) are handed over too.
async fn follow(mut events: broadcast::Receiver<EndEvent>, hooks: Arc<[Hook]>, mut stop: watch::Receiver<bool>) {
    let run = |event: EndEvent| {
        let hooks = hooks.clone();
        async move {
            for hook in hooks.iter() {
                hook(event.clone()).await;
            }
        }
    };
    loop {
        tokio::select! {
            biased;
            got = events.recv() => match got {
                Ok(event) => run(event).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the runtime's end hooks fell behind; some ends were not shown");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = stop.changed() => loop {
                match events.try_recv() {
                    Ok(event) => run(event).await,
                    Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            },
        }
    }
}

/// A running bot's background work; see the [module docs](self).
///
/// Stop it with [`shutdown`](Self::shutdown), which ends or detaches the live
/// sessions as configured and lets the end hooks show the last ends. Dropping it
/// instead stops every task at once and detaches the managers' sessions (a drop cannot
/// wait for ends to run).
#[derive(Debug)]
#[must_use = "the runtime stops when dropped"]
pub struct Runtime {
    managers: Vec<Manager>,
    sweepers: Vec<Sweeper>,
    expiry: Vec<ExpirySweeper>,
    followers: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    on_shutdown: OnShutdown,
    shutdown_timeout: Duration,
}

impl Runtime {
    /// Starts configuring a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            managers: Vec::new(),
            sessions: Vec::new(),
            hooks: Vec::new(),
            sweep_every: DEFAULT_SWEEP_EVERY,
            scan_every: DEFAULT_SCAN_EVERY,
            session_sweep_every: DEFAULT_SESSION_SWEEP_EVERY,
            on_shutdown: OnShutdown::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// The managers it runs.
    pub fn managers(&self) -> &[Manager] {
        &self.managers
    }

    /// Stops the sweepers, ends or detaches every manager's live sessions (see
    /// [`OnShutdown`]), waits (up to the shutdown timeout) for the end hooks to show
    /// those ends, and stops. Every task it started has finished when this returns.
    pub async fn shutdown(mut self) -> RuntimeReport {
        let mut report = RuntimeReport::default();
        for sweeper in &mut self.sweepers {
            sweeper.stop().await;
        }
        for sweeper in &mut self.expiry {
            sweeper.stop().await;
        }
        for manager in &self.managers {
            match self.on_shutdown {
                OnShutdown::End => {
                    let done = manager.shutdown().await;
                    report.ended += done.ended;
                    report.already_ended += done.already_ended;
                    report.errors += done.errors;
                }
                OnShutdown::Detach => report.detached += manager.shutdown_detached() as u64,
            }
            manager.core.stop_listening().await;
        }
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        for follower in &mut self.followers {
            if tokio::time::timeout_at(deadline, &mut *follower).await.is_err() {
                follower.abort();
                let _ = (&mut *follower).await;
                report.hooks_cut += 1;
            }
        }
        self.followers.clear();
        report
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for follower in &self.followers {
            follower.abort();
        }
        for manager in &self.managers {
            if !manager.is_shut_down() {
                manager.shutdown_detached();
            }
        }
    }
}
