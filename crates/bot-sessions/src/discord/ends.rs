//! Showing what an interactive session's `end` answered when no click did (expiry
//! found by a sweeper, shutdown, an explicit end): typically its message edited to
//! say `expired`, without its components.

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::messages::{MessageRef, Messages};
use super::rest::{Rest, RestError};
use crate::interactive::{EndEvent, EndReason, Manager, Reply, View};
use crate::{StoreError, Timestamp};

/// What [`Ends::show`] did with an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndShown {
    /// Nothing to show: the click that finished the session got the end's reply, or
    /// the end gave none (or only a notice, which needs a click to answer).
    Nothing,
    /// Edited the message with the interaction token (`PATCH
    /// /webhooks/{application}/{token}/messages/@original`).
    EditedOriginal,
    /// Edited the message with the bot token (`PATCH /channels/{channel}/messages/{message}`).
    EditedChannelMessage,
    /// Sent a follow-up message with the interaction token.
    SentFollowup,
    /// Sent a message to the channel with the bot token.
    SentChannelMessage,
}

/// Why an end could not be shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndError {
    /// Neither a fresh interaction token nor (with a bot token) the channel and message
    /// are known for the session: nothing can edit its message.
    #[error("no way to reach the message of session {session}: no fresh interaction token, and {why}")]
    NoRoute {
        /// The session.
        session: String,
        /// What the channel route lacks.
        why: &'static str,
    },
    /// Reading the session's message record failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The REST call failed.
    #[error(transparent)]
    Rest(#[from] RestError),
}

/// Shows the ends of sessions on Discord; see [`Endpoint::ends`](super::Endpoint::ends).
///
/// | end's reply | request |
/// | --- | --- |
/// | [`Reply::Edit`] | the session's message edited: with a fresh interaction token, else (bot token) the channel message |
/// | [`Reply::Message`] | a follow-up with a fresh interaction token, else (bot token) a channel message |
/// | [`Reply::Notice`], [`Reply::Modal`] or none | nothing |
///
/// Ends with [`EndReason::Finished`] are skipped: the click that finished the session
/// was answered with the end's reply. The channel and message come from the session's
/// [`Messages`] record, else from its [`Origin`](crate::interactive::Origin) (its
/// message is known once a click came from it). An expiry found by a click is shown
/// by that click's response, and also by this (the same edit, twice).
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::{EndShown, Ends, Rest};
/// use bot_sessions::interactive::EndEvent;
///
/// async fn show(ends: &Ends, event: &EndEvent) {
///     match ends.show(event).await {
///         Ok(EndShown::EditedOriginal | EndShown::EditedChannelMessage) => println!("components removed"),
///         Ok(_) => {}
///         Err(error) => eprintln!("{error}"),
///     }
/// }
/// let _ends = Ends::new(Rest::builder().build()?, None);
/// # let _ = show;
/// # Ok::<(), bot_sessions::discord::RestError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Ends {
    rest: Rest,
    messages: Option<Messages>,
}

impl Ends {
    /// Shows ends with `rest`, finding messages in `messages` (`None`: only the
    /// channel route, from the sessions' origins).
    pub fn new(rest: Rest, messages: Option<Messages>) -> Self {
        Ends { rest, messages }
    }

    /// Shows one end (see the table).
    ///
    /// # Errors
    ///
    /// [`EndError`]: no route to the message, the record's store failed, or the REST
    /// call failed.
    pub async fn show(&self, event: &EndEvent) -> Result<EndShown, EndError> {
        let record = match &self.messages {
            Some(messages) => messages.get(event.session).await?,
            None => None,
        };
        let shown = self.show_with(event, record.as_ref()).await;
        if let Some(messages) = &self.messages
            && let Err(error) = messages.remove(event.session).await
        {
            tracing::warn!(%error, session = %event.session, "could not forget an ended session's message record");
        }
        shown
    }

    async fn show_with(&self, event: &EndEvent, record: Option<&MessageRef>) -> Result<EndShown, EndError> {
        if event.reason == EndReason::Finished {
            return Ok(EndShown::Nothing);
        }
        let (edit, message) = match &event.reply {
            Some(Reply::Edit(m)) => (true, m),
            Some(Reply::Message(m)) => (false, m),
            _ => return Ok(EndShown::Nothing),
        };
        let now = self.messages.as_ref().map_or_else(Timestamp::now, Messages::now);
        if let Some(record) = record
            && let Some(token) = record.fresh_token(now)
        {
            let app = record.application_id;
            let sent = if edit {
                self.rest.edit_original(app, token, message).await.map(|()| EndShown::EditedOriginal)
            } else {
                self.rest.followup(app, token, message).await.map(|()| EndShown::SentFollowup)
            };
            match sent {
                Err(error) if error.is_token_gone() => {} // try the channel route
                other => return Ok(other?),
            }
        }
        self.by_channel(event, record, edit, message).await
    }

    async fn by_channel(
        &self,
        event: &EndEvent,
        record: Option<&MessageRef>,
        edit: bool,
        message: &View,
    ) -> Result<EndShown, EndError> {
        let no_route = |why| EndError::NoRoute { session: event.session.to_string(), why };
        if !self.rest.has_bot_token() {
            return Err(no_route("no bot token is configured"));
        }
        if record.is_some_and(|r| r.ephemeral) {
            return Err(no_route("the message is ephemeral"));
        }
        let channel = record
            .and_then(|r| r.channel_id)
            .or_else(|| event.origin.chat.and_then(|c| u64::try_from(c).ok()))
            .ok_or_else(|| no_route("the channel is unknown"))?;
        if !edit {
            self.rest.create_message(channel, message).await?;
            return Ok(EndShown::SentChannelMessage);
        }
        let id = record
            .and_then(|r| r.message_id)
            .or_else(|| event.origin.message.and_then(|m| u64::try_from(m).ok()))
            .ok_or_else(|| no_route("the message id is unknown (nobody clicked it)"))?;
        self.rest.edit_message(channel, id, message).await?;
        Ok(EndShown::EditedChannelMessage)
    }

    /// Shows `message` (typically a text without components, like `forgotten`) on
    /// the messages of every session noted for `user`, before a forget-user erases
    /// them: a forget-user deletes sessions without ending them (no end event), so
    /// their messages would keep buttons that answer `expired`. Each message is edited
    /// like an end's (a fresh interaction token, else the channel message with the bot
    /// token); failures are logged and skipped. Returns how many were edited. Costs a
    /// scan of the records ([`Messages::of_user`]).
    ///
    /// # Errors
    ///
    /// [`EndError::Store`] when the records cannot be read.
    pub async fn close_user_messages(&self, user: i64, message: &View) -> Result<u64, EndError> {
        let Some(messages) = &self.messages else { return Ok(0) };
        let now = messages.now();
        let mut edited = 0;
        for (session, record) in messages.of_user(user).await? {
            let result = match record.fresh_token(now) {
                Some(token) => self.rest.edit_original(record.application_id, token, message).await,
                None => match (record.channel_id, record.message_id) {
                    (Some(channel), Some(id)) if !record.ephemeral => {
                        self.rest.edit_message(channel, id, message).await
                    }
                    _ => continue,
                },
            };
            match result {
                Ok(()) => edited += 1,
                Err(error) => tracing::warn!(%error, %session, "could not close a forgotten session's message"),
            }
        }
        Ok(edited)
    }

    /// Follows `manager`'s end events ([`Manager::subscribe`]) and shows each one, one
    /// at a time, until the manager is dropped; failures are logged. Returns the
    /// task's handle (abort it to stop).
    pub fn spawn(&self, manager: &Manager) -> JoinHandle<()> {
        let mut events = manager.subscribe();
        let ends = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        if let Err(error) = ends.show(&event).await {
                            tracing::warn!(%error, session = %event.session, reason = %event.reason, "could not show a session's end on Discord");
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "missed session ends: their Discord messages keep their components");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }
}
