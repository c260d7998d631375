//! The Lua scripts: each checks its precondition and keeps the indexes in step in one
//! round trip (`meta.lua` holds the helpers they share).

use redis::Script;

/// The scripts, loaded once per store (`EVALSHA`, `SCRIPT LOAD` after a `NOSCRIPT`).
pub(super) struct Scripts {
    pub(super) write: Script,
    pub(super) cas: Script,
    pub(super) cas_many: Script,
    pub(super) delete: Script,
    pub(super) forget: Script,
    pub(super) purge: Script,
    pub(super) lease: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            write: Script::new(WRITE_SCRIPT),
            cas: Script::new(CAS_SCRIPT),
            cas_many: Script::new(CAS_MANY_SCRIPT),
            delete: Script::new(DELETE_SCRIPT),
            forget: Script::new(FORGET_SCRIPT),
            purge: Script::new(PURGE_SCRIPT),
            lease: Script::new(LEASE_SCRIPT),
        }
    }
}

/// The compare-and-set write script, for benchmarks and tools that want to call it raw
/// (its header comment lists its keys and arguments).
pub const WRITE_SCRIPT: &str = concat!(include_str!("meta.lua"), include_str!("write.lua"));
/// The compare-and-set over a record the caller knows ([`Store::write_over`](crate::Store::write_over)).
const CAS_SCRIPT: &str = concat!(include_str!("meta.lua"), include_str!("cas_fn.lua"), include_str!("cas.lua"));
/// Several of those in one run (the near cache's writes batched: `batch.rs`).
const CAS_MANY_SCRIPT: &str =
    concat!(include_str!("meta.lua"), include_str!("cas_fn.lua"), include_str!("cas_many.lua"));
const DELETE_SCRIPT: &str = concat!(include_str!("meta.lua"), include_str!("delete.lua"));
const FORGET_SCRIPT: &str = concat!(include_str!("meta.lua"), include_str!("forget.lua"));
const PURGE_SCRIPT: &str = concat!(include_str!("meta.lua"), include_str!("purge.lua"));
const LEASE_SCRIPT: &str = include_str!("lease.lua");
