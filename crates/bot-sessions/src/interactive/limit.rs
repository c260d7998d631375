//! Session limits with displacement: at most N open sessions of a kind per user, chat
//! or guild; starting one more ends the oldest with [`EndReason::Replaced`].
//!
//! The open sessions of one (kind, user | chat | guild) are listed in one small record
//! in `<namespace>.open`, updated with compare-and-set, so every process sharing the
//! store sees the same list. Sessions that ended are pruned from the list lazily, when
//! it overflows (each listed session is then looked at once); the record expires with
//! the newest session's record.

use serde::{Deserialize, Serialize};

use super::envelope::{Header, Phase};
use super::{EndReason, InteractiveError, Manager, SessionId};
use crate::{Context, Namespace, Precondition, Scope, SessionKey, Timestamp, Write};

/// What a [`Limit`] counts sessions by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitScope {
    /// The user who opened them (in any chat).
    User,
    /// The chat they were opened in.
    Chat,
    /// The Discord guild they were opened in.
    Guild,
}

/// At most `max` open sessions of a kind per [`LimitScope`] (see
/// [`Interactive::limit`](super::Interactive::limit)). An update without the id the
/// scope needs (no user, no guild) is not limited.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Limit, LimitScope};
///
/// let one_per_user = Limit::per_user(1);
/// assert_eq!((one_per_user.scope, one_per_user.max), (LimitScope::User, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limit {
    /// What sessions are counted by.
    pub scope: LimitScope,
    /// How many may be open at once (at least 1).
    pub max: u32,
}

impl Limit {
    /// At most `max` per user (at least 1).
    pub fn per_user(max: u32) -> Self {
        Limit { scope: LimitScope::User, max: max.max(1) }
    }

    /// At most `max` per chat (at least 1).
    pub fn per_chat(max: u32) -> Self {
        Limit { scope: LimitScope::Chat, max: max.max(1) }
    }

    /// At most `max` per guild (at least 1).
    pub fn per_guild(max: u32) -> Self {
        Limit { scope: LimitScope::Guild, max: max.max(1) }
    }
}

/// The listed sessions, oldest first.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Open {
    sessions: Vec<String>,
}

impl Manager {
    /// Lists `sid` (just started, of `kind`, opened by `ctx`) under its limit and ends
    /// the oldest live sessions beyond it with [`EndReason::Replaced`]. Returns how
    /// many it ended.
    pub(crate) async fn displace(
        &self,
        kind: &str,
        limit: Limit,
        sid: SessionId,
        ctx: &Context,
        expires: Option<Timestamp>,
    ) -> Result<u64, InteractiveError> {
        let core = &*self.core;
        let (tag, id, user) = match limit.scope {
            LimitScope::User => ("user", ctx.user_id, ctx.user_id),
            LimitScope::Chat => ("chat", ctx.chat_id, None),
            LimitScope::Guild => ("guild", ctx.guild_id, None),
        };
        let Some(id) = id else { return Ok(0) };
        let Ok(ns) = Namespace::new(&format!("{}.open", core.namespace.as_str())) else { return Ok(0) };
        let scope = Scope::Custom { id: format!("{kind}/{tag}/{id}"), user };
        let key = SessionKey::with_bot(ns, ctx.bot_id, scope);
        let listed = self.edit_list(sid, &key, expires, |list| list.push(sid.as_str().to_owned())).await?;
        let max = usize::try_from(limit.max).unwrap_or(usize::MAX);
        if listed.len() <= max {
            return Ok(0);
        }
        // Oldest first: drop the ended, count the live, end the oldest live beyond max.
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for other in listed.iter().filter_map(|s| SessionId::parse(s)).filter(|s| *s != sid) {
            let record = core.load(other, &core.key(other), core.now()).await?;
            let open = record
                .as_ref()
                .and_then(|r| serde_json::from_slice::<Header<'_>>(&r.value).ok())
                .is_some_and(|h| h.phase == Phase::Live && !core.now().is_expired(h.deadline));
            if open { live.push(other) } else { gone.push(other) }
        }
        let excess = (live.len() + 1).saturating_sub(max);
        let mut ended = 0;
        for old in live.into_iter().take(excess) {
            ended += u64::from(self.end(old, EndReason::Replaced).await?);
            gone.push(old);
        }
        let gone: Vec<String> = gone.iter().map(|s| s.as_str().to_owned()).collect();
        self.edit_list(sid, &key, expires, |list| list.retain(|s| !gone.contains(s))).await?;
        Ok(ended)
    }

    /// Applies `edit` to the list under `key` with compare-and-set; returns the list
    /// as written.
    async fn edit_list(
        &self,
        sid: SessionId,
        key: &SessionKey,
        expires: Option<Timestamp>,
        edit: impl Fn(&mut Vec<String>),
    ) -> Result<Vec<String>, InteractiveError> {
        let core = &*self.core;
        for attempt in 1..=core.cfg.retry.max_attempts {
            let now = core.now();
            let record = core.store.load(key, now).await.map_err(InteractiveError::store(sid))?;
            let (mut open, pre) = match &record {
                Some(r) => (
                    serde_json::from_slice::<Open>(&r.value).unwrap_or_else(|_| {
                        tracing::warn!(key = %key, "a session limit list does not decode; starting it over");
                        Open::default()
                    }),
                    Precondition::Version(r.version),
                ),
                None => (Open::default(), Precondition::Absent),
            };
            edit(&mut open.sessions);
            let bytes = serde_json::to_vec(&open).map_err(|source| InteractiveError::Codec {
                session: sid,
                op: "encode",
                source,
            })?;
            // The list lives as long as the longest-lived session it may name.
            let expires = match record.as_ref().map(|r| r.expires_at) {
                None => expires,
                Some(Some(b)) => expires.map(|a| a.max(b)),
                Some(None) => None,
            };
            match core.store.write(key, Write::new(&bytes, 1, expires), pre, now).await {
                Ok(_) => return Ok(open.sessions),
                Err(e) if e.is_conflict() => core.cfg.retry.pause_after_conflict(attempt).await,
                Err(e) => return Err(InteractiveError::store(sid)(e)),
            }
        }
        Err(InteractiveError::Contention { session: sid, attempts: core.cfg.retry.max_attempts })
    }
}
