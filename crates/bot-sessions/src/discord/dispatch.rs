//! One request through the endpoint (see [`endpoint`](super::endpoint) for the steps).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use twilight_model::application::interaction::{Interaction, InteractionType};
use twilight_model::channel::message::MessageFlags;
use twilight_model::http::interaction::{
    InteractionResponse, InteractionResponseData, InteractionResponseType as Kind,
};

use super::messages::Shown;
use super::replay::ReplayError;
use super::response::{bare, ephemeral, interaction_response};
use super::shared::{Shared, bump};
use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{context_of, interaction_type, parse_interaction};
use crate::Context;
use crate::interactive::{Reply, RouteOutcome, SessionId, View};
use crate::store::BoxError;

/// What an answer is about: where it goes, and with which token (never printed).
#[derive(Clone)]
struct Target {
    application_id: u64,
    token: String,
    channel_id: Option<u64>,
    message_id: Option<u64>,
    /// A component (or a modal opened by one) on a message: the response can edit it.
    on_message: bool,
    message_ephemeral: bool,
    user: Option<i64>,
}

impl Target {
    fn of(interaction: &Interaction, ctx: &Context) -> Self {
        #[allow(deprecated)] // the only channel id some payloads carry
        let channel = interaction.channel.as_ref().map(|c| c.id).or(interaction.channel_id);
        let message = interaction.message.as_ref();
        Target {
            application_id: interaction.application_id.get(),
            token: interaction.token.clone(),
            channel_id: channel.map(|c| c.get()),
            message_id: message.map(|m| m.id.get()),
            on_message: message.is_some(),
            message_ephemeral: message.and_then(|m| m.flags).is_some_and(|f| f.contains(MessageFlags::EPHEMERAL)),
            user: ctx.user_id,
        }
    }
}

/// What the session or the handler answered: the reply shown as the response, and a
/// second one (the update's and the end's both answered) sent after it.
struct Answer {
    primary: Option<Reply>,
    extra: Option<Reply>,
}

pub(super) async fn post(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    bump(&shared.counters.requests);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(error) = shared.key.verify(header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER), &body) {
        bump(&shared.counters.unauthorized);
        tracing::debug!(%error, "Discord interaction refused");
        return (StatusCode::UNAUTHORIZED, "invalid request signature").into_response();
    }
    let timestamp = match shared.replays.check_timestamp(header(TIMESTAMP_HEADER).unwrap_or_default()) {
        Ok(timestamp) => timestamp,
        Err(error) => return replay(&shared, &error),
    };
    // A PING that twilight-model cannot read (a minimal one) is still a PING.
    let interaction = match parse_interaction(&body) {
        Ok(interaction) if interaction.kind != InteractionType::Ping => interaction,
        Ok(_) => return pong(&shared),
        Err(_) if interaction_type(&body) == Some(InteractionType::Ping as u8) => return pong(&shared),
        Err(error) => {
            bump(&shared.counters.bad_requests);
            tracing::debug!(%error, "signed request is not an interaction");
            return (StatusCode::BAD_REQUEST, "not an interaction").into_response();
        }
    };
    match shared.replays.first_sighting(interaction.id.get(), timestamp).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return replay(&shared, &error),
        Err(error) => {
            failed(&shared, &error, "recording the interaction id");
            return (StatusCode::SERVICE_UNAVAILABLE, "cannot tell a replay now").into_response();
        }
    }
    json(&respond(shared, interaction).await)
}

/// A signed request refused as a replay: 401, like a bad signature.
fn replay(shared: &Shared, error: &ReplayError) -> Response {
    bump(&shared.counters.replays);
    tracing::debug!(%error, "Discord interaction refused");
    (StatusCode::UNAUTHORIZED, "invalid request signature").into_response()
}

fn pong(shared: &Shared) -> Response {
    bump(&shared.counters.pings);
    json(&bare(Kind::Pong))
}

fn json(response: &InteractionResponse) -> Response {
    match serde_json::to_vec(response) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

pub(super) async fn respond(shared: Arc<Shared>, interaction: Interaction) -> InteractionResponse {
    if interaction.kind == InteractionType::ApplicationCommandAutocomplete {
        let data = InteractionResponseData { choices: Some(Vec::new()), ..InteractionResponseData::default() };
        return InteractionResponse { kind: Kind::ApplicationCommandAutocompleteResult, data: Some(data) };
    }
    let ctx = context_of(&interaction);
    let target = Target::of(&interaction, &ctx);
    let mut work = Box::pin(work(shared.clone(), ctx, interaction));
    tokio::select! {
        answer = &mut work => finish(&shared, &target, answer).await,
        () = tokio::time::sleep(shared.defer_after) => {
            bump(&shared.counters.deferred);
            let kind = if target.on_message { Kind::DeferredUpdateMessage } else { Kind::DeferredChannelMessageWithSource };
            let shared = shared.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let answer = work.await;
                complete_deferred(&shared, &target, kind, answer).await;
            });
            bare(kind)
        }
    }
}

/// Routes to the session, else to the handler.
async fn work(shared: Arc<Shared>, ctx: Context, interaction: Interaction) -> Result<Answer, BoxError> {
    let component = matches!(interaction.kind, InteractionType::MessageComponent | InteractionType::ModalSubmit);
    if component && let Some(manager) = &shared.manager {
        let routed = manager.handle(&ctx).await?;
        if routed.outcome != RouteOutcome::NotOurs {
            bump(&shared.counters.routed);
            let texts = &shared.texts;
            let (primary, extra) = split(routed.reply, routed.end_reply);
            let primary = primary.or_else(|| match routed.outcome {
                RouteOutcome::Refused { .. } => Some(Reply::notice(texts.not_yours.clone())),
                RouteOutcome::Expired { .. } | RouteOutcome::Ended { .. } | RouteOutcome::Unknown { .. } => {
                    Some(Reply::notice(texts.expired.clone()))
                }
                RouteOutcome::Forged { .. } | RouteOutcome::Malformed { .. } => {
                    Some(Reply::notice(texts.forged.clone()))
                }
                _ => None,
            });
            return Ok(Answer { primary, extra });
        }
    }
    bump(&shared.counters.handled);
    let primary = match &shared.handler {
        Some(handler) => handler.handle(ctx, interaction).await?,
        None => Some(Reply::notice(shared.texts.unsupported.clone())),
    };
    Ok(Answer { primary, extra: None })
}

/// The update's reply and the end's, as one response and one follow-up: an edit of the
/// message goes in the response (the end's, the later state, when both edit); a notice
/// or a new message follows.
pub(super) fn split(update: Option<Reply>, end: Option<Reply>) -> (Option<Reply>, Option<Reply>) {
    match (update, end) {
        (Some(Reply::Edit(_)), Some(end @ Reply::Edit(_))) => (Some(end), None),
        (Some(update @ (Reply::Notice(_) | Reply::Message(_))), Some(end @ Reply::Edit(_))) => {
            (Some(end), Some(update))
        }
        (Some(update), Some(end)) => (Some(update), Some(end)),
        (update, end) => (update.or(end), None),
    }
}

fn failed(shared: &Shared, error: &dyn std::fmt::Display, what: &str) {
    bump(&shared.counters.failures);
    tracing::warn!(%error, "Discord interaction: {what} failed");
}

/// The answer was ready in time: the response, and what follows it.
async fn finish(shared: &Arc<Shared>, target: &Target, answer: Result<Answer, BoxError>) -> InteractionResponse {
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            failed(shared, &error, "the answer");
            return ephemeral(&shared.texts.failed);
        }
    };
    let response = match &answer.primary {
        None if target.on_message => bare(Kind::DeferredUpdateMessage),
        None => bare(Kind::DeferredChannelMessageWithSource),
        Some(reply) => match interaction_response(reply, target.on_message) {
            Ok(response) => response,
            Err(error) => {
                failed(shared, &error, "rendering the reply");
                return ephemeral(&shared.texts.failed);
            }
        },
    };
    if let Some(Reply::Edit(m) | Reply::Message(m)) = &answer.primary {
        note(shared, target, m, response.kind).await;
    }
    if let Some(extra) = answer.extra {
        let (shared, target, kind) = (shared.clone(), target.clone(), response.kind);
        tokio::spawn(async move { follow(&shared, &target, extra, kind).await });
    }
    response
}

/// The answer came after the deferred response `kind`: show it over REST.
async fn complete_deferred(shared: &Arc<Shared>, target: &Target, kind: Kind, answer: Result<Answer, BoxError>) {
    let rest = &shared.rest;
    let (app, token) = (target.application_id, target.token.as_str());
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            failed(shared, &error, "the deferred answer");
            Answer { primary: Some(Reply::notice(shared.texts.failed.clone())), extra: None }
        }
    };
    let update = kind == Kind::DeferredUpdateMessage;
    let shown = match answer.primary {
        None => Ok(()),
        Some(Reply::Edit(m)) if update => {
            let r = rest.edit_original(app, token, &m).await;
            if r.is_ok() {
                note(shared, target, &m, Kind::UpdateMessage).await;
            }
            r
        }
        Some(Reply::Edit(m) | Reply::Message(m)) if !update && !m.ephemeral => {
            let r = rest.edit_original(app, token, &m).await;
            if r.is_ok() {
                note(shared, target, &m, Kind::ChannelMessageWithSource).await;
            }
            r
        }
        Some(Reply::Modal(modal)) => {
            let error = format!("modal `{}` cannot follow a deferred response", modal.custom_id);
            failed(shared, &error, "the deferred answer");
            let text = View::text(shared.texts.failed.clone()).ephemeral();
            followup_replacing(shared, target, update, &text).await
        }
        Some(Reply::Notice(text)) => followup_replacing(shared, target, update, &View::text(text).ephemeral()).await,
        // A new message after a deferred update; an ephemeral one after a public
        // "thinking…" (which cannot become ephemeral).
        Some(Reply::Edit(m) | Reply::Message(m)) => followup_replacing(shared, target, update, &m).await,
    };
    if let Err(error) = shown {
        failed(shared, &error, "showing the deferred answer");
    }
    if let Some(extra) = answer.extra {
        let kind = if update { Kind::UpdateMessage } else { Kind::ChannelMessageWithSource };
        follow(shared, target, extra, kind).await;
    }
}

/// A follow-up message; after a deferred channel message, the "thinking…" goes first.
async fn followup_replacing(
    shared: &Shared,
    target: &Target,
    update: bool,
    message: &View,
) -> Result<(), super::RestError> {
    let (app, token) = (target.application_id, target.token.as_str());
    if !update {
        shared.rest.delete_original(app, token).await?;
    }
    shared.rest.followup(app, token, message).await
}

/// Sends the second reply after the response `kind` went out.
async fn follow(shared: &Shared, target: &Target, extra: Reply, kind: Kind) {
    let rest = &shared.rest;
    let (app, token) = (target.application_id, target.token.as_str());
    for attempt in 0..2 {
        let result = match &extra {
            Reply::Notice(text) => rest.followup(app, token, &View::text(text.clone()).ephemeral()).await,
            Reply::Message(m) => rest.followup(app, token, m).await,
            Reply::Edit(m) if matches!(kind, Kind::UpdateMessage | Kind::DeferredUpdateMessage) => {
                rest.edit_original(app, token, m).await
            }
            Reply::Edit(m) => match (target.channel_id, target.message_id) {
                (Some(channel), Some(message)) if rest.has_bot_token() => rest.edit_message(channel, message, m).await,
                _ => return failed(shared, &"no route to edit the component's message", "the end's edit"),
            },
            Reply::Modal(_) => return failed(shared, &"a modal can only be a first response", "the second reply"),
        };
        match result {
            Ok(()) => return,
            // The response may not be processed yet: Discord does not know the
            // webhook for a moment.
            Err(error) if attempt == 0 && error.is_token_gone() => {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(error) => return failed(shared, &error, "the second reply"),
        }
    }
}

/// Notes, for each session whose components `message` carries, that the interaction's
/// original response (of `kind`) shows it.
async fn note(shared: &Shared, target: &Target, message: &View, kind: Kind) {
    let (Some(messages), Some(manager)) = (&shared.messages, &shared.manager) else { return };
    let (message_id, ephemeral) = match kind {
        Kind::UpdateMessage | Kind::DeferredUpdateMessage => (target.message_id, target.message_ephemeral),
        Kind::ChannelMessageWithSource | Kind::DeferredChannelMessageWithSource => (None, message.ephemeral),
        _ => return,
    };
    let mut sessions: Vec<SessionId> = Vec::new();
    for id in message.custom_ids() {
        if let Ok(id) = manager.codec().decode(id)
            && !sessions.contains(&id.session())
        {
            sessions.push(id.session());
        }
    }
    for session in sessions {
        let shown = Shown::new(target.application_id, target.token.clone())
            .at(target.channel_id, message_id)
            .ephemeral(ephemeral);
        if let Err(error) = messages.note(session, shown, target.user).await {
            tracing::warn!(%error, %session, "could not note where a session's Discord message is");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_and_the_end_share_one_response_and_one_follow_up() {
        let edit = |t: &str| Reply::close(t);
        let notice = Reply::notice("saved");
        assert_eq!(split(Some(edit("a")), Some(edit("b"))), (Some(edit("b")), None));
        assert_eq!(split(Some(notice.clone()), Some(edit("b"))), (Some(edit("b")), Some(notice.clone())));
        assert_eq!(split(Some(edit("a")), Some(notice.clone())), (Some(edit("a")), Some(notice.clone())));
        assert_eq!(split(None, Some(edit("b"))), (Some(edit("b")), None));
        assert_eq!(split(Some(notice.clone()), None), (Some(notice), None));
        assert_eq!(split(None, None), (None, None));
    }
}
