//! Onboarding as one form, for transports that have forms (Discord's modal): the
//! [`Onboarding`] data session holds a submitted form that waits for `/confirm`,
//! `/cancel` or their buttons before it replaces a different saved profile. The name
//! and email checks here serve the conversation ([`super::onboard`]) too.

use bot_sessions::interactive::{Button, ButtonStyle, Modal, Reply, TextField, View};
use bot_sessions::{Context, SessionError};
use serde::{Deserialize, Serialize};

use super::{Bot, BotError};

/// The custom id of the onboarding modal's submit ([`onboarding_modal`]).
pub const ONBOARD_MODAL: &str = "onboard";
/// The id of the onboarding modal's name field.
pub const NAME_FIELD: &str = "name";
/// The id of the onboarding modal's email field.
pub const EMAIL_FIELD: &str = "email";
/// The custom id of the button that confirms replacing a saved profile.
pub const ONBOARD_CONFIRM: &str = "onboard:confirm";
/// The custom id of the button that keeps the saved profile.
pub const ONBOARD_CANCEL: &str = "onboard:cancel";

/// The onboarding form as one modal (for transports with forms): a name and an email.
/// Its submit carries [`ONBOARD_MODAL`] and the fields [`NAME_FIELD`] and
/// [`EMAIL_FIELD`]; answer it with [`Bot::submit_onboarding`].
pub fn onboarding_modal() -> Modal {
    Modal::new(ONBOARD_MODAL, "Onboarding")
        .field(TextField::new(NAME_FIELD, "Your name").placeholder("Ada Lovelace"))
        .field(TextField::new(EMAIL_FIELD, "Your email").placeholder("ada@example.com"))
}

/// Where an onboarding form stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// No form open (the initial value: never stored).
    #[default]
    Idle,
    /// Waiting for the name.
    Name,
    /// Waiting for the email.
    Email,
    /// Waiting for `/confirm` or `/cancel`.
    Confirm,
}

/// The `/onboard` form. Its default (no form open) is never stored, and going back to
/// it deletes the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Onboarding {
    /// The step.
    pub step: Step,
    /// The name, once given.
    pub name: Option<String>,
    /// The email, once given.
    pub email: Option<String>,
}

impl Bot {
    /// Answers a submitted [`onboarding_modal`]: with a valid name and email, saves
    /// them as the user's profile (`saved: NAME <EMAIL>`), unless a different name and
    /// email are saved already: then the form waits at the confirm step and the reply
    /// asks whether to replace them, with [`ONBOARD_CONFIRM`] and [`ONBOARD_CANCEL`]
    /// buttons (or `/confirm` and `/cancel`). An invalid field is answered with a
    /// notice saying why. Every reply is ephemeral: it shows an email address.
    ///
    /// # Errors
    ///
    /// [`BotError::NoUser`] without a user; session and store errors.
    pub async fn submit_onboarding(&self, ctx: &Context, name: &str, email: &str) -> Result<Reply, BotError> {
        if ctx.user_id.is_none() {
            return Err(BotError::NoUser);
        }
        let again = |why: String| Ok(Reply::notice(format!("{why}; /onboard opens the form again")));
        let name = match valid_name(name) {
            Ok(name) if name.is_empty() => return again("a name cannot be empty".into()),
            Ok(name) => name,
            Err(why) => return again(why),
        };
        let email = match valid_email(email) {
            Ok(email) => email,
            Err(why) => return again(why),
        };
        let key = self.profiles.key(ctx)?;
        let (n, e) = (name.clone(), email.clone());
        // One compare-and-set: two submits at once never both think nothing was saved.
        let replaced = self
            .profiles
            .update(&key, |p| {
                if !p.name.is_empty() && (p.name != n || p.email != e) {
                    return Ok::<_, SessionError>(Some((p.name.clone(), p.email.clone())));
                }
                p.name.clone_from(&n);
                p.email.clone_from(&e);
                Ok(None)
            })
            .await?;
        let form_key = self.onboarding.key(ctx)?;
        let Some((old_name, old_email)) = replaced else {
            // A question-by-question form left open is answered by this one.
            self.onboarding
                .update_option(&form_key, |form| {
                    *form = None;
                    Ok::<_, SessionError>(())
                })
                .await?;
            return Ok(Reply::message(View::text(format!("saved: {name} <{email}>")).ephemeral()));
        };
        let form = Onboarding { step: Step::Confirm, name: Some(name.clone()), email: Some(email.clone()) };
        self.onboarding
            .update(&form_key, |f| {
                *f = form.clone();
                Ok::<_, SessionError>(())
            })
            .await?;
        let text = format!("your profile says {old_name} <{old_email}>. Replace it with {name} <{email}>?");
        Ok(Reply::message(View::text(text).ephemeral().row([
            Button::new("Replace", ONBOARD_CONFIRM).style(ButtonStyle::Success),
            Button::new("Keep mine", ONBOARD_CANCEL),
        ])))
    }

    /// Answers a click on [`ONBOARD_CONFIRM`] or [`ONBOARD_CANCEL`]: the confirm
    /// message edited to what `/confirm` or `/cancel` says, without its buttons.
    /// `None` for any other custom id.
    ///
    /// # Errors
    ///
    /// [`BotError::NoUser`] without a user; session and store errors.
    pub async fn onboarding_button(&self, ctx: &Context, custom_id: &str) -> Result<Option<Reply>, BotError> {
        if ctx.user_id.is_none() {
            return Err(BotError::NoUser);
        }
        let text = match custom_id {
            ONBOARD_CONFIRM => self.confirm(ctx).await?,
            ONBOARD_CANCEL => self.cancel(ctx).await?,
            _ => return Ok(None),
        };
        Ok(Some(Reply::close(text)))
    }

    pub(super) async fn confirm(&self, ctx: &Context) -> Result<String, BotError> {
        let form = self.onboarding.open(&self.onboarding.key(ctx)?).await?;
        let (Step::Confirm, Some(name), Some(email)) = (form.step, form.name.clone(), form.email.clone()) else {
            return Ok("nothing to confirm (an unanswered form expires); /onboard starts one".into());
        };
        let key = self.profiles.key(ctx)?;
        let (n, e) = (name.clone(), email.clone());
        self.profiles
            .update(&key, |p| {
                p.name.clone_from(&n);
                p.email.clone_from(&e);
                Ok::<_, SessionError>(())
            })
            .await?;
        // After the profile: a crash in between leaves the form, and /confirm again
        // saves the same profile.
        form.delete().await?;
        Ok(format!("saved: {name} <{email}>"))
    }

    pub(super) async fn cancel(&self, ctx: &Context) -> Result<String, BotError> {
        let key = self.onboarding.key(ctx)?;
        let open = self
            .onboarding
            .update_option(&key, |form| {
                let open = form.as_ref().is_some_and(|f| f.step != Step::Idle);
                // None deletes the stored form.
                *form = None;
                Ok::<_, SessionError>(open)
            })
            .await?;
        Ok(if open { "cancelled".into() } else { "nothing to cancel; /onboard starts a form".into() })
    }
}

/// Longest name accepted, in characters.
const MAX_NAME: usize = 64;

pub(super) fn valid_name(text: &str) -> Result<String, String> {
    let name = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.chars().count() > MAX_NAME {
        return Err(format!("that name is longer than {MAX_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("a name cannot contain control characters".into());
    }
    Ok(name)
}

/// A deliberately plain check: one `@`, something before it, a dotted domain after
/// it, no spaces. Real validation is sending a mail.
pub(super) fn valid_email(text: &str) -> Result<String, String> {
    let bad = || Err(format!("`{text}` does not look like an email address (like ada@example.com)"));
    let email = text.trim();
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    let Some((local, domain)) = email.split_once('@') else { return bad() };
    if local.is_empty() || domain.contains('@') || !domain.contains('.') {
        return bad();
    }
    if domain.split('.').any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-')) {
        return bad();
    }
    Ok(email.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked() {
        for good in ["ada@example.com", "a.b+c@mail.example.org", "x@y.io"] {
            assert_eq!(valid_email(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a@b@c.com",
            "ada lovelace@example.com",
            "a@.com",
            "a@b..com",
            "a@-b.com",
        ] {
            assert!(valid_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(valid_name("  Ada   Lovelace ").as_deref(), Ok("Ada Lovelace"));
        assert!(valid_name(&"x".repeat(65)).is_err());
    }
}
