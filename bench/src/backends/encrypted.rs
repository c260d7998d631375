//! The cost of encryption at rest: bot-sessions' memory and SQLite subjects again, with
//! every value sealed (XChaCha20-Poly1305 under a one-key ring), beside the plain ones.

use bot_sessions::Sessions;
use bot_sessions::encryption::KeyRing;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::store::sqlite::SqliteStore;

use super::Env;
use crate::Bench;
use crate::subject::Subject;

/// A fixed bench key (not a secret: the bench measures the cipher, not the key).
fn ring() -> anyhow::Result<KeyRing> {
    Ok(KeyRing::new([(1u32, [0x5au8; bot_sessions::encryption::KEY_LEN])])?)
}

/// `bot-sessions/memory+enc`.
pub fn memory() -> anyhow::Result<Subject> {
    let sessions = Sessions::builder_with_initial(MemoryStore::new(), Bench::seeded)
        .namespace("bench")
        .encryption(ring()?)
        .build()?;
    Ok(super::ours("bot-sessions/memory+enc", "memory", sessions))
}

/// `bot-sessions/sqlite+enc`, on a file of its own in `instance`.
pub async fn sqlite(env: &Env, instance: &str) -> anyhow::Result<Subject> {
    let dir = env.dir.join(instance);
    std::fs::create_dir_all(&dir)?;
    let store = SqliteStore::builder().open(dir.join("ours-enc.db")).await?;
    let sessions =
        Sessions::builder_with_initial(store, Bench::seeded).namespace("bench").encryption(ring()?).build()?;
    Ok(super::ours("bot-sessions/sqlite+enc", "sqlite", sessions))
}
