//! Re-sealing a namespace with the newest key, so that older keys can be retired.

use super::KeyRing;
use super::sealed::SealError;
use crate::{Clock, Namespace, Precondition, Store, StoreError, Write, new_version};

/// What a re-seal pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RekeyReport {
    /// Live records seen.
    pub scanned: u64,
    /// Records re-sealed with the newest key (plaintext ones included when the ring
    /// [accepts plaintext](KeyRing::accept_plaintext)).
    pub resealed: u64,
    /// Records already sealed with the newest key.
    pub current: u64,
    /// Records another writer changed between the scan and the re-seal (compare-and-set
    /// refused, nothing overwritten; a later pass sees their new value).
    pub changed_meanwhile: u64,
    /// Records whose outcome is unknown (the store's reply was lost); a later pass
    /// settles them.
    pub ambiguous: u64,
    /// Records that do not open with the ring (a retired key, altered bytes, plaintext
    /// the ring does not accept); left as they are.
    pub unreadable: Vec<SealError>,
}

impl RekeyReport {
    fn add(&mut self, other: RekeyReport) {
        self.scanned += other.scanned;
        self.resealed += other.resealed;
        self.current += other.current;
        self.changed_meanwhile += other.changed_meanwhile;
        self.ambiguous += other.ambiguous;
        self.unreadable.extend(other.unreadable);
    }
}

/// Re-seals one page (up to `limit` records after `cursor`) of `namespace` with the
/// newest key of `ring`. Returns what it did and the cursor of the next page (`None`
/// at the end), so a pass can be resumed after an interruption: re-sealing is
/// idempotent, every write is a compare-and-set against the version scanned, and
/// records already on the newest key are left alone.
///
/// # Errors
///
/// The store's error for the scan or a write (other than a conflict or an ambiguous
/// outcome, which the report counts).
pub async fn rekey_page(
    store: &dyn Store,
    ring: &KeyRing,
    namespace: &Namespace,
    cursor: Option<&str>,
    limit: usize,
    clock: &dyn Clock,
) -> Result<(RekeyReport, Option<String>), StoreError> {
    let page = store.scan(namespace, cursor, limit.max(1), clock.now()).await?;
    let mut report = RekeyReport::default();
    for (key, record) in page.items {
        report.scanned += 1;
        if KeyRing::sealed_with(&record.value) == Some(ring.newest_id()) {
            report.current += 1;
            continue;
        }
        let plain = match ring.open(&key, &record.value) {
            Ok(plain) => plain,
            Err(e) => {
                report.unreadable.push(e);
                continue;
            }
        };
        let sealed = match ring.seal(&key, &plain) {
            Ok(sealed) => sealed,
            Err(e) => {
                report.unreadable.push(e);
                continue;
            }
        };
        let write = Write {
            value: &sealed,
            schema_version: record.schema_version,
            expires_at: record.expires_at,
            version: new_version(),
            owner: record.user_id,
        };
        match store.write(&key, write, Precondition::Version(record.version), clock.now()).await {
            Ok(_) => report.resealed += 1,
            Err(StoreError::Conflict { .. }) => report.changed_meanwhile += 1,
            Err(e) if e.is_ambiguous() => report.ambiguous += 1,
            Err(e) => return Err(e),
        }
    }
    Ok((report, page.next))
}

/// Re-seals every live record of `namespace` with the newest key of `ring`, page by
/// page (see [`rekey_page`] to drive and resume a pass yourself).
///
/// # Errors
///
/// As [`rekey_page`]; the pages done before the error stay done.
///
/// # Example
///
/// ```
/// use bot_sessions::encryption::{KeyRing, rekey};
/// use bot_sessions::store::memory::MemoryStore;
/// use bot_sessions::{Namespace, SystemClock};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let ring = KeyRing::parse(&format!("1={},2={}", "11".repeat(32), "22".repeat(32)))?;
/// let report = rekey(&store, &ring, &Namespace::new("profile")?, &SystemClock).await?;
/// assert_eq!(report.scanned, 0);
/// # Ok(()) }
/// ```
pub async fn rekey(
    store: &dyn Store,
    ring: &KeyRing,
    namespace: &Namespace,
    clock: &dyn Clock,
) -> Result<RekeyReport, StoreError> {
    const PAGE: usize = 500;
    let mut total = RekeyReport::default();
    let mut cursor: Option<String> = None;
    loop {
        let (report, next) = rekey_page(store, ring, namespace, cursor.as_deref(), PAGE, clock).await?;
        total.add(report);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(total),
        }
    }
}
