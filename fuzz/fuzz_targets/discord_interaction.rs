#![no_main]
// The body lives in the library (bot_sessions::testing::fuzz::discord_interaction) so that
// crates/bot-sessions/tests/fuzz_corpus.rs replays this target's corpus in plain cargo test.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bot_sessions::testing::fuzz::discord_interaction(data));
