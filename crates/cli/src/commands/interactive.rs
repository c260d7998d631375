//! `interactive list|end`: live interactive sessions.

use bot_sessions::encryption::KeyRing;
use bot_sessions::interactive::{SessionId, expire_now, read_stored, stored_id, stored_key};
use bot_sessions::{Precondition, SessionKey, StoreError, Write};
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::store::Opened;
use crate::util;

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// `interactive list [--namespace NS]`.
/// Sessions sealed by a manager with encryption at rest open with `ring`.
pub async fn list(store: &Opened, namespace: &str, ring: Option<&KeyRing>, as_json: bool) -> CliResult {
    let ns = util::namespace(namespace)?;
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page =
            store.store.scan(&ns, cursor.as_deref(), util::PAGE, store.now()).await.map_err(|e| store.err(&e))?;
        for (key, record) in &page.items {
            let Some(id) = stored_id(key) else { continue };
            let s = match super::browse::opened(key, &record.value, ring)
                .and_then(|plain| read_stored(&plain).map_err(|e| e.to_string()))
            {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("skipped {key}: {e}");
                    continue;
                }
            };
            if as_json {
                util::json_line(&json!({
                    "session": id.as_str(), "kind": s.kind, "phase": s.phase.as_str(),
                    "opener": s.origin.user, "chat": s.origin.chat, "started": s.origin.at.as_millis(),
                    "expires": s.deadline.map(|t| t.as_millis()), "reason": s.reason.map(|r| r.to_string()),
                }));
            } else {
                rows.push(vec![
                    id.to_string(),
                    s.kind,
                    s.reason.map_or_else(|| s.phase.as_str().to_owned(), |r| format!("{} ({r})", s.phase.as_str())),
                    opt(s.origin.user),
                    opt(s.origin.chat),
                    util::time(s.origin.at),
                    s.deadline.map_or_else(|| "-".into(), util::time),
                ]);
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if !as_json {
        util::table(&["SESSION", "KIND", "PHASE", "OPENER", "CHAT", "STARTED", "EXPIRES"], &rows);
    }
    Ok(())
}

/// The key of `session`: a session id, or a full key.
fn session_key(namespace: &str, session: &str) -> CliResult<SessionKey> {
    if let Some(id) = SessionId::parse(session) {
        return Ok(stored_key(&util::namespace(namespace)?, id));
    }
    let key = util::key(session)
        .map_err(|_| CliError::Usage(format!("`{session}` is neither a session id (16 characters) nor a key")))?;
    if stored_id(&key).is_none() {
        return Err(CliError::Usage(format!("`{key}` is not the key of an interactive session")));
    }
    Ok(key)
}

/// `interactive end SESSION`: moves the live session's deadline to now with
/// compare-and-set; the bot's expiry sweeper then ends it, running `end` once. A sealed
/// session is opened and sealed again with `ring`.
pub async fn end(store: &Opened, namespace: &str, session: &str, ring: Option<&KeyRing>, as_json: bool) -> CliResult {
    let key = session_key(namespace, session)?;
    for _ in 0..4 {
        let now = store.now();
        let record = util::load(store, &key).await?.ok_or_else(|| util::not_found(store, &key))?;
        let sealed = KeyRing::sealed_with(&record.value).is_some();
        let plain = super::browse::opened(&key, &record.value, ring)
            .map_err(|e| CliError::Usage(format!("store {}: session `{key}`: {e}", store.name)))?;
        let value = expire_now(&plain, now)
            .map_err(|e| CliError::Failed(format!("store {}: session `{key}`: {e}", store.name)))?;
        let kind = read_stored(&value).map(|s| s.kind).unwrap_or_default();
        let value = match ring {
            Some(ring) if sealed => ring
                .seal(&key, &value)
                .map_err(|e| CliError::Failed(format!("store {}: session `{key}`: {e}", store.name)))?,
            _ => value,
        };
        let write = Write::new(&value, record.schema_version, record.expires_at).with_owner(record.user_id);
        match store.store.write(&key, write, Precondition::Version(record.version), now).await {
            Ok(_) => {
                if as_json {
                    util::json_line(&json!({"session": key.as_str(), "kind": kind, "expired_at": now.as_millis()}));
                } else {
                    println!(
                        "{key} ({kind}) is marked expired as of {}; the bot's expiry sweeper ends it and runs its \
                         `end` once (at its next scan pass, or at the next click)",
                        util::time(now)
                    );
                }
                return Ok(());
            }
            // A click landed meanwhile: read it again.
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store.err(&e)),
        }
    }
    Err(CliError::Failed(format!("store {}: conflict on key `{key}`: it keeps changing; try again", store.name)))
}
