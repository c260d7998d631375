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
    pub(super) asking: &'a mut bool,
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

    /// The encoded custom id of `component` of this session, in one call
    /// (`encode(&custom_id(component))`).
    ///
    /// # Errors
    ///
    /// [`CustomIdError::TooLong`] over the target's limit.
    pub fn id(&self, component: &str) -> Result<String, CustomIdError> {
        self.encode(&self.custom_id(component))
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

    /// Asks for the opener's next message in this chat (and forum topic): from now on
    /// [`Manager::route_text`] hands it to [`Interactive::on_text`] instead of the
    /// bot's other handlers, message after message, until the session
    /// [stops asking](UpdateCx::stop_asking) or ends. Only the opener's messages, in
    /// the chat and topic the session was opened in, are taken; the session needs both
    /// a chat and a user ([`InteractiveError::CannotAsk`](super::InteractiveError::CannotAsk)
    /// otherwise).
    pub fn ask_text(&mut self) {
        *self.asking = true;
    }

    /// Takes back [`ask_text`](Self::ask_text).
    pub fn stop_asking(&mut self) {
        *self.asking = false;
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
    pub(super) text: Option<&'a str>,
    pub(super) codec: &'a CustomIdCodec,
    pub(super) origin: &'a mut Origin,
    pub(super) now: Timestamp,
    pub(super) reply: &'a mut Option<Reply>,
    pub(super) asking: &'a mut bool,
}

impl UpdateCx<'_> {
    /// The routed update.
    pub fn context(&self) -> &Context {
        self.ctx
    }

    /// The decoded custom id that was clicked (for a text step, an id of this session
    /// with an empty component).
    pub fn clicked(&self) -> &CustomId {
        self.clicked
    }

    /// The message text, when this update is a text step (see
    /// [`Interactive::on_text`]); `None` for a component.
    pub fn text(&self) -> Option<&str> {
        self.text
    }

    /// Asks for the opener's next message in the session's chat (and topic), as
    /// [`StartCx::ask_text`] does. A session that asks goes on asking after each
    /// message it gets until it [stops](Self::stop_asking): re-asking after bad input
    /// is doing nothing.
    pub fn ask_text(&mut self) {
        *self.asking = true;
    }

    /// Stops taking the opener's messages: the next one goes to the bot's other
    /// handlers again.
    pub fn stop_asking(&mut self) {
        *self.asking = false;
    }

    /// Whether the session asks for text (as stored, changed by this update's
    /// [`ask_text`](Self::ask_text) and [`stop_asking`](Self::stop_asking)).
    pub fn is_asking(&self) -> bool {
        *self.asking
    }

    /// The clicked component's name (empty for a text step).
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

    /// The encoded custom id of `component` of this session, in one call
    /// (`encode(&custom_id(component))`).
    ///
    /// # Errors
    ///
    /// [`CustomIdError::TooLong`] over the target's limit.
    pub fn id(&self, component: &str) -> Result<String, CustomIdError> {
        self.encode(&self.custom_id(component))
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

    /// The encoded custom id of `component` of this session, in one call
    /// (`encode(&custom_id(component))`).
    ///
    /// # Errors
    ///
    /// [`CustomIdError::TooLong`] over the target's limit.
    pub fn id(&self, component: &str) -> Result<String, CustomIdError> {
        self.encode(&self.custom_id(component))
    }

    /// The manager clock's time.
    pub fn now(&self) -> Timestamp {
        self.now
    }
}

/// What [`StartCx`], [`UpdateCx`] and [`EndCx`] share, so that a helper (a render
/// function) can take any of them.
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::{Button, CustomIdError, View, SessionCx};
///
/// /// The session's message, from `start`, an update or the end alike.
/// fn render(cx: &impl SessionCx, value: i64) -> Result<View, CustomIdError> {
///     Ok(View::text(format!("value: {value}")).row([Button::new("+1", cx.id("inc")?)]))
/// }
/// ```
pub trait SessionCx {
    /// The session's id.
    fn session_id(&self) -> SessionId;

    /// The text of a custom id.
    ///
    /// # Errors
    ///
    /// [`CustomIdError::TooLong`] over the target's limit.
    fn encode(&self, id: &CustomId) -> Result<String, CustomIdError>;

    /// Where and by whom the session was opened.
    fn origin(&self) -> &Origin;

    /// The manager clock's time.
    fn now(&self) -> Timestamp;

    /// Answers (see each context's `reply`).
    fn reply(&mut self, reply: Reply);

    /// A custom id for `component` of this session.
    fn custom_id(&self, component: &str) -> CustomId {
        CustomId::new(self.session_id(), component)
    }

    /// The encoded custom id of `component` of this session.
    ///
    /// # Errors
    ///
    /// [`CustomIdError::TooLong`] over the target's limit.
    fn id(&self, component: &str) -> Result<String, CustomIdError> {
        self.encode(&self.custom_id(component))
    }
}

macro_rules! session_cx {
    ($($cx:ident),*) => {$(
        impl SessionCx for $cx<'_> {
            fn session_id(&self) -> SessionId {
                $cx::session_id(self)
            }
            fn encode(&self, id: &CustomId) -> Result<String, CustomIdError> {
                $cx::encode(self, id)
            }
            fn origin(&self) -> &Origin {
                $cx::origin(self)
            }
            fn now(&self) -> Timestamp {
                $cx::now(self)
            }
            fn reply(&mut self, reply: Reply) {
                $cx::reply(self, reply)
            }
        }
    )*};
}

session_cx!(StartCx, UpdateCx, EndCx);
