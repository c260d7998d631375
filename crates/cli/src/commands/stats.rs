//! `stats`: count and bytes per namespace, expired records awaiting purge, quarantined
//! records.

use std::collections::BTreeMap;

use bot_sessions::session::list_quarantined;
use bot_sessions::{Namespace, Timestamp};
use serde_json::json;

use crate::error::CliResult;
use crate::store::Opened;
use crate::util;

/// The figures of one namespace.
#[derive(Default)]
struct Figures {
    sessions: u64,
    bytes: u64,
    expired: u64,
    quarantined: u64,
}

async fn bytes(store: &Opened, ns: &Namespace) -> CliResult<u64> {
    let mut total = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let page = store.store.scan(ns, cursor.as_deref(), util::PAGE, store.now()).await.map_err(|e| store.err(&e))?;
        total += page.items.iter().map(|(_, r)| r.value.len() as u64).sum::<u64>();
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(total),
        }
    }
}

/// `stats`.
pub async fn stats(store: &Opened, as_json: bool) -> CliResult {
    let now = store.now();
    let s = &store.store;
    // At the epoch nothing has expired yet: counting then sees every record still
    // stored, so the difference with now is what awaits the purge.
    let all = s.namespaces(Timestamp(0)).await.map_err(|e| store.err(&e))?;
    let mut figures: BTreeMap<String, Figures> = BTreeMap::new();
    for ns in &all {
        let live = s.count(Some(ns), now).await.map_err(|e| store.err(&e))?;
        let stored = s.count(Some(ns), Timestamp(0)).await.map_err(|e| store.err(&e))?;
        let f = figures.entry(ns.to_string()).or_default();
        f.sessions = live;
        f.expired = stored.saturating_sub(live);
        f.bytes = if live > 0 { bytes(store, ns).await? } else { 0 };
    }
    for q in list_quarantined(s.as_ref(), None, now).await.map_err(|e| store.err(&e))? {
        let from = q.original.split(['/', '@']).next().unwrap_or_default().to_owned();
        figures.entry(from).or_default().quarantined += 1;
    }
    let mut total = Figures::default();
    let mut rows = Vec::new();
    for (ns, f) in &figures {
        total.sessions += f.sessions;
        total.bytes += f.bytes;
        total.expired += f.expired;
        total.quarantined += f.quarantined;
        if as_json {
            util::json_line(&json!({
                "namespace": ns, "sessions": f.sessions, "bytes": f.bytes, "expired": f.expired,
                "quarantined": f.quarantined,
            }));
        } else {
            rows.push(vec![
                ns.clone(),
                f.sessions.to_string(),
                f.bytes.to_string(),
                f.expired.to_string(),
                f.quarantined.to_string(),
            ]);
        }
    }
    if !as_json {
        rows.push(vec![
            "(total)".into(),
            total.sessions.to_string(),
            total.bytes.to_string(),
            total.expired.to_string(),
            total.quarantined.to_string(),
        ]);
        util::table(&["NAMESPACE", "SESSIONS", "BYTES", "EXPIRED", "QUARANTINED"], &rows);
    }
    Ok(())
}
