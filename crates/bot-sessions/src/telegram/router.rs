//! [`CallbackRouter`]: callback queries to interactive sessions, their replies to
//! Telegram requests, and exactly one answer per callback query.

use std::sync::Arc;

use teloxide::dispatching::{DpHandlerDescription, UpdateFilterExt};
use teloxide::dptree::Handler;
use teloxide::payloads::setters::*;
use teloxide::requests::{Request, Requester};
use teloxide::types::{CallbackQuery, MaybeInaccessibleMessage, MessageKind, Update};

use super::context::context_of_callback;
use super::render::{Action, MessageTarget, RenderError, execute, keyboard, notice_text};
use crate::interactive::{DecodeError, InteractiveError, Manager, Reply, RouteOutcome, Routed};
use crate::store::BoxError;

/// The notices a [`CallbackRouter`] answers with when no session answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackTexts {
    /// A session's filter refused the user ([`RouteOutcome::Refused`]).
    pub not_yours: String,
    /// The session expired, ended or is unknown ([`RouteOutcome::Expired`],
    /// [`RouteOutcome::Ended`], [`RouteOutcome::Unknown`]).
    pub expired: String,
    /// The callback data is forged or malformed ([`RouteOutcome::Forged`],
    /// [`RouteOutcome::Malformed`]).
    pub forged: String,
    /// Routing or rendering failed (a store outage, a reply Telegram cannot show).
    pub failed: String,
}

impl Default for CallbackTexts {
    fn default() -> Self {
        CallbackTexts {
            not_yours: "not yours".into(),
            expired: "expired".into(),
            forged: "refused: this button was forged or edited".into(),
            failed: "something went wrong; please try again".into(),
        }
    }
}

impl CallbackTexts {
    /// Sets [`CallbackTexts::not_yours`].
    pub fn not_yours(mut self, text: impl Into<String>) -> Self {
        self.not_yours = text.into();
        self
    }

    /// Sets [`CallbackTexts::expired`].
    pub fn expired(mut self, text: impl Into<String>) -> Self {
        self.expired = text.into();
        self
    }

    /// Sets [`CallbackTexts::forged`].
    pub fn forged(mut self, text: impl Into<String>) -> Self {
        self.forged = text.into();
        self
    }

    /// Sets [`CallbackTexts::failed`].
    pub fn failed(mut self, text: impl Into<String>) -> Self {
        self.failed = text.into();
        self
    }

    /// The default notice for an outcome no session answered (`None`: answer without
    /// text).
    pub fn for_outcome(&self, outcome: &RouteOutcome) -> Option<&str> {
        match outcome {
            RouteOutcome::Refused { .. } => Some(&self.not_yours),
            RouteOutcome::Expired { .. } | RouteOutcome::Ended { .. } | RouteOutcome::Unknown { .. } => {
                Some(&self.expired)
            }
            RouteOutcome::Forged { .. } | RouteOutcome::Malformed { .. } => Some(&self.forged),
            _ => None,
        }
    }
}

/// What to send for one callback query: the answer's text, then the requests that
/// show the session's replies.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallbackPlan {
    /// The `answerCallbackQuery` text (`None`: answer without text).
    pub notice: Option<String>,
    /// Edits and new messages, in order.
    pub actions: Vec<Action>,
    /// A reply that could not be rendered (the others still are).
    pub error: Option<RenderError>,
}

/// What [`CallbackRouter::route`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackOutcome {
    /// Not a session's callback (no data, or another namespace's): nothing was sent,
    /// the callback query is **not** answered. Let the bot's other handlers answer it.
    NotOurs,
    /// A session's callback: routed, rendered, and answered once.
    Answered(RouteOutcome),
}

/// A callback query that was answered but whose routing or rendering failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// The interactive manager failed (the query was answered with
    /// [`CallbackTexts::failed`]).
    #[error(transparent)]
    Interactive(#[from] InteractiveError),
    /// A reply cannot be shown on Telegram.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A Bot API request failed.
    #[error("Bot API request failed: {0}")]
    Api(#[source] BoxError),
}

/// Routes callback queries to the interactive [`Manager`], shows the session's reply
/// and answers every callback query of its namespace exactly once, whatever the
/// outcome: handled, expired, not yours, forged, unknown, or failed.
///
/// The reply becomes requests as follows ([`CallbackRouter::plan`]):
///
/// | reply | request |
/// | --- | --- |
/// | [`Reply::Edit`] | `editMessageText` with the inline keyboard; `editMessageReplyMarkup` when the text is unchanged; nothing when neither changed; the `…Inline` variants for inline messages |
/// | [`Reply::Message`] | `sendMessage` in the callback's chat (and forum topic) |
/// | [`Reply::Notice`] | the text of `answerCallbackQuery` |
/// | [`Reply::Modal`] | refused ([`RenderError::ModalUnsupported`]) |
///
/// When no session answered, the answer's text comes from [`CallbackTexts`]. The
/// answer goes out first (it stops the button's spinner), then the edits.
///
/// Callback data is the custom id: build it with a [`CustomIdCodec`] of
/// [`Target::Telegram`], which refuses ids over Telegram's 64 bytes when they are
/// built, and sign it ([`CustomIdCodec::signed`]) so an edited or forged button is
/// answered [`CallbackTexts::forged`] and touches no session.
///
/// [`CustomIdCodec`]: crate::interactive::CustomIdCodec
/// [`CustomIdCodec::signed`]: crate::interactive::CustomIdCodec::signed
/// [`Target::Telegram`]: crate::interactive::Target::Telegram
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{CustomIdCodec, Manager, Target};
/// use bot_sessions::store::memory::MemoryStore;
/// use bot_sessions::telegram::{CallbackRouter, CallbackTexts};
/// use teloxide::types::CallbackQuery;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let codec = CustomIdCodec::new("m", Target::Telegram)?;
/// let router = CallbackRouter::new(Manager::builder(MemoryStore::new(), codec).build()?)
///     .texts(CallbackTexts::default().not_yours("only who opened this menu can use it"));
///
/// let foreign: CallbackQuery = serde_json::from_str(&serde_json::json!({
///     "id": "q1", "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
///     "chat_instance": "1", "data": "like:17"}).to_string())?;
/// assert!(!router.is_ours(&foreign)); // falls through to the bot's other handlers
///
/// // In a dispatcher: sessions' callbacks first, the rest to the bot's own handler.
/// let tree = teloxide::dptree::entry::<Result<(), Box<dyn std::error::Error + Send + Sync>>, _>()
///     .branch(router.handler::<teloxide::Bot, _>());
/// # let _ = tree;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CallbackRouter {
    manager: Manager,
    texts: CallbackTexts,
}

impl CallbackRouter {
    /// A router for `manager`'s sessions with the default [`CallbackTexts`].
    pub fn new(manager: Manager) -> Self {
        CallbackRouter { manager, texts: CallbackTexts::default() }
    }

    /// Sets the notices.
    #[must_use]
    pub fn texts(mut self, texts: CallbackTexts) -> Self {
        self.texts = texts;
        self
    }

    /// The manager.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Whether the callback's data carries the manager's namespace (forged, expired
    /// and malformed ones included: they are answered here). Reads no store.
    pub fn is_ours(&self, query: &CallbackQuery) -> bool {
        query
            .data
            .as_deref()
            .is_some_and(|data| !matches!(self.manager.codec().decode(data), Err(DecodeError::NotOurs)))
    }

    /// Routes a callback query, shows the reply and answers the query once.
    ///
    /// A callback that is not ours is left unanswered ([`CallbackOutcome::NotOurs`]).
    /// Every other one is answered exactly once, also when routing or rendering fails
    /// (with [`CallbackTexts::failed`] when nothing else applies), before the error is
    /// returned.
    ///
    /// # Errors
    ///
    /// [`RouterError`]; the query has been answered (or the answer itself failed:
    /// [`RouterError::Api`]).
    pub async fn route<B>(&self, bot: &B, query: &CallbackQuery) -> Result<CallbackOutcome, RouterError>
    where
        B: Requester,
        B::Err: std::error::Error + Send + Sync + 'static,
    {
        if !self.is_ours(query) {
            return Ok(CallbackOutcome::NotOurs);
        }
        let ctx = context_of_callback(query);
        let routed = match self.manager.handle(&ctx).await {
            Ok(routed) => routed,
            Err(e) => {
                answer(bot, query, Some(self.texts.failed.clone())).await?;
                return Err(e.into());
            }
        };
        if routed.outcome == RouteOutcome::NotOurs {
            return Ok(CallbackOutcome::NotOurs);
        }
        let plan = self.plan(query, &routed);
        answer(bot, query, plan.notice.clone()).await?;
        for action in &plan.actions {
            execute(bot, action).await.map_err(RouterError::Api)?;
        }
        match plan.error {
            Some(e) => Err(e.into()),
            None => Ok(CallbackOutcome::Answered(routed.outcome)),
        }
    }

    /// What [`route`](Self::route) sends for `routed`, the outcome of `query`: pure, for
    /// tests and for bots that send requests their own way.
    ///
    /// Every reply of the session is shown (the click's, then the end's when the click
    /// finished the session); the first [`Reply::Notice`] is the answer's text, else the
    /// [`CallbackTexts`] notice for the outcome (so an expired menu is edited by its end
    /// *and* the user reads `expired`).
    pub fn plan(&self, query: &CallbackQuery, routed: &Routed) -> CallbackPlan {
        let mut plan = CallbackPlan { notice: None, actions: Vec::new(), error: None };
        for reply in routed.reply.iter().chain(routed.end_reply.iter()) {
            match reply_action(query, reply) {
                Ok(Some(action)) => plan.actions.push(action),
                Ok(None) => {}
                Err(e) => {
                    plan.error.get_or_insert(e);
                }
            }
            if let (Reply::Notice(text), None) = (reply, &plan.notice) {
                plan.notice = Some(notice_text(text));
            }
        }
        if plan.notice.is_none() {
            plan.notice = match (&plan.error, self.texts.for_outcome(&routed.outcome)) {
                (Some(_), _) => Some(notice_text(&self.texts.failed)),
                (None, text) => text.map(notice_text),
            };
        }
        plan
    }

    /// A dptree branch that takes the callback queries of the manager's namespace,
    /// routes and answers them ([`route`](Self::route)), and lets every other update
    /// and callback query through to the next branches.
    ///
    /// ## Dependency requirements
    ///
    /// - [`Update`]
    /// - `B`: the bot (the `Dispatcher` provides it)
    pub fn handler<B, E>(self) -> Handler<'static, Result<(), E>, DpHandlerDescription>
    where
        B: Requester + Clone + Send + Sync + 'static,
        B::Err: std::error::Error + Send + Sync + 'static,
        E: From<RouterError> + Send + Sync + 'static,
    {
        let router = Arc::new(self);
        let filter = router.clone();
        Update::filter_callback_query().filter(move |q: CallbackQuery| filter.is_ours(&q)).endpoint(
            move |bot: B, q: CallbackQuery| {
                let router = router.clone();
                async move { router.route(&bot, &q).await.map(drop).map_err(E::from) }
            },
        )
    }
}

async fn answer<B>(bot: &B, query: &CallbackQuery, text: Option<String>) -> Result<(), RouterError>
where
    B: Requester,
    B::Err: std::error::Error + Send + Sync + 'static,
{
    let fut = {
        let req = bot.answer_callback_query(query.id.clone());
        match text {
            Some(text) => req.text(text).send(),
            None => req.send(),
        }
    };
    fut.await.map(drop).map_err(|e| RouterError::Api(Box::new(e)))
}

/// The message a callback's button was on.
fn target_of(query: &CallbackQuery) -> Option<MessageTarget> {
    match (&query.message, &query.inline_message_id) {
        (Some(m), _) => Some(MessageTarget::in_chat(m.chat().id, m.id(), business_of(query).as_deref())),
        (None, Some(id)) => Some(MessageTarget::Inline(id.clone())),
        (None, None) => None,
    }
}

/// The business connection of the message a callback's button was on.
fn business_of(query: &CallbackQuery) -> Option<String> {
    let message = query.message.as_ref()?.regular_message()?;
    match &message.kind {
        MessageKind::Common(common) => common.business_connection_id.as_ref().map(|b| b.0.clone()),
        _ => None,
    }
}

fn reply_action(query: &CallbackQuery, reply: &Reply) -> Result<Option<Action>, RenderError> {
    match reply {
        Reply::Edit(m) => {
            let keyboard = keyboard(m)?;
            let target = target_of(query).ok_or(RenderError::NoTarget { what: "message" })?;
            let shown = query.message.as_ref().and_then(MaybeInaccessibleMessage::regular_message);
            let same_text = shown.and_then(|s| s.text()) == Some(m.text.as_str());
            let shown_keyboard = shown.map(|s| s.reply_markup().cloned().unwrap_or_default());
            let same_keyboard = shown_keyboard.as_ref() == Some(&keyboard);
            Ok(match (same_text, same_keyboard) {
                (true, true) => None,
                (true, false) => Some(Action::EditKeyboard { target, keyboard }),
                (false, _) => Some(Action::EditText { target, text: m.text.clone(), keyboard }),
            })
        }
        Reply::Message(m) => {
            let keyboard = keyboard(m)?;
            let chat = query.message.as_ref().ok_or(RenderError::NoTarget { what: "chat" })?;
            let thread_id = chat.regular_message().filter(|m| m.is_topic_message).and_then(|m| m.thread_id);
            Ok(Some(Action::Send {
                chat_id: chat.chat().id,
                thread_id,
                business_connection_id: business_of(query),
                text: m.text.clone(),
                keyboard,
            }))
        }
        Reply::Notice(_) => Ok(None),
        Reply::Modal(m) => Err(RenderError::ModalUnsupported { custom_id: m.custom_id.clone() }),
    }
}
