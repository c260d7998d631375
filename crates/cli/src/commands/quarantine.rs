//! `quarantine list|show|restore|drop`: records set aside because they did not decode.

use bot_sessions::session::{QUARANTINE_NAMESPACE, list_quarantined};
use bot_sessions::{Precondition, SessionKey, StoreError, Write};
use serde_json::json;

use crate::commands::browse;
use crate::error::{CliError, CliResult};
use crate::store::Opened;
use crate::util;

/// `quarantine list [--namespace NS]`.
pub async fn list(store: &Opened, namespace: Option<&str>, as_json: bool) -> CliResult {
    let of = namespace.map(util::namespace).transpose()?;
    let all = list_quarantined(store.store.as_ref(), of.as_ref(), store.now()).await.map_err(|e| store.err(&e))?;
    let mut rows = Vec::new();
    for q in all {
        if as_json {
            util::json_line(&json!({
                "key": q.key.as_str(), "original": q.original, "size": q.value.len(),
                "schema_version": q.schema_version, "quarantined_at": q.quarantined_at.as_millis(),
            }));
        } else {
            rows.push(vec![
                q.key.to_string(),
                q.original,
                q.value.len().to_string(),
                q.schema_version.to_string(),
                util::time(q.quarantined_at),
            ]);
        }
    }
    if !as_json {
        util::table(&["KEY", "ORIGINAL", "SIZE", "SCHEMA", "QUARANTINED"], &rows);
    }
    Ok(())
}

/// A quarantine key from the command line: it must be in the `_quarantine` namespace.
fn quarantine_key(text: &str) -> CliResult<(SessionKey, String)> {
    let key = util::key(text)?;
    if key.namespace().as_str() != QUARANTINE_NAMESPACE {
        return Err(CliError::Usage(format!(
            "`{key}` is not a quarantine key (they start with `{QUARANTINE_NAMESPACE}/`; see `quarantine list`)"
        )));
    }
    let bot_sessions::Scope::Custom { id, .. } = key.scope() else {
        return Err(CliError::Usage(format!("`{key}` is not a quarantine key")));
    };
    let original = id.rsplit_once("#v").map_or(id.as_str(), |(o, _)| o).to_owned();
    Ok((key, original))
}

/// `quarantine show KEY`.
pub async fn show(store: &Opened, key: &str, as_json: bool) -> CliResult {
    let (key, original) = quarantine_key(key)?;
    let r = util::load(store, &key).await?.ok_or_else(|| util::not_found(store, &key))?;
    if !as_json {
        println!("original: {original}");
    }
    // Sealed bytes in quarantine open only under their original key: shown as sealed.
    browse::show(&key, &r, None, as_json);
    if !as_json && bot_sessions::session::inspect(&r.value).is_err() {
        println!("bytes:    {}", String::from_utf8_lossy(&r.value).escape_debug());
    }
    Ok(())
}

/// `quarantine restore KEY [--force]`: the bytes go back under the original key (as they
/// were, without expiry), then the quarantine record is dropped.
pub async fn restore(store: &Opened, key: &str, force: bool, as_json: bool) -> CliResult {
    let (qkey, original) = quarantine_key(key)?;
    let target = util::key(&original)?;
    let q = util::load(store, &qkey).await?.ok_or_else(|| util::not_found(store, &qkey))?;
    let now = store.now();
    let pre = if force { Precondition::Any } else { Precondition::Absent };
    let write = Write::new(&q.value, q.schema_version, None).with_owner(q.user_id);
    match store.store.write(&target, write, pre, now).await {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => {
            return Err(CliError::Failed(format!(
                "store {}: conflict on key `{target}`: a session is there now; --force replaces it",
                store.name
            )));
        }
        Err(e) => return Err(store.err(&e)),
    }
    store.store.delete(&qkey, Precondition::Version(q.version), now).await.map_err(|e| store.err(&e))?;
    if as_json {
        util::json_line(&json!({"restored": target.as_str(), "from": qkey.as_str()}));
    } else {
        println!("restored {target} ({} bytes) and dropped it from quarantine", q.value.len());
    }
    Ok(())
}

/// `quarantine drop KEY`.
pub async fn drop(store: &Opened, key: &str, as_json: bool) -> CliResult {
    let (qkey, _) = quarantine_key(key)?;
    if !store.store.delete(&qkey, Precondition::Any, store.now()).await.map_err(|e| store.err(&e))? {
        return Err(util::not_found(store, &qkey));
    }
    if as_json {
        util::json_line(&json!({"dropped": qkey.as_str()}));
    } else {
        println!("dropped {qkey}");
    }
    Ok(())
}
