//! Where undecodable records go under [`DecodePolicy::Quarantine`](super::DecodePolicy):
//! the reserved namespace `_quarantine`, one record per bad version, tied to the same
//! user (so forget-user erases them too).

use crate::{Namespace, Precondition, Record, Scope, SessionKey, Store, StoreError, Timestamp, Write};

/// The reserved namespace that holds quarantined records.
pub const QUARANTINE_NAMESPACE: &str = "_quarantine";

/// A record that did not decode and was set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The key it was quarantined under (in the `_quarantine` namespace).
    pub key: SessionKey,
    /// The textual key of the session it came from.
    pub original: String,
    /// The bytes, exactly as stored.
    pub value: Vec<u8>,
    /// Their schema version.
    pub schema_version: u32,
    /// When it was set aside.
    pub quarantined_at: Timestamp,
}

fn namespace() -> Result<Namespace, StoreError> {
    Namespace::new_unchecked_reserved(QUARANTINE_NAMESPACE).map_err(|e| StoreError::Config(e.to_string()))
}

/// Copies `record` of `key` into quarantine (once per stored version).
pub(super) async fn keep(
    store: &dyn Store,
    key: &SessionKey,
    record: &Record,
    now: Timestamp,
) -> Result<(), StoreError> {
    let id = format!("{key}#v{}@{}", record.version, record.updated_at.as_millis());
    let qkey = SessionKey::new(namespace()?, Scope::Custom { id, user: key.user_id() });
    let write = Write::new(&record.value, record.schema_version, None).with_owner(record.user_id);
    match store.write(&qkey, write, Precondition::Absent, now).await {
        // A conflict means this very version was kept by an earlier attempt.
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Lists quarantined records, of one namespace or of all.
///
/// # Errors
///
/// Store errors.
pub async fn list_quarantined(
    store: &dyn Store,
    of: Option<&Namespace>,
    now: Timestamp,
) -> Result<Vec<Quarantined>, StoreError> {
    let ns = namespace()?;
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.scan(&ns, cursor.as_deref(), 256, now).await?;
        for (key, record) in page.items {
            let Scope::Custom { id, .. } = key.scope() else { continue };
            let original = id.rsplit_once("#v").map_or(id.as_str(), |(o, _)| o).to_owned();
            let from_ns = original.split(['/', '@']).next().unwrap_or_default();
            if of.is_some_and(|n| n.as_str() != from_ns) {
                continue;
            }
            out.push(Quarantined {
                original,
                value: record.value,
                schema_version: record.schema_version,
                quarantined_at: record.created_at,
                key,
            });
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}
