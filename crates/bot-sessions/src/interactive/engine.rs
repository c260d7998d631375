//! The lifecycle of one session kind: typed, behind a type-erased trait so that the
//! manager can hold kinds of every type in one registry.
//!
//! Every function here runs with the session's in-process key lock held by the caller,
//! and writes with compare-and-set on the version it loaded: a conflict means another
//! process wrote the session meanwhile, and the step is redone on a fresh load.

use std::sync::Arc;

use super::core::{Core, ErasedKind, Input, Kept, Loaded, Routed, Tended};
use super::envelope::{Envelope, Phase, TextWait, TtlOverride};
use super::frame::Frame;
use super::reply::Reply;
use super::{
    Commands, CustomId, EndCx, EndEvent, EndReason, Ended, Filter, HandleError, Interactive, InteractiveError, Origin,
    RouteOutcome, SessionId, StartCx, Step, UpdateCx,
};
use crate::{Context, Precondition, Record, SessionKey, Timestamp, Ttl};

type Stored<K> = Envelope<String, <K as Interactive>::State, <K as Interactive>::Output>;

/// One registered kind, typed.
pub(crate) struct Engine<K> {
    pub(crate) name: Arc<str>,
    pub(crate) kind: K,
    pub(crate) ttl: Ttl,
    pub(crate) start_filter: Filter,
    pub(crate) update_filter: Filter,
    pub(crate) commands: Commands,
    /// Filters of single components, in place of `update_filter` for their clicks.
    pub(crate) component_filters: std::collections::HashMap<String, Filter>,
    pub(crate) limit: Option<super::Limit>,
    pub(crate) routes: crate::observe::KindRoutes,
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

/// Whether a text message comes from the session's opener, where it was opened.
fn opener_there(ctx: &Context, origin: &Origin) -> bool {
    ctx.user_id.is_some() && ctx.user_id == origin.user && ctx.chat_id == origin.chat && ctx.topic_id == origin.topic
}

/// Whether a session that takes text until `deadline` outlives its awaiting record,
/// kept until `until` (the deadline when it was written, plus the grace period), which
/// then has to be written again.
fn outlives(deadline: Option<Timestamp>, until: Option<Timestamp>) -> bool {
    match (deadline, until) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(e), Some(u)) => e > u,
    }
}

fn stateless(sid: SessionId) -> InteractiveError {
    let source = <serde_json::Error as serde::de::Error>::custom("a live session without state");
    InteractiveError::Codec { session: sid, op: "decode", source }
}

impl<K: Interactive> Engine<K> {
    /// The envelope `kept` holds, if this kind kept it; `kept` comes back to be reused.
    fn unkept(&self, mut kept: Box<Kept>) -> (Box<Kept>, Option<Box<Stored<K>>>) {
        if !Arc::ptr_eq(&kept.kind, &self.name) && kept.kind != self.name {
            return (kept, None);
        }
        let envelope = std::mem::replace(&mut kept.envelope, Box::new(()));
        match envelope.downcast::<Stored<K>>() {
            Ok(env) => (kept, Some(env)),
            Err(other) => {
                kept.envelope = other;
                (kept, None)
            }
        }
    }

    /// `env` to keep typed, in `holder` when there is one; `made`, a frame the click
    /// made, replaces the holder's (which, when the click made none, it used).
    fn keep(&self, holder: Option<Box<Kept>>, env: Box<Stored<K>>, made: Option<Frame>) -> Box<Kept> {
        match holder {
            Some(mut kept) => {
                kept.envelope = env;
                if made.is_some() {
                    kept.frame = made;
                }
                kept
            }
            None => Box::new(Kept { kind: self.name.clone(), envelope: env, frame: made }),
        }
    }

    pub(crate) fn new(name: Arc<str>, kind: K) -> Self {
        let (ttl, start_filter, update_filter) = (kind.ttl(), kind.start_filter(), kind.update_filter());
        let commands = kind.commands();
        let component_filters = kind.component_filters().into_iter().map(|(c, f)| (c.to_owned(), f)).collect();
        let limit = kind.limit();
        let routes = crate::observe::KindRoutes::default();
        Engine { name, kind, ttl, start_filter, update_filter, commands, component_filters, limit, routes }
    }

    /// The time to live of one session: its own, or the kind's.
    fn ttl_of(&self, own: Option<TtlOverride>) -> Ttl {
        own.map_or(self.ttl, TtlOverride::ttl)
    }

    /// Runs the kind's `start` and stores the session (the caller holds the lock).
    pub(crate) async fn start(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        ctx: &Context,
        args: K::Args,
    ) -> Result<(Option<Timestamp>, Option<Reply>), InteractiveError> {
        let now = core.now();
        let mut origin = Origin::of(ctx, now);
        let mut reply = None;
        let mut ttl = None;
        let mut asking = false;
        let state = {
            let mut cx = StartCx {
                ctx,
                session: sid,
                codec: &core.codec,
                origin: &mut origin,
                now,
                reply: &mut reply,
                ttl: &mut ttl,
                asking: &mut asking,
            };
            self.kind.start(&mut cx, args).await.map_err(|source| InteractiveError::Session {
                session: sid,
                kind: self.name.clone(),
                stage: "start",
                source,
            })?
        };
        let now = core.now();
        let ttl = ttl.map(TtlOverride::of);
        let deadline = self.ttl_of(ttl).expires_at(now, now);
        let owner = origin.user;
        let expires = core.keep_live(deadline);
        // The awaiting record goes first: until the session is stored it routes nothing.
        let wait = match asking {
            true => Some(core.ask(sid, &self.name, &origin, expires, now).await?),
            false => None,
        };
        let env =
            Envelope::<_, _, &K::Output>::live(&self.name, &state, deadline, origin.clone(), Some(core.instance), ttl)
                .asking(wait);
        // Stored before the reply goes out: the first click always finds the session.
        let written = core.write(sid, key, &env, expires, Precondition::Absent, owner, now).await;
        if !matches!(written, Ok(Some(_)))
            && let Some(wait) = wait
        {
            core.unask(sid, &origin, wait).await;
        }
        match written? {
            Some(_) => Ok((deadline, reply)),
            // 96 random bits collided with a live session: refuse rather than overwrite.
            None => Err(InteractiveError::Store {
                session: Some(sid),
                source: crate::StoreError::Conflict { key: key.to_string() },
            }),
        }
    }

    /// Claims the end of a live session (compare-and-set to `ending`), runs `end`, marks
    /// it ended and publishes the end event. `Ok(None)`: the claim lost to another
    /// write; nothing ran. `Ok(Some(reply))`: ended here, with `end`'s reply.
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
        text: Option<TextWait>,
        now: Timestamp,
    ) -> Result<Option<Option<Reply>>, InteractiveError> {
        let lease = now.saturating_add(core.cfg.end_lease);
        let claim =
            Envelope::<_, &K::State, _>::ending(&self.name, reason, preset.as_ref(), lease, origin.clone(), waiter);
        let expires = core.keep_live(Some(lease));
        let Some(claimed) = core.write(sid, key, &claim, expires, Precondition::Version(version), None, now).await?
        else {
            return Ok(None);
        };
        // Claimed: the session no longer takes text; release what it awaited.
        if let Some(wait) = text {
            core.unask(sid, &origin, wait).await;
        }
        let mut reply = None;
        let mut cx = EndCx { session: sid, reason, origin: &origin, codec: &core.codec, now, reply: &mut reply };
        let returned = match self.kind.end(&mut cx, state).await {
            Ok(result) => result,
            Err(error) => {
                tracing::warn!(session = %sid, kind = %self.name, %error, "interactive session's `end` failed; ending it anyway");
                None
            }
        };
        let result = preset.or(returned);
        let event = self.event(sid, &origin, reason, result.as_ref(), reply.clone());
        let finalized = self.finalize(core, sid, key, claimed, origin, waiter, reason, result, core.now()).await;
        core.publish(event);
        finalized?;
        Ok(Some(reply))
    }

    fn event(
        &self,
        sid: SessionId,
        origin: &Origin,
        reason: EndReason,
        result: Option<&K::Output>,
        reply: Option<Reply>,
    ) -> EndEvent {
        let result = result.and_then(|r| match serde_json::to_value(r) {
            Ok(v) => Some(v),
            Err(error) => {
                tracing::warn!(session = %sid, %error, "interactive result does not encode for the end event");
                None
            }
        });
        EndEvent { kind: self.name.clone(), session: sid, origin: origin.clone(), reason, result, reply }
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
    fn refreshed(
        &self,
        own: Option<TtlOverride>,
        deadline: Option<Timestamp>,
        opened: Timestamp,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let ttl = self.ttl_of(own);
        match ttl {
            Ttl::Idle { .. } => ttl.expires_at(opened, now),
            _ => deadline,
        }
    }
}

#[async_trait::async_trait]
impl<K: Interactive> ErasedKind for Engine<K> {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn routes(&self) -> &crate::observe::KindRoutes {
        &self.routes
    }

    fn takes(&self, text: &str) -> bool {
        self.commands.takes(text)
    }

    async fn apply(
        &self,
        core: &Core,
        sid: SessionId,
        key: &SessionKey,
        loaded: Loaded,
        ctx: &Context,
        input: Input<'_>,
    ) -> Result<Routed, InteractiveError> {
        let (clicked, text, remembered) = match input {
            Input::Click { id, remembered } => (id, None, remembered),
            Input::Text(text) => (CustomId::new(sid, ""), Some(text), false),
        };
        let Loaded { mut record, kept, at } = loaded;
        // The first attempt's time is the load's.
        let mut now = at;
        // The box the store kept the envelope in, reused to keep the next one.
        let mut holder = None;
        let mut env = match kept.map(|k| self.unkept(k)) {
            Some((kept, Some(env))) => {
                holder = Some(kept);
                env
            }
            None => Box::new(decode::<K>(&self.name, sid, &record)?),
            // Kept by another kind (or type): the bytes decide.
            Some((_, None)) => match Box::pin(core.load(sid, key, core.now())).await? {
                Some(r) => {
                    record = r;
                    Box::new(decode::<K>(&self.name, sid, &record)?)
                }
                None if text.is_some() => return Ok(Routed::of(RouteOutcome::NotOurs)),
                None => return Ok(Routed::of(RouteOutcome::Unknown { session: sid })),
            },
        };
        // The rare steps (an end, a text ask, a retry) are boxed: the future of a
        // click, moved into its box on every click, stays small.
        let mut attempt = 1;
        loop {
            if text.is_some() && (env.phase != Phase::Live || env.text.is_none() || !opener_there(ctx, &env.origin)) {
                // Not (or no longer) awaited: the bot's other handlers take the message.
                return Ok(Routed::of(RouteOutcome::NotOurs));
            }
            if env.phase != Phase::Live {
                let reason = env.reason.unwrap_or(EndReason::Expired);
                return Ok(Routed::of(RouteOutcome::Ended { session: sid, reason }));
            }
            if env.state.is_none() {
                return Err(stateless(sid));
            }
            if now.is_expired(env.deadline) {
                let Envelope { state, origin, waiter, text: wait, .. } = *env;
                let state = state.ok_or_else(|| stateless(sid))?;
                let (v, why) = (record.version, EndReason::Expired);
                let ended =
                    Box::pin(self.end_live(core, sid, key, v, state, origin, waiter, why, None, wait, now)).await?;
                if let Some(reply) = ended {
                    return Ok(Routed { outcome: RouteOutcome::Expired { session: sid }, reply, end_reply: None });
                }
            } else {
                // Text is only ever the opener's (the awaiting record's key says so).
                let filter = self.component_filters.get(clicked.component()).unwrap_or(&self.update_filter);
                if text.is_none()
                    && let Err(refusal) = filter.check(ctx, &env.origin)
                {
                    return Ok(Routed::of(RouteOutcome::Refused { session: sid, filter: refusal.filter }));
                }
                if env.origin.message.is_none() && text.is_none() {
                    env.origin.message = ctx.message_id;
                }
                if env.origin.inline_message.is_none() && text.is_none() {
                    env.origin.inline_message.clone_from(&ctx.reply.inline_message_id);
                }
                let wait = env.text;
                let mut reply = None;
                let mut asking = wait.is_some();
                let step = {
                    let Envelope { state, origin, .. } = &mut *env;
                    let state = state.as_mut().ok_or_else(|| stateless(sid))?;
                    let mut cx = UpdateCx {
                        ctx,
                        clicked: &clicked,
                        text,
                        codec: &core.codec,
                        origin,
                        now,
                        reply: &mut reply,
                        asking: &mut asking,
                    };
                    self.kind.update(&mut cx, state).await.map_err(|source| InteractiveError::Session {
                        session: sid,
                        kind: self.name.clone(),
                        stage: "update",
                        source,
                    })?
                };
                match step {
                    Step::Continue { refresh } => {
                        let (ttl, deadline) = (env.ttl, env.deadline);
                        let deadline =
                            if refresh { self.refreshed(ttl, deadline, env.origin.at, now) } else { deadline };
                        let expires = core.keep_live(deadline);
                        // Asking starts (or outlives its awaiting record): write the
                        // awaiting record first, as `start` does.
                        let fresh = match (asking, wait) {
                            (true, None) => Some(Box::pin(core.ask(sid, &self.name, &env.origin, expires, now)).await?),
                            (true, Some(w)) if outlives(deadline, w.until) => {
                                Some(Box::pin(core.ask(sid, &self.name, &env.origin, expires, now)).await?)
                            }
                            _ => None,
                        };
                        // The live envelope as `start` writes it.
                        env.deadline = deadline;
                        env.text = if asking { fresh.or(wait) } else { None };
                        (env.reason, env.result, env.lease) = (None, None, None);
                        let typed = core.typed_store();
                        // The kept envelope's frame (its encoded parts) serves, left
                        // where it is, while it fits the envelope; else (and for the
                        // first click kept here) the full encode makes one.
                        let reused = holder.as_ref().and_then(|h| h.frame.as_ref()).filter(|f| f.fits(&env));
                        let mut made = None;
                        let bytes = match (reused, &env.state) {
                            (Some(f), Some(state)) => {
                                let bytes = core.encode_with(sid, |out| f.encode_into(out, state, deadline))?;
                                #[cfg(debug_assertions)]
                                {
                                    // Every test that clicks twice checks the framed bytes.
                                    let mut full = Vec::new();
                                    let full = env.encode_into(&mut full).map(|_| full).ok();
                                    debug_assert_eq!(Some(&bytes), full.as_ref(), "framed bytes of {sid}");
                                }
                                bytes
                            }
                            _ => core.encode_with(sid, |out| {
                                let parts = env.encode_into(out)?;
                                if typed.is_some() {
                                    made = Frame::of(&env, out, parts);
                                }
                                Ok(())
                            })?,
                        };
                        // Only a session that asks for text needs its origin after this.
                        let origin = (fresh.is_some() || wait.is_some()).then(|| env.origin.clone());
                        let pre = Precondition::Version(record.version);
                        let written = match typed {
                            // Kept typed for its next click here: no decode then.
                            Some(local) => {
                                let kept = Some(self.keep(holder.take(), env, made));
                                Core::put_now(local, sid, key, bytes, expires, pre, None, now, kept)
                            }
                            None => Box::pin(core.put(sid, key, bytes, expires, pre, None, now, None)).await,
                        };
                        if !matches!(written, Ok(Some(_)))
                            && wait.is_none()
                            && let (Some(f), Some(origin)) = (fresh, &origin)
                        {
                            // The ask did not land: take its awaiting record back.
                            Box::pin(core.unask(sid, origin, f)).await;
                        }
                        if written?.is_some() {
                            if let (false, Some(w), Some(origin)) = (asking, wait, &origin) {
                                Box::pin(core.unask(sid, origin, w)).await;
                            }
                            // A signed id that routed here is known good (see `Local`); one
                            // the entry remembers already leaves nothing to adopt.
                            if !remembered {
                                let verified =
                                    ctx.custom_id.as_deref().filter(|_| text.is_none() && core.codec.is_signed());
                                core.local.adopt(sid, deadline, verified);
                            }
                            let outcome = RouteOutcome::Handled { session: sid, ended: None };
                            return Ok(Routed { outcome, reply, end_reply: None });
                        }
                    }
                    Step::Finish(result) => {
                        let Envelope { state, origin, waiter, text: wait, .. } = *env;
                        let state = state.ok_or_else(|| stateless(sid))?;
                        let reason = EndReason::Finished;
                        let v = record.version;
                        let ended = Box::pin(self.end_live(
                            core,
                            sid,
                            key,
                            v,
                            state,
                            origin,
                            waiter,
                            reason,
                            Some(result),
                            wait,
                            now,
                        ))
                        .await?;
                        if let Some(end_reply) = ended {
                            let outcome = RouteOutcome::Handled { session: sid, ended: Some(reason) };
                            return Ok(Routed { outcome, reply, end_reply });
                        }
                    }
                }
            }
            // Another process wrote the session between our load and our save.
            if attempt >= core.cfg.retry.max_attempts {
                return Err(InteractiveError::Contention { session: sid, attempts: attempt });
            }
            Box::pin(core.cfg.retry.pause_after_conflict(attempt)).await;
            attempt += 1;
            now = core.now();
            record = match Box::pin(core.load(sid, key, now)).await? {
                Some(r) => r,
                None if text.is_some() => return Ok(Routed::of(RouteOutcome::NotOurs)),
                None => return Ok(Routed::of(RouteOutcome::Unknown { session: sid })),
            };
            env = Box::new(decode::<K>(&self.name, sid, &record)?);
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
            let Envelope { phase, reason, state, result, deadline, lease, origin, waiter, text, .. } =
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
                    let ended =
                        self.end_live(core, sid, key, v, state, origin, waiter, reason, None, text, now).await?;
                    if ended.is_some() {
                        return Ok(Tended::Ended);
                    }
                }
                Phase::Ending if now.is_expired(lease) => {
                    // The claimer died inside `end`: `end` runs at most once, so only
                    // record the end it claimed.
                    let reason = reason.unwrap_or(EndReason::Expired);
                    let event = self.event(sid, &origin, reason, result.as_ref(), None);
                    self.finalize(core, sid, key, record.version, origin, waiter, reason, result, now).await?;
                    core.publish(event);
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
            core.cfg.retry.pause_after_conflict(attempt).await;
            attempt += 1;
            record = match core.load(sid, key, core.now()).await? {
                Some(r) => r,
                None => return Ok(Tended::Gone),
            };
        }
    }
}
