//! poise integration: [`SessionContext`] on `poise::Context`: the interaction's
//! [`Context`], data sessions from the user data ([`SessionsOf`]), and answers through
//! poise (`ctx.send`), so its "initial response sent" state stays right.

use std::sync::atomic::Ordering;

use ::poise::serenity_prelude::{CreateAllowedMentions, CreateInteractionResponse};
use ::poise::{CommandInteractionType, CreateReply};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::router::ShownAt;
use super::{Router, SerenityError, Session, action_rows, autocomplete_context, command_context, message_context};
use crate::discord::{MAX_CONTENT, RenderError};
use crate::interactive::{Interactive, Kind, Message, Reply, Started};
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
pub fn create_reply(message: &Message) -> Result<CreateReply, RenderError> {
    let len = message.text.chars().count();
    if len > MAX_CONTENT {
        return Err(RenderError::TooLong { what: "the message text", len, max: MAX_CONTENT });
    }
    Ok(CreateReply::default()
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
#[async_trait::async_trait]
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
    async fn send_reply(&self, reply: Reply) -> Result<(), SerenityError>;

    /// Starts a session of `kind` with `router`'s manager, shows what `start` answered
    /// through poise, and records its message (for the edit when the session ends
    /// unclicked). When `start` takes longer than the router's deferral window, the
    /// command is deferred first (`ctx.defer()`).
    ///
    /// # Errors
    ///
    /// [`SerenityError::Interactive`] when the start was refused or failed (the user
    /// was told); as [`send_reply`](Self::send_reply).
    async fn start_session<K: Interactive>(
        &self,
        router: &Router,
        kind: &Kind<K>,
        args: K::Args,
    ) -> Result<Started<K::Output>, SerenityError>
    where
        K::Args: Send;
}

fn http_error(call: &'static str) -> impl FnOnce(::serenity::Error) -> SerenityError {
    move |e| SerenityError::Http { call, source: Box::new(e) }
}

#[async_trait::async_trait]
impl<'a, U, E> SessionContext for ::poise::Context<'a, U, E>
where
    U: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    type Data = U;

    fn sessions_context(&self) -> Context {
        match self {
            ::poise::Context::Application(a) => match a.interaction_type {
                CommandInteractionType::Autocomplete => autocomplete_context(a.interaction),
                _ => command_context(a.interaction),
            },
            ::poise::Context::Prefix(p) => message_context(p.msg),
        }
    }

    fn session<T>(&self) -> Result<Session<T>, SessionError>
    where
        U: SessionsOf<T>,
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        Session::new(self.data().sessions(), &self.sessions_context())
    }

    async fn send_reply(&self, reply: Reply) -> Result<(), SerenityError> {
        match reply {
            Reply::Modal(m) => {
                let modal = super::modal(&m)?;
                match self {
                    ::poise::Context::Application(a) if !a.has_sent_initial_response.load(Ordering::SeqCst) => {
                        a.interaction
                            .create_response(a.serenity_context, CreateInteractionResponse::Modal(modal))
                            .await
                            .map_err(http_error("open a modal"))?;
                        a.has_sent_initial_response.store(true, Ordering::SeqCst);
                        Ok(())
                    }
                    _ => Err(SerenityError::LateModal { custom_id: m.custom_id }),
                }
            }
            Reply::Notice(text) => {
                let notice = Message::text(text).ephemeral();
                self.send(create_reply(&notice)?).await.map_err(http_error("answer the command"))?;
                Ok(())
            }
            Reply::Edit(m) | Reply::Message(m) => {
                self.send(create_reply(&m)?).await.map_err(http_error("answer the command"))?;
                Ok(())
            }
        }
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
        let ctx = self.sessions_context();
        let start = router.manager().start(kind, &ctx, args);
        let mut start = std::pin::pin!(start);
        let early = tokio::select! {
            done = &mut start => Some(done),
            () = tokio::time::sleep(router.window()) => None,
        };
        let started = match early {
            Some(done) => done,
            None => {
                self.defer().await.map_err(http_error("defer the command"))?;
                start.await
            }
        };
        let started = match started {
            Ok(started) => started,
            Err(error) => {
                let told = Message::text(router.failed_text()).ephemeral();
                if let Err(e) = self.send(create_reply(&told)?).await {
                    tracing::warn!(error = %e, "could not tell the user a session did not start");
                }
                return Err(error.into());
            }
        };
        match &started.reply {
            Some(Reply::Edit(m) | Reply::Message(m)) => {
                let handle = self.send(create_reply(m)?).await.map_err(http_error("answer the command"))?;
                if m.custom_ids().next().is_some() {
                    let shown = match handle.message().await {
                        Ok(shown) => Some((shown.channel_id.get(), shown.id.get())),
                        Err(error) => {
                            tracing::warn!(%error, "could not learn the id of a session's new message");
                            None
                        }
                    };
                    let (application_id, token) = match self {
                        ::poise::Context::Application(a) => {
                            (a.interaction.application_id.get(), Some(a.interaction.token.clone()))
                        }
                        ::poise::Context::Prefix(_) => (0, None),
                    };
                    let at = ShownAt {
                        application_id,
                        token,
                        channel_id: shown.map(|s| s.0).or(Some(self.channel_id().get())),
                        message_id: shown.map(|s| s.1),
                        ephemeral: m.ephemeral,
                        user: ctx.user_id,
                    };
                    router.record(m, at).await;
                }
            }
            Some(other) => self.send_reply(other.clone()).await?,
            None => {}
        }
        Ok(started)
    }
}
