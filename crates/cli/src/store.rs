//! Opening the store a URL names: memory:// refused, no background purge, the password
//! kept out of every message.

use bot_sessions::{DynStore, Timestamp};

use crate::error::{CliError, CliResult};

/// An open store and its name for messages (the URL with the password redacted).
pub struct Opened {
    /// The store.
    pub store: DynStore,
    /// The URL without its password.
    pub name: String,
    password: Option<String>,
}

impl Opened {
    /// The error of a store operation, naming the store, the password removed.
    pub fn err(&self, e: &bot_sessions::StoreError) -> CliError {
        redact_error(CliError::store(&self.name, e), self.password.as_deref())
    }

    /// Now, by the system clock.
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The password of a `scheme://user:password@host` URL, if it has one.
fn password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let pw = userinfo.split_once(':')?.1;
    (!pw.is_empty()).then_some(pw)
}

/// `url` with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    match password(url) {
        Some(pw) => url.replacen(&format!(":{pw}@"), ":***@", 1),
        None => url.to_owned(),
    }
}

fn redact_error(e: CliError, password: Option<&str>) -> CliError {
    let Some(pw) = password else { return e };
    let clean = |s: String| s.replace(pw, "***");
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
    let name = redact(url);
    let password = password(url).map(str::to_owned);
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
        redact_error(e, password.as_deref())
    })?;
    Ok(Opened { store, name, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://:s3cret@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("postgres://u:pw@h/db?table=t"), "postgres://u:***@h/db?table=t");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:///tmp/a:b@c.db"), "sqlite:///tmp/a:b@c.db");
        let e = redact_error(CliError::Store("x pw y".into()), Some("pw"));
        assert_eq!(e.to_string(), "x *** y");
    }
}
