//! Expiry passes of a [`Manager`]: the sessions its index says are due, and a scan of
//! the whole namespace for sessions whose manager died.

use super::core::Tended;
use super::envelope::{Header, Phase};
use super::{ExpiryReport, InteractiveError, Manager, SessionId};
use crate::{Scope, Timestamp};

impl Manager {
    /// Looks at the sessions this manager's index holds that are due at `now`: ends
    /// expired ones (their `end` runs, once across managers), and hands handles waiting
    /// here the ends that happened elsewhere. Cost: one load per due entry.
    ///
    /// Sessions of a process that died are found by [`expire_scan`](Self::expire_scan).
    /// Errors are counted in the report (and logged); those sessions are retried one
    /// watch period later.
    pub async fn expire_due(&self, now: Timestamp) -> ExpiryReport {
        let core = &*self.core;
        let mut report = ExpiryReport::default();
        for sid in core.local.pop_due(now) {
            report.add(self.tend_one(sid, now).await);
        }
        report
    }

    /// Reads every session of the namespace (page by page) and ends the expired ones,
    /// including those of managers that died; sessions of kinds not registered here are
    /// skipped. Cost: every stored session of the namespace is read.
    ///
    /// # Errors
    ///
    /// A failed scan page (store error); sessions that fail are counted in the report.
    pub async fn expire_scan(&self, now: Timestamp) -> Result<ExpiryReport, InteractiveError> {
        let core = &*self.core;
        let mut report = ExpiryReport::default();
        let mut cursor: Option<String> = None;
        // For the metrics: live sessions seen, and how late each end came.
        let (mut live, mut lags) = (0, Vec::new());
        loop {
            let page = core
                .store
                .scan(&core.namespace, cursor.as_deref(), core.cfg.scan_page, now)
                .await
                .map_err(|source| InteractiveError::Store { session: None, source })?;
            for (key, record) in page.items {
                let Scope::Custom { id, .. } = key.scope() else { continue };
                let Some(sid) = SessionId::parse(id) else { continue };
                let record = match core.opened(sid, &key, record) {
                    Ok(record) => record,
                    Err(error) => {
                        report.errors += 1;
                        tracing::warn!(session = %sid, %error, "interactive session record does not open; skipped");
                        continue;
                    }
                };
                let Ok(header) = serde_json::from_slice::<Header<'_>>(&record.value) else {
                    report.errors += 1;
                    tracing::warn!(session = %sid, "interactive session record does not decode; skipped");
                    continue;
                };
                let due = match header.phase {
                    Phase::Live => now.is_expired(header.deadline),
                    Phase::Ending => now.is_expired(header.lease),
                    Phase::Ended => header.waiter == Some(core.instance),
                };
                live += u64::from(header.phase == Phase::Live && !due);
                if due && core.kinds().contains_key(&*header.kind) {
                    let tended = self.tend_one(sid, now).await;
                    if tended.expired > 0 {
                        lags.push(crate::session::lag(header.deadline, now));
                    }
                    report.add(tended);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => {
                    core.obs.scanned(live, &lags);
                    return Ok(report);
                }
            }
        }
    }

    async fn tend_one(&self, sid: SessionId, now: Timestamp) -> ExpiryReport {
        let core = &*self.core;
        let mut report = ExpiryReport { checked: 1, ..ExpiryReport::default() };
        match core.tend(sid, now, None).await {
            Ok(Tended::Ended) => report.expired += 1,
            Ok(Tended::Abandoned) => report.abandoned += 1,
            Ok(Tended::Delivered) => report.delivered += 1,
            Ok(Tended::NotDue | Tended::Forgotten | Tended::Claimed | Tended::Gone) => {}
            Err(error) => {
                tracing::warn!(session = %sid, %error, "interactive expiry failed; retrying later");
                report.errors += 1;
                core.local.file_at(sid, now.saturating_add(core.cfg.watch));
            }
        }
        report
    }
}
