//! What every clone of a [`Manager`](super::Manager) shares: the store, the codec, the
//! registry of kinds (type-erased), the in-process state, and the one path every
//! session operation takes (lock, load, hand to its kind).
//!
//! Imports flow one way: `manager` -> `engine` -> `core`; `core` knows kinds only
//! through [`ErasedKind`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;

use super::envelope::Header;
use super::handle::Release;
use super::local::Local;
pub(crate) use super::outcome::Routed;
use super::{CustomIdCodec, EndEvent, EndReason, HandleError, InteractiveError, SessionId};
use crate::session::RetryPolicy;
use crate::session::locks::KeyLocks;
use crate::session::sealer::Sealer;
use crate::session::typed::{buffer, recycle};
use crate::store::{Taken, TypedValue};
use crate::{Clock, Context, DynStore, Namespace, Precondition, Record, Scope, SessionKey, Timestamp, Write};

/// What a routed update brings a session.
#[derive(Debug)]
pub(crate) enum Input<'a> {
    /// A component update with its decoded custom id; `remembered`: its signed text is
    /// the one the manager's entry for the session remembers (so there is nothing new
    /// to remember after the click).
    Click { id: super::CustomId, remembered: bool },
    /// A text message the session awaits.
    Text(&'a str),
}

/// A session as a click loads it: the stored record and, when an in-process store kept
/// the session's live envelope typed beside its bytes, that envelope (then
/// `record.value` is empty: the envelope is what the bytes encode).
pub(crate) struct Loaded {
    pub(crate) record: Record,
    pub(crate) kept: Option<Box<Kept>>,
    /// When it was loaded.
    pub(crate) at: Timestamp,
}

impl Loaded {
    /// A record loaded at `at`, its value only encoded.
    pub(crate) fn encoded(record: Record, at: Timestamp) -> Self {
        Loaded { record, kept: None, at }
    }
}

/// A live session's envelope, kept typed by an in-process store (the memory store)
/// beside the bytes it encodes, as data sessions keep their values (see
/// `session/typed.rs`): the next click of the session in this process starts from it
/// instead of decoding. One type for every kind, so that a click can take it before it
/// knows the kind; `envelope` is the kind's `Envelope<String, K::State, K::Output>`.
pub(crate) struct Kept {
    /// The kind that wrote it.
    pub(crate) kind: Arc<str>,
    pub(crate) envelope: Box<dyn Any + Send + Sync>,
    /// The envelope's encoded parts besides its state and deadline, when the click
    /// that kept it made them: the next click copies them (see `frame.rs`).
    pub(crate) frame: Option<super::frame::Frame>,
}

/// The registered kinds by name.
pub(crate) type Kinds = HashMap<Arc<str>, Arc<dyn ErasedKind>>;

/// The schema version interactive sessions are written with.
const SCHEMA: u32 = 1;

/// The store namespace of interactive sessions unless configured otherwise.
pub const DEFAULT_NAMESPACE: &str = "interactive";

/// How many end events a slow subscriber may lag behind before it misses some.
pub(crate) const EVENT_CAPACITY: usize = 1024;

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) grace: Duration,
    pub(crate) linger: Duration,
    pub(crate) end_lease: Duration,
    pub(crate) watch: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) scan_page: usize,
    /// The largest stored session (its JSON, before sealing), as for data sessions.
    pub(crate) max_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grace: Duration::from_secs(24 * 3600),
            linger: Duration::from_secs(600),
            end_lease: Duration::from_secs(60),
            watch: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            scan_page: 256,
            max_size: crate::session::DEFAULT_MAX_SIZE,
        }
    }
}

/// What every clone of a [`Manager`] shares.
pub(crate) struct Core {
    pub(crate) store: DynStore,
    pub(crate) namespace: Namespace,
    /// Each thread's own copy of `namespace`, for the keys it builds.
    pub(crate) namespace_here: super::per_thread::PerThread<Namespace>,
    pub(crate) codec: CustomIdCodec,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) locks: KeyLocks,
    pub(crate) kinds: super::registry::Registry<Arc<dyn ErasedKind>>,
    pub(crate) local: Local,
    /// Identifies this manager in stored sessions (whose handle it holds).
    pub(crate) instance: u64,
    pub(crate) closed: AtomicBool,
    pub(crate) cfg: Config,
    pub(crate) events: broadcast::Sender<EndEvent>,
    /// Spans and metrics.
    pub(crate) obs: crate::observe::Observer,
    /// Seals stored sessions (encryption at rest), or does nothing.
    pub(crate) sealer: Sealer,
    /// Where sessions record that they await text (`<namespace>.text`); `None` when
    /// the namespace is too long for it.
    pub(crate) text_ns: Option<Namespace>,
    /// Each thread's own copy of `text_ns`, for the keys the text route looks up.
    pub(crate) text_ns_here: super::per_thread::PerThread<Namespace>,
    /// The store's notices, on which ends are announced to other processes.
    pub(crate) notices: Option<crate::store::notify::Notices>,
    /// Hears those notices for the handles waiting here.
    pub(crate) listener: super::listener::Listener,
}

impl Core {
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The store key of session `sid`. Its namespace is this thread's copy: a click
    /// clones and drops it, and cores sharing one copy would pass its reference count
    /// back and forth (a key built here and dropped on another thread is still right).
    pub(crate) fn key(&self, sid: SessionId) -> SessionKey {
        let namespace = self.namespace_here.get(0, || self.namespace.own_copy());
        SessionKey::new(namespace, Scope::Custom { id: sid.as_str().into(), user: None })
    }

    /// The record's store-level expiry for a session whose own deadline is `deadline`.
    pub(crate) fn keep_live(&self, deadline: Option<Timestamp>) -> Option<Timestamp> {
        deadline.map(|d| d.saturating_add(self.cfg.grace))
    }

    /// Loads a session's record, its value opened when sessions are sealed (so every
    /// reader past this point sees the plaintext envelope).
    pub(crate) async fn load(
        &self,
        sid: SessionId,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<Record>, InteractiveError> {
        // The memory store's synchronous side when it has one: no boxed future.
        let record = match self.store.in_process() {
            Some(local) => local.load_now(key, now),
            None => self.store.load(key, now).await,
        }
        .map_err(InteractiveError::store(sid))?;
        record.map(|r| self.opened(sid, key, r)).transpose()
    }

    /// Loads a session for a click: from an in-process store that keeps values typed
    /// (and sessions unsealed), its envelope as the last click here left it, if it
    /// kept one; else the record, as [`load`](Self::load).
    pub(crate) async fn load_kept(
        &self,
        sid: SessionId,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<Loaded>, InteractiveError> {
        let Some(local) = self.typed_store() else {
            return Ok(self.load(sid, key, now).await?.map(|r| Loaded::encoded(r, now)));
        };
        let taken = local.take_typed(key, now, TypeId::of::<Kept>(), SCHEMA).map_err(InteractiveError::store(sid))?;
        let record = match taken {
            Taken::Encoded(record) => record,
            Taken::Typed(record, typed) => match typed.downcast::<Kept>() {
                Ok(kept) => return Ok(Some(Loaded { record, kept: Some(kept), at: now })),
                // Only this module keeps a `Kept` here: never another type.
                Err(_) => local.load_now(key, now).map_err(InteractiveError::store(sid))?,
            },
        };
        Ok(record.map(|r| Loaded::encoded(r, now)))
    }

    /// The store's in-process side, when it may keep envelopes typed: never for sealed
    /// sessions (their plaintext stays out of the store).
    pub(crate) fn typed_store(&self) -> Option<&dyn crate::InProcess> {
        if self.sealer.is_on() {
            return None;
        }
        self.store.in_process()
    }

    /// `record` of `key` with its value opened (unchanged when encryption is off).
    pub(crate) fn opened(
        &self,
        sid: SessionId,
        key: &SessionKey,
        mut record: Record,
    ) -> Result<Record, InteractiveError> {
        if let std::borrow::Cow::Owned(plain) =
            self.sealer.open(key, &record.value).map_err(InteractiveError::sealed(sid))?
        {
            record.value = plain;
        }
        Ok(record)
    }

    /// Writes `value` as JSON; `Ok(None)` when the precondition failed. `owner` (the
    /// opener) indexes a created session for forget-user. A value over the size limit
    /// is [`InteractiveError::TooLarge`], before anything is sealed or sent.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write<T: Serialize + Sync>(
        &self,
        sid: SessionId,
        key: &SessionKey,
        value: &T,
        expires_at: Option<Timestamp>,
        precondition: Precondition,
        owner: Option<i64>,
        now: Timestamp,
    ) -> Result<Option<u64>, InteractiveError> {
        let bytes = self.encode(sid, value)?;
        self.put(sid, key, bytes, expires_at, precondition, owner, now, None).await
    }

    /// `value` as stored (JSON, before sealing), within the size limit: what
    /// [`put`](Self::put) takes.
    pub(crate) fn encode<T: Serialize>(&self, sid: SessionId, value: &T) -> Result<Vec<u8>, InteractiveError> {
        self.encode_with(sid, |out| serde_json::to_writer(out, value))
    }

    /// [`encode`](Self::encode) by `write`, which appends the JSON to its buffer.
    pub(crate) fn encode_with(
        &self,
        sid: SessionId,
        write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
    ) -> Result<Vec<u8>, InteractiveError> {
        let mut bytes = buffer();
        if let Err(source) = write(&mut bytes) {
            return Err(InteractiveError::Codec { session: sid, op: "encode", source });
        }
        if bytes.len() > self.cfg.max_size {
            return Err(InteractiveError::TooLarge { session: sid, size: bytes.len(), limit: self.cfg.max_size });
        }
        Ok(bytes)
    }

    /// Writes `bytes` (from [`encode`](Self::encode)) as [`write`](Self::write) does;
    /// a store that keeps values typed keeps `kept` (what `bytes` encode) beside them
    /// for the session's next click here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn put(
        &self,
        sid: SessionId,
        key: &SessionKey,
        bytes: Vec<u8>,
        expires_at: Option<Timestamp>,
        precondition: Precondition,
        owner: Option<i64>,
        now: Timestamp,
        kept: Option<Box<Kept>>,
    ) -> Result<Option<u64>, InteractiveError> {
        if let Some(local) = self.typed_store() {
            return Self::put_now(local, sid, key, bytes, expires_at, precondition, owner, now, kept);
        }
        let bytes = self.sealer.seal(key, bytes).map_err(InteractiveError::sealed(sid))?;
        let write = Write::new(&bytes, SCHEMA, expires_at).with_owner(owner);
        let written = match self.store.in_process() {
            Some(local) => local.write_now(key, write, precondition, now),
            None => self.store.write(key, write, precondition, now).await,
        };
        recycle(bytes);
        written_or_conflict(sid, written)
    }

    /// [`put`](Self::put) on the store's in-process side `local` (from
    /// [`typed_store`](Self::typed_store)), without waiting.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn put_now(
        local: &dyn crate::InProcess,
        sid: SessionId,
        key: &SessionKey,
        bytes: Vec<u8>,
        expires_at: Option<Timestamp>,
        precondition: Precondition,
        owner: Option<i64>,
        now: Timestamp,
        kept: Option<Box<Kept>>,
    ) -> Result<Option<u64>, InteractiveError> {
        let write = Write::new(&bytes, SCHEMA, expires_at).with_owner(owner);
        let written = match kept {
            Some(kept) => {
                let typed: TypedValue = kept;
                local.write_typed(key, write, precondition, now, Some(typed), false).map(|v| v.unwrap_or(write.version))
            }
            None => local.write_now(key, write, precondition, now),
        };
        recycle(bytes);
        written_or_conflict(sid, written)
    }

    /// Records a finished route: its outcome on `span`, the route counter of its kind
    /// (`kind`, once the session's kind was known) and its latency since `start`.
    pub(crate) fn route_done(
        &self,
        span: &tracing::Span,
        kind: Option<&dyn ErasedKind>,
        routed: &Result<Routed, InteractiveError>,
        start: quanta::Instant,
    ) {
        let outcome = routed.as_ref().map_or("error", |r| r.outcome.name());
        self.obs.routed(span, kind.map(|k| (k.name(), k.routes())), outcome, start.elapsed());
    }

    /// The registered kinds, as of now, for a read that does not await.
    pub(crate) fn kinds(&self) -> arc_swap::Guard<Arc<Kinds>> {
        self.kinds.now()
    }

    /// The kind of the session in `record`, or in `kept` (the envelope kept typed),
    /// among `kinds` (the registry's copy the route holds, see [`Registry::held`]).
    /// Borrowed, not cloned: a clone would write the engine's reference count, a cache
    /// line every core's clicks would then pass back and forth.
    ///
    /// [`Registry::held`]: super::registry::Registry::held
    pub(crate) fn engine_for<'k>(
        kinds: &'k Kinds,
        sid: SessionId,
        kept: Option<&Kept>,
        record: &Record,
    ) -> Result<&'k dyn ErasedKind, InteractiveError> {
        // One kind registered (the common case): skip reading the header; the engine
        // checks the stored kind name when it decodes the record.
        if kinds.len() == 1
            && let Some(only) = kinds.values().next()
        {
            return Ok(&**only);
        }
        let found = match kept {
            Some(kept) => kinds.get(&kept.kind).ok_or_else(|| kept.kind.to_string()),
            None => {
                let header: Header<'_> = serde_json::from_slice(&record.value)
                    .map_err(|source| InteractiveError::Codec { session: sid, op: "decode", source })?;
                kinds.get(&*header.kind).ok_or_else(|| header.kind.into_owned())
            }
        };
        found.map(|e| &**e).map_err(|kind| InteractiveError::UnknownKind { session: sid, kind })
    }

    /// Locks, loads and tends one session.
    pub(crate) async fn tend(
        &self,
        sid: SessionId,
        now: Timestamp,
        force: Option<EndReason>,
    ) -> Result<Tended, InteractiveError> {
        let key = self.key(sid);
        let _lock = self.locks.lock(key.as_str()).await;
        let tended = match self.load(sid, &key, now).await? {
            Some(record) => {
                let kinds = self.kinds.held();
                let engine = Self::engine_for(&kinds, sid, None, &record)?;
                engine.tend(self, sid, &key, record, now, force).await?
            }
            None => Tended::Gone,
        };
        if tended == Tended::Gone {
            self.local.deliver(sid, Err(HandleError::Vanished { session: sid }));
        }
        Ok(tended)
    }

    /// Records the message that carries a session's components (sent after `start`
    /// returned, so only the transport knows its id): patches the stored origin under
    /// the session's lock with compare-and-set. `Ok(false)`: no such session.
    pub(crate) async fn set_message(&self, sid: SessionId, message_id: i64) -> Result<bool, InteractiveError> {
        self.set_origin(sid, "message", message_id.into()).await
    }

    /// Sets one field of a stored session's origin (compare-and-set, retried).
    pub(crate) async fn set_origin(
        &self,
        sid: SessionId,
        field: &str,
        field_value: serde_json::Value,
    ) -> Result<bool, InteractiveError> {
        let key = self.key(sid);
        let _lock = self.locks.lock(key.as_str()).await;
        let codec_err = |source| InteractiveError::Codec { session: sid, op: "decode", source };
        for attempt in 1..=self.cfg.retry.max_attempts {
            let now = self.now();
            let Some(record) = self.load(sid, &key, now).await? else { return Ok(false) };
            let mut value: serde_json::Value = serde_json::from_slice(&record.value).map_err(codec_err)?;
            let Some(origin) = value.get_mut("origin").and_then(serde_json::Value::as_object_mut) else {
                return Err(codec_err(<serde_json::Error as serde::de::Error>::custom("a session without origin")));
            };
            origin.insert(field.into(), field_value.clone());
            let pre = Precondition::Version(record.version);
            if self.write(sid, &key, &value, record.expires_at, pre, None, now).await?.is_some() {
                return Ok(true);
            }
            self.cfg.retry.pause_after_conflict(attempt).await;
        }
        Err(InteractiveError::Contention { session: sid, attempts: self.cfg.retry.max_attempts })
    }

    /// Tells every subscriber that a session ended (no subscriber is fine).
    pub(crate) fn publish(&self, event: EndEvent) {
        self.obs.ended(&event.kind, event.reason.name());
        self.notify_end(event.session);
        let _ = self.events.send(event);
    }
}

/// A write's version, `None` for a failed precondition.
fn written_or_conflict(
    sid: SessionId,
    written: Result<u64, crate::StoreError>,
) -> Result<Option<u64>, InteractiveError> {
    match written {
        Ok(version) => Ok(Some(version)),
        Err(e) if e.is_conflict() => Ok(None),
        Err(e) => Err(InteractiveError::store(sid)(e)),
    }
}

/// What tending a session (expiry pass, shutdown, explicit end) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tended {
    /// Live and not due: filed again.
    NotDue,
    /// Ended here, `end` ran here.
    Ended,
    /// Found a claim whose claimer died; marked it ended without running `end`.
    Abandoned,
    /// Already ended elsewhere; a waiting handle here got the end.
    Delivered,
    /// Already ended elsewhere, nobody here waited; forgotten.
    Forgotten,
    /// Another manager is ending it right now; filed again to collect the end.
    Claimed,
    /// The record is gone.
    Gone,
}

/// A kind with its types erased.
#[async_trait::async_trait]
pub(crate) trait ErasedKind: Send + Sync + 'static {
    /// Applies a routed click or text message to the session `loaded`.
    async fn apply(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        loaded: Loaded,
        ctx: &Context,
        input: Input<'_>,
    ) -> Result<Routed, InteractiveError>;

    /// Whether a session of this kind that awaits text takes `text` (commands may
    /// pass through).
    fn takes(&self, text: &str) -> bool;

    /// The kind's registered name.
    fn name(&self) -> &Arc<str>;

    /// The kind's own route metric handles.
    fn routes(&self) -> &crate::observe::KindRoutes;

    /// Expires the session if due, collects an end that happened elsewhere, or (with
    /// `force`) ends it now for that reason.
    async fn tend(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        record: Record,
        now: Timestamp,
        force: Option<EndReason>,
    ) -> Result<Tended, InteractiveError>;
}

impl Release for Core {
    fn release(&self, session: SessionId) {
        self.local.release_waiter(session);
    }
}
