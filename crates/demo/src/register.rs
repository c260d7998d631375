//! Registering the demo's slash commands with Discord (`bot-sessions-demo register`):
//! one `PUT` of the whole list, which replaces the application's commands (globally,
//! or in one guild, where changes show at once), through the library's
//! [`Rest::register_commands`].

use bot_sessions::discord::{CommandDef, Rest, RestError};

/// The slash commands: (name, description).
pub const COMMANDS: &[(&str, &str)] = &[
    ("count", "Count up (per user in this channel)"),
    ("onboard", "Fill in your name and email"),
    ("profile", "Show your saved profile"),
    ("forget", "Delete everything stored about you"),
    ("menu", "A value with -1, +1 and Done buttons"),
];

/// Why registering failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// The token is empty or not a plain token.
    #[error("the bot token is empty or malformed (paste it without the `Bot ` prefix)")]
    BadToken,
    /// The API URL is not http(s).
    #[error("the API URL `{0}` is not http(s)")]
    ApiUrl(String),
    /// The HTTP client cannot be built, or a command is one Discord would refuse.
    #[error("cannot register: {0}")]
    Client(String),
    /// Discord could not be reached.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Discord answered with an error.
    #[error("PUT {url} failed with {status}: {hint}; Discord said: {body}")]
    Refused {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What it usually means.
        hint: &'static str,
        /// The body of the answer.
        body: String,
    },
}

/// The command list as Discord takes it (slash commands).
pub fn commands() -> Vec<CommandDef> {
    COMMANDS.iter().map(|(name, description)| CommandDef::slash(*name, *description)).collect()
}

/// The URL the commands are PUT to: the application's global commands, or one guild's.
pub fn commands_url(api_url: &str, application_id: u64, guild: Option<u64>) -> String {
    let base = api_url.trim_end_matches('/');
    match guild {
        Some(guild) => format!("{base}/applications/{application_id}/guilds/{guild}/commands"),
        None => format!("{base}/applications/{application_id}/commands"),
    }
}

/// PUTs [`commands`] for `application_id` (in `guild`, if given) with the bot `token`;
/// returns how many commands Discord now has.
///
/// # Errors
///
/// [`RegisterError`], with what a refusal usually means (a wrong token, an application
/// id that is not the token's, a bot not in the guild).
pub async fn register(
    api_url: &str,
    token: &str,
    application_id: u64,
    guild: Option<u64>,
) -> Result<usize, RegisterError> {
    let token = token.trim();
    if token.is_empty() || token.starts_with("Bot ") || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RegisterError::BadToken);
    }
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(RegisterError::ApiUrl(api_url.to_owned()));
    }
    let rest = Rest::builder()
        .base_url(api_url.trim_end_matches('/'))
        .bot_token(token)
        .max_retries(1)
        .build()
        .map_err(|e| RegisterError::Client(e.to_string()))?;
    let url = commands_url(api_url, application_id, guild);
    rest.register_commands(application_id, guild, &commands()).await.map_err(|e| match e {
        RestError::Status { status, body, .. } => {
            let hint = match status {
                401 => "the bot token is wrong (Bot > Reset Token in the developer portal)",
                403 => "the token's bot may not manage this application's or guild's commands",
                404 => "no such application or guild (is --application-id the token's application?)",
                _ => "Discord refused the request",
            };
            RegisterError::Refused { url, status, hint, body }
        }
        RestError::RateLimited { retry_after, .. } => RegisterError::Refused {
            url,
            status: 429,
            hint: "rate limited; try again in a minute",
            body: format!("retry after {retry_after:?}"),
        },
        e @ (RestError::Transport { .. } | RestError::Timeout { .. }) => {
            RegisterError::Unreachable { url, reason: causes(&e) }
        }
        other => RegisterError::Client(other.to_string()),
    })
}

/// An error and its causes, `: `-separated (reqwest's own text is only the outermost).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_go_to_the_application_or_one_guild() {
        assert_eq!(commands_url("http://h/api/v10/", 1, None), "http://h/api/v10/applications/1/commands");
        assert_eq!(commands_url("http://h/api/v10", 1, Some(2)), "http://h/api/v10/applications/1/guilds/2/commands");
        let names: Vec<_> = commands().iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["count", "onboard", "profile", "forget", "menu"]);
        assert!(commands().iter().all(|c| c.check().is_ok()));
    }
}
