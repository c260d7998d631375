//! Values kept typed by an in-process store (the memory store): an update loads the
//! value the last update of this session type left, without decoding the bytes, and
//! hands its result back with the write (see [`InProcess::take_typed`]).
//!
//! Only where nothing else has to see the value in between: the store is in process,
//! values are not sealed (encryption keeps its plaintext out of the store), and the
//! record's schema is the current one. Loads for a read (`get`, a lazy session) decode
//! the bytes as before, and leave what was kept in place.
//!
//! The value handed out is the one the last update left, not a decode of its bytes:
//! a field the codec skips (`#[serde(skip)]`) keeps its value from one update to the
//! next here, as it does in teloxide's `InMemStorage`, where a store of bytes resets it.

use std::any::TypeId;
use std::cell::Cell;
use std::ops::ControlFlow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::attempts::{Attempts, Then};
use super::load::Loaded;
use super::save::Plan;
use super::{Base, SessionError, Sessions, Ttl, Via};
use crate::observe::Handled;
use crate::store::{Taken, TypedValue};
use crate::{InProcess, Precondition, SessionKey, StoreError, Timestamp, Write};

/// What a session type keeps in the store: the value (always `Some` there; an update
/// works on it in place) and its own TTL (which the bytes carry in their header).
struct Kept<T> {
    value: Option<T>,
    own: Option<Ttl>,
}

/// A value loaded for an update, boxed as the store keeps it, and what the load found.
type Owned<T> = (Box<Kept<T>>, Base);

/// What a fast update leaves to the general way, which awaits.
enum Rest<R> {
    /// Everything: the handler has not run.
    Start,
    /// Running the handler again after a conflict, with the attempts so far.
    Resume(Attempts, Then),
    /// Deleting the record (the handler reset its session), then returning `R`.
    Delete(Box<Base>, R),
}

/// `value` with its own TTL `own`, as the store keeps it.
pub(super) fn keep<T: Send + Sync + 'static>(value: Option<T>, own: Option<Ttl>) -> TypedValue {
    Box::new(Kept { value, own })
}

thread_local! {
    /// The buffer the fast path encodes into, reused from one update to the next.
    static BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A buffer kept for reuse only up to this capacity.
const KEPT_BUFFER: usize = 16 * 1024;

/// This thread's encoding buffer (empty), for a value written to an in-process store;
/// hand it back with [`recycle`] once the store has copied it. Interactive sessions
/// encode their envelopes into it too.
pub(crate) fn buffer() -> Vec<u8> {
    BUFFER.take()
}

/// Keeps `buffer` for this thread's next [`buffer`] (unless it grew large).
pub(crate) fn recycle(mut buffer: Vec<u8>) {
    if buffer.capacity() <= KEPT_BUFFER {
        buffer.clear();
        BUFFER.set(buffer);
    }
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The store's in-process side, when it may keep this type's values typed.
    pub(super) fn typed_store(&self) -> Option<&dyn InProcess> {
        if self.inner.sealer.is_on() {
            return None;
        }
        self.inner.store.in_process()
    }

    /// `update` on a store that may keep values typed: load, change and save in one
    /// synchronous step when the key's lock is free and nothing needs the store's
    /// asynchronous side. The rest (a wait for the lock, an expired or undecodable
    /// record, a delete, a conflict) goes the general way, boxed, so that the common
    /// update's future stays small; so does every update on other stores.
    pub(super) async fn update_fast<R, E, F>(&self, key: &SessionKey, mut f: F) -> Handled<R, E>
    where
        F: FnMut(&mut Option<T>, &mut Option<Ttl>) -> Result<R, E> + Send,
    {
        // The store first: the lock is tried only where the fast path can use it (a lock
        // taken and not used would be held while the general path waits for it).
        if let Some(pipe) = self.inner.store.pipeline() {
            return Box::pin(self.update_pipelined(key, f, pipe)).await;
        }
        let fast = self.typed_store().and_then(|local| Some((local, self.inner.locks.try_lock(key.as_str())?)));
        let Some((local, lock)) = fast else {
            return Box::pin(self.update_attempts(key, f, None, None)).await;
        };
        let now = self.inner.clock.now();
        // Every await below comes after the synchronous step (`update_sync`) is over:
        // what that step loaded and borrowed (the base, the record) is not kept in this
        // future, which every update moves (680 bytes with it, 352 without).
        let rest = match self.update_sync(local, key, &mut f, now) {
            ControlFlow::Break(done) => return done,
            ControlFlow::Continue(rest) => rest,
        };
        let resumed = match rest {
            Rest::Start => None,
            Rest::Resume(attempts, then) => Some((attempts, then)),
            Rest::Delete(base, out) => match Box::pin(async move { self.delete_base(key, &base, now).await }).await {
                Ok(()) => return Handled(Ok(Ok(out))),
                Err(e) => match self.after_conflict(key, e) {
                    Ok(resumed) => Some(resumed),
                    Err(e) => return Handled(Err(e)),
                },
            },
        };
        Box::pin(self.update_attempts(key, f, Some(lock), resumed)).await
    }

    /// The synchronous step of [`update_fast`](Self::update_fast): load, run `f`, save.
    /// `Continue`: what is left to do, which awaits.
    fn update_sync<R, E, F>(
        &self,
        local: &dyn InProcess,
        key: &SessionKey,
        f: &mut F,
        now: Timestamp,
    ) -> ControlFlow<Handled<R, E>, Rest<R>>
    where
        F: FnMut(&mut Option<T>, &mut Option<Ttl>) -> Result<R, E> + Send,
    {
        let (mut kept, base) = match self.load_sync(local, key, now) {
            Ok(Some(loaded)) => loaded,
            // A step that needs the store (claiming an expiry, quarantining): before the
            // handler ran, so the general way starts afresh.
            Ok(None) => return ControlFlow::Continue(Rest::Start),
            Err(e) => return ControlFlow::Break(Handled(Err(e))),
        };
        let mut ttl = base.own_ttl();
        let out = match f(&mut kept.value, &mut ttl) {
            Ok(out) => out,
            Err(e) => return ControlFlow::Break(Handled(Ok(Err(e)))),
        };
        match self.save_sync(local, key, kept, ttl, &base, now) {
            Ok(true) => ControlFlow::Break(Handled(Ok(Ok(out)))),
            // Rare (a handler that resets its session): boxed, so that the base is not
            // kept in the update's future.
            Ok(false) => ControlFlow::Continue(Rest::Delete(Box::new(base), out)),
            Err(e) => match self.after_conflict(key, e) {
                Ok((attempts, then)) => ControlFlow::Continue(Rest::Resume(attempts, then)),
                Err(e) => ControlFlow::Break(Handled(Err(e))),
            },
        }
    }

    /// After the fast path's save or delete failed with `e`: a conflict (another
    /// `Sessions` on this namespace won) runs the update again on the winner's value, as
    /// the general way does; any other error is the update's.
    fn after_conflict(&self, key: &SessionKey, e: SessionError) -> Result<(Attempts, Then), SessionError> {
        if !matches!(e, SessionError::Store(StoreError::Conflict { .. })) {
            return Err(e);
        }
        let mut attempts = Attempts::new(&self.inner.retry);
        // Never from the near cache: the value was kept typed in process.
        let then = attempts.after(&self.inner.retry, &self.inner.obs, key, e, false)?;
        Ok((attempts, then))
    }

    /// Loads `key` from the in-process store `local` without waiting: the value kept
    /// typed if there is one, else the decoded bytes. `Ok(None)`: the record needs a
    /// step of the store's asynchronous side first (see [`Loaded`]).
    fn load_sync(
        &self,
        local: &dyn InProcess,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<Owned<T>>, SessionError> {
        let current = self.inner.migrations.current();
        let record = match local.take_typed(key, now, TypeId::of::<Kept<T>>(), current)? {
            Taken::Encoded(record) => record,
            Taken::Typed(record, typed) => {
                if let Ok(kept) = typed.downcast::<Kept<T>>()
                    && kept.value.is_some()
                {
                    let meta = self.meta_of(&record, kept.own);
                    if !now.is_expired(meta.expires_at) {
                        let base = Base {
                            version: Some(record.version),
                            created_at: Some(record.created_at),
                            stored: None,
                            initial: None,
                            must_write: kept.own.unwrap_or(self.inner.ttl).refreshes_on_read(),
                            meta: Some(meta),
                            from_cache: false,
                            typed: true,
                            queued: None,
                        };
                        return Ok(Some((kept, base)));
                    }
                }
                // Over for this session type (or, impossibly, another type): the stored
                // bytes decide, as for any load.
                local.load_now(key, now)?
            }
        };
        match self.decode_record(key, record, None, now, false)? {
            Loaded::Ready(value, base) => Ok(Some((Box::new(Kept { value: Some(value), own: base.own_ttl() }), base))),
            Loaded::Expired(..) | Loaded::Quarantine(..) => Ok(None),
        }
    }

    /// [`load`](Self::load) for an update, which saves with
    /// [`save_owned`](Self::save_owned): takes the value the store kept typed, if any.
    pub(super) async fn load_owned(
        &self,
        key: &SessionKey,
        now: Timestamp,
        via: Via,
    ) -> Result<(T, Base), SessionError> {
        if let Some(local) = self.typed_store()
            && let Some((kept, base)) = self.load_sync(local, key, now)?
            && let Some(value) = kept.value
        {
            return Ok((value, base));
        }
        self.load(key, now, via).await
    }

    /// [`save`](Self::save) of a value the caller is done with: an in-process store
    /// may keep it typed for the next update (see [`InProcess::write_typed`](crate::InProcess::write_typed)).
    pub(super) async fn save_owned(
        &self,
        key: &SessionKey,
        value: Option<T>,
        own: Option<Ttl>,
        base: &Base,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        if self.typed_store().is_none() {
            return self.save(key, value.as_ref(), own, base, now).await;
        }
        let plan = self.plan(key, value.as_ref(), own, base, now, Vec::new())?;
        // Kept typed only when written: a delete or an unchanged value keeps nothing new.
        let typed = match plan {
            Plan::Write { .. } => value.map(|value| keep(Some(value), own)),
            Plan::Delete | Plan::Unchanged(_) => None,
        };
        self.carry_out(key, plan, base, now, typed).await
    }

    /// Saves what `kept` holds (`None`: delete) with the own TTL `own` to the
    /// in-process store `local` without waiting, and leaves it there typed.
    /// `Ok(false)`: the save is a delete, left to the caller.
    fn save_sync(
        &self,
        local: &dyn InProcess,
        key: &SessionKey,
        mut kept: Box<Kept<T>>,
        own: Option<Ttl>,
        base: &Base,
        now: Timestamp,
    ) -> Result<bool, SessionError> {
        let schema = self.inner.migrations.current();
        kept.own = own;
        match self.plan(key, kept.value.as_ref(), own, base, now, buffer())? {
            Plan::Write { bytes, expires_at, precondition } => {
                let write = Write::new(&bytes, schema, expires_at);
                let written = self.write_typed(key, write, precondition, base, Some(kept), now);
                recycle(bytes);
                written.map(|()| true)
            }
            Plan::Unchanged(bytes) => {
                // Nothing to write (decoded from these very bytes); keep the value typed
                // for the next update, if the record is still the one loaded.
                if let Some(version) = base.version {
                    let write = Write::new(&bytes, schema, None);
                    let pre = Precondition::Version(version);
                    let kept = local.write_typed(key, write, pre, now, Some(kept), true);
                    recycle(bytes);
                    match kept {
                        Ok(_) | Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(true)
            }
            Plan::Delete => Ok(false),
        }
    }
}
