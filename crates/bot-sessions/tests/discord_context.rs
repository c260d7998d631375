//! Every Discord fixture in tests/data/discord/ through `parse_interaction` and
//! `context_of` (or, for payloads twilight-model cannot read even with the fields
//! `parse_interaction` fills in, refused 400 by the endpoint with nothing routed).
#![cfg(feature = "discord")]

mod discord_common;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use bot_sessions::discord::{
    ChannelInfo, Command, InteractionInfo, ParseError, context_of, interaction_type, parse_interaction,
};
use bot_sessions::{ChatKind, ComponentKind, Context, KeyError, KeyStrategy, Scope};
use discord_common::*;
use twilight_model::application::command::CommandType;
use twilight_model::application::interaction::message_component::MessageComponentInteractionData;
use twilight_model::application::interaction::{InteractionData, InteractionType};
use twilight_model::channel::ChannelType;

/// What one fixture must yield.
#[derive(Default)]
struct Expect {
    kind: Option<InteractionType>,
    application: u64,
    user: Option<i64>,
    guild: Option<i64>,
    chat: Option<i64>,
    chat_kind: Option<ChatKind>,
    channel: Option<(ChannelType, Option<u64>)>,
    interaction: i64,
    token: &'static str,
    message: Option<i64>,
    custom_id: Option<&'static str>,
    component: Option<ComponentKind>,
    values: &'static [&'static str],
    fields: &'static [(&'static str, &'static str)],
    command: Option<(&'static str, CommandType, Option<u64>)>,
}

fn table() -> Vec<(&'static str, Expect)> {
    use ChatKind::{Guild, Private};
    use InteractionType::{ApplicationCommand, MessageComponent, ModalSubmit};
    let fischl_dm = Expect {
        kind: Some(ApplicationCommand),
        application: 1360871728770846733,
        user: Some(1034315047838687264),
        chat: Some(1374993866163355690),
        chat_kind: Some(Private),
        channel: Some((ChannelType::Private, None)),
        interaction: 1418573293438505022,
        command: Some(("echo", CommandType::ChatInput, None)),
        ..Expect::default()
    };
    let fischl_guild = Expect {
        kind: Some(ApplicationCommand),
        application: 1360871728770846733,
        user: Some(1034315047838687264),
        guild: Some(1345046958481346613),
        chat: Some(1345046959593095214),
        chat_kind: Some(Guild),
        channel: Some((ChannelType::GuildText, Some(1345046959593095213))),
        interaction: 1418572602737299559,
        command: Some(("echo", CommandType::ChatInput, None)),
        ..Expect::default()
    };
    let user_menu = Expect {
        interaction: 867794291820986368,
        command: Some(("context-menu-user-2", CommandType::User, Some(809850198683418695))),
        ..context_menu()
    };
    let message_menu = Expect {
        interaction: 867793873336926249,
        command: Some(("context-menu-message-2", CommandType::Message, Some(867793854505943041))),
        ..context_menu()
    };
    let button = Expect {
        kind: Some(MessageComponent),
        application: 290926444748734465,
        user: Some(53908232506183680),
        guild: Some(290926798626357999),
        chat: Some(345626669114982999),
        chat_kind: Some(Guild),
        interaction: 846462639134605312,
        token: "unique_interaction_token",
        message: Some(844397162624450620),
        custom_id: Some("click_one"),
        component: Some(ComponentKind::Button),
        ..Expect::default()
    };
    let select = Expect {
        kind: Some(MessageComponent),
        application: 845027738276462632,
        user: Some(53908232506183680),
        guild: Some(772904309264089089),
        chat: Some(772908445358620702),
        chat_kind: Some(Guild),
        interaction: 847587388497854464,
        token: "UNIQUE_TOKEN",
        message: Some(847587334500646933),
        custom_id: Some("class_select_1"),
        component: Some(ComponentKind::SelectMenu),
        values: &["mage", "rogue"],
        ..Expect::default()
    };
    let modal = Expect {
        kind: Some(ModalSubmit),
        application: 845027738276462632,
        user: Some(53908232506183680),
        guild: Some(772904309264089089),
        chat: Some(772908445358620702),
        chat_kind: Some(Guild),
        channel: Some((ChannelType::GuildText, Some(1113560261366927532))),
        interaction: 847587388497854464,
        token: "UNIQUE_TOKEN",
        custom_id: Some("cool_modal"),
        component: Some(ComponentKind::ModalSubmit),
        fields: &[("name", "John")],
        ..Expect::default()
    };
    vec![
        ("application_command_chat_input_dm_user_install__fischl_capture.json", fischl_dm),
        ("application_command_chat_input_guild__fischl_capture.json", fischl_guild),
        ("application_command_user_context_menu_guild__discord_docs.json", user_menu),
        ("application_command_message_context_menu_guild__discord_docs.json", message_menu),
        ("message_component_button_guild__discord_docs.json", button),
        ("message_component_string_select_guild__discord_docs.json", select),
        ("modal_submit_guild__discord_docs.json", modal),
    ]
}

/// The two context-menu samples: same user, guild and channel.
fn context_menu() -> Expect {
    Expect {
        kind: Some(InteractionType::ApplicationCommand),
        application: 775799577604522054,
        user: Some(167348773423415296),
        guild: Some(772904309264089089),
        chat: Some(772908445358620702),
        chat_kind: Some(ChatKind::Guild),
        token: "UNIQUE_TOKEN",
        ..Expect::default()
    }
}

fn check(file: &str, ctx: &Context, e: &Expect) {
    let info = ctx.extensions.get::<InteractionInfo>().unwrap_or_else(|| panic!("{file}: no InteractionInfo"));
    assert_eq!(Some(info.kind), e.kind, "{file}: kind");
    assert_eq!(info.application_id, e.application, "{file}: application");
    assert_eq!(ctx.user_id, e.user, "{file}: user");
    assert_eq!(ctx.guild_id, e.guild, "{file}: guild");
    assert_eq!(ctx.chat_id, e.chat, "{file}: chat");
    assert_eq!(ctx.chat_kind, e.chat_kind, "{file}: chat kind");
    assert_eq!((ctx.thread_id, ctx.topic_id), (None, None), "{file}: no thread in any fixture");
    let channel = ctx.extensions.get::<ChannelInfo>().map(|c| (c.kind, c.parent_id));
    assert_eq!(channel, e.channel, "{file}: channel info");
    assert_eq!(ctx.reply.interaction_id, Some(e.interaction), "{file}: interaction id");
    assert_eq!(ctx.reply.interaction_token.as_deref(), Some(e.token), "{file}: token");
    assert_eq!((ctx.message_id, ctx.reply.message_id), (e.message, e.message), "{file}: message");
    assert_eq!(ctx.custom_id.as_deref(), e.custom_id, "{file}: custom id");
    assert_eq!(ctx.component_kind(), e.component, "{file}: component");
    assert_eq!(ctx.values(), e.values, "{file}: values");
    let fields: BTreeMap<String, String> = e.fields.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    assert_eq!(ctx.component.as_ref().map(|c| c.fields.clone()).unwrap_or_default(), fields, "{file}: fields");
    let command = ctx.extensions.get::<Command>().map(|c| (c.name.as_str(), c.kind, c.target_id));
    assert_eq!(command, e.command, "{file}: command");
    assert_eq!(ctx.bot_id, None, "{file}: the bot id is the bot's to set");
    if !e.token.is_empty() {
        assert!(!format!("{ctx:?}").contains(e.token), "{file}: the token shows in Debug");
    }
}

#[test]
fn every_readable_fixture_yields_its_context() {
    for (file, expect) in table() {
        let interaction = parse_interaction(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        check(file, &context_of(&interaction), &expect);
    }
}

#[test]
fn command_options_are_typed_and_readable() {
    // The docs' /cardsearch sample has no application id (refused below); its options
    // are read the same way on a payload that has one.
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("application_command_chat_input_guild__discord_docs.json")).unwrap();
    body["application_id"] = "290926444748734465".into();
    let ctx = context_of(&parse_interaction(&serde_json::to_vec(&body).unwrap()).unwrap());
    let command = ctx.extensions.get::<Command>().unwrap();
    assert_eq!((command.name.as_str(), command.string("cardname")), ("cardsearch", Some("The Gitrog Monster")));
    assert_eq!(
        (ctx.user_id, ctx.guild_id, ctx.chat_id),
        (Some(53908232506183680), Some(290926798626357999), Some(645027906669510667))
    );
}

#[test]
fn the_data_only_channel_select_fixture_is_a_select_with_its_values() {
    // Only the `data` object: put it into the docs' button click.
    let data: MessageComponentInteractionData =
        serde_json::from_slice(&fixture("data_only_channel_select_resolved__discord_docs.json")).unwrap();
    let mut interaction = parse_interaction(&fixture("message_component_button_guild__discord_docs.json")).unwrap();
    interaction.data = Some(InteractionData::MessageComponent(Box::new(data)));
    let ctx = context_of(&interaction);
    assert_eq!(ctx.custom_id.as_deref(), Some("my_channel_select"));
    assert_eq!(ctx.component_kind(), Some(ComponentKind::SelectMenu));
    assert_eq!(ctx.values(), ["986678954901234567"]);
}

#[test]
fn a_thread_is_its_own_chat_and_never_a_topic() {
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("modal_submit_guild__discord_docs.json")).unwrap();
    body["channel"]["type"] = 11.into(); // a public thread of channel 1113560261366927532
    let ctx = context_of(&parse_interaction(&serde_json::to_vec(&body).unwrap()).unwrap());
    let thread = 772908445358620702;
    assert_eq!((ctx.chat_id, ctx.thread_id, ctx.topic_id), (Some(thread), Some(thread), None));
    assert_eq!(ctx.extensions.get::<ChannelInfo>().map(|c| c.parent_id), Some(Some(1113560261366927532)));
    let user = 53908232506183680;
    assert_eq!(KeyStrategy::ChatUser.scope(&ctx), Ok(Scope::ChatUser { chat: thread, user }));
    assert_eq!(KeyStrategy::GuildUser.scope(&ctx), Ok(Scope::GuildUser { guild: 772904309264089089, user }));
    assert_eq!(KeyStrategy::TopicOrChat.scope(&ctx), Ok(Scope::Chat(thread)));
    assert!(matches!(KeyStrategy::ChatTopic.scope(&ctx), Err(KeyError::MissingTopic { .. })));
}

/// The minimal payloads of discord-interactions-js have no `application_id`: never
/// invented, so refused; the PING among them is answered before anything is read.
#[tokio::test]
async fn minimal_payloads_without_an_application_id_are_refused_400_and_ping_is_pong() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    let refused = [
        "application_command_minimal__discord_interactions_js.json",
        "application_command_minimal__discord_interactions_js.stringified.json",
        "message_component_minimal_no_user__discord_interactions_js.json",
        "message_component_minimal_no_user__discord_interactions_js.stringified.json",
        "autocomplete_minimal__discord_interactions_js.json",
        "autocomplete_minimal__discord_interactions_js.stringified.json",
        "application_command_chat_input_guild__discord_docs.json",
    ];
    for file in refused {
        let body = fixture(file);
        assert!(matches!(parse_interaction(&body), Err(ParseError::Missing("application_id"))), "{file}");
        let (status, _) = send(&bot.router, signed(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{file}");
    }
    for file in ["ping__discord_interactions_js.json", "ping__discord_interactions_js.stringified.json"] {
        let body = fixture(file);
        assert_eq!(interaction_type(&body), Some(1));
        assert_eq!(send(&bot.router, signed(&body)).await, (StatusCode::OK, serde_json::json!({"type": 1})), "{file}");
    }
    let stats = bot.endpoint.stats();
    assert_eq!((stats.bad_requests, stats.pings, stats.routed, stats.handled), (7, 2, 0, 0));
    assert_eq!(bot.handler_calls(), 0);
}

/// `body` with an interaction id of its own: two of Discord's documented payloads share
/// one id, and the endpoint refuses an id it has seen (a replay).
fn with_fresh_id(body: &[u8]) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    let (mut inner, stringified) = match value {
        serde_json::Value::String(text) => (serde_json::from_str::<serde_json::Value>(&text).unwrap(), true),
        other => (other, false),
    };
    inner["id"] = serde_json::Value::String(interaction_id());
    if stringified {
        serde_json::to_vec(&serde_json::Value::String(inner.to_string())).unwrap()
    } else {
        serde_json::to_vec(&inner).unwrap()
    }
}

/// The readable fixtures, signed, reach the handler (none is one of our sessions).
#[tokio::test]
async fn readable_fixtures_reach_the_handler() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    for (file, _) in table() {
        let (status, response) = send(&bot.router, signed(&with_fresh_id(&fixture(file)))).await;
        assert_eq!(status, StatusCode::OK, "{file}: {response}");
        assert_eq!(response["type"], 4, "{file}: {response}");
    }
    assert_eq!(bot.handler_calls(), table().len());
}
