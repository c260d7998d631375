//! `set`, `delete`, `forget-user`, `purge-expired`: changing sessions.

use std::time::Duration;

use bot_sessions::encryption::KeyRing;
use bot_sessions::session::{encode_value, inspect};
use bot_sessions::{Codec, Precondition, StoreError, Write};
use serde_json::json;

use crate::cli::{CodecArg, SetArgs};
use crate::error::{CliError, CliResult};
use crate::store::Opened;
use crate::util;

fn conflict(store: &Opened, key: &str, why: &str) -> CliError {
    CliError::Failed(format!("store {}: conflict on key `{key}`: {why}; nothing was written", store.name))
}

/// `set KEY VALUE_JSON [--if-version V]`: compare-and-set against the version read (or
/// the one given), keeping the session's codec, TTL header, schema and expiry unless
/// told otherwise. With a key ring the value is sealed (and an encrypted session is
/// opened first to keep its codec and TTL); an encrypted session is not replaced
/// without one.
pub async fn set(store: &Opened, args: &SetArgs, ring: Option<&KeyRing>, as_json: bool) -> CliResult {
    let key = util::key(&args.key)?;
    let value: serde_json::Value = serde_json::from_str(&args.value)
        .map_err(|e| CliError::Usage(format!("the value for key `{key}` is not valid JSON: {e}")))?;
    let now = store.now();
    let current = util::load(store, &key).await?;
    let precondition = match (args.if_version, &current) {
        (Some(v), Some(r)) if r.version != v => {
            return Err(conflict(store, key.as_str(), &format!("its version is {}, not {v}", r.version)));
        }
        (Some(_), None) => return Err(conflict(store, key.as_str(), "there is no session under it")),
        (_, Some(r)) => Precondition::Version(r.version),
        (None, None) => Precondition::Absent,
    };
    // What the bot wrote before, so that it can still read the value.
    let seen = match &current {
        Some(r) if KeyRing::sealed_with(&r.value).is_some() && ring.is_none() => {
            return Err(CliError::Usage(format!(
                "the session under `{key}` is encrypted: pass the key ring in BOT_SESSIONS_KEYS or --keys-file to \
                 replace it; nothing was written"
            )));
        }
        Some(r) => crate::commands::browse::opened(&key, &r.value, ring).ok().and_then(|plain| inspect(&plain).ok()),
        None => None,
    };
    let codec = match args.codec {
        Some(CodecArg::Json) => Codec::Json,
        Some(CodecArg::Msgpack) => Codec::MessagePack,
        None => seen.as_ref().map_or(Codec::Json, |s| s.codec),
    };
    let own_ttl = seen.as_ref().and_then(|s| s.ttl);
    let bytes = encode_value(&value, codec, own_ttl)
        .map_err(|e| CliError::Usage(format!("cannot encode the value for key `{key}`: {e}")))?;
    let bytes = match ring {
        Some(ring) => ring
            .seal(&key, &bytes)
            .map_err(|e| CliError::Usage(format!("cannot seal the value for key `{key}`: {e}")))?,
        None => bytes,
    };
    let schema = args.schema_version.or(current.as_ref().map(|r| r.schema_version)).unwrap_or(1);
    let expires_at = match args.ttl {
        Some(secs) => Some(now.saturating_add(Duration::from_secs(secs))),
        None => current.as_ref().and_then(|r| r.expires_at),
    };
    let write = Write::new(&bytes, schema, expires_at);
    match store.store.write(&key, write, precondition, now).await {
        Ok(version) => {
            if as_json {
                util::json_line(&json!({"key": key.as_str(), "version": version, "codec": codec.name()}));
            } else {
                println!("set {key}: version {version} ({}, {} bytes)", codec.name(), bytes.len());
            }
            Ok(())
        }
        Err(StoreError::Conflict { .. }) => Err(conflict(store, key.as_str(), "it changed since it was read")),
        Err(e) => Err(store.err(&e)),
    }
}

/// `delete KEY [--if-version V]`.
pub async fn delete(store: &Opened, key: &str, if_version: Option<u64>, as_json: bool) -> CliResult {
    let key = util::key(key)?;
    let pre = if_version.map_or(Precondition::Any, Precondition::Version);
    match store.store.delete(&key, pre, store.now()).await {
        Ok(true) => {
            if as_json {
                util::json_line(&json!({"key": key.as_str(), "deleted": true}));
            } else {
                println!("deleted {key}");
            }
            Ok(())
        }
        Ok(false) => Err(util::not_found(store, &key)),
        Err(StoreError::Conflict { .. }) => Err(match util::load(store, &key).await? {
            Some(r) => conflict(store, key.as_str(), &format!("its version is {}", r.version)),
            None => util::not_found(store, &key),
        }),
        Err(e) => Err(store.err(&e)),
    }
}

/// `forget-user USER_ID`.
pub async fn forget_user(store: &Opened, user: i64, as_json: bool) -> CliResult {
    let n = store.store.forget_user(user, store.now()).await.map_err(|e| store.err(&e))?;
    if as_json {
        util::json_line(&json!({"user_id": user, "deleted": n}));
    } else {
        println!("forgot user {user}: {n} session{} deleted", if n == 1 { "" } else { "s" });
    }
    Ok(())
}

/// `purge-expired`.
pub async fn purge_expired(store: &Opened, as_json: bool) -> CliResult {
    let n = store.store.purge_expired(store.now()).await.map_err(|e| store.err(&e))?;
    if as_json {
        util::json_line(&json!({"purged": n}));
    } else {
        println!("purged {n} expired session{}", if n == 1 { "" } else { "s" });
    }
    Ok(())
}
