//! The demo bot's logic, free of any transport: give it the [`Context`] of an update
//! and the message text, get the reply lines back. The console transport
//! ([`crate::console`]) runs it today; Telegram and Discord transports can run the very
//! same [`Bot`].
//!
//! Three session types, each with its own namespace, key strategy and TTL:
//!
//! | session | namespace | key | TTL |
//! | --- | --- | --- | --- |
//! | [`Counter`] | `counter` | user in chat | none |
//! | [`Onboarding`] | `onboarding` | user in chat | idle, `--onboarding-ttl` (30 min) |
//! | [`Profile`] | `profile` | user (across chats) | none |

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::{Clock, Context, DynStore, KeyStrategy, SessionError, Sessions, StoreError, SystemClock, Ttl};
use serde::{Deserialize, Serialize};

/// How long an onboarding form lives without an answer, unless configured.
pub const DEFAULT_ONBOARDING_TTL: Duration = Duration::from_secs(30 * 60);

/// The `/count` session: how often this user counted in this chat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// The count.
    pub n: u64,
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

/// What `/confirm` keeps, per user across chats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The user's name.
    pub name: String,
    /// The user's email.
    pub email: String,
}

/// What can go wrong answering an update.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// Loading or saving a session failed (a store outage, a record that does not
    /// decode, an update without a user).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A store operation outside a session failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The update has no user, and every command here is per user.
    #[error("this update has no user; the demo only answers users")]
    NoUser,
}

/// Settings of a [`Bot`].
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// How long an onboarding form lives without an answer.
    pub onboarding_ttl: Duration,
    /// Where "now" comes from (tests pass a [`ManualClock`](bot_sessions::ManualClock)).
    pub clock: Arc<dyn Clock>,
}

impl Default for BotConfig {
    fn default() -> Self {
        BotConfig { onboarding_ttl: DEFAULT_ONBOARDING_TTL, clock: Arc::new(SystemClock) }
    }
}

/// The help text, one command per line.
pub const HELP: &[&str] = &[
    "commands:",
    "/count    count up (per user in this chat)",
    "/onboard  fill in your name and email",
    "/confirm  save the onboarding form as your profile",
    "/cancel   drop the onboarding form",
    "/profile  show your saved profile",
    "/forget   delete everything stored about you",
    "/help     this list",
];

/// The demo bot. Share it between transports behind an `Arc`.
pub struct Bot {
    store: DynStore,
    clock: Arc<dyn Clock>,
    counters: Sessions<Counter>,
    onboarding: Sessions<Onboarding>,
    profiles: Sessions<Profile>,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("counters", &self.counters)
            .field("onboarding", &self.onboarding)
            .field("profiles", &self.profiles)
            .finish_non_exhaustive()
    }
}

impl Bot {
    /// A bot keeping its sessions in `store`.
    ///
    /// # Errors
    ///
    /// A [`SessionError::Config`] for a zero onboarding TTL.
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Context};
    /// use bot_sessions_demo::bot::{Bot, BotConfig};
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let bot = Bot::new(Arc::new(MemoryStore::new()), BotConfig::default())?;
    /// let reply = bot.handle(&Context::new().chat(1).user(1), "/count").await?;
    /// assert_eq!(reply, ["count: 1"]);
    /// # Ok::<(), bot_sessions_demo::bot::BotError>(())
    /// # }).unwrap();
    /// ```
    pub fn new(store: DynStore, config: BotConfig) -> Result<Self, BotError> {
        if config.onboarding_ttl.is_zero() {
            return Err(SessionError::Config("the onboarding TTL must be above zero".into()).into());
        }
        let clock = config.clock;
        let counters = Sessions::builder(store.clone())
            .namespace("counter")
            .key(KeyStrategy::ChatUser)
            .clock(clock.clone())
            .build()?;
        let onboarding = Sessions::builder(store.clone())
            .namespace("onboarding")
            .key(KeyStrategy::ChatUser)
            .ttl(Ttl::idle(config.onboarding_ttl))
            .clock(clock.clone())
            .build()?;
        let profiles = Sessions::builder(store.clone())
            .namespace("profile")
            .key(KeyStrategy::User)
            .clock(clock.clone())
            .build()?;
        Ok(Bot { store, clock, counters, onboarding, profiles })
    }

    /// Answers one message: returns the reply lines (none for a blank message).
    ///
    /// # Errors
    ///
    /// [`BotError::NoUser`] for an update without a user; session and store errors.
    pub async fn handle(&self, ctx: &Context, text: &str) -> Result<Vec<String>, BotError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        if ctx.user_id.is_none() {
            return Err(BotError::NoUser);
        }
        let reply = match command(text) {
            Some("/count") => self.count(ctx).await?,
            Some("/onboard") => self.onboard(ctx).await?,
            Some("/confirm") => self.confirm(ctx).await?,
            Some("/cancel") => self.cancel(ctx).await?,
            Some("/profile") => self.profile(ctx).await?,
            Some("/forget") => self.forget(ctx).await?,
            Some("/help" | "/start") => return Ok(HELP.iter().map(|l| (*l).to_owned()).collect()),
            Some(other) => format!("unknown command {other}; /help lists what I understand"),
            None => self.answer(ctx, text).await?,
        };
        Ok(vec![reply])
    }

    async fn count(&self, ctx: &Context) -> Result<String, BotError> {
        let key = self.counters.key(ctx)?;
        let n = self
            .counters
            .update(&key, |c| {
                c.n += 1;
                Ok::<_, SessionError>(c.n)
            })
            .await?;
        Ok(format!("count: {n}"))
    }

    async fn onboard(&self, ctx: &Context) -> Result<String, BotError> {
        let key = self.onboarding.key(ctx)?;
        self.onboarding
            .update(&key, |form| {
                *form = Onboarding { step: Step::Name, ..Onboarding::default() };
                Ok::<_, SessionError>(())
            })
            .await?;
        Ok("let's get you set up. What is your name?".into())
    }

    /// Plain text: the answer to the onboarding form's current question, if one is open.
    async fn answer(&self, ctx: &Context, text: &str) -> Result<String, BotError> {
        let key = self.onboarding.key(ctx)?;
        let reply = self
            .onboarding
            .update(&key, |form| {
                Ok::<_, SessionError>(match form.step {
                    Step::Idle => "I only understand commands; /help lists them".to_owned(),
                    Step::Name => match valid_name(text) {
                        Ok(name) => {
                            let reply = format!("nice to meet you, {name}. What is your email?");
                            form.name = Some(name);
                            form.step = Step::Email;
                            reply
                        }
                        Err(why) => format!("{why}. What is your name?"),
                    },
                    Step::Email => match valid_email(text) {
                        Ok(email) => {
                            let name = form.name.clone().unwrap_or_default();
                            let reply = format!("name: {name}, email: {email}. /confirm to save, /cancel to drop it");
                            form.email = Some(email);
                            form.step = Step::Confirm;
                            reply
                        }
                        Err(why) => format!("{why}. What is your email?"),
                    },
                    Step::Confirm => "please answer /confirm or /cancel".to_owned(),
                })
            })
            .await?;
        Ok(reply)
    }

    async fn confirm(&self, ctx: &Context) -> Result<String, BotError> {
        let form = self.onboarding.open(&self.onboarding.key(ctx)?).await?;
        let (Step::Confirm, Some(name), Some(email)) = (form.step, form.name.clone(), form.email.clone()) else {
            return Ok("nothing to confirm (an unanswered form expires); /onboard starts one".into());
        };
        let key = self.profiles.key(ctx)?;
        let (n, e) = (name.clone(), email.clone());
        self.profiles
            .update(&key, |p| {
                *p = Profile { name: n.clone(), email: e.clone() };
                Ok::<_, SessionError>(())
            })
            .await?;
        // After the profile: a crash in between leaves the form, and /confirm again
        // saves the same profile.
        form.delete().await?;
        Ok(format!("saved: {name} <{email}>"))
    }

    async fn cancel(&self, ctx: &Context) -> Result<String, BotError> {
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

    async fn profile(&self, ctx: &Context) -> Result<String, BotError> {
        let key = self.profiles.key(ctx)?;
        Ok(match self.profiles.get(&key).await? {
            Some(p) => format!("profile: {} <{}>", p.name, p.email),
            None => "no profile saved; /onboard creates one".into(),
        })
    }

    async fn forget(&self, ctx: &Context) -> Result<String, BotError> {
        let user = ctx.user_id.ok_or(BotError::NoUser)?;
        let n = self.store.forget_user(user, self.clock.now()).await?;
        let s = if n == 1 { "" } else { "s" };
        Ok(format!("forgotten: deleted {n} session{s} of user {user}"))
    }
}

/// The command of a message (`/count@MyBot args` is `/count`), if it is one.
fn command(text: &str) -> Option<&str> {
    if !text.starts_with('/') {
        return None;
    }
    let word = text.split_whitespace().next().unwrap_or(text);
    Some(word.split_once('@').map_or(word, |(cmd, _bot)| cmd))
}

/// Longest name accepted, in characters.
const MAX_NAME: usize = 64;

fn valid_name(text: &str) -> Result<String, String> {
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
fn valid_email(text: &str) -> Result<String, String> {
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
    fn commands_are_recognised() {
        assert_eq!(command("/count"), Some("/count"));
        assert_eq!(command("/count@DemoBot now"), Some("/count"));
        assert_eq!(command("  hello"), None);
        assert_eq!(command("count"), None);
    }

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
