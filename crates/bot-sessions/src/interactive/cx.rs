//! What a session's `start`, `update` and `end` see: the update, ids, the clock, and
//! where to put the reply.

use super::reply::Reply;
use super::{CustomId, CustomIdCodec, CustomIdError, EndReason, Origin, SessionId};
#[cfg(doc)]
use super::{EndEvent, Interactive, Manager, Routed, Started};
use crate::{Context, Timestamp, Ttl};

/// What [`Interactive::start`] sees.
#[derive(Debug)]
pub struct StartCx<'a> {
    pub(super) ctx: &'a Context,
    pub(super) session: SessionId,
    pub(super) codec: &'a CustomIdCodec,
    pub(super) origin: &'a mut Origin,
    pub(super) now: Timestamp,
    pub(super) reply: &'a mut Option<Reply>,
    pub(super) ttl: &'a mut Option<Ttl>,
}

impl StartCx<'_> {
    /// The update that opens the session.
    pub fn context(&self) -> &Context {
        self.ctx
    }

    /// The new session's id.
    pub fn session_id(&self) -> SessionId {
        self.session
    }

    /// A custom id for `component` of this session, to [`push`](CustomId::push) tokens
    /// on and [`encode`](Self::encode).
    pub fn custom_id(&self, component: &str) -> CustomId {
        CustomId::new(self.session, component)
    }

    /// The text of a custom id.
    ///
    /// # Errors
    ///
    /// [`CustomIdError::TooLong`] over the target's limit.
    pub fn encode(&self, id: &CustomId) -> Result<String, CustomIdError> {
        self.codec.encode(id)
    }

    /// Records the message that carries the components, for [`EndCx::origin`].
    pub fn set_message(&mut self, message_id: i64) {
        self.origin.message = Some(message_id);
    }

    /// Answers the opening update (typically a new message with the session's
    /// components). [`Manager::start`] returns it in [`Started::reply`] once the
    /// session is stored, so the first click always finds it.
    pub fn reply(&mut self, reply: Reply) {
        *self.reply = Some(reply);
    }

    /// Gives this session its own time to live instead of the kind's
    /// [`Interactive::ttl`] (kept for its whole life, refreshes included).
    pub fn set_ttl(&mut self, ttl: Ttl) {
        *self.ttl = Some(ttl);
    }

    /// Where and by whom the session is opened.
    pub fn origin(&self) -> &Origin {
        self.origin
    }

    /// The manager clock's time.
    pub fn now(&self) -> Timestamp {
        self.now
    }
}

/// What [`Interactive::update`] sees.
#[derive(Debug)]
pub struct UpdateCx<'a> {
    pub(super) ctx: &'a Context,
    pub(super) clicked: &'a CustomId,
    pub(super) codec: &'a CustomIdCodec,
    pub(super) origin: &'a mut Origin,
    pub(super) now: Timestamp,
    pub(super) reply: &'a mut Option<Reply>,
}

impl UpdateCx<'_> {
    /// The routed update.
    pub fn context(&self) -> &Context {
        self.ctx
    }

    /// The decoded custom id that was clicked.
    pub fn clicked(&self) -> &CustomId {
        self.clicked
    }

    /// The clicked component's name.
    pub fn component(&self) -> &str {
        self.clicked.component()
    }

    /// The clicked id's token at `index`.
    pub fn token(&self, index: usize) -> Option<&str> {
        self.clicked.get_at(index)
    }

    /// The values chosen in a select menu (empty for other components).
    pub fn values(&self) -> &[String] {
        self.ctx.values()
    }

    /// A submitted modal's text field by id.
    pub fn field(&self, id: &str) -> Option<&str> {
        self.ctx.field(id)
    }

    /// Answers this update (an edit of the session's message, a notice, a modal...).
    /// [`Manager::handle`] returns it once the new state is stored.
    pub fn reply(&mut self, reply: Reply) {
        *self.reply = Some(reply);
    }

    /// The session's id.
    pub fn session_id(&self) -> SessionId {
        self.clicked.session()
    }

    /// A custom id for `component` of this session (to re-render the message).
    pub fn custom_id(&self, component: &str) -> CustomId {
        CustomId::new(self.clicked.session(), component)
    }

    /// The text of a custom id.
    ///
    /// # Errors
    ///
    /// [`CustomIdError::TooLong`] over the target's limit.
    pub fn encode(&self, id: &CustomId) -> Result<String, CustomIdError> {
        self.codec.encode(id)
    }

    /// Where and by whom the session was opened.
    pub fn origin(&self) -> &Origin {
        self.origin
    }

    /// Records the message that now carries the components.
    pub fn set_message(&mut self, message_id: i64) {
        self.origin.message = Some(message_id);
    }

    /// The manager clock's time.
    pub fn now(&self) -> Timestamp {
        self.now
    }
}

/// What [`Interactive::end`] sees.
#[derive(Debug)]
pub struct EndCx<'a> {
    pub(super) session: SessionId,
    pub(super) reason: EndReason,
    pub(super) origin: &'a Origin,
    pub(super) codec: &'a CustomIdCodec,
    pub(super) now: Timestamp,
    pub(super) reply: &'a mut Option<Reply>,
}

impl EndCx<'_> {
    /// The session's id.
    pub fn session_id(&self) -> SessionId {
        self.session
    }

    /// Why it ends.
    pub fn reason(&self) -> EndReason {
        self.reason
    }

    /// Where and by whom it was opened, and the message carrying its components.
    pub fn origin(&self) -> &Origin {
        self.origin
    }

    /// What to show now that the session is over (typically [`Reply::close`]: the
    /// message without its components). It reaches the click that finished the
    /// session ([`Routed::end_reply`]) and every [`EndEvent`] subscriber.
    pub fn reply(&mut self, reply: Reply) {
        *self.reply = Some(reply);
    }

    /// A custom id for `component` of this session (to re-render the message with the
    /// same ids, disabled).
    pub fn custom_id(&self, component: &str) -> CustomId {
        CustomId::new(self.session, component)
    }

    /// The text of a custom id.
    ///
    /// # Errors
    ///
    /// [`CustomIdError::TooLong`] over the target's limit.
    pub fn encode(&self, id: &CustomId) -> Result<String, CustomIdError> {
        self.codec.encode(id)
    }

    /// The manager clock's time.
    pub fn now(&self) -> Timestamp {
        self.now
    }
}
