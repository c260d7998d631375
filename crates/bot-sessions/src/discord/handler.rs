//! The bot's own handler, and the texts of answers nobody gave.

use std::future::Future;
use std::pin::Pin;

use twilight_model::application::interaction::Interaction;

use crate::Context;
use crate::interactive::Reply;
use crate::store::BoxError;

/// What the bot's handler returns: the reply to show (`None`: acknowledge without a
/// visible answer, see [`Handler`]).
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Option<Reply>, BoxError>> + Send>>;

/// The bot's own code for interactions no session takes: application commands, and
/// components of other namespaces. Any `Fn(Context, Interaction) -> impl Future<Output
/// = Result<Option<Reply>, BoxError>>` is one.
///
/// The reply is rendered like a session's. `Ok(None)` acknowledges without a visible
/// answer: on a component's message `DEFERRED_UPDATE_MESSAGE` (nothing changes), else
/// `DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE` ("thinking…"), which the bot replaces itself
/// with [`Rest::edit_original`](super::Rest::edit_original) within 15 minutes. An
/// error is logged and answered with [`Texts::failed`].
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::{Command, Handler};
/// use bot_sessions::interactive::{View, Reply};
/// use bot_sessions::store::BoxError;
/// use bot_sessions::Context;
/// use twilight_model::application::interaction::Interaction;
///
/// async fn commands(ctx: Context, _: Interaction) -> Result<Option<Reply>, BoxError> {
///     let name = ctx.extensions.get::<Command>().map(|c| c.name.clone()).unwrap_or_default();
///     Ok(Some(Reply::message(View::text(format!("you ran /{name}")))))
/// }
/// fn takes(_: impl Handler) {}
/// takes(commands);
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Answers one interaction.
    fn handle(&self, ctx: Context, interaction: Interaction) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Context, Interaction) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Reply>, BoxError>> + Send + 'static,
{
    fn handle(&self, ctx: Context, interaction: Interaction) -> HandlerFuture {
        Box::pin(self(ctx, interaction))
    }
}

/// The ephemeral texts of answers no session or handler gave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Texts {
    /// A session's filter refused the user ([`RouteOutcome::Refused`](crate::interactive::RouteOutcome::Refused)).
    pub not_yours: String,
    /// The session expired, ended or is unknown.
    pub expired: String,
    /// A forged, edited or malformed custom id of our namespace.
    pub forged: String,
    /// The session or the handler failed (see the log), or its reply cannot be shown.
    pub failed: String,
    /// No handler is configured for this interaction.
    pub unsupported: String,
}

impl Default for Texts {
    fn default() -> Self {
        Texts {
            not_yours: "not yours: only who opened this can use it".into(),
            expired: "expired: this is over".into(),
            forged: "refused: this component was forged or edited".into(),
            failed: "something went wrong; please try again".into(),
            unsupported: "this is not something I can answer".into(),
        }
    }
}

impl Texts {
    /// Sets [`Texts::not_yours`].
    #[must_use]
    pub fn not_yours(mut self, text: impl Into<String>) -> Self {
        self.not_yours = text.into();
        self
    }

    /// Sets [`Texts::expired`].
    #[must_use]
    pub fn expired(mut self, text: impl Into<String>) -> Self {
        self.expired = text.into();
        self
    }

    /// Sets [`Texts::forged`].
    #[must_use]
    pub fn forged(mut self, text: impl Into<String>) -> Self {
        self.forged = text.into();
        self
    }

    /// Sets [`Texts::failed`].
    #[must_use]
    pub fn failed(mut self, text: impl Into<String>) -> Self {
        self.failed = text.into();
        self
    }

    /// Sets [`Texts::unsupported`].
    #[must_use]
    pub fn unsupported(mut self, text: impl Into<String>) -> Self {
        self.unsupported = text.into();
        self
    }
}
