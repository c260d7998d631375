//! Application commands: `CommandRouter` sends each command to its handler with the
//! bot's state, on the endpoint (signed requests through the axum router) and from a
//! `Context` alone (what a gateway bot has); `Rest::register_commands` PUTs the list
//! to a local fake Discord API, globally or in one guild, refusing bad commands before
//! sending.
#![cfg(feature = "discord")]

mod discord_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bot_sessions::Context;
use bot_sessions::discord::{
    CommandDef, CommandRouter, Endpoint, Rest, RestError, context_of, interaction_response, parse_interaction,
};
use bot_sessions::interactive::{Reply, View};
use bot_sessions::testing::discord::FakeRest;
use discord_common::{APP, GUILD, OWNER, click, command, fixture, interact, public_key};
use serde_json::json;

#[derive(Default)]
struct Bot {
    counted: AtomicUsize,
}

fn router() -> CommandRouter<Arc<Bot>> {
    CommandRouter::new(Arc::new(Bot::default()))
        .command(CommandDef::slash("count", "Count up"), |bot: Arc<Bot>, _ctx: Context| async move {
            let n = bot.counted.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Some(Reply::message(View::text(format!("count: {n}")))))
        })
        .command(
            CommandDef::slash("cardsearch", "Find a card")
                .option(json!({"type": 3, "name": "cardname", "description": "The card", "required": true})),
            |_bot, ctx: Context| async move {
                let command = ctx.extensions.get::<bot_sessions::discord::Command>().cloned();
                let card = command.as_ref().and_then(|c| c.string("cardname")).unwrap_or("?").to_owned();
                Ok(Some(Reply::notice(format!("searching {card}"))))
            },
        )
}

#[tokio::test]
async fn the_router_answers_its_commands_and_hands_the_rest_on() {
    let endpoint = Endpoint::builder(public_key()).handler(router()).build().unwrap();
    let app = endpoint.router();
    for n in 1..=2 {
        let response = interact(&app, &command("count", OWNER, "tok")).await;
        assert_eq!((&response["type"], &response["data"]["content"]), (&json!(4), &json!(format!("count: {n}"))));
    }
    // Another command and a component of no session: the fallback (by default, an
    // ephemeral "not something I can answer").
    for body in [command("nope", OWNER, "tok"), click("other:1", OWNER, 5, "tok")] {
        let response = interact(&app, &body).await;
        assert_eq!(response["data"]["flags"], 64, "{response}");
        assert_eq!(response["data"]["content"], bot_sessions::discord::Texts::default().unsupported);
    }
    // A fallback of the bot's own.
    let app = Endpoint::builder(public_key())
        .handler(router().fallback(|_ctx, _interaction| async { Ok(Some(Reply::notice("mine"))) }))
        .build()
        .unwrap()
        .router();
    assert_eq!(interact(&app, &command("nope", OWNER, "tok")).await["data"]["content"], "mine");
}

#[tokio::test]
async fn the_router_serves_a_context_alone() {
    // Discord's documented slash command (tests/data/discord/SOURCES.md; the sample has
    // no application id, which the parser wants), as a gateway adapter's context would
    // carry it.
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("application_command_chat_input_guild__discord_docs.json")).unwrap();
    body["application_id"] = APP.to_string().into();
    let interaction = parse_interaction(&serde_json::to_vec(&body).unwrap()).unwrap();
    let router = router();
    let answer = router.route(context_of(&interaction)).expect("a command of the router").await.unwrap();
    assert_eq!(answer, Some(Reply::notice("searching The Gitrog Monster")));
    let json = serde_json::to_value(interaction_response(&answer.unwrap(), false).unwrap()).unwrap();
    assert_eq!(json["data"]["flags"], 64);
    // A component is no command.
    let component = parse_interaction(&serde_json::to_vec(&click("other:1", OWNER, 5, "tok")).unwrap()).unwrap();
    assert!(router.route(context_of(&component)).is_none());
    let names: Vec<_> = router.definitions().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["count", "cardsearch"]);
}

#[tokio::test]
async fn commands_are_registered_globally_or_in_a_guild() {
    let mut fake = FakeRest::start().await;
    let rest = Rest::builder().base_url(&fake.base).bot_token("abc.def").build().unwrap();
    let definitions = router().definitions().to_vec();
    fake.answer(200, json!([{"id": "1"}, {"id": "2"}]));
    assert_eq!(rest.register_commands(APP, None, &definitions).await.unwrap(), 2);
    let call = fake.next().await;
    assert_eq!((call.method.as_str(), call.path.clone()), ("PUT", format!("/api/v10/applications/{APP}/commands")));
    assert_eq!(call.authorization.as_deref(), Some("Bot abc.def"));
    // Discord's application command objects (developers/interactions/application-commands.mdx).
    assert_eq!(
        call.body,
        json!([
            {"name": "count", "description": "Count up", "type": 1},
            {"name": "cardsearch", "description": "Find a card", "type": 1,
             "options": [{"type": 3, "name": "cardname", "description": "The card", "required": true}]}
        ])
    );

    fake.answer(200, json!([{"id": "1"}]));
    let user_command = [CommandDef::user("Profile")];
    assert_eq!(rest.register_commands(APP, Some(GUILD), &user_command).await.unwrap(), 1);
    let call = fake.next().await;
    assert_eq!(call.path, format!("/api/v10/applications/{APP}/guilds/{GUILD}/commands"));
    assert_eq!(call.body, json!([{"name": "Profile", "description": "", "type": 2}]));

    // Refusals: Discord's (with its status), a bad command (nothing sent), no token.
    fake.answer(401, json!({"message": "401: Unauthorized", "code": 0}));
    let refused = rest.register_commands(APP, None, &definitions).await.unwrap_err();
    assert!(matches!(refused, RestError::Status { status: 401, .. }), "{refused}");
    assert_eq!(fake.received().len(), 1);
    let bad = [CommandDef::slash("Count", "capital letter")];
    assert!(matches!(rest.register_commands(APP, None, &bad).await, Err(RestError::Command(e)) if e.name == "Count"));
    let untokened = Rest::builder().base_url(&fake.base).build().unwrap();
    assert!(matches!(untokened.register_commands(APP, None, &definitions).await, Err(RestError::NoBotToken { .. })));
    assert!(fake.received().is_empty());
}
