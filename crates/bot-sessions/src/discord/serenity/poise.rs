//! poise integration: [`SessionContext`] on `poise::Context`: the interaction's
//! [`Context`], data sessions from the user data ([`SessionsOf`]), and answers through
//! poise (`ctx.send`), so its "initial response sent" state stays right.

use std::sync::atomic::Ordering;

use ::poise::serenity_prelude::{CreateAllowedMentions, CreateInteractionResponse, CreateModal};
use ::poise::{CommandInteractionType, CreateReply};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::router::ShownAt;
use super::{
    Router, SerenityError, Session, action_rows, autocomplete_context, command_context, create_embeds, message_context,
};
use crate::discord::{MAX_CONTENT, RenderError};
use crate::interactive::{Interactive, Kind, Reply, Started, View};
use crate::{Context, SessionError, Sessions};

/// User data (poise's `Data`) that holds the [`Sessions<T>`] of a session type; one
/// implementation per type. A `Sessions<T>` is one itself.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::serenity::SessionsOf;
/// use bot_sessions::Sessions;
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Profile { bio: String }
///
/// struct Data { profiles: Sessions<Profile> }
///
/// impl SessionsOf<Profile> for Data {
///     fn sessions(&self) -> &Sessions<Profile> { &self.profiles }
/// }
/// ```
pub trait SessionsOf<T> {
    /// The sessions of type `T`.
    fn sessions(&self) -> &Sessions<T>;
}

impl<T> SessionsOf<T> for Sessions<T> {
    fn sessions(&self) -> &Sessions<T> {
        self
    }
}

/// A message as a poise reply: text, components, the ephemeral flag, no mentions.
///
/// # Errors
///
/// [`RenderError`] for a message Discord would refuse.
pub fn create_reply(message: &View) -> Result<CreateReply, RenderError> {
    let len = message.text.chars().count();
    if len > MAX_CONTENT {
        return Err(RenderError::TooLong { what: "the message text", len, max: MAX_CONTENT });
    }
    let reply = create_embeds(&message.embeds)?.into_iter().fold(CreateReply::default(), CreateReply::embed);
    Ok(reply
        .content(message.text.clone())
        .components(action_rows(message)?)
        .ephemeral(message.ephemeral)
        .allowed_mentions(CreateAllowedMentions::new()))
}

/// Sessions on a `poise::Context`.
///
/// # Examples
///
/// ```no_run
/// use bot_sessions::discord::serenity::{SessionContext, SessionsOf};
/// use bot_sessions::{SessionError, Sessions};
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// struct Profile { bio: String }
/// struct Data { profiles: Sessions<Profile> }
/// impl SessionsOf<Profile> for Data {
///     fn sessions(&self) -> &Sessions<Profile> { &self.profiles }
/// }
/// type Error = Box<dyn std::error::Error + Send + Sync>;
///
/// /// Shows or sets your profile in this server.
/// #[poise::command(slash_command, guild_only)]
/// async fn profile(ctx: poise::Context<'_, Data, Error>, bio: Option<String>) -> Result<(), Error> {
///     let session = ctx.session::<Profile>()?;
///     let shown = session.update(|p| {
///         if let Some(bio) = &bio { p.bio = bio.clone(); }
///         Ok::<_, SessionError>(p.bio.clone())
///     }).await?;
///     ctx.say(format!("bio: {shown}")).await?;
///     Ok(())
/// }
/// ```
pub trait SessionContext: Send + Sync {
    /// poise's user data type.
    type Data;

    /// The [`Context`] of the invocation: a slash or context-menu command's (or
    /// autocomplete request's) interaction, or a prefix command's message.
    fn sessions_context(&self) -> Context;

    /// The data session of type `T` this invocation belongs to, from the
    /// [`Sessions<T>`] in the user data.
    ///
    /// # Errors
    ///
    /// [`SessionError::Key`] when the invocation lacks an id the key strategy needs.
    fn session<T>(&self) -> Result<Session<T>, SessionError>
    where
        Self::Data: SessionsOf<T>,
        T: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Answers with `reply` through poise (`ctx.send`: the first response, or a
    /// follow-up once one went out). An edit is a new message here (a command has no
    /// message to edit); a notice is an ephemeral message; a modal is the interaction's
    /// first response.
    ///
    /// # Errors
    ///
    /// [`RenderError`] (in [`SerenityError::Render`]); [`SerenityError::LateModal`] for
    /// a modal after the first response or on a prefix command; a failed API call.
    fn send_reply(&self, reply: Reply) -> impl Future<Output = Result<(), SerenityError>> + Send;

    /// Starts a session of `kind` with `router`'s manager, shows what `start` answered
    /// through poise, and records its message (for the edit when the session ends
    /// unclicked). When `start` takes longer than the router's deferral window, the
    /// command is deferred first (`ctx.defer()`).
    ///
    /// # Errors
    ///
    /// [`SerenityError::Interactive`] when the start was refused or failed (the user
    /// was told); as [`send_reply`](Self::send_reply).
    fn start_session<K: Interactive>(
        &self,
        router: &Router,
        kind: &Kind<K>,
        args: K::Args,
    ) -> impl Future<Output = Result<Started<K::Output>, SerenityError>> + Send
    where
        K::Args: Send;
}

fn http_error(call: &'static str) -> impl FnOnce(::serenity::Error) -> SerenityError {
    move |e| SerenityError::Http { call, source: Box::new(e) }
}

/// What the session logic needs of one command invocation: poise's context in a bot,
/// a recording fake in the unit tests below.
#[async_trait::async_trait]
trait Invocation: Send + Sync {
    fn context(&self) -> Context;
    /// The interaction's application and token (none for a prefix command).
    fn token(&self) -> Option<(u64, String)>;
    fn channel(&self) -> u64;
    /// Opens a modal as the first response; `false` when that is no longer possible.
    async fn open_modal(&self, modal: CreateModal) -> Result<bool, SerenityError>;
    /// Sends through poise; with `locate`, returns the sent message's channel and id.
    async fn send(&self, reply: CreateReply, locate: bool) -> Result<Option<(u64, u64)>, SerenityError>;
    async fn defer(&self) -> Result<(), SerenityError>;
}

#[async_trait::async_trait]
impl<U, E> Invocation for ::poise::Context<'_, U, E>
where
    U: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn context(&self) -> Context {
        match self {
            ::poise::Context::Application(a) => match a.interaction_type {
                CommandInteractionType::Autocomplete => autocomplete_context(a.interaction),
                _ => command_context(a.interaction),
            },
            ::poise::Context::Prefix(p) => message_context(p.msg),
        }
    }

    fn token(&self) -> Option<(u64, String)> {
        match self {
            ::poise::Context::Application(a) => Some((a.interaction.application_id.get(), a.interaction.token.clone())),
            ::poise::Context::Prefix(_) => None,
        }
    }

    fn channel(&self) -> u64 {
        self.channel_id().get()
    }

    async fn open_modal(&self, modal: CreateModal) -> Result<bool, SerenityError> {
        match self {
            ::poise::Context::Application(a) if !a.has_sent_initial_response.load(Ordering::SeqCst) => {
                a.interaction
                    .create_response(a.serenity_context, CreateInteractionResponse::Modal(modal))
                    .await
                    .map_err(http_error("open a modal"))?;
                a.has_sent_initial_response.store(true, Ordering::SeqCst);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn send(&self, reply: CreateReply, locate: bool) -> Result<Option<(u64, u64)>, SerenityError> {
        let handle = ::poise::Context::send(*self, reply).await.map_err(http_error("answer the command"))?;
        if !locate {
            return Ok(None);
        }
        match handle.message().await {
            Ok(shown) => Ok(Some((shown.channel_id.get(), shown.id.get()))),
            Err(error) => {
                tracing::warn!(%error, "could not learn the id of a session's new message");
                Ok(None)
            }
        }
    }

    async fn defer(&self) -> Result<(), SerenityError> {
        ::poise::Context::defer(*self).await.map_err(http_error("defer the command"))
    }
}

impl<'a, U, E> SessionContext for ::poise::Context<'a, U, E>
where
    U: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    type Data = U;

    fn sessions_context(&self) -> Context {
        Invocation::context(self)
    }

    fn session<T>(&self) -> Result<Session<T>, SessionError>
    where
        U: SessionsOf<T>,
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        Session::new(self.data().sessions(), &Invocation::context(self))
    }

    async fn send_reply(&self, reply: Reply) -> Result<(), SerenityError> {
        send_reply(self, reply).await
    }

    async fn start_session<K: Interactive>(
        &self,
        router: &Router,
        kind: &Kind<K>,
        args: K::Args,
    ) -> Result<Started<K::Output>, SerenityError>
    where
        K::Args: Send,
    {
        start_session(self, router, kind, args).await
    }
}

async fn send_reply(inv: &impl Invocation, reply: Reply) -> Result<(), SerenityError> {
    match reply {
        Reply::Modal(m) => {
            if inv.open_modal(super::modal(&m)?).await? {
                Ok(())
            } else {
                Err(SerenityError::LateModal { custom_id: m.custom_id })
            }
        }
        Reply::Notice(text) => inv.send(create_reply(&View::text(text).ephemeral())?, false).await.map(drop),
        Reply::Edit(m) | Reply::Message(m) => inv.send(create_reply(&m)?, false).await.map(drop),
    }
}

async fn start_session<K: Interactive>(
    inv: &impl Invocation,
    router: &Router,
    kind: &Kind<K>,
    args: K::Args,
) -> Result<Started<K::Output>, SerenityError>
where
    K::Args: Send,
{
    let ctx = inv.context();
    let mut start = std::pin::pin!(router.manager().start(kind, &ctx, args));
    let early = tokio::select! {
        done = &mut start => Some(done),
        () = tokio::time::sleep(router.window()) => None,
    };
    let started = match early {
        Some(done) => done,
        None => {
            inv.defer().await?;
            start.await
        }
    };
    let started = match started {
        Ok(started) => started,
        Err(error) => {
            let told = View::text(router.failed_text()).ephemeral();
            if let Err(e) = inv.send(create_reply(&told)?, false).await {
                tracing::warn!(error = %e, "could not tell the user a session did not start");
            }
            return Err(error.into());
        }
    };
    match &started.reply {
        Some(Reply::Edit(m) | Reply::Message(m)) => {
            let carries_ids = m.custom_ids().next().is_some();
            let shown = inv.send(create_reply(m)?, carries_ids).await?;
            if carries_ids {
                let token = inv.token();
                let at = ShownAt {
                    application_id: token.as_ref().map_or(0, |t| t.0),
                    token: token.map(|t| t.1),
                    channel_id: Some(shown.map_or(inv.channel(), |s| s.0)),
                    message_id: shown.map(|s| s.1),
                    ephemeral: m.ephemeral,
                    user: ctx.user_id,
                };
                router.record(m, at).await;
            }
        }
        Some(other) => send_reply(inv, other.clone()).await?,
        None => {}
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    //! The poise flow over a recording [`Invocation`] (a `poise::Context` needs a live
    //! gateway shard): what goes out through `ctx.send`, in which order, and what is
    //! recorded.
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::{Value, json};
    use tokio::sync::Notify;

    use super::*;
    use crate::interactive::{
        Button, CustomIdCodec, Filter, InteractiveError, Manager, Modal, StartCx, Target, TextField,
    };
    use crate::store::BoxError;
    use crate::store::memory::MemoryStore;

    #[derive(Default)]
    struct Fake {
        initial_sent: std::sync::atomic::AtomicBool,
        events: Mutex<Vec<Value>>,
    }

    impl Fake {
        fn events(&self) -> Vec<Value> {
            self.events.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl Invocation for Fake {
        fn context(&self) -> Context {
            Context::new().guild(1).chat(2).user(42)
        }
        fn token(&self) -> Option<(u64, String)> {
            Some((7, "tok".into()))
        }
        fn channel(&self) -> u64 {
            2
        }
        async fn open_modal(&self, modal: CreateModal) -> Result<bool, SerenityError> {
            if self.initial_sent.swap(true, Ordering::SeqCst) {
                return Ok(false);
            }
            self.events.lock().unwrap().push(json!({"modal": serde_json::to_value(modal).unwrap()}));
            Ok(true)
        }
        async fn send(&self, reply: CreateReply, locate: bool) -> Result<Option<(u64, u64)>, SerenityError> {
            self.initial_sent.store(true, Ordering::SeqCst);
            self.events.lock().unwrap().push(json!({
                "content": reply.content, "ephemeral": reply.ephemeral,
                "components": serde_json::to_value(reply.components).unwrap(),
                "mentions": serde_json::to_value(reply.allowed_mentions).unwrap(),
            }));
            Ok(locate.then_some((2, 900)))
        }
        async fn defer(&self) -> Result<(), SerenityError> {
            self.initial_sent.store(true, Ordering::SeqCst);
            self.events.lock().unwrap().push(json!("defer"));
            Ok(())
        }
    }

    /// A session whose start waits for the gate, when there is one.
    struct Menu {
        gate: Option<Arc<Notify>>,
        refuse: bool,
    }

    impl Interactive for Menu {
        type State = u32;
        type Args = ();
        type Output = ();
        async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<u32, BoxError> {
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            cx.reply(Reply::message(View::text("menu").row([Button::new("Go", cx.encode(&cx.custom_id("go"))?)])));
            Ok(0)
        }
        fn start_filter(&self) -> Filter {
            if self.refuse { Filter::users("nobody", []) } else { Filter::allow_all() }
        }
    }

    fn router(menu: Menu, defer_after: Duration) -> (Router, Kind<Menu>) {
        let codec = CustomIdCodec::new("p", Target::Discord).unwrap();
        let manager = Manager::builder(MemoryStore::new(), codec).build().unwrap();
        let kind = manager.register("menu", menu).unwrap();
        (Router::new(manager).unwrap().defer_after(defer_after), kind)
    }

    #[tokio::test]
    async fn a_started_session_is_sent_through_poise_and_its_message_recorded() {
        let (router, kind) = router(Menu { gate: None, refuse: false }, Duration::from_secs(30));
        let fake = Fake::default();
        let started = start_session(&fake, &router, &kind, ()).await.unwrap();
        let events = fake.events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["content"], "menu");
        assert_eq!(events[0]["ephemeral"], false);
        assert_eq!(events[0]["mentions"]["parse"], json!([]));
        let id = events[0]["components"][0]["components"][0]["custom_id"].as_str().unwrap();
        assert!(id.starts_with("p:"), "{id}");
        let record = router.message_records().unwrap().get(started.id).await.unwrap().expect("recorded");
        assert_eq!((record.application_id, record.channel_id, record.message_id), (7, Some(2), Some(900)));
        assert_eq!(record.token.as_deref(), Some("tok"));
    }

    #[tokio::test]
    async fn a_slow_start_defers_before_poise_sends() {
        let gate = Arc::new(Notify::new());
        let (router, kind) = router(Menu { gate: Some(gate.clone()), refuse: false }, Duration::from_millis(20));
        let fake = Arc::new(Fake::default());
        let task = tokio::spawn({
            let fake = fake.clone();
            async move { start_session(&*fake, &router, &kind, ()).await.map(|s| s.id) }
        });
        // The deferral goes out while `start` waits (polled, no sleep-and-hope).
        while fake.events().is_empty() {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(fake.events(), [json!("defer")]);
        gate.notify_one();
        task.await.unwrap().unwrap();
        let events = fake.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1]["content"], "menu");
    }

    #[tokio::test]
    async fn a_refused_start_is_told_through_poise_and_returned() {
        let (router, kind) = router(Menu { gate: None, refuse: true }, Duration::from_secs(30));
        let fake = Fake::default();
        let error = start_session(&fake, &router, &kind, ()).await.unwrap_err();
        assert!(matches!(error, SerenityError::Interactive(InteractiveError::StartRefused { .. })), "{error}");
        let events = fake.events();
        assert_eq!(events.len(), 1);
        assert_eq!((&events[0]["content"], &events[0]["ephemeral"]), (&json!(router.failed_text()), &json!(true)));
    }

    #[tokio::test]
    async fn a_modal_opens_only_as_the_first_response() {
        let fake = Fake::default();
        let modal = Modal::new("p:s:form", "Sign up").field(TextField::new("name", "Name"));
        send_reply(&fake, Reply::modal(modal.clone())).await.unwrap();
        assert_eq!(fake.events()[0]["modal"]["custom_id"], "p:s:form");
        let late = send_reply(&fake, Reply::modal(modal)).await.unwrap_err();
        assert!(matches!(late, SerenityError::LateModal { .. }), "{late}");
        send_reply(&fake, Reply::notice("saved")).await.unwrap();
        assert_eq!(fake.events()[1]["ephemeral"], true);
    }
}
