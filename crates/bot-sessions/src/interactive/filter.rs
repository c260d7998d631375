//! Filters: who may open a session, and whose clicks a session accepts.
//!
//! A [`Filter`] looks at the incoming update's [`Context`] and at the session's
//! [`Origin`] (where and by whom it was opened). Filters compose with
//! [`and`](Filter::and), [`or`](Filter::or) and [`negate`](Filter::negate) (or `&`, `|`
//! and `!`). A refusal names the filter that said no, so the bot can tell the user why.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Context, Timestamp};

/// Where, when and by whom a session was opened; stored with the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Origin {
    /// The bot that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<i64>,
    /// The chat it was opened in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<i64>,
    /// The forum topic it was opened in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<i64>,
    /// The user who opened it (`None` for an anonymous sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<i64>,
    /// The message that carries the session's components, once known (set by
    /// [`StartCx::set_message`](super::StartCx::set_message) or taken from the first
    /// click): what an end callback edits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<i64>,
    /// The inline message that carries the session's components, when it was sent
    /// through inline mode (no chat; set by [`Manager::set_inline_message`] or taken
    /// from the first click).
    ///
    /// [`Manager::set_inline_message`]: super::Manager::set_inline_message
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_message: Option<String>,
    /// The business connection it was opened through (Telegram business chats: the
    /// bot answers and edits on behalf of a business account, naming the connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_connection: Option<String>,
    /// When it was opened.
    pub at: Timestamp,
}

impl Origin {
    /// The origin of a session opened by the update `ctx` at `at`.
    pub fn of(ctx: &Context, at: Timestamp) -> Self {
        Origin {
            bot: ctx.bot_id,
            chat: ctx.chat_id,
            topic: ctx.topic_id,
            user: ctx.user_id,
            message: None,
            inline_message: ctx.reply.inline_message_id.clone(),
            business_connection: ctx.business_connection_id.clone(),
            at,
        }
    }
}

/// A filter said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by filter `{filter}`")]
pub struct Rejection {
    /// The name of the filter that refused.
    pub filter: Arc<str>,
}

type Pred = dyn Fn(&Context, &Origin) -> bool + Send + Sync;

#[derive(Clone)]
enum Node {
    All,
    Pred(Arc<Pred>),
    And(Arc<Filter>, Arc<Filter>),
    Or(Arc<Filter>, Arc<Filter>),
    Not(Arc<Filter>),
}

/// A predicate over an update and a session's origin, with a name.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Filter, Origin};
/// use bot_sessions::{Context, Timestamp};
///
/// let origin = Origin::of(&Context::new().chat(1).user(42), Timestamp(0));
/// let admins = Filter::users("admins", [7]);
/// let f = Filter::same_chat() & (Filter::opener() | admins);
///
/// assert!(f.check(&Context::new().chat(1).user(42), &origin).is_ok());
/// assert!(f.check(&Context::new().chat(1).user(7), &origin).is_ok());
/// let no = f.check(&Context::new().chat(2).user(42), &origin).unwrap_err();
/// assert_eq!(&*no.filter, "same_chat");
/// ```
#[derive(Clone)]
pub struct Filter {
    name: Arc<str>,
    node: Node,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filter({})", self.name)
    }
}

impl Default for Filter {
    fn default() -> Self {
        Filter::allow_all()
    }
}

impl Filter {
    /// Lets everything through.
    pub fn allow_all() -> Self {
        Filter { name: "allow_all".into(), node: Node::All }
    }

    /// A filter from a predicate of one's own.
    pub fn new(name: &str, predicate: impl Fn(&Context, &Origin) -> bool + Send + Sync + 'static) -> Self {
        Filter { name: name.into(), node: Node::Pred(Arc::new(predicate)) }
    }

    /// Only the user who opened the session. An update without a user, or a session
    /// opened by nobody in particular, never passes.
    pub fn opener() -> Self {
        Filter::new("opener", |ctx, origin| ctx.user_id.is_some() && ctx.user_id == origin.user)
    }

    /// Only updates in the chat where the session was opened.
    pub fn same_chat() -> Self {
        Filter::new("same_chat", |ctx, origin| ctx.chat_id.is_some() && ctx.chat_id == origin.chat)
    }

    /// Only the listed users.
    pub fn users(name: &str, users: impl IntoIterator<Item = i64>) -> Self {
        let users: Arc<[i64]> = users.into_iter().collect();
        Filter::new(name, move |ctx, _| ctx.user_id.is_some_and(|u| users.contains(&u)))
    }

    /// Both must pass; a refusal names the first that failed.
    #[must_use]
    pub fn and(self, other: Filter) -> Self {
        let name = format!("({} & {})", self.name, other.name).into();
        Filter { name, node: Node::And(Arc::new(self), Arc::new(other)) }
    }

    /// One of the two must pass; a refusal names the combination.
    #[must_use]
    pub fn or(self, other: Filter) -> Self {
        let name = format!("({} | {})", self.name, other.name).into();
        Filter { name, node: Node::Or(Arc::new(self), Arc::new(other)) }
    }

    /// Passes what `self` refuses.
    #[must_use]
    pub fn negate(self) -> Self {
        let name = format!("!{}", self.name).into();
        Filter { name, node: Node::Not(Arc::new(self)) }
    }

    /// The name used in refusals.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the update `ctx` passes for a session opened at `origin`.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] naming the filter that refused.
    pub fn check(&self, ctx: &Context, origin: &Origin) -> Result<(), Rejection> {
        let pass = match &self.node {
            Node::All => true,
            Node::Pred(p) => p(ctx, origin),
            Node::And(a, b) => {
                a.check(ctx, origin)?;
                return b.check(ctx, origin);
            }
            Node::Or(a, b) => a.check(ctx, origin).is_ok() || b.check(ctx, origin).is_ok(),
            Node::Not(a) => a.check(ctx, origin).is_err(),
        };
        if pass { Ok(()) } else { Err(Rejection { filter: self.name.clone() }) }
    }
}

impl std::ops::BitAnd for Filter {
    type Output = Filter;
    fn bitand(self, rhs: Filter) -> Filter {
        self.and(rhs)
    }
}

impl std::ops::BitOr for Filter {
    type Output = Filter;
    fn bitor(self, rhs: Filter) -> Filter {
        self.or(rhs)
    }
}

impl std::ops::Not for Filter {
    type Output = Filter;
    fn not(self) -> Filter {
        self.negate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::of(&Context::new().chat(1).user(42), Timestamp(0))
    }

    #[test]
    fn ready_made_filters() {
        let o = origin();
        assert!(Filter::opener().check(&Context::new().user(42), &o).is_ok());
        assert!(Filter::opener().check(&Context::new().user(43), &o).is_err());
        assert!(Filter::opener().check(&Context::new(), &o).is_err());
        let anonymous = Origin::of(&Context::new().chat(1), Timestamp(0));
        assert!(Filter::opener().check(&Context::new(), &anonymous).is_err());
        assert!(Filter::same_chat().check(&Context::new().chat(1), &o).is_ok());
        assert!(Filter::same_chat().check(&Context::new().chat(2), &o).is_err());
        assert!(Filter::same_chat().check(&Context::new(), &anonymous.clone()).is_err());
        assert!(Filter::allow_all().check(&Context::new(), &o).is_ok());
    }

    #[test]
    fn composition_and_names() {
        let o = origin();
        let f = Filter::opener().and(Filter::same_chat());
        assert_eq!(f.check(&Context::new().chat(1).user(43), &o).unwrap_err().filter.as_ref(), "opener");
        assert_eq!(f.check(&Context::new().chat(2).user(42), &o).unwrap_err().filter.as_ref(), "same_chat");
        let g = Filter::opener() | Filter::users("mods", [5]);
        assert!(g.check(&Context::new().user(5), &o).is_ok());
        assert_eq!(g.check(&Context::new().user(6), &o).unwrap_err().filter.as_ref(), "(opener | mods)");
        let h = !Filter::opener();
        assert!(h.check(&Context::new().user(42), &o).is_err());
        assert!(h.check(&Context::new().user(1), &o).is_ok());
        assert_eq!(h.name(), "!opener");
    }
}
