//! A poise bot with a data session per user per guild: `/profile` shows how often you
//! looked at your profile in this server, and `/profile bio: ...` sets your bio there.
//! The same user has another profile in another server (`KeyStrategy::GuildUser`).
//!
//! Cargo.toml:
//!
//! ```toml
//! [dependencies]
//! bot-sessions = { version = "0.1", features = ["poise"] }
//! poise = { version = "0.6", default-features = false }
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! Run: `DISCORD_TOKEN=... cargo run --example poise_profile --features poise`.

use bot_sessions::discord::serenity::{Session, SessionContext, SessionsOf};
use bot_sessions::interactive::Reply;
use bot_sessions::{KeyStrategy, SessionError, Sessions, store};
use poise::serenity_prelude as serenity;

/// One user's profile in one guild.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// What the user wrote about themself.
    pub bio: String,
    /// How often they looked.
    pub views: u64,
}

/// poise's user data: the sessions.
pub struct Data {
    /// Profiles, one per user per guild.
    pub profiles: Sessions<Profile>,
}

impl SessionsOf<Profile> for Data {
    fn sessions(&self) -> &Sessions<Profile> {
        &self.profiles
    }
}

/// The commands' error.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Shows your profile in this server; `bio` sets it.
#[poise::command(slash_command, guild_only)]
pub async fn profile(
    ctx: poise::Context<'_, Data, Error>,
    #[description = "A new bio"] bio: Option<String>,
) -> Result<(), Error> {
    let text = show(&ctx.session::<Profile>()?, bio).await?;
    ctx.send_reply(Reply::notice(text)).await?;
    Ok(())
}

/// Counts the view, sets the bio if given, and says what the profile is now.
pub async fn show(session: &Session<Profile>, bio: Option<String>) -> Result<String, SessionError> {
    session
        .update(|p| {
            if let Some(bio) = &bio {
                p.bio.clone_from(bio);
            }
            p.views += 1;
            Ok(format!("bio: {} (viewed {} times)", if p.bio.is_empty() { "-" } else { &p.bio }, p.views))
        })
        .await
}

/// The profiles on `store`, one per user per guild.
pub fn profiles(store: bot_sessions::DynStore) -> Result<Sessions<Profile>, SessionError> {
    Sessions::builder(store).namespace("profile").key(KeyStrategy::GuildUser).build()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let token = std::env::var("DISCORD_TOKEN")?;
    let profiles = profiles(store::open("sqlite://profiles.db").await?)?;
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions { commands: vec![profile()], ..Default::default() })
        .setup(|ctx, _ready, framework| {
            Box::pin(async move {
                poise::builtins::register_globally(ctx, &framework.options().commands).await?;
                Ok(Data { profiles })
            })
        })
        .build();
    let mut client =
        serenity::ClientBuilder::new(token, serenity::GatewayIntents::non_privileged()).framework(framework).await?;
    client.start().await?;
    Ok(())
}
