//! `telegram::CallbackRouter`: whole callback queries through the real teloxide client
//! against a fake Bot API on 127.0.0.1, counting that every callback query of the
//! namespace is answered exactly once; end events shown; the dptree branch.
#![cfg(feature = "telegram")]

#[path = "telegram_support/queries.rs"]
mod queries;

use std::ops::ControlFlow;
use std::time::Duration;

use bot_sessions::interactive::{
    Button, CustomIdCodec, EndCx, EndEvent, EndReason, Interactive, Manager, Reply, RouteOutcome, SigningKeys, StartCx,
    Step, Target, UpdateCx, View,
};
use bot_sessions::store::BoxError;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::telegram::{
    Action, CallbackOutcome, CallbackRouter, CallbackTexts, MessageTarget, RenderError, RouterError, end_actions,
    execute, keyboard, show_end,
};
use bot_sessions::testing::telegram::{Call, FakeApi};
use bot_sessions::{ManualClock, Ttl};
use queries::{query_on, query_with};
use serde_json::json;
use teloxide::dispatching::{DpHandlerDescription, UpdateFilterExt};
use teloxide::dptree::{self, Handler};
use teloxide::types::{CallbackQuery, ChatId, MessageId, Update};

// ---- whole callbacks against a fake Bot API ----

/// A value with +1 and Done; expires after a minute without clicks.
struct Menu;

fn menu_message(cx_encode: impl Fn(&str) -> Result<String, BoxError>, value: i64) -> Result<View, BoxError> {
    Ok(View::text(format!("value: {value}"))
        .row([Button::new("+1", cx_encode("inc")?), Button::new("Done", cx_encode("done")?)])
        .row([Button::new("note", cx_encode("note")?), Button::new("same", cx_encode("same")?)]))
}

impl Interactive for Menu {
    type State = i64;
    type Args = ();
    type Output = i64;

    async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<i64, BoxError> {
        let message = menu_message(|c| Ok(cx.encode(&cx.custom_id(c))?), 0)?;
        cx.reply(Reply::message(message));
        Ok(0)
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, value: &mut i64) -> Result<Step<i64>, BoxError> {
        match cx.component() {
            "inc" => *value += 1,
            "done" => return Ok(Step::Finish(*value)),
            "note" => {
                cx.reply(Reply::notice(format!("the value is {value}")));
                return Ok(Step::keep());
            }
            _ => {}
        }
        let message = menu_message(|c| Ok(cx.encode(&cx.custom_id(c))?), *value)?;
        cx.reply(Reply::edit(message));
        Ok(Step::refresh())
    }

    async fn end(&self, cx: &mut EndCx<'_>, value: i64) -> Result<Option<i64>, BoxError> {
        cx.reply(Reply::close(match cx.reason() {
            EndReason::Finished => format!("final: {value}"),
            _ => format!("expired (value: {value})"),
        }));
        Ok(Some(value))
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(60))
    }
}

struct World {
    api: FakeApi,
    bot: teloxide::Bot,
    router: CallbackRouter,
    clock: ManualClock,
    /// The menu's buttons: (label, data), row by row flattened.
    buttons: Vec<(String, String)>,
    /// The keyboard the menu message shows now.
    markup: teloxide::types::InlineKeyboardMarkup,
    /// The text the menu message shows now.
    shown: String,
}

impl World {
    async fn new() -> World {
        let api = FakeApi::start().await;
        let clock = ManualClock::new(1_000_000);
        let keys = SigningKeys::new([b"0123456789abcdef0123456789abcdef"]).expect("keys");
        let codec = CustomIdCodec::new("m", Target::Telegram).expect("codec").signed(keys);
        let manager = Manager::builder(MemoryStore::new(), codec).clock(clock.clone()).build().expect("manager");
        let kind = manager.register("menu", Menu).expect("register");
        let started = manager.start(&kind, &bot_sessions::Context::new().chat(42).user(42), ()).await.expect("start");
        let Some(Reply::Message(message)) = started.reply else { panic!("the menu answers with a message") };
        let markup = keyboard(&message).expect("keyboard");
        let buttons = markup
            .inline_keyboard
            .iter()
            .flatten()
            .map(|b| match &b.kind {
                teloxide::types::InlineKeyboardButtonKind::CallbackData(d) => (b.text.clone(), d.clone()),
                other => panic!("a callback button, not {other:?}"),
            })
            .collect();
        World { bot: api.bot(), api, router: CallbackRouter::new(manager), clock, buttons, markup, shown: message.text }
    }

    fn data(&self, label: &str) -> String {
        self.buttons.iter().find(|(l, _)| l == label).map(|(_, d)| d.clone()).expect("button")
    }

    fn query(&self, user: i64, data: &str) -> CallbackQuery {
        query_with(user, 5, &self.shown, serde_json::to_value(&self.markup).expect("markup"), data)
    }

    /// Routes a click; returns the outcome and the requests sent.
    async fn click(&mut self, user: i64, data: &str) -> (Result<CallbackOutcome, RouterError>, Vec<Call>) {
        let q = self.query(user, data);
        let out = self.router.route(&self.bot, &q).await;
        let calls = self.api.take();
        let answers: Vec<&Call> = calls.iter().filter(|c| c.method == "AnswerCallbackQuery").collect();
        if !matches!(out, Ok(CallbackOutcome::NotOurs)) {
            assert_eq!(answers.len(), 1, "answered exactly once: {calls:?}");
            assert_eq!(answers[0].body["callback_query_id"], json!(q.id.0));
            assert_eq!(calls[0].method, "AnswerCallbackQuery", "the answer goes first");
        }
        if let Some(edit) = calls.iter().find(|c| c.method == "EditMessageText") {
            self.shown = edit.body["text"].as_str().unwrap_or_default().to_owned();
            let markup = edit.body.get("reply_markup").cloned().unwrap_or(json!({"inline_keyboard": []}));
            self.markup = serde_json::from_value(markup).expect("markup");
        }
        (out, calls)
    }
}

fn notice(calls: &[Call]) -> Option<&str> {
    calls.iter().find(|c| c.method == "AnswerCallbackQuery").and_then(|c| c.body["text"].as_str())
}

fn methods(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.method.as_str()).collect()
}

#[tokio::test]
async fn every_callback_is_answered_once_whatever_the_outcome() {
    let mut w = World::new().await;
    let inc = w.data("+1");

    // The opener clicks +1: answered without text, the message edited with its buttons.
    let (out, calls) = w.click(42, &inc).await;
    assert!(matches!(out, Ok(CallbackOutcome::Answered(RouteOutcome::Handled { .. }))));
    assert_eq!(methods(&calls), ["AnswerCallbackQuery", "EditMessageText"]);
    assert_eq!(notice(&calls), None);
    assert_eq!((calls[1].body["chat_id"].clone(), calls[1].body["message_id"].clone()), (json!(42), json!(5)));
    assert_eq!(calls[1].body["text"], "value: 1");
    assert_eq!(calls[1].body["reply_markup"]["inline_keyboard"][0][0]["callback_data"], json!(inc));

    // "same" re-renders the same menu: nothing to edit, just the answer.
    let (_, calls) = w.click(42, &w.data("same")).await;
    assert_eq!(methods(&calls), ["AnswerCallbackQuery"]);
    // A notice is the answer's text.
    let (_, calls) = w.click(42, &w.data("note")).await;
    assert_eq!(notice(&calls), Some("the value is 1"));

    // A stranger: "not yours", nothing edited, the value untouched.
    let (out, calls) = w.click(7, &inc).await;
    assert!(matches!(out, Ok(CallbackOutcome::Answered(RouteOutcome::Refused { .. }))));
    assert_eq!((methods(&calls), notice(&calls)), (vec!["AnswerCallbackQuery"], Some("not yours")));

    // A forged button (signature edited): refused, no session touched.
    let mut forged = inc.clone();
    let last = forged.pop().expect("char");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (out, calls) = w.click(42, &forged).await;
    assert!(matches!(out, Ok(CallbackOutcome::Answered(RouteOutcome::Forged { .. }))));
    assert_eq!(notice(&calls), Some("refused: this button was forged or edited"));

    // A button of someone else's namespace: not answered here, falls through.
    let (out, calls) = w.click(42, "like:17").await;
    assert!(matches!(out, Ok(CallbackOutcome::NotOurs)));
    assert!(calls.is_empty());

    // Done: the end's edit removes the buttons.
    let (out, calls) = w.click(42, &w.data("Done")).await;
    assert!(matches!(
        out,
        Ok(CallbackOutcome::Answered(RouteOutcome::Handled { ended: Some(EndReason::Finished), .. }))
    ));
    assert_eq!(methods(&calls), ["AnswerCallbackQuery", "EditMessageText"]);
    assert_eq!(calls[1].body["text"], "final: 1");
    assert!(calls[1].body.get("reply_markup").is_none(), "no buttons: {:?}", calls[1].body);

    // A late click on the finished menu: "expired".
    let (out, calls) = w.click(42, &inc).await;
    assert!(matches!(out, Ok(CallbackOutcome::Answered(RouteOutcome::Ended { .. }))));
    assert_eq!(notice(&calls), Some("expired"));
}

#[tokio::test]
async fn an_expired_menu_is_edited_and_the_click_told_so() {
    let mut w = World::new().await;
    let inc = w.data("+1");
    w.click(42, &inc).await.0.expect("routed");
    w.clock.advance(Duration::from_secs(61));
    let (out, calls) = w.click(42, &inc).await;
    assert!(matches!(out, Ok(CallbackOutcome::Answered(RouteOutcome::Expired { .. }))));
    assert_eq!(methods(&calls), ["AnswerCallbackQuery", "EditMessageText"]);
    assert_eq!(notice(&calls), Some("expired"));
    assert_eq!(calls[1].body["text"], "expired (value: 1)");
    assert!(calls[1].body.get("reply_markup").is_none());
}

#[tokio::test]
async fn an_expiry_no_click_saw_is_shown_from_its_end_event() {
    let mut w = World::new().await;
    let mut ends = w.router.manager().subscribe();
    // One click tells the session its message (chat 42, message 5).
    w.click(42, &w.data("+1")).await.0.expect("routed");
    w.clock.advance(Duration::from_secs(61));
    let now = bot_sessions::Timestamp(1_000_000 + 61_000);
    assert_eq!(w.router.manager().expire_due(now).await.expired, 1);
    let event: EndEvent = ends.try_recv().expect("an end event");
    assert_eq!(event.reason, EndReason::Expired);

    let actions = end_actions(&event, None).expect("actions");
    assert!(matches!(
        &actions[..],
        [Action::EditText { target: MessageTarget::Chat { chat_id: ChatId(42), message_id: MessageId(5) }, text, keyboard }]
            if text == "expired (value: 1)" && keyboard.inline_keyboard.is_empty()
    ));
    assert_eq!(show_end(&w.bot, &event, None).await.expect("shown"), 1);
    let calls = w.api.take();
    assert_eq!(methods(&calls), ["EditMessageText"]);
    assert_eq!((calls[0].body["chat_id"].clone(), calls[0].body["message_id"].clone()), (json!(42), json!(5)));
    // An inline message is edited by the id the bot passes.
    show_end(&w.bot, &event, Some(MessageTarget::Inline("AAQ".into()))).await.expect("shown");
    let calls = w.api.take();
    assert_eq!(calls[0].body["inline_message_id"], "AAQ");
    assert!(calls[0].body.get("chat_id").is_none());
}

#[tokio::test]
async fn an_end_whose_message_is_unknown_is_a_typed_error() {
    let w = World::new().await;
    let mut ends = w.router.manager().subscribe();
    // No click ever came: the session does not know its message.
    w.clock.advance(Duration::from_secs(61));
    w.router.manager().expire_due(bot_sessions::Timestamp(1_000_000 + 61_000)).await;
    let event = ends.try_recv().expect("an end event");
    assert_eq!(end_actions(&event, None), Err(RenderError::NoTarget { what: "message" }));
    // The bot that kept the message id passes it.
    let target = MessageTarget::Chat { chat_id: ChatId(42), message_id: MessageId(77) };
    assert_eq!(end_actions(&event, Some(target)).map(|a| a.len()), Ok(1));
}

#[tokio::test]
async fn an_edit_telegram_calls_unchanged_counts_as_done() {
    let api = FakeApi::start().await;
    api.not_modified(true);
    let action = Action::EditText {
        target: MessageTarget::Chat { chat_id: ChatId(1), message_id: MessageId(2) },
        text: "same".into(),
        keyboard: Default::default(),
    };
    execute(&api.bot(), &action).await.expect("not modified is done");
    let inline = Action::EditKeyboard { target: MessageTarget::Inline("AAQ".into()), keyboard: Default::default() };
    execute(&api.bot(), &inline).await.expect("not modified, in other words, is done");
    assert_eq!(methods(&api.take()), ["EditMessageText", "EditMessageReplyMarkup"]);
    api.not_modified(false);
    let send = Action::Send {
        chat_id: ChatId(1),
        thread_id: None,
        business_connection_id: None,
        text: "x".into(),
        keyboard: Default::default(),
    };
    execute(&api.bot(), &send).await.expect("sent");
    assert_eq!(methods(&api.take()), ["SendMessage"]);
}

#[tokio::test]
async fn the_dptree_branch_takes_ours_and_lets_the_rest_through() {
    let w = World::new().await;
    type Out = Result<&'static str, Box<dyn std::error::Error + Send + Sync>>;
    let tree: Handler<'static, Result<(), Box<dyn std::error::Error + Send + Sync>>, DpHandlerDescription> =
        dptree::entry().branch(w.router.clone().handler::<teloxide::Bot, _>());
    let fallback: Handler<'static, Out, DpHandlerDescription> =
        Update::filter_callback_query().endpoint(|q: CallbackQuery| async move {
            assert_eq!(q.data.as_deref(), Some("like:17"));
            Ok("the bot's own handler")
        });
    let as_update = |q: &CallbackQuery| -> Update {
        let json = json!({"update_id": 1, "callback_query": serde_json::to_value(q).expect("json")});
        serde_json::from_str(&json.to_string()).expect("update")
    };

    let ours = as_update(&w.query(42, &w.data("+1")));
    assert!(matches!(tree.dispatch(dptree::deps![ours, w.bot.clone()]).await, ControlFlow::Break(Ok(()))));
    assert_eq!(methods(&w.api.take()), ["AnswerCallbackQuery", "EditMessageText"]);

    let foreign = as_update(&w.query(42, "like:17"));
    assert!(matches!(tree.dispatch(dptree::deps![foreign.clone(), w.bot.clone()]).await, ControlFlow::Continue(_)));
    assert!(w.api.take().is_empty(), "not answered by the router");
    assert!(matches!(fallback.dispatch(dptree::deps![foreign]).await, ControlFlow::Break(Ok(_))));
}

/// Another kind, registered by a process that does not know `menu`.
struct Other;

impl Interactive for Other {
    type State = ();
    type Args = ();
    type Output = ();

    async fn start(&self, _: &mut StartCx<'_>, _: ()) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_route_is_answered_too() {
    let api = FakeApi::start().await;
    let store = std::sync::Arc::new(MemoryStore::new());
    let codec = || CustomIdCodec::new("m", Target::Telegram).expect("codec");
    let menus = Manager::builder(store.clone(), codec()).build().expect("manager");
    let kind = menus.register("menu", Menu).expect("register");
    let started = menus.start(&kind, &bot_sessions::Context::new().chat(42).user(42), ()).await.expect("start");
    let Some(Reply::Message(message)) = started.reply else { panic!("a message") };
    let data = message.custom_ids().next().expect("a button").to_owned();

    // A process that has not registered `menu` cannot run the session.
    let others = Manager::builder(store, codec()).build().expect("manager");
    others.register("other", Other).expect("register");
    let router = CallbackRouter::new(others).texts(CallbackTexts::default().failed("try again later"));
    let q = query_on(42, 5, "value: 0", &[], &data);
    let err = router.route(&api.bot(), &q).await.expect_err("the kind is unknown here");
    assert!(matches!(err, RouterError::Interactive(_)), "{err}");
    let calls = api.take();
    assert_eq!(methods(&calls), ["AnswerCallbackQuery"]);
    assert_eq!(notice(&calls), Some("try again later"));
}
