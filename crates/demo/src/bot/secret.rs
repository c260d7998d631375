//! The key that signs the menus' custom ids, kept in the store, and sealing at rest.

use std::sync::Arc;

use bot_sessions::encryption::KeyRing;
use bot_sessions::session::{RetryPolicy, SessionsBuilder};
use bot_sessions::{Clock, DynStore, Namespace, Precondition, Scope, SessionError, SessionKey, Write};
use serde::{Deserialize, Serialize};

use super::BotError;

/// `builder` sealing its values with `keys`, if any.
pub(super) fn sealed<T>(builder: SessionsBuilder<T>, keys: &Option<Arc<KeyRing>>) -> SessionsBuilder<T>
where
    T: Serialize + for<'de> Deserialize<'de> + Send + Sync + 'static,
{
    match keys {
        Some(ring) => builder.encryption(ring.clone()),
        None => builder,
    }
}

/// The key that signs the menus' custom ids: read from the store, created by the
/// first process that finds none (compare-and-set: every process ends up with the same
/// key). A start-up read: failures that may pass (a database restarting, a connection
/// reset) are tried again for as long as opening the store is.
pub(super) async fn signing_secret(
    store: &DynStore,
    clock: &dyn Clock,
    keys: Option<&KeyRing>,
) -> Result<Vec<u8>, BotError> {
    let namespace = Namespace::new("demo-secret").map_err(SessionError::from)?;
    let key = SessionKey::new(namespace, Scope::Custom { id: "menu-signing".into(), user: None });
    let retry = RetryPolicy { transient_for: bot_sessions::store::DEFAULT_OPEN_RETRY, ..RetryPolicy::default() };
    let seal_err = |e: bot_sessions::encryption::SealError| SessionError::Config(format!("the menu signing key: {e}"));
    for _ in 0..3 {
        let now = clock.now();
        if let Some(record) = retry.run_transient(|| store.load(&key, now)).await? {
            let sealed = KeyRing::sealed_with(&record.value).is_some();
            let secret = match (keys, sealed) {
                (Some(ring), true) => ring.open(&key, &record.value).map_err(seal_err)?.into_owned(),
                (None, true) => {
                    return Err(SessionError::Config(
                        "the menu signing key in the store is sealed: give the key ring (BOT_SESSIONS_KEYS)".into(),
                    )
                    .into());
                }
                (_, false) => record.value.clone(),
            };
            if secret.len() >= 32 {
                if let (Some(ring), false) = (keys, sealed) {
                    // Stored in clear before a ring was given: seal it in place (a
                    // conflict means another process did).
                    let bytes = ring.seal(&key, &secret).map_err(seal_err)?;
                    let write = Write::new(&bytes, 1, None);
                    match store.write(&key, write, Precondition::Version(record.version), now).await {
                        Ok(_) => {}
                        Err(e) if e.is_conflict() || e.is_ambiguous() => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                return Ok(secret);
            }
        }
        let secret: [u8; 32] = rand_bytes();
        let stored = match keys {
            Some(ring) => ring.seal(&key, &secret).map_err(seal_err)?,
            None => secret.to_vec(),
        };
        let write = Write::new(&stored, 1, None);
        match retry.run_transient(|| store.write(&key, write, Precondition::Absent, now)).await {
            Ok(_) => return Ok(secret.to_vec()),
            // Another process created it first, or ours may have landed: read it.
            Err(e) if e.is_conflict() || e.is_ambiguous() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(SessionError::Config("the menu signing key keeps changing in the store".into()).into())
}

fn rand_bytes() -> [u8; 32] {
    rand::random()
}
