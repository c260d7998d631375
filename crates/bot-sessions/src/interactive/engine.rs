//! The lifecycle of one session kind: typed, behind a type-erased trait so that the
//! manager can hold kinds of every type in one registry.
//!
//! Every function here runs with the session's in-process key lock held by the caller,
//! and writes with compare-and-set on the version it loaded: a conflict means another
//! process wrote the session meanwhile, and the step is redone on a fresh load.

use std::sync::Arc;

use super::envelope::{Envelope, Phase};
use super::manager::Core;
use super::{
    CustomId, EndCx, EndReason, Ended, Filter, HandleError, Interactive, InteractiveError, Origin, RouteOutcome,
    SessionId, StartCx, Step, UpdateCx,
};
use crate::{Context, Precondition, Record, SessionKey, Timestamp, Ttl};

type Stored<K> = Envelope<String, <K as Interactive>::State, <K as Interactive>::Output>;

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

/// One registered kind, typed.
pub(crate) struct Engine<K> {
    pub(crate) name: Arc<str>,
    pub(crate) kind: K,
    pub(crate) ttl: Ttl,
    pub(crate) start_filter: Filter,
    pub(crate) update_filter: Filter,
}

/// A kind with its types erased.
#[async_trait::async_trait]
pub(crate) trait ErasedKind: Send + Sync + 'static {
    /// Applies a routed click to the session in `record`.
    async fn click(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        record: Record,
        ctx: &Context,
        id: CustomId,
    ) -> Result<RouteOutcome, InteractiveError>;

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

/// Decodes a stored session, which must be of the kind `name`.
fn decode<K: Interactive>(name: &str, sid: SessionId, record: &Record) -> Result<Stored<K>, InteractiveError> {
    let stored: Stored<K> = serde_json::from_slice(&record.value).map_err(|source| InteractiveError::Codec {
        session: sid,
        op: "decode",
        source,
    })?;
    if stored.kind != name {
        return Err(InteractiveError::UnknownKind { session: sid, kind: stored.kind });
    }
    Ok(stored)
}

fn stateless(sid: SessionId) -> InteractiveError {
    let source = <serde_json::Error as serde::de::Error>::custom("a live session without state");
    InteractiveError::Codec { session: sid, op: "decode", source }
}

impl<K: Interactive> Engine<K> {
    pub(crate) fn new(name: Arc<str>, kind: K) -> Self {
        let (ttl, start_filter, update_filter) = (kind.ttl(), kind.start_filter(), kind.update_filter());
        Engine { name, kind, ttl, start_filter, update_filter }
    }

    /// The deadline of a session started at `now`.
    pub(crate) fn first_deadline(&self, now: Timestamp) -> Option<Timestamp> {
        self.ttl.expires_at(now, now)
    }

    /// Runs the kind's `start` and stores the session (the caller holds the lock).
    pub(crate) async fn start(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        ctx: &Context,
        args: K::Args,
    ) -> Result<Option<Timestamp>, InteractiveError> {
        let now = core.now();
        let mut origin = Origin::of(ctx, now);
        let state = {
            let mut cx = StartCx { ctx, session: sid, codec: &core.codec, origin: &mut origin, now };
            self.kind.start(&mut cx, args).await.map_err(|source| InteractiveError::Session {
                session: sid,
                kind: self.name.clone(),
                stage: "start",
                source,
            })?
        };
        let now = core.now();
        let deadline = self.first_deadline(now);
        let owner = origin.user;
        let env = Envelope::<_, _, &K::Output>::live(&self.name, &state, deadline, origin, Some(core.instance));
        match core.write(sid, key, &env, core.keep_live(deadline), Precondition::Absent, owner, now).await? {
            Some(_) => Ok(deadline),
            // 96 random bits collided with a live session: refuse rather than overwrite.
            None => Err(InteractiveError::Store {
                session: Some(sid),
                source: crate::StoreError::Conflict { key: key.to_string() },
            }),
        }
    }

    /// Claims the end of a live session (compare-and-set to `ending`), runs `end`, and
    /// marks it ended. `Ok(false)`: the claim lost to another write; nothing ran.
    #[allow(clippy::too_many_arguments)]
    async fn end_live(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        version: u64,
        state: K::State,
        origin: Origin,
        waiter: Option<u64>,
        reason: EndReason,
        preset: Option<K::Output>,
        now: Timestamp,
    ) -> Result<bool, InteractiveError> {
        let lease = now.saturating_add(core.cfg.end_lease);
        let claim =
            Envelope::<_, &K::State, _>::ending(&self.name, reason, preset.as_ref(), lease, origin.clone(), waiter);
        let expires = core.keep_live(Some(lease));
        let Some(claimed) = core.write(sid, key, &claim, expires, Precondition::Version(version), None, now).await? else {
            return Ok(false);
        };
        let cx = EndCx { session: sid, reason, origin: &origin, codec: &core.codec, now };
        let returned = match self.kind.end(&cx, state).await {
            Ok(result) => result,
            Err(error) => {
                tracing::warn!(session = %sid, kind = %self.name, %error, "interactive session's `end` failed; ending it anyway");
                None
            }
        };
        let result = preset.or(returned);
        self.finalize(core, sid, key, claimed, origin, waiter, reason, result, core.now()).await?;
        Ok(true)
    }

    /// Marks a claimed session ended (kept for the linger period) and hands a handle
    /// waiting here the end.
    #[allow(clippy::too_many_arguments)]
    async fn finalize(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        version: u64,
        origin: Origin,
        waiter: Option<u64>,
        reason: EndReason,
        result: Option<K::Output>,
        now: Timestamp,
    ) -> Result<(), InteractiveError> {
        let done = Envelope::<_, &K::State, _>::ended(&self.name, reason, result.as_ref(), origin, waiter);
        let expires = Some(now.saturating_add(core.cfg.linger));
        // A conflict here means our lease ran out and another manager already marked
        // the session ended; the end still happened here, so deliver it all the same.
        let written = core.write(sid, key, &done, expires, Precondition::Version(version), None, now).await;
        self.hand_over(core, sid, waiter, reason, result);
        written.map(|_| ())
    }

    /// Gives a handle waiting here the end, or forgets the session.
    fn hand_over(
        &self,
        core: &Core,
        sid: SessionId,
        waiter: Option<u64>,
        reason: EndReason,
        result: Option<K::Output>,
    ) {
        if waiter == Some(core.instance) {
            core.local.deliver(sid, Ok(Box::new(Ended { reason, result })));
        } else {
            core.local.deliver(sid, Err(HandleError::Lost { session: sid }));
        }
    }

    /// The deadline after an update that asked for a refresh (idle TTLs only).
    fn refreshed(&self, deadline: Option<Timestamp>, opened: Timestamp, now: Timestamp) -> Option<Timestamp> {
        match self.ttl {
            Ttl::Idle { .. } => self.ttl.expires_at(opened, now),
            _ => deadline,
        }
    }
}

#[async_trait::async_trait]
impl<K: Interactive> ErasedKind for Engine<K> {
    async fn click(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        mut record: Record,
        ctx: &Context,
        id: CustomId,
    ) -> Result<RouteOutcome, InteractiveError> {
        let mut attempt = 1;
        loop {
            let now = core.now();
            let Envelope { phase, reason, state, deadline, mut origin, waiter, .. } =
                decode::<K>(&self.name, sid, &record)?;
            if phase != Phase::Live {
                return Ok(RouteOutcome::Ended { session: sid, reason: reason.unwrap_or(EndReason::Expired) });
            }
            let mut state = state.ok_or_else(|| stateless(sid))?;
            if now.is_expired(deadline) {
                let v = record.version;
                if self.end_live(core, sid, key, v, state, origin, waiter, EndReason::Expired, None, now).await? {
                    return Ok(RouteOutcome::Expired { session: sid });
                }
            } else {
                if let Err(refusal) = self.update_filter.check(ctx, &origin) {
                    return Ok(RouteOutcome::Refused { session: sid, filter: refusal.filter });
                }
                if origin.message.is_none() {
                    origin.message = ctx.message_id;
                }
                let step = {
                    let mut cx = UpdateCx { ctx, clicked: &id, codec: &core.codec, origin: &mut origin, now };
                    self.kind.update(&mut cx, &mut state).await.map_err(|source| InteractiveError::Session {
                        session: sid,
                        kind: self.name.clone(),
                        stage: "update",
                        source,
                    })?
                };
                match step {
                    Step::Continue { refresh } => {
                        let deadline = if refresh { self.refreshed(deadline, origin.at, now) } else { deadline };
                        let env = Envelope::<_, _, &K::Output>::live(&self.name, &state, deadline, origin, waiter);
                        let expires = core.keep_live(deadline);
                        let pre = Precondition::Version(record.version);
                        if core.write(sid, key, &env, expires, pre, None, now).await?.is_some() {
                            core.local.adopt(sid, deadline);
                            return Ok(RouteOutcome::Handled { session: sid, ended: None });
                        }
                    }
                    Step::Finish(result) => {
                        let reason = EndReason::Finished;
                        let v = record.version;
                        if self.end_live(core, sid, key, v, state, origin, waiter, reason, Some(result), now).await? {
                            return Ok(RouteOutcome::Handled { session: sid, ended: Some(reason) });
                        }
                    }
                }
            }
            // Another process wrote the session between our load and our save.
            if attempt >= core.cfg.retry.max_attempts {
                return Err(InteractiveError::Contention { session: sid, attempts: attempt });
            }
            tokio::time::sleep(core.cfg.retry.delay(attempt)).await;
            attempt += 1;
            record = match core.load(sid, key, core.now()).await? {
                Some(r) => r,
                None => return Ok(RouteOutcome::Unknown { session: sid }),
            };
        }
    }

    async fn tend(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        mut record: Record,
        now: Timestamp,
        force: Option<EndReason>,
    ) -> Result<Tended, InteractiveError> {
        let mut attempt = 1;
        loop {
            let Envelope { phase, reason, state, result, deadline, lease, origin, waiter, .. } =
                decode::<K>(&self.name, sid, &record)?;
            match phase {
                Phase::Live => {
                    let state = state.ok_or_else(|| stateless(sid))?;
                    let reason = match force {
                        Some(reason) => reason,
                        None if now.is_expired(deadline) => EndReason::Expired,
                        None => {
                            core.local.refile(sid, deadline, now, core.cfg.watch);
                            return Ok(Tended::NotDue);
                        }
                    };
                    let v = record.version;
                    if self.end_live(core, sid, key, v, state, origin, waiter, reason, None, now).await? {
                        return Ok(Tended::Ended);
                    }
                }
                Phase::Ending if now.is_expired(lease) => {
                    // The claimer died inside `end`: `end` runs at most once, so only
                    // record the end it claimed.
                    let reason = reason.unwrap_or(EndReason::Expired);
                    self.finalize(core, sid, key, record.version, origin, waiter, reason, result, now).await?;
                    return Ok(Tended::Abandoned);
                }
                Phase::Ending => {
                    if force.is_some() {
                        // Shutting down: hand over what the claimer recorded so far.
                        self.hand_over(core, sid, waiter, reason.unwrap_or(EndReason::Expired), result);
                        return Ok(Tended::Delivered);
                    }
                    core.local.refile(sid, lease, now, core.cfg.watch);
                    return Ok(Tended::Claimed);
                }
                Phase::Ended => {
                    let mine = waiter == Some(core.instance);
                    self.hand_over(core, sid, waiter, reason.unwrap_or(EndReason::Expired), result);
                    return Ok(if mine { Tended::Delivered } else { Tended::Forgotten });
                }
            }
            if attempt >= core.cfg.retry.max_attempts {
                return Err(InteractiveError::Contention { session: sid, attempts: attempt });
            }
            tokio::time::sleep(core.cfg.retry.delay(attempt)).await;
            attempt += 1;
            record = match core.load(sid, key, core.now()).await? {
                Some(r) => r,
                None => return Ok(Tended::Gone),
            };
        }
    }
}
