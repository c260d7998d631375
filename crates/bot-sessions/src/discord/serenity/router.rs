//! [`Router`]: interactive sessions on serenity's gateway: routes component clicks and
//! modal submits, starts sessions from commands, answers through serenity's [`Http`]
//! with the deferral of the HTTP endpoint, and records each session's message.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::serenity::all::{
    ChannelId, CommandInteraction, CreateInteractionResponse, CreateInteractionResponseMessage, Http, Interaction,
    InteractionId, MessageFlags, MessageId,
};

use super::render::{create_response, edit_message, edit_response, followup};
use super::{SerenityError, context_of};
use crate::Context;
use crate::discord::{Messages, Shown, Texts};
use crate::interactive::{Interactive, Kind, Manager, Reply, RouteOutcome, SessionId, Started, View};
use crate::store::BoxError;

/// How long an answer may take before the interaction is deferred (Discord waits 3 s).
pub const DEFER_AFTER: Duration = Duration::from_millis(2500);

/// Interactive sessions on a serenity bot: one value, cheap to clone, for the event
/// handler.
///
/// - [`route`](Self::route) takes a component click or a modal submit to its session
///   and answers it; for anything else, or a custom id of another namespace, it
///   answers nothing and returns [`RouteOutcome::NotOurs`], so the bot's own code
///   handles it;
/// - [`start`](Self::start) starts a session from a command, shows its reply and
///   records its message (for the edit when the session ends unclicked: see
///   [`Ends`](crate::discord::Ends));
/// - [`answer`](Self::answer) answers any interaction with a [`Reply`] the bot computes.
///
/// Every answer is rendered with [`create_response`](super::create_response). When it
/// is not ready within [`defer_after`](Self::defer_after) (2.5 s), the interaction is
/// deferred (`DEFERRED_UPDATE_MESSAGE` on a component's message, else
/// `DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE`) and the answer follows as an edit of the
/// original response or a follow-up, as the HTTP [`Endpoint`](crate::discord::Endpoint)
/// does. Outcomes no session answered (not yours, expired, forged) get the [`Texts`].
///
/// # Examples
///
/// ```no_run
/// use bot_sessions::discord::serenity::Router;
/// use bot_sessions::interactive::{CustomIdCodec, Manager, RouteOutcome, Target};
/// use bot_sessions::store::memory::MemoryStore;
/// use serenity::all::{Context, EventHandler, Interaction};
///
/// struct Bot { router: Router }
///
/// #[serenity::async_trait]
/// impl EventHandler for Bot {
///     async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
///         match self.router.route(&ctx.http, &interaction).await {
///             Ok(RouteOutcome::NotOurs) => { /* the bot's own commands */ }
///             Ok(_) => {}
///             Err(error) => tracing::warn!(%error, "interaction failed"),
///         }
///     }
/// }
/// # fn build() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = Manager::builder(MemoryStore::new(), CustomIdCodec::new("m", Target::Discord)?).build()?;
/// let _bot = Bot { router: Router::new(manager)? };
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    manager: Manager,
    messages: Option<Messages>,
    texts: Texts,
    defer_after: Duration,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("manager", &self.inner.manager)
            .field("messages", &self.inner.messages)
            .field("defer_after", &self.inner.defer_after)
            .finish()
    }
}

/// What an answer is about: where it goes, and with which token (never printed).
#[derive(Clone)]
struct Target {
    id: InteractionId,
    token: String,
    application_id: u64,
    channel_id: Option<ChannelId>,
    message_id: Option<MessageId>,
    /// A component (or a modal opened by one) on a message: the response can edit it.
    on_message: bool,
    message_ephemeral: bool,
    user: Option<i64>,
}

impl Target {
    fn of(interaction: &Interaction, ctx: &Context) -> Option<Self> {
        let (id, token, application_id, channel_id, message) = match interaction {
            Interaction::Command(i) | Interaction::Autocomplete(i) => {
                (i.id, &i.token, i.application_id.get(), i.channel_id, None)
            }
            Interaction::Component(i) => (i.id, &i.token, i.application_id.get(), i.channel_id, Some(&*i.message)),
            Interaction::Modal(i) => (i.id, &i.token, i.application_id.get(), i.channel_id, i.message.as_deref()),
            _ => return None,
        };
        Some(Target {
            id,
            token: token.clone(),
            application_id,
            channel_id: Some(channel_id),
            message_id: message.map(|m| m.id),
            on_message: message.is_some(),
            message_ephemeral: message.and_then(|m| m.flags).is_some_and(|f| f.contains(MessageFlags::EPHEMERAL)),
            user: ctx.user_id,
        })
    }

    fn of_command(command: &CommandInteraction, ctx: &Context) -> Self {
        Target {
            id: command.id,
            token: command.token.clone(),
            application_id: command.application_id.get(),
            channel_id: Some(command.channel_id),
            message_id: None,
            on_message: false,
            message_ephemeral: false,
            user: ctx.user_id,
        }
    }
}

/// What a session or the bot answered: the reply shown as the response, and a second
/// one sent after it (the update's and the end's both answered).
struct Answer {
    primary: Option<Reply>,
    extra: Option<Reply>,
}

fn http_error(call: &'static str) -> impl FnOnce(::serenity::Error) -> SerenityError {
    move |e| SerenityError::Http { call, source: Box::new(e) }
}

impl Router {
    /// A router for `manager`'s sessions, recording messages in the manager's store
    /// (sealed with its key ring when it has one), answering with the default
    /// [`Texts`], deferring after [`DEFER_AFTER`].
    ///
    /// # Errors
    ///
    /// None in practice: the default [`Messages`] namespace is valid.
    pub fn new(manager: Manager) -> Result<Self, SerenityError> {
        let messages = Messages::new(manager.store().clone())
            .map_err(|e| SerenityError::Setup(e.to_string()))?
            .clock_arc(manager.core.clock.clone())
            .sealer(manager.core.sealer.clone());
        Ok(Router {
            inner: Arc::new(Inner {
                manager,
                messages: Some(messages),
                texts: Texts::default(),
                defer_after: DEFER_AFTER,
            }),
        })
    }

    fn with(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                manager: shared.manager.clone(),
                messages: shared.messages.clone(),
                texts: shared.texts.clone(),
                defer_after: shared.defer_after,
            },
        };
        f(&mut inner);
        Router { inner: Arc::new(inner) }
    }

    /// Records messages in `messages` instead (`None`: records nothing; an end then
    /// reaches its message only by the channel route).
    #[must_use]
    pub fn messages(self, messages: Option<Messages>) -> Self {
        self.with(|i| i.messages = messages)
    }

    /// The texts of answers no session gave.
    #[must_use]
    pub fn texts(self, texts: Texts) -> Self {
        self.with(|i| i.texts = texts)
    }

    /// How long an answer may take before the interaction is deferred (default
    /// [`DEFER_AFTER`]; a zero window is taken as 1 ms).
    #[must_use]
    pub fn defer_after(self, window: Duration) -> Self {
        self.with(|i| i.defer_after = window.max(Duration::from_millis(1)))
    }

    /// The manager.
    pub fn manager(&self) -> &Manager {
        &self.inner.manager
    }

    /// Where sessions' messages are recorded, for [`Ends`](crate::discord::Ends).
    pub fn message_records(&self) -> Option<&Messages> {
        self.inner.messages.as_ref()
    }

    /// Routes a component click or a modal submit to its session and answers it.
    /// Anything else, and a custom id of another namespace, is
    /// [`RouteOutcome::NotOurs`] and is not answered: the bot's own code answers it.
    ///
    /// # Errors
    ///
    /// [`SerenityError`]: the session's or the store's error (the user was answered
    /// with [`Texts::failed`]), a reply Discord would refuse, a failed API call.
    pub async fn route(&self, http: &Http, interaction: &Interaction) -> Result<RouteOutcome, SerenityError> {
        if !matches!(interaction, Interaction::Component(_) | Interaction::Modal(_)) {
            return Ok(RouteOutcome::NotOurs);
        }
        let Some(ctx) = context_of(interaction) else { return Ok(RouteOutcome::NotOurs) };
        let Some(target) = Target::of(interaction, &ctx) else { return Ok(RouteOutcome::NotOurs) };
        // Another namespace's id is not ours to answer: decide before anything is sent.
        if let Some(id) = ctx.custom_id.as_deref()
            && matches!(self.inner.manager.codec().decode(id), Err(crate::interactive::DecodeError::NotOurs))
        {
            return Ok(RouteOutcome::NotOurs);
        }
        let inner = self.inner.clone();
        let work = async move {
            let routed = inner.manager.handle(&ctx).await?;
            let texts = &inner.texts;
            let (primary, extra) = crate::discord::dispatch::split(routed.reply, routed.end_reply);
            let primary = primary.or_else(|| default_answer(texts, &routed.outcome));
            Ok::<_, crate::interactive::InteractiveError>((Answer { primary, extra }, routed.outcome))
        };
        self.respond(http, &target, work).await
    }

    /// Starts a session of `kind` from `command` (its [`command_context`](super::command_context)),
    /// shows what `start` answered as the command's response and records the message,
    /// so that the session's end can edit it even when nobody clicked (with
    /// [`Ends`](crate::discord::Ends)).
    ///
    /// # Errors
    ///
    /// [`SerenityError::Interactive`] when the start was refused or failed (the user
    /// was answered with [`Texts::failed`]); a reply Discord would refuse; a failed API
    /// call.
    pub async fn start<K: Interactive>(
        &self,
        http: &Http,
        command: &CommandInteraction,
        kind: &Kind<K>,
        args: K::Args,
    ) -> Result<Started<K::Output>, SerenityError> {
        let ctx = super::command_context(command);
        let target = Target::of_command(command, &ctx);
        let manager = self.inner.manager.clone();
        let work = async move {
            let started = manager.start(kind, &ctx, args).await?;
            Ok::<_, crate::interactive::InteractiveError>((
                Answer { primary: started.reply.clone(), extra: None },
                started,
            ))
        };
        self.respond(http, &target, work).await
    }

    /// Answers `interaction` with what `work` gives, deferring when it takes longer
    /// than [`defer_after`](Self::defer_after) (`Ok(None)`: acknowledged without a
    /// visible answer). A reply showing a session's components records its message.
    ///
    /// # Errors
    ///
    /// [`SerenityError::Handler`] with `work`'s error (the user was answered with
    /// [`Texts::failed`]); a reply Discord would refuse; a failed API call;
    /// [`SerenityError::NotAnswerable`] for a PING.
    pub async fn answer<F, E>(&self, http: &Http, interaction: &Interaction, work: F) -> Result<(), SerenityError>
    where
        F: Future<Output = Result<Option<Reply>, E>> + Send,
        E: Into<BoxError>,
    {
        let Some(ctx) = context_of(interaction) else { return Err(SerenityError::NotAnswerable) };
        let Some(target) = Target::of(interaction, &ctx) else { return Err(SerenityError::NotAnswerable) };
        let work = async move { work.await.map(|primary| (Answer { primary, extra: None }, ())) };
        self.respond(http, &target, work).await
    }

    async fn respond<T, E, F>(&self, http: &Http, target: &Target, work: F) -> Result<T, SerenityError>
    where
        F: Future<Output = Result<(Answer, T), E>>,
        E: Into<BoxError>,
    {
        let mut work = std::pin::pin!(work);
        let early = tokio::select! {
            done = &mut work => Some(done),
            () = tokio::time::sleep(self.inner.defer_after) => None,
        };
        match early {
            Some(Ok((answer, value))) => {
                self.finish(http, target, answer).await?;
                Ok(value)
            }
            Some(Err(error)) => Err(self.failed(http, target, false, error.into()).await),
            None => {
                let deferred = if target.on_message {
                    CreateInteractionResponse::Acknowledge
                } else {
                    CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new())
                };
                http.create_interaction_response(target.id, &target.token, &deferred, Vec::new())
                    .await
                    .map_err(http_error("defer the interaction"))?;
                match work.await {
                    Ok((answer, value)) => {
                        self.complete_deferred(http, target, answer).await?;
                        Ok(value)
                    }
                    Err(error) => Err(self.failed(http, target, true, error.into()).await),
                }
            }
        }
    }

    /// The work failed: tells the user (as the response, or after the deferral) and
    /// returns the error.
    async fn failed(&self, http: &Http, target: &Target, deferred: bool, error: BoxError) -> SerenityError {
        let text = View::text(self.inner.texts.failed.clone()).ephemeral();
        let told = if deferred {
            self.followup_replacing(http, target, &text).await
        } else {
            let response = super::render::notice(&text.text);
            http.create_interaction_response(target.id, &target.token, &response, Vec::new())
                .await
                .map_err(http_error("answer the interaction"))
        };
        if let Err(e) = told {
            tracing::warn!(error = %e, "could not tell the user an interaction failed");
        }
        match error.downcast::<crate::interactive::InteractiveError>() {
            Ok(e) => SerenityError::Interactive(*e),
            Err(e) => SerenityError::Handler(e),
        }
    }

    /// The answer was ready in time: the response, then what follows it.
    async fn finish(&self, http: &Http, target: &Target, answer: Answer) -> Result<(), SerenityError> {
        let response = match &answer.primary {
            None if target.on_message => CreateInteractionResponse::Acknowledge,
            None => CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new()),
            Some(reply) => create_response(reply, target.on_message)?,
        };
        http.create_interaction_response(target.id, &target.token, &response, Vec::new())
            .await
            .map_err(http_error("answer the interaction"))?;
        let edits = matches!(answer.primary, Some(Reply::Edit(_))) && target.on_message;
        if let Some(Reply::Edit(m) | Reply::Message(m)) = &answer.primary {
            let shown = if edits { target.message_id } else { None };
            self.note(http, target, m, edits, shown).await;
        }
        if let Some(extra) = answer.extra {
            self.follow(http, target, extra, edits || (answer.primary.is_none() && target.on_message)).await?;
        }
        Ok(())
    }

    /// The answer came after the deferral: shown by editing the original response or as
    /// a follow-up.
    async fn complete_deferred(&self, http: &Http, target: &Target, answer: Answer) -> Result<(), SerenityError> {
        let update = target.on_message;
        match &answer.primary {
            None => {}
            Some(Reply::Edit(m)) if update => {
                http.edit_original_interaction_response(&target.token, &edit_response(m)?, Vec::new())
                    .await
                    .map_err(http_error("edit the original response"))?;
                self.note(http, target, m, true, target.message_id).await;
            }
            Some(Reply::Edit(m) | Reply::Message(m)) if !update && !m.ephemeral => {
                let shown = http
                    .edit_original_interaction_response(&target.token, &edit_response(m)?, Vec::new())
                    .await
                    .map_err(http_error("edit the original response"))?;
                self.note(http, target, m, false, Some(shown.id)).await;
            }
            Some(Reply::Modal(modal)) => {
                tracing::warn!(custom_id = %modal.custom_id, "a modal cannot follow a deferred response");
                let text = View::text(self.inner.texts.failed.clone()).ephemeral();
                self.followup_replacing(http, target, &text).await?;
            }
            Some(Reply::Notice(text)) => {
                self.followup_replacing(http, target, &View::text(text.clone()).ephemeral()).await?;
            }
            // A new message after a deferred update; an ephemeral one after a public
            // "thinking…" (which cannot become ephemeral).
            Some(Reply::Edit(m) | Reply::Message(m)) => self.followup_replacing(http, target, m).await?,
        }
        if let Some(extra) = answer.extra {
            self.follow(http, target, extra, update).await?;
        }
        Ok(())
    }

    /// A follow-up message; after a deferred channel message, the "thinking…" goes
    /// first.
    async fn followup_replacing(&self, http: &Http, target: &Target, message: &View) -> Result<(), SerenityError> {
        if !target.on_message {
            http.delete_original_interaction_response(&target.token)
                .await
                .map_err(http_error("delete the original response"))?;
        }
        http.create_followup_message(&target.token, &followup(message)?, Vec::new())
            .await
            .map_err(http_error("send a follow-up"))?;
        Ok(())
    }

    /// The second reply, after a response that edited the component's message
    /// (`edited`) or not.
    async fn follow(&self, http: &Http, target: &Target, extra: Reply, edited: bool) -> Result<(), SerenityError> {
        match &extra {
            Reply::Notice(text) => {
                let message = View::text(text.clone()).ephemeral();
                http.create_followup_message(&target.token, &followup(&message)?, Vec::new())
                    .await
                    .map_err(http_error("send a follow-up"))?;
            }
            Reply::Message(m) => {
                http.create_followup_message(&target.token, &followup(m)?, Vec::new())
                    .await
                    .map_err(http_error("send a follow-up"))?;
            }
            Reply::Edit(m) if edited => {
                http.edit_original_interaction_response(&target.token, &edit_response(m)?, Vec::new())
                    .await
                    .map_err(http_error("edit the original response"))?;
            }
            Reply::Edit(m) => match (target.channel_id, target.message_id) {
                (Some(channel), Some(message)) => {
                    http.edit_message(channel, message, &edit_message(m)?, Vec::new())
                        .await
                        .map_err(http_error("edit the component's message"))?;
                }
                _ => return Err(SerenityError::NoRoute),
            },
            Reply::Modal(m) => return Err(SerenityError::LateModal { custom_id: m.custom_id.clone() }),
        }
        Ok(())
    }

    /// Records, for each session whose components `message` carries, that the
    /// interaction's original response shows it (`message_id`: the message, when
    /// known; a new message's id is asked of Discord, so that the bot token can edit
    /// it after the interaction token's 15 minutes).
    async fn note(&self, http: &Http, target: &Target, message: &View, edits: bool, message_id: Option<MessageId>) {
        if self.sessions_of(message).is_empty() {
            return;
        }
        let message_id = match message_id {
            Some(id) => Some(id),
            None if message.ephemeral => None,
            None => match http.get_original_interaction_response(&target.token).await {
                Ok(shown) => Some(shown.id),
                Err(error) => {
                    tracing::warn!(%error, "could not learn the id of a session's new message");
                    None
                }
            },
        };
        let at = ShownAt {
            application_id: target.application_id,
            token: Some(target.token.clone()),
            channel_id: target.channel_id.map(ChannelId::get),
            message_id: message_id.map(MessageId::get),
            ephemeral: if edits { target.message_ephemeral } else { message.ephemeral },
            user: target.user,
        };
        self.record(message, at).await;
    }

    /// The sessions whose components `message` carries.
    fn sessions_of(&self, message: &View) -> Vec<SessionId> {
        let mut sessions: Vec<SessionId> = Vec::new();
        for id in message.custom_ids() {
            if let Ok(id) = self.inner.manager.codec().decode(id)
                && !sessions.contains(&id.session())
            {
                sessions.push(id.session());
            }
        }
        sessions
    }

    /// Records where `message` is shown for each session whose components it carries:
    /// the message id in the session (the bot token's channel route) and the
    /// interaction token in [`Messages`]. Failures are logged: the answer is out.
    pub(super) async fn record(&self, message: &View, at: ShownAt) {
        let manager = &self.inner.manager;
        for session in self.sessions_of(message) {
            if let Some(id) = at.message_id.and_then(|m| i64::try_from(m).ok())
                && let Err(error) = manager.set_message(session, id).await
            {
                tracing::warn!(%error, %session, "could not record a session's message id");
            }
            let (Some(messages), Some(token)) = (&self.inner.messages, &at.token) else { continue };
            let shown =
                Shown::new(at.application_id, token.clone()).at(at.channel_id, at.message_id).ephemeral(at.ephemeral);
            if let Err(error) = messages.note(session, shown, at.user).await {
                tracing::warn!(%error, %session, "could not note where a session's Discord message is");
            }
        }
    }

    pub(super) fn window(&self) -> Duration {
        self.inner.defer_after
    }

    pub(super) fn failed_text(&self) -> &str {
        &self.inner.texts.failed
    }
}

/// Where a session's message is shown (see [`Router::record`]).
pub(super) struct ShownAt {
    pub(super) application_id: u64,
    /// The interaction token whose original response shows it (none for a prefix
    /// command's message).
    pub(super) token: Option<String>,
    pub(super) channel_id: Option<u64>,
    pub(super) message_id: Option<u64>,
    pub(super) ephemeral: bool,
    pub(super) user: Option<i64>,
}

/// The notice for an outcome no session answered (as the HTTP endpoint gives it).
fn default_answer(texts: &Texts, outcome: &RouteOutcome) -> Option<Reply> {
    match outcome {
        RouteOutcome::Refused { .. } => Some(Reply::notice(texts.not_yours.clone())),
        RouteOutcome::Expired { .. } | RouteOutcome::Ended { .. } | RouteOutcome::Unknown { .. } => {
            Some(Reply::notice(texts.expired.clone()))
        }
        RouteOutcome::Forged { .. } | RouteOutcome::Malformed { .. } => Some(Reply::notice(texts.forged.clone())),
        _ => None,
    }
}
