//! The demo's logic, driven directly: every command, validation, expiry through a
//! manual clock, restarts, and users kept apart.

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::interactive::{Reply, Widget};
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{Clock, Context, DynStore, ManualClock};
use bot_sessions_demo::bot::{Bot, BotConfig, BotError, HELP};

const TTL: Duration = Duration::from_secs(30 * 60);

const MENU_TTL: Duration = Duration::from_secs(60);

async fn bot(store: &DynStore, clock: &ManualClock) -> Bot {
    let config = BotConfig::default().onboarding_ttl(TTL).menu_ttl(MENU_TTL).clock(Arc::new(clock.clone()));
    Bot::new(store.clone(), config).await.unwrap()
}

async fn setup() -> (DynStore, ManualClock, Bot) {
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let clock = ManualClock::starting_now();
    let b = bot(&store, &clock).await;
    (store, clock, b)
}

fn user(user: i64, chat: i64) -> Context {
    Context::new().chat(chat).user(user)
}

/// Sends `text` and returns the single reply line.
async fn say(bot: &Bot, ctx: &Context, text: &str) -> String {
    let replies = bot.handle(ctx, text).await.unwrap();
    assert_eq!(replies.len(), 1, "{text:?} -> {replies:?}");
    replies[0].to_string()
}

#[tokio::test]
async fn counts_per_user_in_each_chat() {
    let (_, _, bot) = setup().await;
    let (a, b, a_elsewhere) = (user(1, 1), user(2, 1), user(1, 2));
    assert_eq!(say(&bot, &a, "/count").await, "count: 1");
    assert_eq!(say(&bot, &a, "/count").await, "count: 2");
    assert_eq!(say(&bot, &b, "/count").await, "count: 1");
    assert_eq!(say(&bot, &a_elsewhere, "/count").await, "count: 1");
    assert_eq!(say(&bot, &a, "/count@DemoBot").await, "count: 3");
}

#[tokio::test]
async fn onboarding_asks_validates_and_saves() {
    let (_, _, bot) = setup().await;
    let me = user(1, 1);
    assert_eq!(say(&bot, &me, "/profile").await, "no profile saved; /onboard creates one");
    assert!(say(&bot, &me, "/onboard").await.contains("What is your name?"));
    assert!(say(&bot, &me, "  Ada   Lovelace ").await.contains("What is your email?"));
    for bad in ["ada", "ada@example", "ada lovelace@example.com"] {
        let reply = say(&bot, &me, bad).await;
        assert!(reply.contains("does not look like an email") && reply.ends_with("What is your email?"), "{reply}");
    }
    let summary = say(&bot, &me, "ada@example.com").await;
    assert!(summary.contains("Ada Lovelace") && summary.contains("ada@example.com") && summary.contains("/confirm"));
    assert_eq!(say(&bot, &me, "something else").await, "please answer /confirm or /cancel");
    assert_eq!(say(&bot, &me, "/confirm").await, "saved: Ada Lovelace <ada@example.com>");
    assert_eq!(say(&bot, &me, "/profile").await, "profile: Ada Lovelace <ada@example.com>");
    // The profile is per user, across chats; the form is gone.
    assert_eq!(say(&bot, &user(1, 99), "/profile").await, "profile: Ada Lovelace <ada@example.com>");
    assert!(say(&bot, &me, "/confirm").await.starts_with("nothing to confirm"));
    assert!(say(&bot, &me, "hello").await.contains("only understand commands"));
}

#[tokio::test]
async fn cancel_drops_the_form() {
    let (store, clock, bot) = setup().await;
    let me = user(3, 1);
    // The conversation awaits its opener's next message through one record there.
    let awaiting = bot_sessions::Namespace::new("interactive.text").unwrap();
    assert!(say(&bot, &me, "/cancel").await.starts_with("nothing to cancel"));
    say(&bot, &me, "/onboard").await;
    say(&bot, &me, "Grace").await;
    assert_eq!(store.count(Some(&awaiting), clock.now()).await.unwrap(), 1, "the open form awaits");
    assert_eq!(say(&bot, &me, "/cancel").await, "cancelled");
    assert_eq!(store.count(Some(&awaiting), clock.now()).await.unwrap(), 0, "cancel ends the form");
    assert!(say(&bot, &me, "grace@example.com").await.contains("only understand commands"));
    assert_eq!(say(&bot, &me, "/profile").await, "no profile saved; /onboard creates one");
}

#[tokio::test]
async fn an_idle_form_expires_and_starts_over() {
    let (_, clock, bot) = setup().await;
    let me = user(1, 1);
    say(&bot, &me, "/onboard").await;
    // Each answer refreshes the idle TTL: 29 minutes between answers keep it alive.
    clock.advance(TTL - Duration::from_secs(60));
    assert!(say(&bot, &me, "Ada").await.contains("What is your email?"));
    clock.advance(TTL - Duration::from_secs(60));
    assert!(say(&bot, &me, "ada@example.com").await.contains("/confirm"));
    // 30 minutes without an answer: gone.
    clock.advance(TTL);
    assert!(say(&bot, &me, "/confirm").await.starts_with("nothing to confirm"));
    assert!(say(&bot, &me, "ada@example.com").await.contains("only understand commands"));
    assert!(say(&bot, &me, "/onboard").await.contains("What is your name?"), "starts over");
    assert!(say(&bot, &me, "Ada").await.contains("What is your email?"));
}

#[tokio::test]
async fn a_restart_continues_the_form() {
    let (store, clock, first) = setup().await;
    let me = user(1, 1);
    say(&first, &me, "/onboard").await;
    say(&first, &me, "Ada").await;
    drop(first);
    let second = bot(&store, &clock).await;
    assert!(say(&second, &me, "ada@example.com").await.contains("/confirm"));
    assert_eq!(say(&second, &me, "/confirm").await, "saved: Ada <ada@example.com>");
}

#[tokio::test]
async fn forget_deletes_everything_of_the_user_only() {
    let (store, _, bot) = setup().await;
    let (me, other) = (user(1, 1), user(2, 1));
    say(&bot, &me, "/count").await;
    say(&bot, &user(1, 7), "/count").await;
    for line in ["/onboard", "Ada", "ada@example.com", "/confirm", "/onboard"] {
        say(&bot, &me, line).await;
    }
    say(&bot, &other, "/count").await;
    // Two counters, the profile, the confirmed conversation (kept a while for late
    // clicks), the open one and the record by which it awaits the next message, and
    // the list of the user's open conversations.
    assert_eq!(say(&bot, &me, "/forget").await, "forgotten: deleted 7 sessions of user 1");
    assert_eq!(say(&bot, &me, "/count").await, "count: 1");
    assert_eq!(say(&bot, &me, "/profile").await, "no profile saved; /onboard creates one");
    assert!(say(&bot, &me, "Ada").await.contains("only understand commands"), "the form went too");
    assert_eq!(say(&bot, &other, "/count").await, "count: 2", "other users keep theirs");
    // The two new counters, and the key that signs the menus' buttons.
    assert_eq!(store.count(None, bot_sessions::Timestamp::now()).await.unwrap(), 3);
}

#[tokio::test]
async fn help_unknown_commands_and_blank_messages() {
    let (_, _, bot) = setup().await;
    let me = user(1, 1);
    assert_eq!(say(&bot, &me, "/help").await, HELP.join("\n"));
    assert_eq!(say(&bot, &me, "/start").await, HELP.join("\n"));
    let reply = say(&bot, &me, "/frobnicate now").await;
    assert!(reply.contains("unknown command /frobnicate") && reply.contains("/help"), "{reply}");
    assert!(bot.handle(&me, "   ").await.unwrap().is_empty());
}

#[tokio::test]
async fn updates_without_a_user_are_refused() {
    let (_, _, bot) = setup().await;
    let channel_post = Context::new().chat(-100);
    assert!(matches!(bot.handle(&channel_post, "/count").await, Err(BotError::NoUser)));
}

#[tokio::test]
async fn a_zero_ttl_is_refused() {
    for config in [BotConfig::default().onboarding_ttl(Duration::ZERO), BotConfig::default().menu_ttl(Duration::ZERO)] {
        assert!(Bot::new(Arc::new(MemoryStore::without_sweeper()), config).await.is_err());
    }
}

#[tokio::test]
async fn the_console_transport_routes_lines() {
    let (_, _, bot) = setup().await;
    let script = b"/count\n2@-5: /count\n\n   \n2@-5: /count\nnot: a prefix\n";
    let mut out = Vec::new();
    bot_sessions_demo::console::run(&bot, &script[..], &mut out).await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "bot -> 1@1: count: 1\nbot -> 2@-5: count: 1\nbot -> 2@-5: count: 2\n\
         bot -> 1@1: I only understand commands; /help lists them\n"
    );
}

/// The custom id of the button labelled `label` in a reply.
fn button(reply: &Reply, label: &str) -> String {
    let message = reply.as_message().unwrap_or_else(|| panic!("no message in {reply}"));
    message
        .rows
        .iter()
        .flatten()
        .find_map(|w| match w {
            Widget::Button(b) if b.label == label => Some(b.custom_id.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {label} button in {reply}"))
}

async fn open_menu(bot: &Bot, ctx: &Context) -> Reply {
    let mut replies = bot.handle(ctx, "/menu").await.unwrap();
    assert_eq!(replies.len(), 1);
    replies.remove(0)
}

async fn click(bot: &Bot, ctx: &Context, id: &str) -> String {
    let replies = bot.click(&ctx.clone().button(id)).await.unwrap();
    assert_eq!(replies.len(), 1, "{replies:?}");
    replies[0].to_string()
}

#[tokio::test]
async fn the_menu_counts_refuses_strangers_and_keeps_the_final_value() {
    let (_, _, bot) = setup().await;
    let (me, stranger) = (user(1, 1), user(2, 1));
    let menu = open_menu(&bot, &me).await;
    assert!(menu.to_string().starts_with("value: 0\n[-1] "), "{menu}");
    let (dec, inc, done) = (button(&menu, "-1"), button(&menu, "+1"), button(&menu, "Done"));
    assert!(dec.len() <= 64 && inc.len() <= 64 && done.len() <= 64, "Telegram's callback data limit");
    assert!(click(&bot, &me, &inc).await.starts_with("value: 1"));
    assert!(click(&bot, &me, &inc).await.starts_with("value: 2"));
    assert!(click(&bot, &me, &dec).await.starts_with("value: 1"));
    let refused = click(&bot, &stranger, &inc).await;
    assert!(refused.contains("not yours"), "{refused}");
    assert!(click(&bot, &me, &inc).await.starts_with("value: 2"), "the stranger changed nothing");
    // An edited id (another component, same signature) and a forged one are refused.
    let edited = inc.replacen(":inc:", ":done:", 1);
    assert!(click(&bot, &me, &edited).await.contains("refused"));
    assert!(click(&bot, &me, "m:AAAAAAAAAAAAAAAA:inc:xxxxxxxxxxx").await.contains("refused"));
    assert_eq!(click(&bot, &me, &done).await, "final: 2", "Done removes the buttons");
    assert!(click(&bot, &me, &inc).await.contains("expired"), "an ended menu");
    assert_eq!(say(&bot, &me, "/profile").await, "profile: menu: 2 (no name yet; /onboard)");
}

#[tokio::test]
async fn an_idle_menu_expires_and_says_so() {
    let (_, clock, bot) = setup().await;
    let me = user(1, 1);
    let mut ends = bot.subscribe_ends();
    let menu = open_menu(&bot, &me).await;
    let inc = button(&menu, "+1");
    clock.advance(MENU_TTL - Duration::from_secs(1));
    assert!(click(&bot, &me, &inc).await.starts_with("value: 1"), "a click refreshes the idle TTL");
    clock.advance(MENU_TTL);
    assert_eq!(bot.expire().await.unwrap(), 1);
    let event = ends.try_recv().expect("the expiry is announced");
    let said = event.reply.expect("the end says something").to_string();
    assert!(said.contains("expired") && !said.contains('['), "no buttons left: {said}");
    assert!(click(&bot, &me, &inc).await.contains("expired"));
}

#[tokio::test]
async fn a_menu_survives_a_restart_and_another_process() {
    let (store, clock, first) = setup().await;
    let me = user(1, 1);
    let menu = open_menu(&first, &me).await;
    let inc = button(&menu, "+1");
    assert!(click(&first, &me, &inc).await.starts_with("value: 1"));
    // A second process on the same store reads the signing key from it and takes the
    // click; then the first one stops and a third carries on.
    let second = bot(&store, &clock).await;
    assert!(click(&second, &me, &inc).await.starts_with("value: 2"));
    first.detach();
    drop(first);
    let third = bot(&store, &clock).await;
    assert!(click(&third, &me, &inc).await.starts_with("value: 3"));
    assert_eq!(click(&third, &me, &button(&menu, "Done")).await, "final: 3");
}

#[tokio::test]
async fn forget_erases_open_menus() {
    let (_, _, bot) = setup().await;
    let me = user(1, 1);
    let menu = open_menu(&bot, &me).await;
    assert_eq!(say(&bot, &me, "/forget").await, "forgotten: deleted 1 session of user 1");
    assert!(click(&bot, &me, &button(&menu, "+1")).await.contains("expired"));
}

#[tokio::test]
async fn an_onboarding_form_that_expires_says_so_once() {
    let (store, clock, bot) = setup().await;
    let other_process = self::bot(&store, &clock).await;
    let mut notices = bot.subscribe_notices();
    let mut elsewhere = other_process.subscribe_notices();
    let me = user(4, -7);
    say(&bot, &me, "/onboard").await;
    say(&bot, &me, "Ada").await;
    clock.advance(TTL + Duration::from_secs(1));
    // Both processes sweep; the form is announced by exactly one of them.
    let (a, b) = tokio::join!(bot.expire(), other_process.expire());
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let mut told = Vec::new();
    for rx in [&mut notices, &mut elsewhere] {
        while let Ok(notice) = rx.try_recv() {
            told.push(notice);
        }
    }
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!((told[0].user, told[0].chat), (4, -7));
    assert!(told[0].reply.to_string().contains("onboarding form expired"), "{:?}", told[0].reply);
    assert!(say(&bot, &me, "/confirm").await.starts_with("nothing to confirm"));
}

/// The menu's Set asks for the opener's next message in the chat: a number becomes
/// the value, anything else is asked again; strangers' messages and commands are not
/// taken; after a number the messages are the bot's again. A restart between the
/// click and the number, and another process taking the number, change nothing.
#[tokio::test]
async fn set_takes_the_openers_next_number_across_a_restart() {
    let (store, clock, first) = setup().await;
    let (me, stranger) = (user(1, 1), user(2, 1));
    let menu = open_menu(&first, &me).await;
    let set = button(&menu, "Set");
    let asked = click(&first, &me, &set).await;
    assert!(asked.contains("send a number"), "{asked}");
    // The first process goes away; a second one on the store gets the messages.
    first.detach();
    drop(first);
    let second = bot(&store, &clock).await;
    assert_eq!(say(&second, &stranger, "5").await, "I only understand commands; /help lists them");
    assert_eq!(say(&second, &user(1, 2), "5").await, "I only understand commands; /help lists them");
    assert!(say(&second, &me, "five").await.contains("not a number"));
    assert_eq!(say(&second, &me, "/count").await, "count: 1", "commands pass through");
    assert!(say(&second, &me, "4.5").await.contains("not a number"));
    let set_to = second.respond(&me, "-12").await.unwrap();
    assert_eq!(set_to.len(), 1);
    assert!(set_to[0].reply.to_string().starts_with("value: -12\n[-1] "), "{:?}", set_to[0].reply);
    assert!(set_to[0].menu.is_some(), "the new menu message is the one expiry edits");
    assert_eq!(say(&second, &me, "13").await, "I only understand commands; /help lists them", "asked once");
    assert!(click(&second, &me, &button(&menu, "+1")).await.starts_with("value: -11"));
    assert_eq!(click(&second, &me, &button(&menu, "Done")).await, "final: -11");
}

/// A menu that expires while Set waits stops taking messages.
#[tokio::test]
async fn an_expired_set_releases_the_chat() {
    let (_, clock, bot) = setup().await;
    let me = user(1, 1);
    let menu = open_menu(&bot, &me).await;
    assert!(click(&bot, &me, &button(&menu, "Set")).await.contains("send a number"));
    clock.advance(MENU_TTL);
    assert_eq!(bot.expire().await.unwrap(), 1);
    assert_eq!(say(&bot, &me, "7").await, "I only understand commands; /help lists them");
}

/// With a key ring (`BOT_SESSIONS_KEYS`), nothing the bot stores is readable at rest:
/// the menu signing key, the sessions and the menus are sealed; the same ring after a
/// restart opens them (a menu's button still works), a bot without the ring refuses to
/// start instead of minting a new signing key, and a signing key stored in clear before
/// the ring was given is sealed in place.
#[tokio::test]
async fn a_key_ring_seals_the_signing_key_sessions_and_menus() {
    use bot_sessions::Namespace;
    use bot_sessions::encryption::KeyRing;

    let ring = || KeyRing::parse(&format!("1={}", "ab".repeat(32))).unwrap();
    let sealed_bot = |store: &DynStore, clock: &ManualClock| {
        let config = BotConfig::default()
            .onboarding_ttl(TTL)
            .menu_ttl(MENU_TTL)
            .clock(Arc::new(clock.clone()))
            .keys(Some(ring()));
        Bot::new(store.clone(), config)
    };
    async fn every_value(store: &DynStore, now: bot_sessions::Timestamp) -> Vec<(String, Vec<u8>)> {
        let mut all = Vec::new();
        for ns in store.namespaces(now).await.unwrap() {
            let page = store.scan(&Namespace::new(ns.as_str()).unwrap(), None, 100, now).await.unwrap();
            all.extend(page.items.into_iter().map(|(k, r)| (k.to_string(), r.value)));
        }
        all
    }

    // A signing key stored in clear by a bot without a ring...
    let store: DynStore = Arc::new(MemoryStore::without_sweeper());
    let clock = ManualClock::starting_now();
    drop(bot(&store, &clock).await);
    let plain = every_value(&store, clock.now()).await;
    assert!(plain.iter().any(|(k, v)| k.starts_with("demo-secret/") && KeyRing::sealed_with(v).is_none()));

    // ...is sealed in place once the ring is given; sessions and menus are sealed too.
    let b = sealed_bot(&store, &clock).await.unwrap();
    let me = user(1, 1);
    assert_eq!(say(&b, &me, "/count").await, "count: 1");
    let menu = open_menu(&b, &me).await;
    let inc = button(&menu, "+1");
    assert!(click(&b, &me, &inc).await.starts_with("value: 1"));
    let stored = every_value(&store, clock.now()).await;
    assert!(stored.len() >= 3, "{stored:?}");
    for (key, value) in &stored {
        if key.starts_with("interactive.") || key.contains(".text/") || key.contains(".open/") {
            continue; // the menus' indexes: session ids, no secret
        }
        assert_eq!(KeyRing::sealed_with(value), Some(1), "{key} is sealed");
    }

    // The same ring after a restart: the menu's buttons still verify and open.
    drop(b);
    let again = sealed_bot(&store, &clock).await.unwrap();
    assert!(click(&again, &me, &inc).await.starts_with("value: 2"));
    assert_eq!(say(&again, &me, "/count").await, "count: 2");

    // Without the ring: refused at start, the sealed key left alone.
    drop(again);
    let config = BotConfig::default().onboarding_ttl(TTL).menu_ttl(MENU_TTL).clock(Arc::new(clock.clone()));
    let Err(err) = Bot::new(store.clone(), config).await else { panic!("no start without the ring") };
    assert!(err.to_string().contains("BOT_SESSIONS_KEYS"), "{err}");
}

/// `/onboard` is one conversation: it takes only its opener's messages, in the chat
/// where it was opened; commands other than `/confirm` and `/cancel` pass through; a bad
/// email is asked again; the Confirm button saves (a stranger's click does not), and
/// afterwards messages are the bot's again.
#[tokio::test]
async fn onboarding_is_one_conversation_confirmed_by_its_button() {
    let (_, _, bot) = setup().await;
    let (me, stranger, me_elsewhere) = (user(1, 1), user(2, 1), user(1, 2));
    assert_eq!(say(&bot, &me, "/onboard").await, "let's get you set up. What is your name?");
    assert_eq!(say(&bot, &stranger, "Bob").await, "I only understand commands; /help lists them");
    assert_eq!(say(&bot, &me_elsewhere, "Ada").await, "I only understand commands; /help lists them");
    assert_eq!(say(&bot, &me, "Ada").await, "nice to meet you, Ada. What is your email?");
    assert_eq!(say(&bot, &me, "/count").await, "count: 1", "commands pass through");
    for bad in ["ada", "ada@example"] {
        let reply = say(&bot, &me, bad).await;
        assert!(reply.contains("does not look like an email") && reply.ends_with("What is your email?"), "{reply}");
    }
    let summary = bot.handle(&me, "ada@example.com").await.unwrap();
    assert_eq!(summary.len(), 1);
    assert!(summary[0].to_string().starts_with("name: Ada, email: ada@example.com. /confirm to save"));
    let confirm = button(&summary[0], "Confirm");
    assert!(confirm.len() <= 64, "Telegram's callback data limit");
    assert!(click(&bot, &stranger, &confirm).await.contains("not yours"));
    assert_eq!(say(&bot, &stranger, "/profile").await, "no profile saved; /onboard creates one");
    // The click edits the summary: its button goes, it says what was saved.
    let saved = bot.click(&me.clone().button(&confirm)).await.unwrap();
    assert_eq!(saved.len(), 1);
    assert!(matches!(&saved[0], Reply::Edit(m) if m.rows.is_empty()), "{saved:?}");
    assert_eq!(saved[0].to_string(), "saved: Ada <ada@example.com>");
    assert_eq!(say(&bot, &me, "/profile").await, "profile: Ada <ada@example.com>");
    assert!(click(&bot, &me, &confirm).await.contains("expired"), "a second click finds it over");
    assert!(say(&bot, &me, "/confirm").await.starts_with("nothing to confirm"));
    assert_eq!(say(&bot, &me, "hello").await, "I only understand commands; /help lists them");
}

/// Each answer may land on another process, and a restart between two steps loses
/// nothing; `/confirm` on yet another process saves once.
#[tokio::test]
async fn the_conversation_survives_restarts_between_steps() {
    let (store, clock, first) = setup().await;
    let me = user(7, -3);
    say(&first, &me, "/onboard").await;
    first.detach();
    drop(first);
    let second = bot(&store, &clock).await;
    let third = bot(&store, &clock).await;
    assert_eq!(say(&second, &me, "Grace").await, "nice to meet you, Grace. What is your email?");
    assert!(say(&third, &me, "grace@").await.ends_with("What is your email?"));
    second.detach();
    drop(second);
    let fourth = bot(&store, &clock).await;
    assert!(say(&fourth, &me, "grace@example.com").await.contains("/confirm"));
    assert_eq!(say(&third, &me, "/confirm").await, "saved: Grace <grace@example.com>");
    assert!(say(&fourth, &me, "/confirm").await.starts_with("nothing to confirm"), "saved once");
    assert_eq!(say(&fourth, &me, "/profile").await, "profile: Grace <grace@example.com>");
}

/// `/cancel` ends the conversation; `/onboard` again replaces an open one, which ends
/// quietly (only the new one can expire, and says so once).
#[tokio::test]
async fn cancel_and_onboard_again_end_the_open_conversation() {
    let (_, clock, bot) = setup().await;
    let me = user(1, 1);
    let mut notices = bot.subscribe_notices();
    say(&bot, &me, "/onboard").await;
    say(&bot, &me, "Ada").await;
    assert_eq!(say(&bot, &me, "/cancel").await, "cancelled");
    assert!(say(&bot, &me, "/cancel").await.starts_with("nothing to cancel"));
    say(&bot, &me, "/onboard").await;
    say(&bot, &me, "Ada").await;
    assert_eq!(say(&bot, &me, "/onboard").await, "let's get you set up. What is your name?", "starts over");
    assert_eq!(say(&bot, &me, "Bob").await, "nice to meet you, Bob. What is your email?");
    clock.advance(TTL + Duration::from_secs(1));
    assert_eq!(bot.expire().await.unwrap(), 1, "the replaced conversation had ended already");
    let told = notices.try_recv().unwrap();
    assert_eq!(told.reply.to_string(), "your onboarding form expired after 30 idle minutes; /onboard starts again");
    assert!(notices.try_recv().is_err(), "told once");
    assert_eq!(say(&bot, &me, "bob@example.com").await, "I only understand commands; /help lists them");
}
