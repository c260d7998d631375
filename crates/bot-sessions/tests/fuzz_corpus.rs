//! Replays every committed fuzz corpus entry (`fuzz/corpus/TARGET/`) through the body
//! of its fuzz target (`bot_sessions::testing::fuzz`), so plain `cargo test` checks what
//! the fuzzers found interesting without cargo-fuzz. A body panics when an invariant
//! breaks (see each function's documentation).

use std::path::PathBuf;

/// The entries of one target's corpus; a missing or empty corpus is an error, so a
/// renamed directory cannot turn this test into a no-op.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "{} holds no corpus entry", dir.display());
    entries
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect()
}

/// Runs `body` on every entry of `target`'s corpus, naming the entry that fails.
fn replay(target: &str, body: fn(&[u8])) {
    let entries = corpus(target);
    for (path, bytes) in &entries {
        let outcome = std::panic::catch_unwind(|| body(bytes));
        assert!(outcome.is_ok(), "fuzz target {target} fails on {}", path.display());
    }
}

#[test]
fn corpus_session_key() {
    replay("session_key", bot_sessions::testing::fuzz::session_key);
}

#[test]
fn corpus_store_url() {
    replay("store_url", bot_sessions::testing::fuzz::store_url);
}

#[test]
fn corpus_session_value() {
    replay("session_value", bot_sessions::testing::fuzz::session_value);
}

#[cfg(feature = "interactive")]
#[test]
fn corpus_custom_id() {
    replay("custom_id", bot_sessions::testing::fuzz::custom_id);
}

#[cfg(feature = "interactive")]
#[test]
fn corpus_envelope() {
    replay("envelope", bot_sessions::testing::fuzz::envelope);
}

#[cfg(all(feature = "sqlite", feature = "redis"))]
#[test]
fn corpus_store_record() {
    replay("store_record", bot_sessions::testing::fuzz::store_record);
}

#[cfg(feature = "telegram")]
#[test]
fn corpus_telegram_update() {
    replay("telegram_update", bot_sessions::testing::fuzz::telegram_update);
}

#[cfg(feature = "discord")]
#[test]
fn corpus_discord_interaction() {
    replay("discord_interaction", bot_sessions::testing::fuzz::discord_interaction);
}
