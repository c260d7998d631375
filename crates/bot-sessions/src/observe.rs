//! Observability: a tracing span and metrics for every session operation and every
//! interactive route.
//!
//! Metrics go through the [`metrics`] facade: install a recorder (for Prometheus,
//! `metrics-exporter-prometheus`; the demo's `--metrics ADDR` does) **before** building
//! [`Sessions`](crate::Sessions) or a [`Manager`](crate::interactive::Manager): each one
//! registers its handles once, on first use, and keeps them, so an operation costs a
//! few atomic adds and no allocation. Without a recorder they cost next to nothing.
//!
//! Spans are `debug` level, named `bot_sessions.op` (fields `backend`, `namespace`,
//! `operation`, `outcome`, `retries`) and `bot_sessions.route` (fields `backend`,
//! `namespace`, `kind`, `outcome`). No span or metric ever carries a session's value,
//! key or user id.
//!
//! # Metrics
//!
//! Every metric has the labels `backend` ([`Store::backend`](crate::Store::backend):
//! `memory`, `sqlite`, `redis`, `postgres`, `custom`) and `namespace`.
//!
//! | name | type | more labels | what it counts |
//! | --- | --- | --- | --- |
//! | `bot_sessions_operations_total` | counter | `operation`, `outcome` | calls of the typed API (see below) |
//! | `bot_sessions_operation_seconds` | histogram | `operation` | their latency, lock wait and retries included |
//! | `bot_sessions_conflicts_total` | counter | | compare-and-set conflicts a save met (another writer won) |
//! | `bot_sessions_retries_total` | counter | | re-runs of an update (or `set`) after a conflict |
//! | `bot_sessions_ambiguous_total` | counter | `resolution` | writes whose reply was lost: `resolved` (found out whether it landed, and made it land once), `unknown`, `error` |
//! | `bot_sessions_live_sessions` | gauge | | live sessions of the namespace, as the last expiry sweep's scan saw them |
//! | `bot_sessions_expired_total` | counter | | expired sessions a sweep claimed (and announced) |
//! | `bot_sessions_sweeper_lag_seconds` | histogram | | for each session a sweep claimed: how long after its expiry |
//! | `bot_sessions_interactive_routes_total` | counter | `kind`, `outcome` | routed component updates ([`Manager::route`](crate::interactive::Manager::route)) |
//! | `bot_sessions_interactive_route_seconds` | histogram | | their latency |
//! | `bot_sessions_interactive_started_total` | counter | `kind`, `outcome` | [`Manager::start`](crate::interactive::Manager::start) calls: `ok`, `refused`, `error` |
//! | `bot_sessions_interactive_ended_total` | counter | `kind`, `reason` | interactive sessions ended here (each end is counted once across processes) |
//! | `bot_sessions_interactive_live_sessions` | gauge | | live interactive sessions, as the last [`expire_scan`](crate::interactive::Manager::expire_scan) saw them |
//! | `bot_sessions_interactive_sweeper_lag_seconds` | histogram | | for each session an expiry scan ended: how long after its deadline |
//!
//! `operation` is one of `update` (also `update_option`, `update_with_ttl`), `get`,
//! `set`, `delete` (also [`SessionGuard::delete`](crate::SessionGuard::delete)), `open`
//! (also a lazy session's first use), `commit`, `meta`, `sweep`, `purge`. `outcome` is
//! `ok`, `aborted` (the handler returned an error; nothing was written), `conflict`
//! (a guard's commit lost to another writer), `contention` (an update ran out of
//! retries), `ambiguous` (a write's outcome stayed unknown) or `error`.
//!
//! A route's `outcome` is `handled`, `not_ours`, `unknown`, `expired`, `ended`,
//! `refused`, `forged`, `malformed` or `error`; its `kind` is the session kind's
//! registered name (`none` when no session was found).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use quanta::Instant;

use metrics::{Counter, Gauge, Histogram, Label, SharedString};
use tracing::Instrument;

use crate::{SessionError, StoreError};

/// The data-session operations that are observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Update,
    Get,
    Set,
    Delete,
    Open,
    Commit,
    Meta,
    Sweep,
    Purge,
}

const OPS: usize = 9;

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Update => "update",
            Op::Get => "get",
            Op::Set => "set",
            Op::Delete => "delete",
            Op::Open => "open",
            Op::Commit => "commit",
            Op::Meta => "meta",
            Op::Sweep => "sweep",
            Op::Purge => "purge",
        }
    }
}

/// How an observed operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Aborted,
    Conflict,
    Contention,
    Ambiguous,
    Error,
}

const OUTCOMES: usize = 6;

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Aborted => "aborted",
            Outcome::Conflict => "conflict",
            Outcome::Contention => "contention",
            Outcome::Ambiguous => "ambiguous",
            Outcome::Error => "error",
        }
    }

    fn of_error(e: &SessionError) -> Outcome {
        match e {
            SessionError::Store(StoreError::Conflict { .. }) => Outcome::Conflict,
            SessionError::Store(StoreError::Ambiguous { .. }) => Outcome::Ambiguous,
            SessionError::Contention { .. } => Outcome::Contention,
            _ => Outcome::Error,
        }
    }
}

/// What an observed future returns, classified.
pub(crate) trait Classify {
    fn outcome(&self) -> Outcome;
}

impl<R> Classify for Result<R, SessionError> {
    fn outcome(&self) -> Outcome {
        match self {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::of_error(e),
        }
    }
}

/// An update's result: the handler's own error (`Ok(Err(_))`, nothing written) apart
/// from the library's.
pub(crate) struct Handled<R, E>(pub(crate) Result<Result<R, E>, SessionError>);

impl<R, E> Classify for Handled<R, E> {
    fn outcome(&self) -> Outcome {
        match &self.0 {
            Ok(Ok(_)) => Outcome::Ok,
            Ok(Err(_)) => Outcome::Aborted,
            Err(e) => Outcome::of_error(e),
        }
    }
}

/// Metric names, also listed in the [module documentation](self).
pub mod names {
    /// Calls of the typed API, by `operation` and `outcome`.
    pub const OPERATIONS: &str = "bot_sessions_operations_total";
    /// Their latency in seconds, by `operation`.
    pub const OPERATION_SECONDS: &str = "bot_sessions_operation_seconds";
    /// Compare-and-set conflicts met by saves.
    pub const CONFLICTS: &str = "bot_sessions_conflicts_total";
    /// Re-runs of an update after a conflict.
    pub const RETRIES: &str = "bot_sessions_retries_total";
    /// Writes whose reply was lost, by `resolution`.
    pub const AMBIGUOUS: &str = "bot_sessions_ambiguous_total";
    /// Live sessions of the namespace at the last sweep.
    pub const LIVE_SESSIONS: &str = "bot_sessions_live_sessions";
    /// Expired sessions claimed by sweeps.
    pub const EXPIRED: &str = "bot_sessions_expired_total";
    /// How late a sweep claimed each expired session, in seconds.
    pub const SWEEPER_LAG_SECONDS: &str = "bot_sessions_sweeper_lag_seconds";
    /// Routed component updates, by `kind` and `outcome`.
    pub const ROUTES: &str = "bot_sessions_interactive_routes_total";
    /// Their latency in seconds.
    pub const ROUTE_SECONDS: &str = "bot_sessions_interactive_route_seconds";
    /// Interactive starts, by `kind` and `outcome`.
    pub const STARTED: &str = "bot_sessions_interactive_started_total";
    /// Interactive ends, by `kind` and `reason`.
    pub const ENDED: &str = "bot_sessions_interactive_ended_total";
    /// Live interactive sessions at the last expiry scan.
    pub const INTERACTIVE_LIVE_SESSIONS: &str = "bot_sessions_interactive_live_sessions";
    /// How late an expiry scan ended each session, in seconds.
    pub const INTERACTIVE_SWEEPER_LAG_SECONDS: &str = "bot_sessions_interactive_sweeper_lag_seconds";
}

/// Counter handles by the addresses and lengths of `(metric, kind, outcome)`: a route
/// compares six words, not three strings. Each entry holds its kind, so that address
/// is not reused by another kind while the entry lives (entries are never removed);
/// two addresses of one text (a literal the compiler did not merge) are two entries
/// with the same counter, which the recorder keys by name and labels.
type Labelled = dashmap::DashMap<[(usize, usize); 3], (Option<Arc<str>>, Counter), foldhash::fast::RandomState>;

/// Where `text` is and how long: what `Labelled` keys it by.
fn address(text: &str) -> (usize, usize) {
    (text.as_ptr() as usize, text.len())
}

/// A route's `outcome` label when the session took the update.
#[cfg(feature = "interactive")]
pub(crate) const HANDLED: &str = "handled";

/// What one interactive session kind keeps for its route metrics: the handle of its
/// `handled` counter, registered on its first use (see [`Observer::routed`]).
#[cfg(feature = "interactive")]
#[derive(Debug, Default)]
pub(crate) struct KindRoutes {
    handled: OnceLock<Counter>,
}

/// The observed identity of one `Sessions` or `Manager` (its backend and namespace),
/// with the metric handles it registered on first use.
pub(crate) struct Observer {
    backend: &'static str,
    namespace: Arc<str>,
    operations: [[OnceLock<Counter>; OUTCOMES]; OPS],
    latency: [OnceLock<Histogram>; OPS],
    conflicts: OnceLock<Counter>,
    retries: OnceLock<Counter>,
    /// Counters with a label known only at run time (an interactive kind) or a small
    /// set of values (a resolution): `(metric, kind or "", outcome)` → handle,
    /// registered on first use so a route does not build labels or ask the recorder.
    labelled: Labelled,
    #[cfg(feature = "interactive")]
    route_latency: OnceLock<Histogram>,
    /// The `kind` label of a route that found no session kind.
    #[cfg(feature = "interactive")]
    no_kind: Arc<str>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").field("backend", &self.backend).field("namespace", &self.namespace).finish()
    }
}

impl Observer {
    pub(crate) fn new(backend: &'static str, namespace: &str) -> Self {
        Observer {
            backend,
            namespace: namespace.into(),
            operations: Default::default(),
            latency: Default::default(),
            conflicts: OnceLock::new(),
            retries: OnceLock::new(),
            // Few entries (kinds x outcomes): a few shards are enough.
            labelled: dashmap::DashMap::with_hasher_and_shard_amount(foldhash::fast::RandomState::default(), 4),
            #[cfg(feature = "interactive")]
            route_latency: OnceLock::new(),
            #[cfg(feature = "interactive")]
            no_kind: Arc::from("none"),
        }
    }

    /// Increments the counter `name` labelled `kind` (when given) and
    /// `second.0 = second.1`, through the handle cache.
    fn count_labelled(&self, name: &'static str, kind: Option<&Arc<str>>, second: (&'static str, &'static str)) {
        let key = [address(name), kind.map_or((0, 0), |k| address(k)), address(second.1)];
        if let Some(entry) = self.labelled.get(&key) {
            entry.1.increment(1);
            return;
        }
        let counter = self.labelled_counter(name, kind, second);
        counter.increment(1);
        self.labelled.insert(key, (kind.cloned(), counter));
    }

    /// The counter `name` labelled `kind` (when given) and `second.0 = second.1`.
    fn labelled_counter(
        &self,
        name: &'static str,
        kind: Option<&Arc<str>>,
        second: (&'static str, &'static str),
    ) -> Counter {
        let mut labels = Vec::with_capacity(2);
        if let Some(kind) = kind {
            labels.push(("kind", SharedString::from_shared(kind.clone())));
        }
        labels.push((second.0, SharedString::const_str(second.1)));
        self.counter(name, &labels)
    }

    /// `backend` and `namespace`, then `more`.
    fn labels(&self, more: &[(&'static str, SharedString)]) -> Vec<Label> {
        let mut labels = Vec::with_capacity(2 + more.len());
        labels.push(Label::from_static_parts("backend", self.backend));
        labels.push(Label::new("namespace", SharedString::from_shared(self.namespace.clone())));
        labels.extend(more.iter().map(|(k, v)| Label::new(*k, v.clone())));
        labels
    }

    fn counter(&self, name: &'static str, more: &[(&'static str, SharedString)]) -> Counter {
        metrics::counter!(name, self.labels(more))
    }

    fn histogram(&self, name: &'static str, more: &[(&'static str, SharedString)]) -> Histogram {
        metrics::histogram!(name, self.labels(more))
    }

    fn gauge(&self, name: &'static str) -> Gauge {
        metrics::gauge!(name, self.labels(&[]))
    }

    /// Runs the future `make` returns as the data-session operation `op`: in a span,
    /// timed, counted by outcome.
    ///
    /// Takes the future's constructor rather than the future: an operation's future is
    /// large (the whole load, save and retry state), and one taken by value would sit
    /// in this future twice (the argument, then what `.await` moves it into) and be
    /// copied between them on every call.
    pub(crate) async fn run<O: Classify, F: Future<Output = O>>(&self, op: Op, make: impl FnOnce() -> F) -> O {
        let start = Instant::now();
        // Without a subscriber that wants the span, no `Instrumented` layer: it costs a
        // move of the whole operation's future and a span enter/exit per poll. With
        // one, the instrumented future is boxed, so no span is held across the await of
        // the common path (this future stays the size of the operation's).
        let out = match self.span(op) {
            None => make().await,
            Some(span) => {
                let out = Box::pin(make().instrument(span.clone())).await;
                span.record("outcome", out.outcome().name());
                out
            }
        };
        self.finished(op, out.outcome(), start.elapsed());
        out
    }

    /// The span of operation `op`, if a subscriber wants it.
    fn span(&self, op: Op) -> Option<tracing::Span> {
        // No subscriber at debug level: skip the macro, whose disabled path still costs
        // a record for the `log` crate when `tracing`'s `log` feature is on.
        if !tracing::level_enabled!(tracing::Level::DEBUG) {
            return None;
        }
        let span = tracing::debug_span!(
            "bot_sessions.op",
            backend = self.backend,
            namespace = &*self.namespace,
            operation = op.name(),
            outcome = tracing::field::Empty,
            retries = tracing::field::Empty,
        );
        (!span.is_disabled()).then_some(span)
    }

    fn finished(&self, op: Op, outcome: Outcome, took: Duration) {
        let (o, c) = (op as usize, outcome as usize);
        let s = |v: &'static str| SharedString::const_str(v);
        self.operations[o][c]
            .get_or_init(|| {
                self.counter(names::OPERATIONS, &[("operation", s(op.name())), ("outcome", s(outcome.name()))])
            })
            .increment(1);
        self.latency[o]
            .get_or_init(|| self.histogram(names::OPERATION_SECONDS, &[("operation", s(op.name()))]))
            .record(took.as_secs_f64());
        if outcome == Outcome::Conflict {
            self.conflicts.get_or_init(|| self.counter(names::CONFLICTS, &[])).increment(1);
        }
    }

    /// A save met a conflict; `retries`: the re-runs so far, this one included, if the
    /// operation goes on.
    pub(crate) fn conflict(&self, retries: Option<u32>) {
        self.conflicts.get_or_init(|| self.counter(names::CONFLICTS, &[])).increment(1);
        if let Some(n) = retries {
            self.retries.get_or_init(|| self.counter(names::RETRIES, &[])).increment(1);
            tracing::Span::current().record("retries", n);
        }
    }

    /// Counts an ambiguous write by how its resolution went, and passes the result on.
    pub(crate) fn ambiguous(&self, resolved: Result<(), SessionError>) -> Result<(), SessionError> {
        let resolution = match &resolved {
            Ok(()) => "resolved",
            Err(e) if e.is_ambiguous() => "unknown",
            Err(_) => "error",
        };
        self.count_labelled(names::AMBIGUOUS, None, ("resolution", resolution));
        resolved
    }

    /// What a sweep saw: `live` sessions left, and the lag of each one it claimed.
    pub(crate) fn swept(&self, live: u64, lags: &[Duration]) {
        #[allow(clippy::cast_precision_loss)] // a count far below 2^52
        self.gauge(names::LIVE_SESSIONS).set(live as f64);
        if !lags.is_empty() {
            self.counter(names::EXPIRED, &[]).increment(lags.len() as u64);
            let lag = self.histogram(names::SWEEPER_LAG_SECONDS, &[]);
            for d in lags {
                lag.record(d.as_secs_f64());
            }
        }
    }
}

/// Interactive sessions.
#[cfg(feature = "interactive")]
impl Observer {
    /// A span for one interactive route; `kind` is recorded once known.
    pub(crate) fn route_span(&self) -> tracing::Span {
        // As for `span`: no subscriber at debug level, no macro.
        if !tracing::level_enabled!(tracing::Level::DEBUG) {
            return tracing::Span::none();
        }
        tracing::debug_span!(
            "bot_sessions.route",
            backend = self.backend,
            namespace = &*self.namespace,
            kind = tracing::field::Empty,
            outcome = tracing::field::Empty,
        )
    }

    /// Counts a finished route.
    pub(crate) fn routed(
        &self,
        span: &tracing::Span,
        kind: Option<(&Arc<str>, &KindRoutes)>,
        outcome: &'static str,
        took: Duration,
    ) {
        span.record("outcome", outcome);
        if let Some((name, _)) = kind {
            span.record("kind", &**name);
        }
        match kind {
            // The kind keeps the counter it uses most: no lookup for it.
            Some((name, routes)) if outcome == HANDLED => routes
                .handled
                .get_or_init(|| self.labelled_counter(names::ROUTES, Some(name), ("outcome", HANDLED)))
                .increment(1),
            _ => self.count_labelled(names::ROUTES, Some(kind.map_or(&self.no_kind, |k| k.0)), ("outcome", outcome)),
        }
        self.route_latency.get_or_init(|| self.histogram(names::ROUTE_SECONDS, &[])).record(took.as_secs_f64());
    }

    /// Counts an interactive start.
    pub(crate) fn started(&self, kind: &Arc<str>, outcome: &'static str) {
        self.count_labelled(names::STARTED, Some(kind), ("outcome", outcome));
    }

    /// Counts an interactive end.
    pub(crate) fn ended(&self, kind: &Arc<str>, reason: &'static str) {
        self.count_labelled(names::ENDED, Some(kind), ("reason", reason));
    }

    /// What an interactive expiry scan saw: `live` sessions, and the lag of each it
    /// ended.
    pub(crate) fn scanned(&self, live: u64, lags: &[Duration]) {
        #[allow(clippy::cast_precision_loss)]
        self.gauge(names::INTERACTIVE_LIVE_SESSIONS).set(live as f64);
        if !lags.is_empty() {
            let lag = self.histogram(names::INTERACTIVE_SWEEPER_LAG_SECONDS, &[]);
            for d in lags {
                lag.record(d.as_secs_f64());
            }
        }
    }
}
