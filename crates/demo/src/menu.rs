//! `/menu`: an interactive session showing a value with −1, +1, Set and Done buttons.
//!
//! Clicks by the opener change the value; anyone else is refused (the manager's
//! default filter) and answered `not yours`. Set asks for the opener's next message in
//! the chat (a text step): an integer becomes the value, anything else is answered
//! `not a number` and asked again; other people's messages, and commands, are not
//! taken. Done shows `final: N`, removes the buttons and keeps N in the opener's
//! profile. After the menu's idle TTL it ends by itself: its message loses the buttons
//! and says `expired`.

use bot_sessions::interactive::{
    Button, ButtonStyle, EndCx, EndReason, Interactive, Reply, StartCx, Step, UpdateCx, View,
};
use bot_sessions::store::BoxError;
use bot_sessions::{SessionError, Sessions, Ttl};
use serde::{Deserialize, Serialize};

use crate::profile::Profile;

/// The kind's registered name: every process that may receive its clicks registers it.
pub const KIND: &str = "menu";

/// The menu's state between clicks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuState {
    /// The value shown.
    pub value: i64,
}

/// The `/menu` kind.
#[derive(Debug, Clone)]
pub struct Menu {
    pub(crate) ttl: Ttl,
    pub(crate) profiles: Sessions<Profile>,
}

/// What Set answers: the opener's next message in the chat is the new value.
pub const ASK_NUMBER: &str = "send a number: your next message here sets the value";

/// What a message that is not an integer gets while Set waits.
pub const NOT_A_NUMBER: &str = "not a number; send a whole number like 42";

/// The menu message: the value and its four buttons.
fn render(cx_encode: impl Fn(&str) -> Result<String, BoxError>, value: i64) -> Result<View, BoxError> {
    Ok(View::text(format!("value: {value}")).row([
        Button::new("-1", cx_encode("dec")?),
        Button::new("+1", cx_encode("inc")?),
        Button::new("Done", cx_encode("done")?).style(ButtonStyle::Success),
        Button::new("Set", cx_encode("set")?),
    ]))
}

impl Interactive for Menu {
    type State = MenuState;
    type Args = ();
    type Output = i64;

    async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<MenuState, BoxError> {
        let message = render(|c| Ok(cx.encode(&cx.custom_id(c))?), 0)?;
        cx.reply(Reply::message(message));
        Ok(MenuState::default())
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, menu: &mut MenuState) -> Result<Step<i64>, BoxError> {
        match cx.component() {
            "dec" => menu.value -= 1,
            "inc" => menu.value += 1,
            "done" => return Ok(Step::Finish(menu.value)),
            "set" => {
                cx.ask_text();
                cx.reply(Reply::message(View::text(ASK_NUMBER)));
                return Ok(Step::refresh());
            }
            _ => {
                cx.reply(Reply::notice("unknown button"));
                return Ok(Step::keep());
            }
        }
        let message = render(|c| Ok(cx.encode(&cx.custom_id(c))?), menu.value)?;
        cx.reply(Reply::edit(message));
        Ok(Step::refresh())
    }

    /// The message Set asked for: an integer becomes the value (a new menu message
    /// shows it), anything else is asked again.
    async fn on_text(&self, cx: &mut UpdateCx<'_>, menu: &mut MenuState) -> Result<Step<i64>, BoxError> {
        match cx.text().unwrap_or_default().trim().parse::<i64>() {
            Ok(n) => {
                menu.value = n;
                cx.stop_asking();
                let message = render(|c| Ok(cx.encode(&cx.custom_id(c))?), menu.value)?;
                cx.reply(Reply::message(message));
            }
            Err(_) => cx.reply(Reply::message(View::text(NOT_A_NUMBER))),
        }
        Ok(Step::refresh())
    }

    async fn end(&self, cx: &mut EndCx<'_>, menu: MenuState) -> Result<Option<i64>, BoxError> {
        match cx.reason() {
            EndReason::Finished => {
                // The end runs once across processes: the profile gets the value once.
                if let Some(user) = cx.origin().user {
                    let key = self.profiles.key(&bot_sessions::Context::new().user(user))?;
                    self.profiles
                        .update(&key, |p| {
                            p.menu = Some(menu.value);
                            Ok::<_, SessionError>(())
                        })
                        .await?;
                }
                cx.reply(Reply::close(format!("final: {}", menu.value)));
            }
            _ => cx.reply(Reply::close(format!("expired (value: {})", menu.value))),
        }
        Ok(Some(menu.value))
    }

    fn ttl(&self) -> Ttl {
        self.ttl
    }
}
