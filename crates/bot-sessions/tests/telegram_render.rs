//! The reply rendering of `telegram::CallbackRouter` on its own: keyboards, and the
//! requests planned for each routing outcome (no HTTP; the requests themselves go
//! through a fake Bot API in `telegram_router.rs`).
#![cfg(feature = "telegram")]

#[path = "telegram_support/queries.rs"]
mod queries;

use bot_sessions::interactive::{
    Button, CustomIdCodec, EndReason, Manager, Modal, Reply, RouteOutcome, Routed, Select, SessionId, Target, View,
};
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::telegram::{Action, CallbackRouter, CallbackTexts, MessageTarget, RenderError, keyboard};
use queries::{inline_query, query_on};
use serde_json::{Value, json};
use teloxide::types::{CallbackQuery, ChatId, MessageId};

#[test]
fn messages_become_inline_keyboards() {
    let menu = View::text("value: 0")
        .row([Button::new("-1", "m:s:dec"), Button::new("+1", "m:s:inc"), Button::new("x", "m:s:x").disabled()])
        .row([Button::new("gone", "m:s:gone").disabled()])
        .row([Button::new("Done", "m:s:done")]);
    let markup = keyboard(&menu).expect("keyboard");
    let rows: Vec<Vec<(String, Value)>> = markup
        .inline_keyboard
        .iter()
        .map(|row| row.iter().map(|b| (b.text.clone(), serde_json::to_value(&b.kind).expect("kind"))).collect())
        .collect();
    // Disabled buttons are left out, and so is a row left empty.
    assert_eq!(
        rows,
        vec![
            vec![
                ("-1".into(), json!({"callback_data": "m:s:dec"})),
                ("+1".into(), json!({"callback_data": "m:s:inc"}))
            ],
            vec![("Done".into(), json!({"callback_data": "m:s:done"}))],
        ]
    );
    assert!(keyboard(&View::text("plain")).expect("empty").inline_keyboard.is_empty());

    let select = View::text("size?").row([Select::new("m:s:size")]);
    assert_eq!(keyboard(&select), Err(RenderError::SelectUnsupported { custom_id: "m:s:size".into() }));
    let long = View::text("x").row([Button::new("long", "x".repeat(65))]);
    assert_eq!(keyboard(&long), Err(RenderError::CallbackData { label: "long".into(), len: 65 }));
    let empty = View::text("x").row([Button::new("empty", "")]);
    assert!(matches!(keyboard(&empty), Err(RenderError::CallbackData { len: 0, .. })));
    // 64 bytes of multi-byte text is the limit, not 64 characters.
    let at_limit = View::text("x").row([Button::new("ok", "é".repeat(32))]);
    assert!(keyboard(&at_limit).is_ok());
}

fn router() -> CallbackRouter {
    let codec = CustomIdCodec::new("m", Target::Telegram).expect("codec");
    CallbackRouter::new(Manager::builder(MemoryStore::new(), codec).build().expect("manager"))
}

fn routed(outcome: RouteOutcome, reply: Option<Reply>, end_reply: Option<Reply>) -> Routed {
    let mut r = Routed::of(outcome);
    r.reply = reply;
    r.end_reply = end_reply;
    r
}

fn handled() -> RouteOutcome {
    RouteOutcome::Handled { session: SessionId::random(), ended: None }
}

#[test]
fn plans_edit_only_what_changed() {
    let router = router();
    let shown = [("+1", "m:s:inc")];
    let q = query_on(42, 5, "value: 1", &shown, "m:s:inc");
    let target = MessageTarget::Chat { chat_id: ChatId(42), message_id: MessageId(5) };
    let menu = |text: &str, data: &str| View::text(text).row([Button::new("+1", data)]);

    // New text: editMessageText with the keyboard.
    let plan = router.plan(&q, &routed(handled(), Some(Reply::edit(menu("value: 2", "m:s:inc"))), None));
    assert_eq!(plan.notice, None);
    assert!(
        matches!(&plan.actions[..], [Action::EditText { target: t, text, .. }] if *t == target && text == "value: 2")
    );
    // Same text, other buttons: editMessageReplyMarkup.
    let plan = router.plan(&q, &routed(handled(), Some(Reply::edit(menu("value: 1", "m:s:inc2"))), None));
    assert!(matches!(&plan.actions[..], [Action::EditKeyboard { target: t, .. }] if *t == target));
    // Nothing changed: no request (Telegram would refuse it).
    let plan = router.plan(&q, &routed(handled(), Some(Reply::edit(menu("value: 1", "m:s:inc"))), None));
    assert!(plan.actions.is_empty());
    // Same text without buttons: the keyboard goes.
    let plan = router.plan(&q, &routed(handled(), Some(Reply::close("value: 1")), None));
    assert!(
        matches!(&plan.actions[..], [Action::EditKeyboard { keyboard, .. }] if keyboard.inline_keyboard.is_empty())
    );
    // An inline message is edited by its inline message id.
    let plan = router.plan(&inline_query("m:s:inc"), &routed(handled(), Some(Reply::edit(menu("v", "m:s:i"))), None));
    assert!(matches!(&plan.actions[..], [Action::EditText { target: MessageTarget::Inline(id), .. }] if id == "AAQ"));
}

#[test]
fn plans_answer_every_outcome() {
    let router = router().texts(CallbackTexts::default().not_yours("only the opener"));
    let q = query_on(42, 5, "value: 1", &[], "m:s:inc");
    let sid = SessionId::random();
    let cases = [
        (RouteOutcome::Refused { session: sid, filter: "opener".into() }, Some("only the opener")),
        (RouteOutcome::Unknown { session: sid }, Some("expired")),
        (RouteOutcome::Ended { session: sid, reason: EndReason::Finished }, Some("expired")),
        (RouteOutcome::Forged { custom_id: "m:x:y:zz".into() }, Some("refused: this button was forged or edited")),
        (
            RouteOutcome::Malformed { custom_id: "m:".into(), reason: "short" },
            Some("refused: this button was forged or edited"),
        ),
        (handled(), None),
    ];
    for (outcome, notice) in cases {
        let plan = router.plan(&q, &Routed::of(outcome.clone()));
        assert_eq!(plan.notice.as_deref(), notice, "{outcome:?}");
        assert!(plan.actions.is_empty() && plan.error.is_none(), "{outcome:?}");
    }
    // An expired session: its end's edit is shown and the user reads "expired".
    let plan = router
        .plan(&q, &routed(RouteOutcome::Expired { session: sid }, Some(Reply::close("expired (value: 1)")), None));
    assert_eq!(plan.notice.as_deref(), Some("expired"));
    assert!(matches!(&plan.actions[..], [Action::EditText { text, .. }] if text == "expired (value: 1)"));
    // A click that finished the session: its notice answers, the end's edit shows.
    let plan =
        router.plan(&q, &routed(handled(), Some(Reply::notice("n".repeat(300))), Some(Reply::close("final: 1"))));
    assert_eq!(plan.notice.map(|n| n.chars().count()), Some(200), "cut to Telegram's 200 characters");
    assert!(matches!(&plan.actions[..], [Action::EditText { text, .. }] if text == "final: 1"));
}

#[test]
fn plans_new_messages_and_refuse_what_telegram_lacks() {
    let router = router();
    // A new message goes to the chat, in the topic of a forum message.
    let topic_query: CallbackQuery = serde_json::from_str(
        &json!({
            "id": "qt", "chat_instance": "c", "data": "m:s:new",
            "from": {"id": 5, "is_bot": false, "first_name": "U"},
            "message": {"message_id": 9, "date": 1, "text": "menu", "message_thread_id": 33, "is_topic_message": true,
                        "chat": {"id": -1001234567489i64, "title": "T", "is_forum": true, "type": "supergroup"}}
        })
        .to_string(),
    )
    .expect("query");
    let plan = router.plan(&topic_query, &routed(handled(), Some(Reply::message(View::text("hello"))), None));
    assert!(matches!(
        &plan.actions[..],
        [Action::Send { chat_id: ChatId(-1001234567489), thread_id: Some(t), text, .. }] if t.0.0 == 33 && text == "hello"
    ));
    // No chat to send to from an inline message: an error, and the query still gets an answer.
    let plan = router.plan(&inline_query("m:s:new"), &routed(handled(), Some(Reply::message(View::text("hi"))), None));
    assert_eq!(plan.error, Some(RenderError::NoTarget { what: "chat" }));
    assert_eq!(plan.notice.as_deref(), Some("something went wrong; please try again"));
    let q = query_on(42, 5, "menu", &[], "m:s:form");
    let plan = router.plan(&q, &routed(handled(), Some(Reply::modal(Modal::new("m:s:form", "Form"))), None));
    assert_eq!(plan.error, Some(RenderError::ModalUnsupported { custom_id: "m:s:form".into() }));
    let plan =
        router.plan(&q, &routed(handled(), Some(Reply::edit(View::text("x").row([Select::new("m:s:p")]))), None));
    assert!(matches!(plan.error, Some(RenderError::SelectUnsupported { .. })));
}

#[test]
fn rich_parts_show_where_telegram_has_them_and_are_refused_elsewhere() {
    use bot_sessions::interactive::{Embed, Emoji, LinkButton, Raw, Widget};

    let message = View::text("docs").row([
        Widget::from(Button::new("Again", "m:s:again").emoji("🔁")),
        LinkButton::new("Open", "https://docs.rs/bot-sessions").emoji('📖').into(),
        LinkButton::new("Hidden", "https://example.com").disabled().into(),
        Raw::discord(json!({"type": 2, "style": 6, "sku_id": "1"}))
            .telegram(json!({"text": "Pay", "pay": true}))
            .into(),
    ]);
    let markup = serde_json::to_value(keyboard(&message).expect("keyboard")).expect("json");
    // Telegram's InlineKeyboardButton objects (core.telegram.org/bots/api#inlinekeyboardbutton).
    assert_eq!(
        markup["inline_keyboard"],
        json!([[
            {"text": "🔁 Again", "callback_data": "m:s:again"},
            {"text": "📖 Open", "url": "https://docs.rs/bot-sessions"},
            {"text": "Pay", "pay": true}
        ]])
    );

    let refused = |m: View| keyboard(&m).expect_err("refused");
    assert_eq!(refused(View::text("x").embed(Embed::new().title("t"))), RenderError::EmbedUnsupported { count: 1 });
    let custom = View::text("x").row([Button::new("b", "m:s:b").emoji(Emoji::custom(1, "e"))]);
    assert_eq!(refused(custom), RenderError::CustomEmojiUnsupported { label: "b".into() });
    let not_a_url = View::text("x").row([LinkButton::new("Open", "not a url")]);
    assert!(matches!(refused(not_a_url), RenderError::Url { .. }));
    let discord_only = View::text("x").row([Raw::discord(json!({"type": 2, "style": 1, "custom_id": "m:s:r"}))]);
    assert!(matches!(refused(discord_only), RenderError::Raw { custom_id, .. } if custom_id == "m:s:r"));
    let users = View::text("x").row([Select::users("m:s:who")]);
    assert_eq!(refused(users), RenderError::SelectUnsupported { custom_id: "m:s:who".into() });
}
