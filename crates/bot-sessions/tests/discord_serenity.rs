//! The serenity adapter (feature `serenity`): serenity's own interaction types, built
//! from the real payloads in `tests/data/discord/` (see SOURCES.md there), give the
//! same [`Context`] as the twilight adapter; replies render into serenity's builders
//! like the endpoint's; the [`Router`] answers through serenity's `Http` pointed at a
//! local fake Discord API (`FakeRest`), deferring slow answers, recording messages and
//! falling through for foreign ids.
#![cfg(feature = "serenity")]

mod discord_common;

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::discord::serenity::{Router, context_of, create_response};
use bot_sessions::discord::{
    ChannelInfo, Command, InteractionInfo, context_of as twilight_context_of, interaction_response, parse_interaction,
};
use bot_sessions::interactive::{
    Button, CustomIdCodec, Manager, Modal, Reply, RouteOutcome, Select, SelectOption, SigningKeys, Target, TextField,
    View,
};
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::testing::discord::FakeRest;
use bot_sessions::{Context, ManualClock};
use discord_common::{APP, CHANNEL, CODEC_SECRET, OWNER, Picker, STRANGER, click, command, fixture, submit};
use serde_json::{Value, json};
use serenity::all::{Http, HttpBuilder, Interaction};
use tokio::sync::Notify;

/// The fixtures serenity reads, with the twilight adapter's reading of the same bytes.
const FIXTURES: &[&str] = &[
    "message_component_button_guild__discord_docs.json",
    "message_component_string_select_guild__discord_docs.json",
    "modal_submit_guild__discord_docs.json",
    "application_command_chat_input_guild__discord_docs.json",
    "application_command_user_context_menu_guild__discord_docs.json",
    "application_command_message_context_menu_guild__discord_docs.json",
    "application_command_chat_input_dm_user_install__fischl_capture.json",
    "application_command_chat_input_guild__fischl_capture.json",
];

fn serenity_interaction(body: &Value) -> Interaction {
    serde_json::from_value(completed(body.clone())).unwrap_or_else(|e| panic!("serenity cannot read {body}: {e}"))
}

/// What both adapters must agree on.
fn summary(ctx: &Context) -> Value {
    let info = ctx.extensions.get::<InteractionInfo>().expect("interaction info");
    let command = ctx.extensions.get::<Command>().map(|c| {
        json!({"id": c.id, "name": c.name, "kind": format!("{:?}", c.kind), "target": c.target_id,
               "options": serde_json::to_value(&c.options).unwrap()})
    });
    let channel = ctx.extensions.get::<ChannelInfo>().map(|c| json!([format!("{:?}", c.kind), c.parent_id]));
    json!({
        "user": ctx.user_id, "chat": ctx.chat_id, "kind": format!("{:?}", ctx.chat_kind), "guild": ctx.guild_id,
        "thread": ctx.thread_id, "topic": ctx.topic_id, "custom_id": ctx.custom_id,
        "component": format!("{:?}", ctx.component), "message": ctx.message_id, "reply": format!("{:?}", ctx.reply),
        "token": ctx.reply.interaction_token, "app": info.application_id, "type": format!("{:?}", info.kind),
        "locale": info.locale, "command": command, "channel": channel,
    })
}

/// Serenity insists on fields Discord always sends but the docs' samples leave out.
fn completed(mut body: Value) -> Value {
    for (field, value) in [
        ("application_id", json!(APP.to_string())),
        ("version", json!(1)),
        ("locale", json!("en-US")),
        ("authorizing_integration_owners", json!({})),
        ("attachment_size_limit", json!(8388608)),
        ("entitlements", json!([])),
    ] {
        if body.get(field).is_none() {
            body[field] = value;
        }
    }
    if let Some(member) = body.get_mut("member")
        && member.get("flags").is_none()
    {
        member["flags"] = json!(0);
    }
    body
}

#[test]
fn serenity_and_twilight_read_every_fixture_alike() {
    for name in FIXTURES {
        let body = completed(serde_json::from_slice(&fixture(name)).unwrap());
        let twilight = twilight_context_of(&parse_interaction(&serde_json::to_vec(&body).unwrap()).unwrap());
        let serenity = context_of(&serenity_interaction(&body)).expect("not a ping");
        assert_eq!(summary(&serenity), summary(&twilight), "{name}");
    }
}

#[test]
fn the_fixtures_yield_guild_dm_locale_and_command() {
    let dm = completed(
        serde_json::from_slice(&fixture("application_command_chat_input_dm_user_install__fischl_capture.json"))
            .unwrap(),
    );
    let ctx = context_of(&serenity_interaction(&dm)).unwrap();
    assert_eq!(ctx.chat_kind, Some(bot_sessions::ChatKind::Private));
    assert_eq!(ctx.guild_id, None);
    assert!(ctx.user_id.is_some());
    let guild =
        completed(serde_json::from_slice(&fixture("application_command_chat_input_guild__discord_docs.json")).unwrap());
    let ctx = context_of(&serenity_interaction(&guild)).unwrap();
    assert_eq!(ctx.chat_kind, Some(bot_sessions::ChatKind::Guild));
    assert_eq!(ctx.extensions.get::<Command>().map(|c| c.name.as_str()), Some("cardsearch"));
    assert_eq!(ctx.extensions.get::<Command>().and_then(|c| c.string("cardname")), Some("The Gitrog Monster"));
    assert_eq!(ctx.extensions.get::<InteractionInfo>().unwrap().locale.as_deref(), Some("en-US"));
}

/// Every select kind: the chosen ids as text, as twilight gives them.
#[test]
fn user_role_channel_and_mentionable_selects_give_their_ids() {
    let base: Value =
        serde_json::from_slice(&fixture("message_component_string_select_guild__discord_docs.json")).unwrap();
    for (component_type, values) in [
        (5, json!(["53908232506183680"])),
        (6, json!(["290926798626357999", "290926798626357998"])),
        (7, json!(["290926798626357998"])),
        (8, json!(["345626669114982999"])),
    ] {
        let mut body = completed(base.clone());
        body["data"] = json!({"custom_id": "m:s:pick", "component_type": component_type, "values": values});
        let serenity = context_of(&serenity_interaction(&body)).unwrap();
        let twilight = twilight_context_of(&parse_interaction(&serde_json::to_vec(&body).unwrap()).unwrap());
        assert_eq!(serenity.component_kind(), Some(bot_sessions::ComponentKind::SelectMenu), "type {component_type}");
        let expected: Vec<String> = serde_json::from_value(values).unwrap();
        assert_eq!(serenity.values(), expected.as_slice(), "type {component_type}");
        assert_eq!(summary(&serenity), summary(&twilight), "type {component_type}");
    }
}

/// A click in a thread: the thread is the chat and the thread; its parent is known.
#[test]
fn a_thread_is_detected_from_the_channel() {
    let mut body =
        completed(serde_json::from_slice(&fixture("message_component_button_guild__discord_docs.json")).unwrap());
    body["channel"] = json!({"id": "345626669114982999", "type": 11, "parent_id": "345626669114982000",
                             "name": "a thread", "thread_metadata": {"archived": false, "auto_archive_duration": 60,
                             "archive_timestamp": "2021-05-19T02:12:51.710000+00:00", "locked": false}});
    let ctx = context_of(&serenity_interaction(&body)).unwrap();
    assert_eq!(ctx.thread_id, Some(345626669114982999));
    assert_eq!(ctx.extensions.get::<ChannelInfo>().unwrap().parent_id, Some(345626669114982000));
    let twilight = twilight_context_of(&parse_interaction(&serde_json::to_vec(&body).unwrap()).unwrap());
    assert_eq!(summary(&ctx), summary(&twilight));
}

fn picker_message() -> View {
    View::text("value: 1").row([Button::new("+1", "m:s:inc"), Button::new("Done", "m:s:done").disabled()]).row([
        Select::new("m:s:size")
            .placeholder("size")
            .choices(1, 1)
            .option(SelectOption::new("Large", "l").description("big")),
    ])
}

/// The serenity builders carry what the endpoint's twilight response carries.
#[test]
fn replies_render_like_the_endpoint() {
    let replies = [
        (Reply::edit(picker_message()), true),
        (Reply::edit(picker_message()), false),
        (Reply::message(picker_message().ephemeral()), true),
        (Reply::notice("not yours"), true),
        (Reply::close("final: 1"), true),
        (
            Reply::modal(
                Modal::new("m:s:form", "Sign up")
                    .field(TextField::new("name", "Name"))
                    .field(TextField::new("about", "About").paragraph().optional().placeholder("…").value("hi")),
            ),
            false,
        ),
    ];
    for (reply, on_message) in replies {
        let ours = serde_json::to_value(create_response(&reply, on_message).unwrap()).unwrap();
        let theirs = serde_json::to_value(interaction_response(&reply, on_message).unwrap()).unwrap();
        assert_eq!(ours["type"], theirs["type"], "{reply:?}");
        for field in ["content", "custom_id", "title"] {
            assert_eq!(ours["data"][field], theirs["data"][field], "{field} of {reply:?}");
        }
        let flags = |v: &Value| v["data"]["flags"].as_u64().unwrap_or(0);
        assert_eq!(flags(&ours), flags(&theirs), "flags of {reply:?}");
        // No components: left out (a new message) or an empty list; both show none.
        let rows = |v: &Value| if v.is_null() { json!([]) } else { strip(v) };
        assert_eq!(rows(&ours["data"]["components"]), rows(&theirs["data"]["components"]), "{reply:?}");
        if reply.as_message().is_some() || matches!(reply, Reply::Notice(_)) {
            assert_eq!(ours["data"]["allowed_mentions"]["parse"], json!([]), "no pings: {reply:?}");
        }
    }
    let too_long = Reply::message(View::text("x".repeat(2001)));
    assert!(create_response(&too_long, false).is_err());
}

/// Components without nulls, empty lists and `false` (each side leaves out
/// different defaults).
fn strip(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !(v.is_null() || v == &&json!([]) || v == &&json!(false)))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

struct Bot {
    fake: FakeRest,
    http: Http,
    router: Router,
    kind: bot_sessions::interactive::Kind<Picker>,
}

async fn bot(picker: Picker, defer_after: Duration) -> Bot {
    let fake = FakeRest::start().await;
    let proxy = fake.base.trim_end_matches("/api/v10").to_owned();
    let http =
        HttpBuilder::new("Bot test-token").proxy(proxy).ratelimiter_disabled(true).application_id(APP.into()).build();
    let keys = SigningKeys::new([CODEC_SECRET.to_vec()]).unwrap();
    let codec = CustomIdCodec::new("t", Target::Discord).unwrap().signed(keys);
    let manager =
        Manager::builder(MemoryStore::new(), codec).clock(ManualClock::new(1_700_000_000_000)).build().unwrap();
    let kind = manager.register("picker", picker).unwrap();
    let router = Router::new(manager.clone()).unwrap().defer_after(defer_after);
    Bot { fake, http, router, kind }
}

fn message_json(id: u64) -> Value {
    json!({"id": id.to_string(), "channel_id": CHANNEL.to_string(), "type": 0, "content": "value: 0",
           "timestamp": "2021-05-19T02:12:51.710000+00:00", "edited_timestamp": null, "tts": false,
           "pinned": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
           "embeds": [], "flags": 0,
           "author": {"id": APP.to_string(), "username": "bot", "discriminator": "0", "avatar": null}})
}

fn command_interaction(name: &str, user: u64, token: &str) -> serenity::all::CommandInteraction {
    let mut body = command(name, user, token);
    body["locale"] = json!("de");
    match serenity_interaction(&body) {
        Interaction::Command(c) => c,
        other => panic!("not a command: {other:?}"),
    }
}

/// Starts a picker from `/menu`: returns its custom ids.
async fn start(bot: &mut Bot) -> (bot_sessions::interactive::SessionId, Vec<String>) {
    bot.fake.answer(204, Value::Null); // the callback
    bot.fake.answer(200, message_json(900)); // GET @original: the new message's id
    let command = command_interaction("menu", OWNER, "tok-start");
    let started = bot.router.start(&bot.http, &command, &bot.kind, ()).await.unwrap();
    let callback = bot.fake.next().await;
    assert_eq!(
        (callback.method.as_str(), callback.path.as_str()),
        ("POST", format!("/api/v10/interactions/{}/tok-start/callback", command.id).as_str())
    );
    assert_eq!(callback.authorization.as_deref(), Some("Bot test-token"));
    assert_eq!(callback.body["type"], 4, "a new message: {}", callback.body);
    let ids = discord_common::custom_ids(&callback.body);
    assert!(ids.iter().all(|id| id.starts_with("t:")), "{ids:?}");
    let get = bot.fake.next().await;
    assert_eq!(
        (get.method.as_str(), get.path.as_str()),
        ("GET", format!("/api/v10/webhooks/{APP}/tok-start/messages/@original").as_str())
    );
    (started.id, ids)
}

#[tokio::test]
async fn start_answers_the_command_and_records_the_message() {
    let mut bot = bot(Picker::default(), Duration::from_secs(30)).await;
    let (session, _) = start(&mut bot).await;
    let record = bot.router.message_records().unwrap().get(session).await.unwrap().expect("recorded");
    assert_eq!((record.channel_id, record.message_id), (Some(CHANNEL), Some(900)));
    assert_eq!(record.token.as_deref(), Some("tok-start"));
    assert!(bot.fake.received().is_empty());
}

#[tokio::test]
async fn a_click_is_routed_and_answered_with_update_message() {
    let mut bot = bot(Picker::default(), Duration::from_secs(30)).await;
    let (session, ids) = start(&mut bot).await;
    bot.fake.answer(204, Value::Null);
    let interaction = serenity_interaction(&click(&ids[1], OWNER, 900, "tok-click"));
    let outcome = bot.router.route(&bot.http, &interaction).await.unwrap();
    assert_eq!(outcome, RouteOutcome::Handled { session, ended: None });
    let call = bot.fake.next().await;
    assert_eq!(call.path, format!("/api/v10/interactions/{}/tok-click/callback", interaction.id()));
    assert_eq!(call.body["type"], 7, "{}", call.body);
    assert_eq!(call.body["data"]["content"], "value: 1");
    // The click's token is younger: noted for the end's edit.
    let record = bot.router.message_records().unwrap().get(session).await.unwrap().unwrap();
    assert_eq!(record.message_id, Some(900));
    assert!(bot.fake.received().is_empty());
}

#[tokio::test]
async fn foreign_ids_and_commands_fall_through_unanswered() {
    let mut bot = bot(Picker::default(), Duration::from_secs(30)).await;
    for body in [
        click("other:thing", OWNER, 900, "tok"),
        command("menu", OWNER, "tok"),
        submit("someone-elses-modal", &[("a", "b")], OWNER, None, "tok"),
    ] {
        let outcome = bot.router.route(&bot.http, &serenity_interaction(&body)).await.unwrap();
        assert_eq!(outcome, RouteOutcome::NotOurs, "{body}");
    }
    tokio::task::yield_now().await;
    assert!(bot.fake.received().is_empty());
}

#[tokio::test]
async fn a_strangers_click_and_an_unknown_session_get_notices() {
    let mut bot = bot(Picker::default(), Duration::from_secs(30)).await;
    let (_, ids) = start(&mut bot).await;
    bot.fake.answer(204, Value::Null);
    let outcome =
        bot.router.route(&bot.http, &serenity_interaction(&click(&ids[1], STRANGER, 900, "tok-s"))).await.unwrap();
    assert!(matches!(outcome, RouteOutcome::Refused { .. }), "{outcome:?}");
    let call = bot.fake.next().await;
    assert_eq!((call.body["type"].as_u64(), call.body["data"]["flags"].as_u64()), (Some(4), Some(64)));
    assert_eq!(call.body["data"]["content"], bot_sessions::discord::Texts::default().not_yours);
}

#[tokio::test]
async fn a_modal_submit_is_routed() {
    let mut bot = bot(Picker::default(), Duration::from_secs(30)).await;
    let (session, ids) = start(&mut bot).await;
    // "Form" opens the modal.
    bot.fake.answer(204, Value::Null);
    bot.router.route(&bot.http, &serenity_interaction(&click(&ids[2], OWNER, 900, "tok-f"))).await.unwrap();
    let modal = bot.fake.next().await;
    assert_eq!(modal.body["type"], 9);
    let modal_id = modal.body["data"]["custom_id"].as_str().unwrap().to_owned();
    bot.fake.answer(204, Value::Null);
    let submit = serenity_interaction(&submit(&modal_id, &[("name", "Ada")], OWNER, Some(900), "tok-m"));
    let outcome = bot.router.route(&bot.http, &submit).await.unwrap();
    assert_eq!(outcome, RouteOutcome::Handled { session, ended: None });
    let call = bot.fake.next().await;
    assert_eq!(call.body["type"], 7);
    assert_eq!(call.body["data"]["content"], "value: 0, name: Ada");
}

/// A click whose session takes longer than the window: `DEFERRED_UPDATE_MESSAGE` at
/// once, then the edit of the original response when the answer is ready.
#[tokio::test]
async fn a_slow_click_is_deferred_then_edited() {
    let gate = Arc::new(Notify::new());
    let mut bot = bot(Picker { gate: Some(gate.clone()) }, Duration::from_millis(50)).await;
    let (_, ids) = start(&mut bot).await;
    bot.fake.answer(204, Value::Null);
    bot.fake.answer(200, message_json(900));
    let (router, http) = (bot.router.clone(), Arc::new(std::mem::replace(&mut bot.http, Http::new(""))));
    let interaction = serenity_interaction(&click(&ids[1], OWNER, 900, "tok-slow"));
    let interaction_id = interaction.id();
    let routed = tokio::spawn({
        let http = http.clone();
        async move { router.route(&http, &interaction).await }
    });
    let deferred = bot.fake.next().await;
    assert_eq!(deferred.path, format!("/api/v10/interactions/{interaction_id}/tok-slow/callback"));
    assert_eq!(deferred.body["type"], 6, "DEFERRED_UPDATE_MESSAGE: {}", deferred.body);
    gate.notify_one();
    let edit = bot.fake.next().await;
    assert_eq!(
        (edit.method.as_str(), edit.path.as_str()),
        ("PATCH", format!("/api/v10/webhooks/{APP}/tok-slow/messages/@original").as_str())
    );
    assert_eq!(edit.body["content"], "value: 1");
    assert!(matches!(routed.await.unwrap().unwrap(), RouteOutcome::Handled { .. }));
}

/// The bot's own slow command: `DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE`, then the edit.
#[tokio::test]
async fn a_slow_command_answer_is_deferred_then_edited() {
    let mut bot = bot(Picker::default(), Duration::from_millis(50)).await;
    let gate = Arc::new(Notify::new());
    bot.fake.answer(204, Value::Null);
    bot.fake.answer(200, message_json(901));
    let interaction = serenity_interaction(&command("slow", OWNER, "tok-cmd"));
    let (router, http) = (bot.router.clone(), Arc::new(std::mem::replace(&mut bot.http, Http::new(""))));
    let answered = tokio::spawn({
        let (http, gate) = (http.clone(), gate.clone());
        async move {
            let work = async move {
                gate.notified().await;
                Ok::<_, std::io::Error>(Some(Reply::message(View::text("done"))))
            };
            router.answer(&http, &interaction, work).await
        }
    });
    let deferred = bot.fake.next().await;
    assert_eq!(deferred.body["type"], 5, "{}", deferred.body);
    gate.notify_one();
    let edit = bot.fake.next().await;
    assert_eq!(edit.method, "PATCH");
    assert_eq!(edit.body["content"], "done");
    answered.await.unwrap().unwrap();
}

/// A failed answer tells the user and returns the error.
#[tokio::test]
async fn a_failed_answer_is_told_and_returned() {
    let mut bot = bot(Picker::default(), Duration::from_secs(30)).await;
    bot.fake.answer(204, Value::Null);
    let interaction = serenity_interaction(&command("broken", OWNER, "tok-e"));
    let work = async { Err::<Option<Reply>, _>(std::io::Error::other("no database")) };
    let error = bot.router.answer(&bot.http, &interaction, work).await.unwrap_err();
    assert!(error.to_string().contains("no database"), "{error}");
    let call = bot.fake.next().await;
    assert_eq!((call.body["type"].as_u64(), call.body["data"]["flags"].as_u64()), (Some(4), Some(64)));
}
