//! `import-teloxide`: dialogues from teloxide's own storages (SQLite, PostgreSQL,
//! Redis) into the store, where [`DialogueStorage`] reads them (namespace `dialogue`,
//! key `dialogue/chat:ID`), so a bot switching storages keeps its users' dialogues.
//!
//! Safe to run again: a dialogue already there with the same bytes is skipped, one
//! that differs there (the bot has moved it on since) is kept unless `--force`.
//!
//! [`DialogueStorage`]: https://docs.rs/bot-sessions/latest/bot_sessions/telegram/struct.DialogueStorage.html

mod convert;
mod source;

pub use convert::Serializer;

use bot_sessions::{Namespace, Precondition, Scope, SessionKey, StoreError, Write, new_version};
use futures_util::StreamExt as _;
use futures_util::stream;
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::store::Opened;
use crate::transfer::progress::Progress;
use crate::util;

/// The namespace `DialogueStorage` uses unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "dialogue";

/// Writes in flight at once.
const IN_FLIGHT: usize = 64;

/// Entries named one by one on stderr before the rest are only counted.
const NAMED: u64 = 20;

/// What happened to one dialogue.
enum Outcome {
    Written,
    Same,
    Different,
}

/// Counts per outcome.
#[derive(Default)]
struct Counts {
    written: u64,
    same: u64,
    different: u64,
    bad: u64,
}

/// `import-teloxide --from URL [--serializer S] [--namespace NS] [--force]`.
pub async fn import(
    dst: &Opened,
    from: &str,
    serializer: Serializer,
    namespace: Option<&str>,
    force: bool,
    as_json: bool,
) -> CliResult {
    let ns_name = namespace.unwrap_or(DEFAULT_NAMESPACE);
    let ns = Namespace::new(ns_name).map_err(|e| CliError::Usage(format!("--namespace {ns_name}: {e}")))?;
    let entries = source::read_all(from).await?;
    let mut counts = Counts::default();
    let mut items = Vec::with_capacity(entries.len());
    for entry in entries {
        let converted = entry.and_then(|(chat, bytes)| {
            convert::convert(serializer, &bytes).map(|value| (chat, value)).map_err(|why| format!("chat {chat}: {why}"))
        });
        match converted {
            Ok(item) => items.push(item),
            Err(why) => {
                counts.bad += 1;
                if counts.bad <= NAMED {
                    eprintln!("{}: {why}; not imported", bot_sessions::store::redact_url(from));
                }
            }
        }
    }
    let mut progress = Progress::new("import-teloxide", Some(items.len() as u64));
    let store = dst.store.as_ref();
    let mut results = stream::iter(items)
        .map(|(chat, value)| {
            let ns = ns.clone();
            async move {
                let owner = (chat > 0).then_some(chat); // a private chat is its user's
                let key = SessionKey::new(ns, Scope::Chat(chat)).owned_by(owner);
                let outcome = put(store, &key, &value, owner, force, dst).await;
                (key, outcome)
            }
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some((key, outcome)) = results.next().await {
        match outcome {
            Ok(Outcome::Written) => counts.written += 1,
            Ok(Outcome::Same) => counts.same += 1,
            Ok(Outcome::Different) => {
                counts.different += 1;
                if counts.different <= NAMED {
                    eprintln!("skipped {key}: a different dialogue is there (kept; --force overwrites it)");
                }
            }
            Err(e) => return Err(dst.err(&e)),
        }
        progress.add(1);
    }
    let secs = progress.finish().as_secs_f64();
    report(&counts, dst, ns_name, secs, as_json);
    if counts.bad > 0 {
        return Err(CliError::Usage(format!(
            "{} dialogue{} could not be imported (reported above); {} went in",
            counts.bad,
            if counts.bad == 1 { "" } else { "s" },
            counts.written
        )));
    }
    if counts.different > 0 {
        return Err(CliError::Failed(format!(
            "{} dialogues were not written: a different one is in {} (--force overwrites)",
            counts.different, dst.name
        )));
    }
    Ok(())
}

/// Writes one dialogue unless it is there already.
async fn put(
    store: &dyn bot_sessions::Store,
    key: &SessionKey,
    value: &[u8],
    owner: Option<i64>,
    force: bool,
    dst: &Opened,
) -> Result<Outcome, StoreError> {
    let write = Write { value, schema_version: 1, expires_at: None, version: new_version(), owner };
    match store.write(key, write, Precondition::Absent, dst.now()).await {
        Ok(_) => return Ok(Outcome::Written),
        Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    let Some(there) = store.load(key, dst.now()).await? else {
        // Expired or deleted meanwhile: try once more, as new.
        store.write(key, write, Precondition::Absent, dst.now()).await?;
        return Ok(Outcome::Written);
    };
    if there.value == value {
        return Ok(Outcome::Same);
    }
    if !force {
        return Ok(Outcome::Different);
    }
    store.write(key, write, Precondition::Version(there.version), dst.now()).await?;
    Ok(Outcome::Written)
}

fn report(c: &Counts, dst: &Opened, ns: &str, secs: f64, as_json: bool) {
    if as_json {
        util::json_line(&json!({
            "written": c.written, "same": c.same, "different": c.different, "bad": c.bad, "namespace": ns,
            "seconds": secs,
        }));
        return;
    }
    let seen = c.written + c.same + c.different;
    println!("imported {} of {seen} dialogues to {} (namespace {ns}) in {secs:.1}s", c.written, dst.name);
    let mut why = Vec::new();
    if c.same > 0 {
        why.push(format!("{} already there, identical", c.same));
    }
    if c.different > 0 {
        why.push(format!("{} different there (kept; --force overwrites)", c.different));
    }
    if !why.is_empty() {
        println!("skipped {}: {}", c.same + c.different, why.join(", "));
    }
    if c.bad > 0 {
        println!("not imported: {} (reported above)", c.bad);
    }
}
