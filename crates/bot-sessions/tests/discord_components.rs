//! Rich components (embeds, link buttons, emoji, select kinds and defaults, disabled
//! components, raw components) rendered for Discord, on the HTTP endpoint
//! (`message_data`, `interaction_response`) and through serenity's builders: each JSON
//! must hold the fields of Discord's documented component payloads
//! (discord/discord-api-docs `developers/components/reference.mdx`: Button, String
//! Select, Select Option, User/Role/Mentionable/Channel Select, Select Default Value;
//! `developers/resources/message.mdx`: Embed Object, Embed Field), and the two
//! transports must send the same components and embeds.
#![cfg(feature = "discord")]

use bot_sessions::discord::{RenderError, interaction_response, message_data};
use bot_sessions::interactive::{
    Button, ButtonStyle, Embed, Emoji, LinkButton, Raw, Reply, Select, SelectDefault, SelectOption, View, Widget,
};
use serde_json::{Value, json};

/// `value` with what Discord reads alike made alike: a `false` is an absent field
/// (serenity sends `"disabled": false`, twilight leaves it out), and a snowflake is a
/// string (serenity sends a select default's id as a number; Discord takes both).
fn normal(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| **v != Value::Bool(false))
                .map(|(k, v)| match v {
                    Value::Number(n) if k == "id" => (k.clone(), Value::String(n.to_string())),
                    _ => (k.clone(), normal(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normal).collect()),
        other => other.clone(),
    }
}

/// Whether every field of `expected` is in `actual` with the same value (arrays
/// element by element, same length).
fn holds(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|av| holds(av, v))),
        (Value::Array(a), Value::Array(e)) => a.len() == e.len() && a.iter().zip(e).all(|(x, y)| holds(x, y)),
        _ => actual == expected,
    }
}

#[track_caller]
fn assert_holds(actual: &Value, expected: &Value) {
    let (actual, expected) = (normal(actual), normal(expected));
    assert!(holds(&actual, &expected), "{actual:#}\ndoes not hold\n{expected:#}");
}

fn rich() -> View {
    View::text("pick")
        .embed(
            Embed::new()
                .title("Poll")
                .description("Lunch?")
                .url("https://example.com/poll")
                .colour(0x5865F2)
                .field("yes", "3")
                .inline_field("no", "1"),
        )
        .row([
            Widget::from(Button::new("Vote", "p:s:vote").style(ButtonStyle::Primary).emoji("🔥")),
            Button::new("Boost", "p:s:boost").emoji(Emoji::animated(41771983429993937, "LUL")).disabled().into(),
            LinkButton::new("Docs", "https://docs.rs/bot-sessions").emoji('📖').into(),
        ])
        .row([Select::new("p:s:class")
            .placeholder("Choose a class")
            .choices(1, 2)
            .option(
                SelectOption::new("Rogue", "rogue")
                    .description("Sneak n stab")
                    .emoji(Emoji::custom(625891304148303894, "rogue")),
            )
            .option(SelectOption::new("Mage", "mage").selected())])
        .row([Select::users("p:s:who").default_value(SelectDefault::User(80351110224678912))])
        .row([Select::mentionables("p:s:ping")
            .choices(0, 2)
            .default_value(SelectDefault::User(80351110224678912))
            .default_value(SelectDefault::Role(41771983423143936))
            .disabled()])
        .row([Select::channels("p:s:where", [0, 5]).default_value(SelectDefault::Channel(41771983423143937))])
}

/// What Discord documents for the message above.
fn documented() -> (Value, Value) {
    let components = json!([
        {"type": 1, "components": [
            {"type": 2, "style": 1, "label": "Vote", "custom_id": "p:s:vote", "emoji": {"name": "🔥"}},
            {"type": 2, "style": 2, "label": "Boost", "custom_id": "p:s:boost", "disabled": true,
             "emoji": {"id": "41771983429993937", "name": "LUL", "animated": true}},
            {"type": 2, "style": 5, "label": "Docs", "url": "https://docs.rs/bot-sessions", "emoji": {"name": "📖"}}
        ]},
        {"type": 1, "components": [
            {"type": 3, "custom_id": "p:s:class", "placeholder": "Choose a class", "min_values": 1, "max_values": 2,
             "options": [
                {"label": "Rogue", "value": "rogue", "description": "Sneak n stab",
                 "emoji": {"name": "rogue", "id": "625891304148303894"}},
                {"label": "Mage", "value": "mage", "default": true}
             ]}
        ]},
        {"type": 1, "components": [
            {"type": 5, "custom_id": "p:s:who", "default_values": [{"id": "80351110224678912", "type": "user"}]}
        ]},
        {"type": 1, "components": [
            {"type": 7, "custom_id": "p:s:ping", "min_values": 0, "max_values": 2, "disabled": true,
             "default_values": [{"id": "80351110224678912", "type": "user"}, {"id": "41771983423143936", "type": "role"}]}
        ]},
        {"type": 1, "components": [
            {"type": 8, "custom_id": "p:s:where", "channel_types": [0, 5],
             "default_values": [{"id": "41771983423143937", "type": "channel"}]}
        ]}
    ]);
    let embeds = json!([{
        "title": "Poll", "description": "Lunch?", "url": "https://example.com/poll", "color": 0x5865F2,
        "fields": [{"name": "yes", "value": "3", "inline": false}, {"name": "no", "value": "1", "inline": true}]
    }]);
    (components, embeds)
}

#[test]
fn the_endpoint_renders_rich_components_as_documented() {
    let data = serde_json::to_value(message_data(&rich()).expect("renders")).expect("json");
    let (components, embeds) = documented();
    assert_holds(&data["components"], &components);
    assert_holds(&data["embeds"], &embeds);
    // A link button carries no custom id; a string select's options are the only ones.
    assert!(data["components"][0]["components"][2].get("custom_id").is_none());
    assert!(data["components"][2]["components"][0].get("options").is_none());
    // Only components with a custom id route.
    assert_eq!(rich().custom_ids().count(), 6);

    // An edit replaces the embeds: no embeds is an empty list, which removes them.
    let edit = serde_json::to_value(interaction_response(&Reply::close("done"), true).expect("renders")).expect("json");
    assert_eq!((&edit["type"], &edit["data"]["embeds"]), (&json!(7), &json!([])));
}

#[test]
fn raw_components_go_as_given_and_are_refused_where_they_have_no_part() {
    let premium = json!({"type": 2, "style": 6, "sku_id": "1180218955160375406"});
    let message = View::text("support us").row([Raw::discord(premium.clone())]);
    let data = serde_json::to_value(message_data(&message).expect("renders")).expect("json");
    assert_holds(&data["components"][0]["components"][0], &premium);

    let telegram_only = View::text("pay").row([Raw::default().telegram(json!({"text": "Pay", "pay": true}))]);
    assert!(matches!(message_data(&telegram_only), Err(RenderError::Raw { .. })));
    let unknown = View::text("x").row([Raw::discord(json!({"type": 99, "custom_id": "p:s:x"}))]);
    assert!(matches!(message_data(&unknown), Err(RenderError::Raw { custom_id, .. }) if custom_id == "p:s:x"));
    // A raw select fills its row like any select.
    let select = Raw::discord(json!({"type": 5, "custom_id": "p:s:u"}));
    let crowded = View::text("x").row([Widget::from(select), Button::new("b", "p:s:b").into()]);
    assert!(matches!(message_data(&crowded), Err(RenderError::RowTooFull { row: 0, count: 2 })));
}

#[test]
fn what_discord_would_refuse_is_refused_before_sending() {
    let refused = |m: View| message_data(&m).expect_err("refused");
    let bad_url = View::text("x").row([LinkButton::new("Docs", "javascript:alert(1)")]);
    assert!(matches!(refused(bad_url), RenderError::Url { .. }));
    let defaults_on_text = View::text("x")
        .row([Select::new("s").option(SelectOption::new("a", "a")).default_value(SelectDefault::User(1))]);
    assert!(matches!(refused(defaults_on_text), RenderError::Select { .. }));
    let role_in_user_select = View::text("x").row([Select::users("s").default_value(SelectDefault::Role(1))]);
    assert!(matches!(refused(role_in_user_select), RenderError::Select { .. }));
    let too_many_defaults = View::text("x")
        .row([Select::users("s").default_value(SelectDefault::User(1)).default_value(SelectDefault::User(2))]);
    assert!(matches!(refused(too_many_defaults), RenderError::Select { .. }));
    let options_on_roles = View::text("x").row([Select::roles("s").option(SelectOption::new("a", "a"))]);
    assert!(matches!(refused(options_on_roles), RenderError::Select { .. }));
    let zero = View::text("x").row([Button::new("b", "c").emoji(Emoji::custom(0, "e"))]);
    assert!(matches!(refused(zero), RenderError::ZeroId { .. }));
    let eleven = (0..11).fold(View::text("x"), |m, _| m.embed(Embed::new().title("t")));
    assert!(matches!(refused(eleven), RenderError::TooMany { count: 11, max: 10, .. }));
    let fields = (0..26).fold(Embed::new(), |e, i| e.field(format!("f{i}"), "v"));
    assert!(matches!(refused(View::text("x").embed(fields)), RenderError::TooMany { count: 26, .. }));
    let long = View::text("x").embed(Embed::new().title("t".repeat(257)));
    assert!(matches!(refused(long), RenderError::TooLong { max: 256, .. }));
    let total = (0..2).fold(View::text("x"), |m, _| m.embed(Embed::new().description("d".repeat(3001))));
    assert!(matches!(refused(total), RenderError::TooLong { len: 6002, max: 6000, .. }));
    let empty_field = View::text("x").embed(Embed::new().field("", "v"));
    assert!(matches!(refused(empty_field), RenderError::Embed { .. }));
}

#[cfg(feature = "serenity")]
#[test]
fn serenity_sends_the_same_components_and_embeds() {
    use bot_sessions::discord::serenity::{create_response, edit_message, followup};

    let endpoint = serde_json::to_value(message_data(&rich()).expect("renders")).expect("json");
    let serenity =
        serde_json::to_value(create_response(&Reply::message(rich()), false).expect("renders")).expect("json");
    let (components, embeds) = documented();
    assert_holds(&serenity["data"]["components"], &components);
    assert_holds(&serenity["data"]["embeds"], &embeds);
    // The same fields both ways (serenity leaves out what is false or empty).
    assert_holds(&endpoint["components"], &serenity["data"]["components"]);
    assert_holds(&endpoint["embeds"], &serenity["data"]["embeds"]);
    for json in [
        serde_json::to_value(edit_message(&rich()).expect("edit")).expect("json"),
        serde_json::to_value(followup(&rich()).expect("followup")).expect("json"),
    ] {
        assert_holds(&json["components"], &components);
        assert_holds(&json["embeds"], &embeds);
    }

    // Raw buttons go through serenity's own button; other raw components are refused.
    let premium = json!({"type": 2, "style": 6, "sku_id": "1180218955160375406"});
    let raw = Reply::message(View::text("support").row([Raw::discord(premium.clone())]));
    let json = serde_json::to_value(create_response(&raw, false).expect("renders")).expect("json");
    assert_holds(&json["data"]["components"][0]["components"][0], &premium);
    let raw_select = Reply::message(View::text("x").row([Raw::discord(json!({"type": 5, "custom_id": "p:s:u"}))]));
    assert!(matches!(create_response(&raw_select, false), Err(RenderError::Raw { .. })));
    // The limits are the endpoint's.
    let bad_url = Reply::message(View::text("x").row([LinkButton::new("Docs", "ftp://x")]));
    assert!(matches!(create_response(&bad_url, false), Err(RenderError::Url { .. })));
}
