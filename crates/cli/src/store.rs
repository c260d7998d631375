//! Opening the store a URL names: memory:// refused, no background purge, the password
//! kept out of every message.

use bot_sessions::store::{redact_url, redact_url_in};
use bot_sessions::{DynStore, Timestamp};

use crate::error::{CliError, CliResult};

/// An open store and its name for messages (the URL with the password redacted).
pub struct Opened {
    /// The store.
    pub store: DynStore,
    /// The URL without its password.
    pub name: String,
    /// The URL as given, only to mask its secrets wherever a message echoes them.
    url: String,
}

impl Opened {
    /// The error of a store operation, naming the store, the password removed.
    pub fn err(&self, e: &bot_sessions::StoreError) -> CliError {
        redacted(CliError::store(&self.name, e), &self.url)
    }

    /// Now, by the system clock.
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// `e` with every secret of `url` masked (the library's one redaction).
fn redacted(e: CliError, url: &str) -> CliError {
    let clean = |s: String| redact_url_in(&s, url);
    match e {
        CliError::Usage(s) => CliError::Usage(clean(s)),
        CliError::Failed(s) => CliError::Failed(clean(s)),
        CliError::Store(s) => CliError::Store(clean(s)),
    }
}

/// Opens `url` (from `--store`, `--to` or BOT_SESSIONS_STORE).
///
/// # Errors
///
/// Usage for a missing URL, `memory://`, an unknown scheme or bad settings; Store when
/// the server cannot be reached.
pub async fn open(url: Option<&str>) -> CliResult<Opened> {
    let url = url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| CliError::Usage("no store: pass --store URL or set BOT_SESSIONS_STORE".into()))?;
    let name = redact_url(url);
    let scheme = url.split_once("://").map(|(s, _)| s);
    if scheme == Some("memory") {
        return Err(CliError::Usage(format!(
            "store {name}: memory:// is refused: it would be a new, empty store in this process, not the bot's \
             (use sqlite://PATH, redis://HOST:PORT or postgres://USER@HOST/DB)"
        )));
    }
    // The tool is short-lived: no background purge (`purge-expired` does it on demand).
    let open_url = if url.contains("purge_interval=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&purge_interval=off")
    } else {
        format!("{url}?purge_interval=off")
    };
    let store = bot_sessions::store::open(&open_url).await.map_err(|e| {
        let e = match e {
            // Whatever fails while opening a server store that is not configuration is
            // the server not answering (refused, timed out, lost).
            bot_sessions::StoreError::Config(_) => CliError::store(&name, &e),
            other => CliError::Store(format!("store {name} is unreachable: {other}")),
        };
        redacted(e, url)
    })?;
    Ok(Opened { store, name, url: url.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_lose_every_secret_of_the_url() {
        let url = "postgres://u:my/se@cret@h/db?password=s3cret";
        let e = redacted(CliError::Store(format!("x {url} y: host cret@h, s3cret")), url);
        let shown = e.to_string();
        assert!(!shown.contains("se@cret") && !shown.contains("cret@h") && !shown.contains("s3cret"), "{shown}");
    }
}
