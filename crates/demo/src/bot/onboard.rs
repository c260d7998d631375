//! `/onboard` as one conversation: an interactive session that asks for the opener's
//! name, then their email (again until it is valid), then waits for `/confirm` (or its
//! Confirm button) or `/cancel`, and saves the profile.
//!
//! The session takes the opener's next messages in the chat (and forum topic) where
//! `/onboard` was typed, on any process sharing the store, and only theirs: a
//! stranger's message, or one elsewhere, goes to the bot's commands as usual. Commands
//! pass through (`/count` still counts) except `/confirm` and `/cancel`, which are the
//! conversation's. After its idle TTL the conversation ends by itself and the opener is
//! told once (`your onboarding form expired …`), by whichever process ended it.
//!
//! Discord has forms: there `/onboard` stays a modal ([`Bot::submit_onboarding`](super::Bot::submit_onboarding)).

use bot_sessions::interactive::{
    Button, ButtonStyle, Commands, EndCx, EndReason, Interactive, Limit, Reply, StartCx, Step as Next, UpdateCx, View,
};
use bot_sessions::store::BoxError;
use bot_sessions::{SessionError, Sessions, Ttl};
use tokio::sync::broadcast;

use super::{Notice, Onboarding, Step};
use crate::profile::Profile;

/// The kind's registered name.
pub const KIND: &str = "onboard";

/// The Confirm button's component name.
const CONFIRM: &str = "confirm";

/// The first question.
pub const ASK_NAME: &str = "let's get you set up. What is your name?";

/// The answer to `/confirm` when no form waits for it.
pub const NOTHING_TO_CONFIRM: &str = "nothing to confirm (an unanswered form expires); /onboard starts one";

/// The `/onboard` conversation kind.
#[derive(Debug, Clone)]
pub struct Onboard {
    pub(crate) ttl: std::time::Duration,
    pub(crate) profiles: Sessions<Profile>,
    pub(crate) notices: broadcast::Sender<Notice>,
}

/// What the opener is told when their form expired.
pub(crate) fn expired_text(ttl: std::time::Duration) -> String {
    let minutes = ttl.as_secs().div_ceil(60);
    format!(
        "your onboarding form expired after {minutes} idle minute{}; /onboard starts again",
        if minutes == 1 { "" } else { "s" }
    )
}

fn say(text: impl Into<String>) -> Reply {
    Reply::message(View::text(text))
}

impl Onboard {
    /// Saves a confirmed form as the opener's profile; the text that says so.
    async fn save(&self, user: Option<i64>, form: &Onboarding) -> Result<String, BoxError> {
        let (name, email) = (form.name.clone().unwrap_or_default(), form.email.clone().unwrap_or_default());
        let user = user.ok_or("an onboarding form without its opener")?;
        let key = self.profiles.key(&bot_sessions::Context::new().user(user))?;
        self.profiles
            .update(&key, |p| {
                p.name.clone_from(&name);
                p.email.clone_from(&email);
                Ok::<_, SessionError>(())
            })
            .await?;
        Ok(format!("saved: {name} <{email}>"))
    }
}

impl Interactive for Onboard {
    type State = Onboarding;
    type Args = ();
    type Output = ();

    async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<Onboarding, BoxError> {
        cx.ask_text();
        cx.reply(say(ASK_NAME));
        Ok(Onboarding { step: Step::Name, ..Onboarding::default() })
    }

    async fn on_text(&self, cx: &mut UpdateCx<'_>, form: &mut Onboarding) -> Result<Next<()>, BoxError> {
        let text = cx.text().unwrap_or_default().trim().to_owned();
        match (super::command(&text), form.step) {
            (Some("/cancel"), _) => {
                cx.reply(say("cancelled"));
                return Ok(Next::Finish(()));
            }
            (Some("/confirm"), Step::Confirm) => {
                // Saved before the session ends: a failed save leaves the form waiting.
                let saved = self.save(cx.origin().user, form).await?;
                cx.reply(say(saved));
                return Ok(Next::Finish(()));
            }
            (Some(_), _) => cx.reply(say(NOTHING_TO_CONFIRM)),
            (None, Step::Name | Step::Idle) => match super::modal::valid_name(&text) {
                Ok(name) => {
                    cx.reply(say(format!("nice to meet you, {name}. What is your email?")));
                    form.name = Some(name);
                    form.step = Step::Email;
                }
                Err(why) => cx.reply(say(format!("{why}. What is your name?"))),
            },
            (None, Step::Email) => match super::modal::valid_email(&text) {
                Ok(email) => {
                    let name = form.name.clone().unwrap_or_default();
                    let summary = format!("name: {name}, email: {email}. /confirm to save, /cancel to drop it");
                    let confirm = Button::new("Confirm", cx.id(CONFIRM)?).style(ButtonStyle::Success);
                    cx.reply(Reply::message(View::text(summary).row([confirm])));
                    form.email = Some(email);
                    form.step = Step::Confirm;
                }
                Err(why) => cx.reply(say(format!("{why}. What is your email?"))),
            },
            (None, Step::Confirm) => cx.reply(say("please answer /confirm or /cancel")),
        }
        Ok(Next::refresh())
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, form: &mut Onboarding) -> Result<Next<()>, BoxError> {
        if cx.component() != CONFIRM || form.step != Step::Confirm {
            cx.reply(Reply::notice("please answer /confirm or /cancel"));
            return Ok(Next::keep());
        }
        let saved = self.save(cx.origin().user, form).await?;
        // The summary loses its button.
        cx.reply(Reply::close(saved));
        Ok(Next::Finish(()))
    }

    async fn end(&self, cx: &mut EndCx<'_>, _: Onboarding) -> Result<Option<()>, BoxError> {
        // `end` runs once across processes: the opener hears of the expiry once.
        if cx.reason() == EndReason::Expired
            && let (Some(user), Some(chat)) = (cx.origin().user, cx.origin().chat)
        {
            let topic = cx.origin().topic;
            let _ = self.notices.send(Notice { user, chat, topic, reply: say(expired_text(self.ttl)) });
        }
        Ok(None)
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(self.ttl)
    }

    fn commands(&self) -> Commands {
        Commands::TakeOnly(vec!["/confirm".into(), "/cancel".into()])
    }

    /// One form per user: `/onboard` again replaces the open one (which ends quietly).
    fn limit(&self) -> Option<Limit> {
        Some(Limit::per_user(1))
    }
}
