//! Text steps: a session asks for its opener's next message in its chat (and topic),
//! and [`Manager::route_text`] hands that message to it.
//!
//! What a session awaits is indexed in the store, so the message may land on any
//! process: one small *awaiting* record per (bot, chat, topic, user), in the namespace
//! `<namespace>.text`, naming the session and its kind. The session's own record is
//! the authority: it says whether it still asks, and which awaiting record (by
//! version) it wrote. So the two writes need no transaction:
//!
//! - asking writes the awaiting record first, then the session (compare-and-set); a
//!   process that dies in between leaves a record pointing at a session that does not
//!   ask, which routes nothing and expires with the session;
//! - stopping (or ending) writes the session first, then deletes the awaiting record
//!   only if it is still the version this session wrote (a newer ask by another
//!   session of the same opener, there, keeps its own).
//!
//! One (chat, topic, user) has one asker: the latest ask wins.
//!
//! The awaiting record's key carries the opener, so forget-user erases it with the
//! session.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::core::{Core, Routed};
use super::core::{Input, Loaded};
use super::envelope::TextWait;
use super::{InteractiveError, Manager, Origin, RouteOutcome, SessionId};
use crate::{Context, Namespace, Precondition, Record, Scope, SessionKey, Timestamp, Write};

/// What the bot does with commands (`/word…` messages) while a session of a kind
/// waits for its opener's text (see [`Interactive::commands`](super::Interactive::commands)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Commands {
    /// Commands go to the bot's own handlers, not to the session (the default: `/help`
    /// or `/cancel` keep working during a conversation).
    #[default]
    PassThrough,
    /// Every message, commands included, goes to the session.
    Take,
    /// These commands (`"/confirm"`; a `@BotName` suffix is ignored) go to the
    /// session; other commands pass through.
    TakeOnly(Vec<String>),
}

impl Commands {
    /// Whether a session that waits takes `text`.
    pub(crate) fn takes(&self, text: &str) -> bool {
        let Some(command) = command(text) else { return true };
        match self {
            Commands::PassThrough => false,
            Commands::Take => true,
            Commands::TakeOnly(list) => list.iter().any(|c| c == command),
        }
    }
}

/// The command a message starts with (`/count@MyBot now` is `/count`), if it does.
fn command(text: &str) -> Option<&str> {
    let text = text.trim_start();
    if !text.starts_with('/') {
        return None;
    }
    let word = text.split_whitespace().next().unwrap_or(text);
    Some(word.split_once('@').map_or(word, |(cmd, _bot)| cmd))
}

/// The awaiting record's value.
#[derive(Debug, Serialize, Deserialize)]
struct Awaiting<'a> {
    #[serde(borrow)]
    session: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

/// The namespace of awaiting records of a manager in `namespace`, `None` when the name
/// would be too long (sessions of that manager then cannot ask).
pub(crate) fn text_namespace(namespace: &Namespace) -> Option<Namespace> {
    Namespace::new(&format!("{}.text", namespace.as_str())).ok()
}

fn await_key(ns: Namespace, bot: Option<i64>, chat: i64, topic: Option<i64>, user: i64) -> SessionKey {
    let scope = match topic {
        Some(topic) => Scope::TopicUser { chat, topic, user },
        None => Scope::ChatUser { chat, user },
    };
    SessionKey::with_bot(ns, bot, scope)
}

impl Core {
    /// The awaiting key for a session opened at `origin`.
    fn await_key_of(&self, sid: SessionId, origin: &Origin) -> Result<SessionKey, InteractiveError> {
        let ns = self.text_ns.as_ref().ok_or(InteractiveError::CannotAsk {
            session: sid,
            reason: "the manager's namespace is too long for `<namespace>.text`",
        })?;
        let (Some(chat), Some(user)) = (origin.chat, origin.user) else {
            return Err(InteractiveError::CannotAsk {
                session: sid,
                reason: "the session was opened without a chat and a user",
            });
        };
        Ok(await_key(ns.clone(), origin.bot, chat, origin.topic, user))
    }

    /// Records that `sid` (of `kind`) awaits its opener's next message, until
    /// `until` (the session record's own expiry). Overwrites another session's ask.
    pub(crate) async fn ask(
        &self,
        sid: SessionId,
        kind: &str,
        origin: &Origin,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<TextWait, InteractiveError> {
        let key = self.await_key_of(sid, origin)?;
        let value = serde_json::to_vec(&Awaiting { session: sid.as_str().into(), kind: kind.into() })
            .map_err(|source| InteractiveError::Codec { session: sid, op: "encode", source })?;
        let version = self
            .store
            .write(&key, Write::new(&value, 1, until), Precondition::Any, now)
            .await
            .map_err(InteractiveError::store(sid))?;
        Ok(TextWait { version, until })
    }

    /// Deletes the awaiting record `wait` of `sid`, unless another ask replaced it. A
    /// failure is logged, not returned: the session's record already says it does not
    /// ask, so a record left behind routes nothing (and expires).
    pub(crate) async fn unask(&self, sid: SessionId, origin: &Origin, wait: TextWait) {
        let Ok(key) = self.await_key_of(sid, origin) else { return };
        match self.store.delete(&key, Precondition::Version(wait.version), self.now()).await {
            Ok(_) => {}
            Err(e) if e.is_conflict() => {} // another session asks there now
            Err(error) => {
                tracing::warn!(session = %sid, key = %key, %error, "could not delete an awaiting record; it expires");
            }
        }
    }

    /// Loads an awaiting record: synchronously for an in-process store (no round trip).
    async fn load_awaiting(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, InteractiveError> {
        let loaded = match self.store.in_process() {
            Some(sync) => sync.load_now(key, now),
            None => self.store.load(key, now).await,
        };
        loaded.map_err(|source| InteractiveError::Store { session: None, source })
    }
}

impl Manager {
    /// Routes a text message to the session that awaits it: one that asked (with
    /// [`StartCx::ask_text`](super::StartCx::ask_text) or
    /// [`UpdateCx::ask_text`](super::UpdateCx::ask_text)) for the next message of this
    /// user in this chat and forum topic. Its [`on_text`](super::Interactive::on_text)
    /// runs and the new state is stored before this returns.
    ///
    /// [`RouteOutcome::NotOurs`] when no session awaits it (the bot handles the message
    /// as usual): a message from anyone but the opener, in another chat or topic, a
    /// component update, a command that the kind lets
    /// [pass through](super::Interactive::commands), or a session that stopped asking.
    /// [`RouteOutcome::Expired`] when the awaiting session's time had run out (it is
    /// ended now, once). A message that nobody awaits costs one store load (on the
    /// memory store, an in-process lookup and no round trip).
    ///
    /// # Errors
    ///
    /// As [`route`](Self::route).
    pub async fn route_text(&self, ctx: &Context, text: &str) -> Result<RouteOutcome, InteractiveError> {
        Ok(self.handle_text(ctx, text).await?.outcome)
    }

    /// [`route_text`](Self::route_text), with the session's answer (what its
    /// `on_text` replied).
    ///
    /// # Errors
    ///
    /// As [`route`](Self::route).
    pub async fn handle_text(&self, ctx: &Context, text: &str) -> Result<Routed, InteractiveError> {
        let span = self.core.obs.route_span();
        let start = quanta::Instant::now();
        let mut kinds = None;
        let mut kind = None;
        let routed = if span.is_disabled() {
            self.handle_text_unobserved(ctx, text, &mut kinds, &mut kind).await
        } else {
            tracing::Instrument::instrument(self.handle_text_unobserved(ctx, text, &mut kinds, &mut kind), span.clone())
                .await
        };
        self.core.route_done(&span, kind, &routed, start);
        routed
    }

    async fn handle_text_unobserved<'k>(
        &self,
        ctx: &Context,
        text: &str,
        kinds: &'k mut Option<std::sync::Arc<super::core::Kinds>>,
        kind: &mut Option<&'k dyn super::core::ErasedKind>,
    ) -> Result<Routed, InteractiveError> {
        let core = &*self.core;
        if core.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(InteractiveError::ShutDown);
        }
        let not_ours = || Ok(Routed::of(RouteOutcome::NotOurs));
        let (Some(ns), Some(chat), Some(user), None) = (&core.text_ns, ctx.chat_id, ctx.user_id, &ctx.custom_id) else {
            return not_ours();
        };
        // This thread's copy of the namespace: every text message builds a key.
        let key = await_key(core.text_ns_here.get(0, || ns.own_copy()), ctx.bot_id, chat, ctx.topic_id, user);
        let Some(record) = core.load_awaiting(&key, core.now()).await? else { return not_ours() };
        let Ok(awaiting) = serde_json::from_slice::<Awaiting<'_>>(&record.value) else {
            tracing::warn!(key = %key, "an awaiting record does not decode; the message is not routed");
            return not_ours();
        };
        let Some(sid) = SessionId::parse(&awaiting.session) else {
            tracing::warn!(key = %key, "an awaiting record names no valid session; the message is not routed");
            return not_ours();
        };
        // Only once a session awaits the text: a message nobody awaits costs no copy.
        let kinds: &'k super::core::Kinds = kinds.insert(core.kinds.held());
        let engine = &**kinds
            .get(&*awaiting.kind)
            .ok_or_else(|| InteractiveError::UnknownKind { session: sid, kind: awaiting.kind.to_string() })?;
        if !engine.takes(text) {
            return not_ours();
        }
        *kind = Some(engine);
        let skey = core.key(sid);
        let _lock = core.locks.lock(skey.as_str()).await;
        let now = core.now();
        let Some(record) = core.load(sid, &skey, now).await? else { return not_ours() };
        engine.apply(core, sid, &skey, Loaded::encoded(record, now), ctx, Input::Text(text)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_pass_or_are_taken() {
        assert!(Commands::PassThrough.takes("42"));
        assert!(!Commands::PassThrough.takes("/help"));
        assert!(Commands::Take.takes("/help"));
        let only = Commands::TakeOnly(vec!["/confirm".into()]);
        assert!(only.takes("/confirm@DemoBot"));
        assert!(only.takes(" /confirm now"));
        assert!(!only.takes("/cancel"));
        assert!(only.takes("a/b"));
    }
}
