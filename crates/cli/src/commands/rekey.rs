//! `rekey`: re-sealing encrypted sessions with the newest key of the ring, through the
//! library's `rekey_page` (compare-and-set per record, idempotent, so resumable).

use std::path::Path;

use bot_sessions::SystemClock;
use bot_sessions::encryption::{KeyRing, RekeyReport, rekey_page};
use bot_sessions::session::QUARANTINE_NAMESPACE;
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::store::Opened;
use crate::transfer::progress::Progress;
use crate::util;

/// Passes over a namespace while records change under the pass (a bot writing): each
/// later pass only rewrites what is still under an older key.
const PASSES: usize = 3;

/// The environment variable holding the key ring.
pub const KEYS_VAR: &str = "BOT_SESSIONS_KEYS";

/// The key ring from `--keys-file` or `BOT_SESSIONS_KEYS` (one of them), if given;
/// `--keys` is refused, as a command line shows in `ps`. Errors never echo key
/// material.
pub fn ring(flag: Option<&str>, file: Option<&Path>) -> CliResult<Option<KeyRing>> {
    if flag.is_some() {
        return Err(CliError::Usage(format!(
            "--keys is not taken: a key ring on the command line shows in `ps`; set {KEYS_VAR} or pass --keys-file FILE"
        )));
    }
    let from_env = std::env::var_os(KEYS_VAR).filter(|v| !v.is_empty());
    let (text, source) = match (file, from_env) {
        (Some(_), Some(_)) => {
            return Err(CliError::Usage(format!("the key ring is given twice: --keys-file and {KEYS_VAR}; give one")));
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("--keys-file {}: {e}", path.display())))?;
            (text, format!("--keys-file {}", path.display()))
        }
        (None, Some(v)) => {
            let text = v.into_string().map_err(|_| CliError::Usage(format!("{KEYS_VAR} is not UTF-8")))?;
            (text, KEYS_VAR.to_owned())
        }
        (None, None) => return Ok(None),
    };
    KeyRing::parse(text.trim()).map(Some).map_err(|e| CliError::Usage(format!("{source}: {e}")))
}

/// `rekey [--namespace NS] [--accept-plaintext]`.
pub async fn rekey(
    store: &Opened,
    ring: Option<KeyRing>,
    namespace: Option<&str>,
    accept_plaintext: bool,
    as_json: bool,
) -> CliResult {
    let ring = ring
        .ok_or_else(|| {
            CliError::Usage("rekey needs the key ring: BOT_SESSIONS_KEYS or --keys-file FILE (ID=HEX,...)".into())
        })?
        .accept_plaintext(accept_plaintext);
    let mut namespaces = util::namespaces(store, namespace).await?;
    if namespace.is_none() {
        // Quarantined bytes are sealed under their original key: they do not open here.
        namespaces.retain(|ns| ns.as_str() != QUARANTINE_NAMESPACE);
    }
    let mut total = 0u64;
    for ns in &namespaces {
        total += store.store.count(Some(ns), store.now()).await.map_err(|e| store.err(&e))?;
    }
    let mut progress = Progress::new("rekey", Some(total));
    let mut sum = RekeyReport::default();
    let mut unsettled = 0u64;
    for ns in &namespaces {
        let mut left = 0;
        for pass in 0..PASSES {
            let mut report = RekeyReport::default();
            let mut cursor: Option<String> = None;
            loop {
                let (page, next) =
                    rekey_page(store.store.as_ref(), &ring, ns, cursor.as_deref(), util::PAGE, &SystemClock)
                        .await
                        .map_err(|e| store.err(&e))?;
                if pass == 0 {
                    progress.add(page.scanned);
                }
                add(&mut report, page);
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            left = report.changed_meanwhile + report.ambiguous;
            if pass == 0 {
                sum.scanned += report.scanned;
                sum.current += report.current;
                sum.unreadable.extend(report.unreadable);
            }
            sum.resealed += report.resealed;
            if left == 0 {
                break;
            }
        }
        unsettled += left;
    }
    let elapsed = progress.finish();
    for e in &sum.unreadable {
        eprintln!("not re-sealed: {e}");
    }
    if as_json {
        util::json_line(&json!({
            "scanned": sum.scanned, "resealed": sum.resealed, "already_current": sum.current,
            "unreadable": sum.unreadable.len(), "still_changing": unsettled, "newest_key": ring.newest_id(),
            "seconds": elapsed.as_secs_f64(),
        }));
    } else {
        println!(
            "rekey to key id {}: {} sessions scanned, {} re-sealed, {} already current, {} unreadable, {} still \
             changing ({:.1}s)",
            ring.newest_id(),
            sum.scanned,
            sum.resealed,
            sum.current,
            sum.unreadable.len(),
            unsettled,
            elapsed.as_secs_f64()
        );
    }
    if !sum.unreadable.is_empty() || unsettled > 0 {
        return Err(CliError::Failed(format!(
            "store {}: {} sessions were not re-sealed ({} do not open with the ring, {} kept changing; run rekey \
             again)",
            store.name,
            sum.unreadable.len() as u64 + unsettled,
            sum.unreadable.len(),
            unsettled
        )));
    }
    Ok(())
}

fn add(sum: &mut RekeyReport, page: RekeyReport) {
    sum.scanned += page.scanned;
    sum.resealed += page.resealed;
    sum.current += page.current;
    sum.changed_meanwhile += page.changed_meanwhile;
    sum.ambiguous += page.ambiguous;
    sum.unreadable.extend(page.unreadable);
}
