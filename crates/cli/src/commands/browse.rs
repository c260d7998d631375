//! `list` and `get`: looking at sessions.

use std::io::Write as _;

use std::borrow::Cow;

use bot_sessions::encryption::KeyRing;
use bot_sessions::session::{Inspected, inspect};
use bot_sessions::{Record, SessionKey, Ttl};
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::store::Opened;
use crate::util;

/// `list [--namespace NS] [--limit N]`.
pub async fn list(store: &Opened, namespace: Option<&str>, limit: Option<usize>, as_json: bool) -> CliResult {
    let mut left = limit.unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    'walk: for ns in util::namespaces(store, namespace).await? {
        let mut cursor: Option<String> = None;
        loop {
            if left == 0 {
                break 'walk;
            }
            let page = store
                .store
                .scan(&ns, cursor.as_deref(), left.min(util::PAGE), store.now())
                .await
                .map_err(|e| store.err(&e))?;
            for (key, r) in page.items.into_iter().take(left) {
                left -= 1;
                if as_json {
                    util::json_line(&json!({
                        "key": key.as_str(), "version": r.version, "size": r.value.len(),
                        "updated_at": r.updated_at.as_millis(), "expires_at": r.expires_at.map(|t| t.as_millis()),
                    }));
                } else {
                    rows.push(vec![
                        key.to_string(),
                        r.version.to_string(),
                        r.value.len().to_string(),
                        util::time(r.updated_at),
                        util::expiry(r.expires_at),
                    ]);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    if !as_json {
        util::table(&["KEY", "VERSION", "SIZE", "UPDATED", "EXPIRES"], &rows);
    }
    Ok(())
}

/// A session's own TTL in words.
pub fn ttl_text(ttl: Option<Ttl>) -> String {
    let secs = |d: std::time::Duration| humantime::format_duration(std::time::Duration::from_secs(d.as_secs()));
    match ttl {
        None => "-".into(),
        Some(Ttl::Idle { idle, refresh_on_read: false }) => format!("idle {}", secs(idle)),
        Some(Ttl::Idle { idle, refresh_on_read: true }) => format!("idle {} (refreshed on read)", secs(idle)),
        Some(Ttl::Absolute(d)) => format!("absolute {}", secs(d)),
        Some(_) => "never".into(),
    }
}

/// The metadata of a record as JSON.
pub fn meta_json(key: &SessionKey, r: &Record) -> serde_json::Value {
    json!({
        "key": key.as_str(), "version": r.version, "schema_version": r.schema_version, "size": r.value.len(),
        "created_at": r.created_at.as_millis(), "updated_at": r.updated_at.as_millis(),
        "expires_at": r.expires_at.map(|t| t.as_millis()), "user_id": r.user_id,
    })
}

/// A stored value opened with `ring` when it is sealed. `Err`: why it cannot be read.
pub fn opened<'a>(key: &SessionKey, value: &'a [u8], ring: Option<&KeyRing>) -> Result<Cow<'a, [u8]>, String> {
    match (KeyRing::sealed_with(value), ring) {
        (None, _) => Ok(Cow::Borrowed(value)),
        (Some(id), None) => {
            Err(format!("encrypted with key id {id}; pass the key ring in BOT_SESSIONS_KEYS or --keys-file to read it"))
        }
        (Some(_), Some(ring)) => ring.open(key, value).map_err(|e| e.to_string()),
    }
}

/// Prints a record's metadata, then its value (decoded when it decodes; opened first
/// with `ring` when it is sealed).
pub fn show(key: &SessionKey, r: &Record, ring: Option<&KeyRing>, as_json: bool) {
    let sealed = KeyRing::sealed_with(&r.value);
    let decoded = opened(key, &r.value, ring).and_then(|plain| inspect(&plain).map_err(|e| e.to_string()));
    if as_json {
        let mut out = meta_json(key, r);
        out["sealed_with"] = sealed.into();
        match &decoded {
            Ok(Inspected { ttl, codec, value }) => {
                out["codec"] = codec.name().into();
                out["own_ttl"] = ttl_text(*ttl).into();
                out["value"] = value.clone();
            }
            Err(e) => out["decode_error"] = e.to_string().into(),
        }
        util::json_line(&out);
        return;
    }
    println!("key:      {key}");
    println!("version:  {}", r.version);
    println!("schema:   {}", r.schema_version);
    println!("size:     {} bytes", r.value.len());
    println!("created:  {}", util::time(r.created_at));
    println!("updated:  {}", util::time(r.updated_at));
    println!("expires:  {}", util::expiry(r.expires_at));
    println!("user:     {}", r.user_id.map_or_else(|| "-".into(), |u| u.to_string()));
    if let Some(id) = sealed {
        println!("sealed:   key id {id}");
    }
    match decoded {
        Ok(Inspected { ttl, codec, value }) => {
            println!("codec:    {}", codec.name());
            println!("own ttl:  {}", ttl_text(ttl));
            println!("value:");
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        Err(e) => {
            println!("value:    does not decode ({e}); --raw prints the bytes");
        }
    }
}

/// `get KEY [--raw]` (`--raw`: the bytes as stored, sealed or not).
pub async fn get(store: &Opened, key: &str, raw: bool, ring: Option<&KeyRing>, as_json: bool) -> CliResult {
    let key = util::key(key)?;
    let record = util::load(store, &key).await?.ok_or_else(|| util::not_found(store, &key))?;
    if raw {
        let mut out = std::io::stdout().lock();
        out.write_all(&record.value)
            .and_then(|()| out.flush())
            .map_err(|e| CliError::Failed(format!("stdout: {e}")))?;
        return Ok(());
    }
    show(&key, &record, ring, as_json);
    Ok(())
}
