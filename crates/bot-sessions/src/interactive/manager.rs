//! The manager: registry of kinds, start, routing, expiry and shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};

use super::core::{Config, Core, DEFAULT_NAMESPACE, EVENT_CAPACITY, ErasedKind, Kinds, Routed, Tended};
use super::engine::Engine;
use super::local::Local;
use super::{
    CustomIdCodec, DecodeError, EndEvent, EndReason, HandleError, Interactive, InteractiveError, RouteOutcome,
    SessionHandle, SessionId, ShutdownReport, Started,
};
use crate::session::IntoDynStore;
use crate::session::RetryPolicy;
use crate::session::locks::KeyLocks;
use crate::session::sealer::Sealer;
use crate::{Clock, Context, DynStore, Namespace, SystemClock};

/// A registered session kind: what [`Manager::start`] takes.
pub struct Kind<K> {
    engine: Arc<Engine<K>>,
}

impl<K> Clone for Kind<K> {
    fn clone(&self) -> Self {
        Kind { engine: self.engine.clone() }
    }
}

impl<K> std::fmt::Debug for Kind<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kind({})", self.engine.name)
    }
}

impl<K> Kind<K> {
    /// The registered name.
    pub fn name(&self) -> &str {
        &self.engine.name
    }

    /// The kind's value.
    pub fn get(&self) -> &K {
        &self.engine.kind
    }
}

/// Configures a [`Manager`]; see [`Manager::builder`].
#[must_use]
pub struct ManagerBuilder {
    store: DynStore,
    codec: CustomIdCodec,
    namespace: String,
    clock: Arc<dyn Clock>,
    cfg: Config,
    sealer: Sealer,
}

impl std::fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("namespace", &self.namespace)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    /// The store namespace of the sessions (default [`DEFAULT_NAMESPACE`]). Managers
    /// that share sessions must use the same one.
    pub fn namespace(mut self, name: &str) -> Self {
        self.namespace = name.to_owned();
        self
    }

    /// The clock (default: the system clock). A [`ManualClock`](crate::ManualClock)
    /// makes expiry testable without sleeping.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long an expired session's record stays for an expiry pass to end it
    /// (default 24 h). After that the store forgets it, and its `end` never runs.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.cfg.grace = grace;
        self
    }

    /// How long an ended session's record stays, so late clicks get
    /// [`RouteOutcome::Ended`] and a handle in another process can collect the result
    /// (default 10 min).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.cfg.linger = linger;
        self
    }

    /// How long a manager's claim to end a session holds before others consider the
    /// manager dead (default 60 s). `end` should finish well within it.
    pub fn end_lease(mut self, lease: Duration) -> Self {
        self.cfg.end_lease = lease;
        self
    }

    /// How often an expiry pass re-reads a session whose handle waits here, to learn of
    /// an end in another process (default 1 s; each costs one load).
    pub fn watch_period(mut self, period: Duration) -> Self {
        self.cfg.watch = period;
        self
    }

    /// The compare-and-set retry policy for conflicts with other processes.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.cfg.retry = retry;
        self
    }

    /// The largest session a write may store: its JSON (state, origin and the rest of
    /// the envelope, before sealing) in bytes; default
    /// [`DEFAULT_MAX_SIZE`](crate::session::DEFAULT_MAX_SIZE) (1 MiB), the same limit
    /// data sessions have. A `start` or a click whose state (or a `Finish` whose
    /// result) encodes larger fails with [`InteractiveError::TooLarge`] naming the
    /// session, and nothing is written.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.cfg.max_size = bytes;
        self
    }

    /// Seals the stored state of interactive sessions with `ring` (feature
    /// `encryption`), as [`SessionsBuilder::encryption`](crate::session::SessionsBuilder::encryption)
    /// does for data sessions: the session's key is the associated data, new state is
    /// sealed with the ring's newest key. A record that does not open is an
    /// [`InteractiveError::Sealed`] naming the session. Every manager sharing the
    /// namespace needs the ring.
    #[cfg(feature = "encryption")]
    pub fn encryption(mut self, ring: impl Into<Arc<crate::encryption::KeyRing>>) -> Self {
        self.sealer = Sealer::new(ring.into());
        self
    }

    /// Builds the manager.
    ///
    /// # Errors
    ///
    /// [`InteractiveError::InvalidName`] for an invalid namespace,
    /// [`InteractiveError::Config`] for a `max_size` of zero.
    pub fn build(self) -> Result<Manager, InteractiveError> {
        if self.cfg.max_size == 0 {
            return Err(InteractiveError::Config("max_size must be above zero".into()));
        }
        let namespace = Namespace::new(&self.namespace)
            .map_err(|e| InteractiveError::InvalidName { name: self.namespace.clone(), reason: e.to_string() })?;
        let mut cfg = self.cfg;
        cfg.retry.max_attempts = cfg.retry.max_attempts.max(1);
        let obs = crate::observe::Observer::new(self.store.backend(), namespace.as_str());
        let text_ns = super::text::text_namespace(&namespace);
        let notices = self.store.notices();
        Ok(Manager {
            core: Arc::new(Core {
                store: self.store,
                namespace,
                namespace_here: Default::default(),
                codec: self.codec,
                clock: self.clock,
                locks: KeyLocks::default(),
                kinds: Default::default(),
                local: Local::default(),
                instance: rand::random(),
                closed: AtomicBool::new(false),
                cfg,
                events: broadcast::channel(EVENT_CAPACITY).0,
                obs,
                sealer: self.sealer,
                text_ns,
                text_ns_here: Default::default(),
                notices,
                listener: Default::default(),
            }),
        })
    }
}

/// Starts interactive sessions, routes their clicks, and ends them.
///
/// Cheap to clone (an `Arc` inside). One per process and platform is the usual setup;
/// several managers (in one or many processes) may share a store and namespace: each
/// click and each end is applied exactly once among them.
///
/// See the [module documentation](super) for a full example.
#[derive(Clone)]
pub struct Manager {
    pub(crate) core: Arc<Core>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("namespace", &self.core.namespace)
            .field("codec", &self.core.codec)
            .field("local", &self.core.local.len())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Starts configuring a manager over `store`, building custom ids with `codec`.
    pub fn builder(store: impl IntoDynStore, codec: CustomIdCodec) -> ManagerBuilder {
        ManagerBuilder {
            store: store.into_dyn_store(),
            codec,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            clock: Arc::new(SystemClock),
            cfg: Config::default(),
            sealer: Sealer::default(),
        }
    }

    /// The custom id codec.
    pub fn codec(&self) -> &CustomIdCodec {
        &self.core.codec
    }

    /// The store.
    pub fn store(&self) -> &DynStore {
        &self.core.store
    }

    /// The store namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.core.namespace
    }

    /// How many sessions this manager keeps in memory (started here or routed here and
    /// not yet ended): what its expiry index holds.
    pub fn local_sessions(&self) -> usize {
        self.core.local.len()
    }

    /// Registers a kind under `name`. Every process that may receive the kind's clicks
    /// must register it under the same name.
    ///
    /// # Errors
    ///
    /// [`InteractiveError::InvalidName`] (the rules of [`Namespace`]) or
    /// [`InteractiveError::DuplicateKind`].
    pub fn register<K: Interactive>(&self, name: &str, kind: K) -> Result<Kind<K>, InteractiveError> {
        Namespace::new(name).map_err(|e| InteractiveError::InvalidName { name: name.into(), reason: e.to_string() })?;
        let name: Arc<str> = name.into();
        let engine = Arc::new(Engine::new(name.clone(), kind));
        if !self.core.kinds.register(&name, engine.clone()) {
            return Err(InteractiveError::DuplicateKind { kind: name.to_string() });
        }
        Ok(Kind { engine })
    }

    /// Starts a session of `kind` for the update `ctx`: checks the kind's start filter,
    /// draws a random id, runs [`Interactive::start`] and stores the session.
    ///
    /// # Errors
    ///
    /// [`InteractiveError::StartRefused`], the kind's `start` error, store errors,
    /// [`InteractiveError::ShutDown`], [`InteractiveError::NotRegistered`].
    pub async fn start<K: Interactive>(
        &self,
        kind: &Kind<K>,
        ctx: &Context,
        args: K::Args,
    ) -> Result<Started<K::Output>, InteractiveError> {
        let started = self.start_unobserved(kind, ctx, args).await;
        let outcome = match &started {
            Ok(_) => "ok",
            Err(InteractiveError::StartRefused { .. }) => "refused",
            Err(_) => "error",
        };
        self.core.obs.started(&kind.engine.name, outcome);
        started
    }

    async fn start_unobserved<K: Interactive>(
        &self,
        kind: &Kind<K>,
        ctx: &Context,
        args: K::Args,
    ) -> Result<Started<K::Output>, InteractiveError> {
        let core = &*self.core;
        if core.closed.load(Ordering::Acquire) {
            return Err(InteractiveError::ShutDown);
        }
        let engine = &kind.engine;
        let registered =
            core.kinds().get(&engine.name).is_some_and(|e| std::ptr::addr_eq(Arc::as_ptr(e), Arc::as_ptr(engine)));
        if !registered {
            return Err(InteractiveError::NotRegistered { kind: engine.name.clone() });
        }
        let origin = super::Origin::of(ctx, core.now());
        engine
            .start_filter
            .check(ctx, &origin)
            .map_err(|r| InteractiveError::StartRefused { kind: engine.name.clone(), filter: r.filter })?;
        let sid = SessionId::random();
        let key = core.key(sid);
        // Held until the handle is registered: a click arriving meanwhile waits.
        let lock = core.locks.lock(key.as_str()).await;
        let (deadline, reply) = engine.start(core, sid, &key, ctx, args).await?;
        let (tx, rx) = oneshot::channel();
        core.local.insert_started(sid, tx, deadline, core.now(), core.cfg.watch);
        drop(lock);
        self.core.listen();
        if core.closed.load(Ordering::Acquire) {
            // Shut down while starting: the shutdown pass may have missed this one.
            core.tend(sid, core.now(), Some(EndReason::Shutdown)).await?;
        }
        if let Some(limit) = engine.limit {
            // After the start, as `replace` does: a failed start displaces nothing.
            if let Err(error) = self.displace(&engine.name, limit, sid, ctx, core.keep_live(deadline)).await {
                tracing::warn!(session = %sid, kind = %engine.name, %error, "could not apply the kind's session limit");
            }
        }
        let manager: std::sync::Weak<Core> = Arc::downgrade(&self.core);
        Ok(Started { id: sid, handle: SessionHandle::new(sid, rx, manager), reply })
    }

    /// Starts a session of `kind` in place of `old`, which ends with
    /// [`EndReason::Replaced`] (if it is still live). If the start fails, `old` is left
    /// as it is.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start) and [`end`](Self::end).
    pub async fn replace<K: Interactive>(
        &self,
        old: SessionId,
        kind: &Kind<K>,
        ctx: &Context,
        args: K::Args,
    ) -> Result<Started<K::Output>, InteractiveError> {
        let started = self.start(kind, ctx, args).await?;
        self.end(old, EndReason::Replaced).await?;
        Ok(started)
    }

    /// Ends a live session now with `reason` (its `end` runs here). Returns whether it
    /// was live.
    ///
    /// # Errors
    ///
    /// Store errors, [`InteractiveError::UnknownKind`].
    pub async fn end(&self, session: SessionId, reason: EndReason) -> Result<bool, InteractiveError> {
        let tended = self.core.tend(session, self.core.now(), Some(reason)).await?;
        Ok(tended == Tended::Ended)
    }

    /// Routes a component update to its session and applies it.
    ///
    /// Reads `ctx.custom_id`; an update without one, or with another namespace's, is
    /// [`RouteOutcome::NotOurs`]. Forged, malformed, unknown, ended and expired ids and
    /// refused clicks are outcomes too; only faults are errors. Updates of one session
    /// are applied one at a time.
    ///
    /// # Errors
    ///
    /// The kind's `update` error (nothing written), store errors,
    /// [`InteractiveError::UnknownKind`] (the session's kind is not registered in this
    /// process), [`InteractiveError::Contention`], [`InteractiveError::ShutDown`].
    pub async fn route(&self, ctx: &Context) -> Result<RouteOutcome, InteractiveError> {
        Ok(self.handle(ctx).await?.outcome)
    }

    /// [`route`](Self::route), with the session's answer: what its `update` (or, for
    /// an expired session, its `end`) replied. The new state is stored before this
    /// returns, so the reply can go out at once.
    ///
    /// # Errors
    ///
    /// As [`route`](Self::route).
    pub async fn handle(&self, ctx: &Context) -> Result<Routed, InteractiveError> {
        let span = self.core.obs.route_span();
        let start = quanta::Instant::now();
        // The kinds, once the session is loaded: its engine is borrowed from them.
        let mut kinds = None;
        let mut kind = None;
        // As for data sessions: no `Instrumented` layer when nobody wants the span.
        let routed = if span.is_disabled() {
            self.handle_unobserved(ctx, &mut kinds, &mut kind).await
        } else {
            tracing::Instrument::instrument(self.handle_unobserved(ctx, &mut kinds, &mut kind), span.clone()).await
        };
        self.core.route_done(&span, kind, &routed, start);
        routed
    }

    async fn handle_unobserved<'k>(
        &self,
        ctx: &Context,
        kinds: &'k mut Option<Arc<Kinds>>,
        kind: &mut Option<&'k dyn ErasedKind>,
    ) -> Result<Routed, InteractiveError> {
        let core = &*self.core;
        if core.closed.load(Ordering::Acquire) {
            return Err(InteractiveError::ShutDown);
        }
        let Some(text) = ctx.custom_id.as_deref() else { return Ok(Routed::of(RouteOutcome::NotOurs)) };
        // A signed id this session was clicked with before needs no second check.
        let mut remembered = false;
        let id = match core.codec.decode_known(text, |sid| {
            remembered = core.local.verified(sid, text);
            remembered
        }) {
            Ok(id) => id,
            Err(DecodeError::NotOurs) => return Ok(Routed::of(RouteOutcome::NotOurs)),
            Err(DecodeError::Forged { custom_id }) => return Ok(Routed::of(RouteOutcome::Forged { custom_id })),
            Err(DecodeError::Malformed { custom_id, reason }) => {
                return Ok(Routed::of(RouteOutcome::Malformed { custom_id, reason }));
            }
        };
        let sid = id.session();
        let key = core.key(sid);
        let _lock = core.locks.lock(key.as_str()).await;
        let Some(loaded) = core.load_kept(sid, &key, core.now()).await? else {
            return Ok(Routed::of(RouteOutcome::Unknown { session: sid }));
        };
        let kinds: &'k Kinds = kinds.insert(core.kinds.held());
        let engine = *kind.insert(Core::engine_for(kinds, sid, loaded.kept.as_deref(), &loaded.record)?);
        engine.apply(core, sid, &key, loaded, ctx, super::core::Input::Click { id, remembered }).await
    }

    /// Records the message that carries `session`'s components, once the transport
    /// has sent `start`'s reply and learnt its id (Telegram's `sendMessage` result, a
    /// Discord message id): [`EndEvent::origin`] then names it, so an end that no click
    /// answers (expiry) can edit it. Returns whether the session exists.
    ///
    /// # Errors
    ///
    /// Store errors, a stored session that does not decode,
    /// [`InteractiveError::Contention`].
    pub async fn set_message(&self, session: SessionId, message_id: i64) -> Result<bool, InteractiveError> {
        self.core.set_message(session, message_id).await
    }

    /// Records the inline message that carries `session`'s components (sent through
    /// inline mode: Telegram's `chosen_inline_result` names it, when the bot asked
    /// @BotFather for inline feedback), as [`set_message`](Self::set_message) does for a
    /// message in a chat; the first click records it too. Returns whether the session
    /// exists.
    ///
    /// # Errors
    ///
    /// As [`set_message`](Self::set_message).
    pub async fn set_inline_message(
        &self,
        session: SessionId,
        inline_message_id: &str,
    ) -> Result<bool, InteractiveError> {
        self.core.set_origin(session, "inline_message", inline_message_id.into()).await
    }

    /// Subscribes to the end of every session this manager ends (by a click, expiry,
    /// shutdown or [`end`](Self::end)): one [`EndEvent`] per end. Managers in other
    /// processes publish the ends they run to their own subscribers; across all
    /// managers sharing a store, each end is published exactly once. A subscriber that
    /// falls more than 1024 events behind misses the oldest
    /// ([`broadcast::error::RecvError::Lagged`]).
    pub fn subscribe(&self) -> broadcast::Receiver<EndEvent> {
        self.core.events.subscribe()
    }

    /// Shuts down: refuses new starts and routes, and ends every session this manager
    /// started with [`EndReason::Shutdown`] (its `end` runs, so it can disable the
    /// message's components; its handle resolves).
    ///
    /// Sessions started by other managers are left alone even if this one routed their
    /// clicks: their starter, or an expiry scan, takes care of them. To keep this
    /// manager's sessions alive for a restart or another process instead, use
    /// [`shutdown_detached`](Self::shutdown_detached).
    pub async fn shutdown(&self) -> ShutdownReport {
        let core = &*self.core;
        core.closed.store(true, Ordering::Release);
        let mut report = ShutdownReport::default();
        for sid in core.local.started_here() {
            match core.tend(sid, core.now(), Some(EndReason::Shutdown)).await {
                Ok(Tended::Ended) => report.ended += 1,
                Ok(_) => report.already_ended += 1,
                Err(error) => {
                    tracing::warn!(session = %sid, %error, "could not end interactive session at shutdown");
                    report.errors += 1;
                }
            }
        }
        core.local.drain(|session| Err(HandleError::Lost { session }));
        report
    }

    /// Shuts down without ending anything: refuses new starts and routes, and resolves
    /// this manager's handles with [`HandleError::Detached`]. The sessions stay live in
    /// the store: after a restart, or in another process, their clicks still route and
    /// their expiry still runs (found by [`expire_scan`](Self::expire_scan)). Returns
    /// how many sessions were detached.
    pub fn shutdown_detached(&self) -> usize {
        let core = &*self.core;
        core.closed.store(true, Ordering::Release);
        let n = core.local.started_here().len();
        core.local.drain(|session| Err(HandleError::Detached { session }));
        n
    }

    /// Whether [`shutdown`](Self::shutdown) or [`shutdown_detached`](Self::shutdown_detached)
    /// ran.
    pub fn is_shut_down(&self) -> bool {
        self.core.closed.load(Ordering::Acquire)
    }
}
