//! `/profile` and `/forget`: what is kept about a user, and erasing all of it.

use bot_sessions::Context;

use super::{Bot, BotError};

impl Bot {
    pub(super) async fn profile(&self, ctx: &Context) -> Result<String, BotError> {
        let key = self.profiles.key(ctx)?;
        Ok(match self.profiles.get(&key).await? {
            Some(p) => {
                let menu = p.menu.map(|n| format!("menu: {n}"));
                match (p.name.is_empty(), menu) {
                    (false, Some(menu)) => format!("profile: {} <{}>, {menu}", p.name, p.email),
                    (false, None) => format!("profile: {} <{}>", p.name, p.email),
                    (true, Some(menu)) => format!("profile: {menu} (no name yet; /onboard)"),
                    (true, None) => "no profile saved; /onboard creates one".into(),
                }
            }
            None => "no profile saved; /onboard creates one".into(),
        })
    }

    pub(super) async fn forget(&self, ctx: &Context) -> Result<String, BotError> {
        let user = ctx.user_id.ok_or(BotError::NoUser)?;
        let n = self.store.forget_user(user, self.clock.now()).await?;
        let s = if n == 1 { "" } else { "s" };
        Ok(format!("forgotten: deleted {n} session{s} of user {user}"))
    }
}
