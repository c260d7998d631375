//! Reading teloxide's own dialogue storages: `SqliteStorage` and `PostgresStorage`
//! (table `teloxide_dialogues (chat_id BIGINT PRIMARY KEY, dialogue BLOB/BYTEA)`, as
//! teloxide 0.17 creates it) and `RedisStorage` (one key per chat: the chat id in
//! decimal, the serialized dialogue as its value).

use bot_sessions::store::{redact_url, redact_url_in};

use crate::error::{CliError, CliResult};

/// One stored dialogue, or why an entry of the source could not be read.
pub type Entry = Result<(i64, Vec<u8>), String>;

/// Reads every dialogue at `url`.
pub async fn read_all(url: &str) -> CliResult<Vec<Entry>> {
    let scheme = url.split_once(':').map_or("", |(s, _)| s);
    let read = match scheme {
        "sqlite" => sqlite(url).await,
        "postgres" | "postgresql" => postgres(url).await,
        "redis" | "rediss" => redis(url).await,
        _ => {
            return Err(CliError::Usage(format!(
                "--from {}: not a teloxide storage URL (sqlite://PATH, postgres://..., redis://...)",
                redact_url(url)
            )));
        }
    };
    read.map_err(|e| CliError::Store(format!("teloxide storage {}: {}", redact_url(url), redact_url_in(&e, url))))
}

/// The file of a `sqlite://PATH` (or teloxide's own `sqlite:PATH`) URL.
fn sqlite_path(url: &str) -> &str {
    let rest = url.strip_prefix("sqlite:").unwrap_or(url);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    rest.split_once('?').map_or(rest, |(path, _)| path)
}

async fn sqlite(url: &str) -> Result<Vec<Entry>, String> {
    let path = sqlite_path(url).to_owned();
    if !std::path::Path::new(&path).is_file() {
        return Err(format!("no such file: {path}"));
    }
    tokio::task::spawn_blocking(move || {
        use rusqlite::{Connection, OpenFlags};
        let db = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| e.to_string())?;
        let mut rows = db
            .prepare("SELECT chat_id, dialogue FROM teloxide_dialogues ORDER BY chat_id")
            .map_err(|e| format!("{e} (is this teloxide's SqliteStorage?)"))?;
        let entries = rows
            .query_map([], |row| {
                let chat: i64 = row.get(0)?;
                Ok(match row.get::<_, Vec<u8>>(1) {
                    Ok(bytes) => Ok((chat, bytes)),
                    Err(e) => Err(format!("chat {chat}: the dialogue is not a blob: {e}")),
                })
            })
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(entries)
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn postgres(url: &str) -> Result<Vec<Entry>, String> {
    // The source is read once, by an operator: plaintext or `sslmode=prefer` falling back
    // to it. A server that requires TLS is refused by the driver with its own message.
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let rows = client
        .query("SELECT chat_id, dialogue FROM teloxide_dialogues ORDER BY chat_id", &[])
        .await
        .map_err(|e| format!("{e} (is this teloxide's PostgresStorage?)"));
    drop(client);
    let _ = driver.await;
    Ok(rows?
        .iter()
        .map(|row| {
            let chat: i64 = row.try_get(0).map_err(|e| format!("a chat id that is not a BIGINT: {e}"))?;
            row.try_get::<_, Vec<u8>>(1).map(|b| (chat, b)).map_err(|e| format!("chat {chat}: {e}"))
        })
        .collect())
}

async fn redis(url: &str) -> Result<Vec<Entry>, String> {
    use redis::AsyncCommands as _;
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    // Every key, then those that are a chat id: teloxide writes nothing else, and a
    // database it shares with other data keeps that data's keys out.
    let mut keys: Vec<String> = Vec::new();
    {
        let mut iter = conn.scan::<String>().await.map_err(|e| e.to_string())?;
        while let Some(key) = iter.next_item().await {
            keys.push(key.map_err(|e| e.to_string())?);
        }
    }
    let mut chats: Vec<i64> = keys.iter().filter_map(|k| chat_id(k)).collect();
    chats.sort_unstable();
    let mut entries = Vec::with_capacity(chats.len());
    for chat in chats {
        let got: Result<Option<Vec<u8>>, _> = conn.get(chat).await;
        entries.push(match got {
            Ok(Some(bytes)) => Ok((chat, bytes)),
            Ok(None) => continue, // removed meanwhile
            Err(e) if e.code() == Some("WRONGTYPE") => Err(format!("key {chat} is not a string value: {e}")),
            Err(e) => return Err(e.to_string()),
        });
    }
    Ok(entries)
}

/// The chat id a teloxide Redis key spells: an `i64` in its canonical decimal form.
fn chat_id(key: &str) -> Option<i64> {
    let id: i64 = key.parse().ok()?;
    (id.to_string() == key).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_in_both_spellings() {
        assert_eq!(sqlite_path("sqlite://./bot.db"), "./bot.db");
        assert_eq!(sqlite_path("sqlite:///var/lib/bot.db"), "/var/lib/bot.db");
        assert_eq!(sqlite_path("sqlite:bot.db?mode=rwc"), "bot.db");
    }

    #[test]
    fn only_canonical_chat_ids_are_keys_of_teloxide() {
        assert_eq!(chat_id("-1001234567890"), Some(-1_001_234_567_890));
        assert_eq!(chat_id("42"), Some(42));
        for other in ["+42", "042", "4 2", "mybot:42", "", "9223372036854775808"] {
            assert_eq!(chat_id(other), None, "{other}");
        }
    }
}
