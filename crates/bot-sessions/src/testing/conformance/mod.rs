//! The store conformance suite: one function per property of the store contract
//! (DESIGN.md), each taking a fresh handle to the backend under test.
//!
//! Every property works in its own random namespace with random user ids and moves time
//! with a [`ManualClock`] that starts at the real current time (so backends with native
//! expiry never see a past deadline). Functions panic on a violated property: they are
//! test code. Run them all with [`conformance_tests!`](crate::conformance_tests).
//!
//! The properties live in one file per group: records, expiry, erasure, listing,
//! concurrency, the typed API over the store (sessions) and the near cache.

mod concurrency;
mod erasure;
mod expiry;
mod listing;
mod near_cache;
mod records;
mod sessions;

use std::time::Duration;

pub use super::model::model_lifetimes;
use crate::{ManualClock, Namespace, Scope, SessionKey, StoreError, Timestamp, Write};
pub use concurrency::{concurrent_compare_and_set, sessions_across_instances, sessions_concurrency};
pub use erasure::{forget_user, forget_user_reaches_owned_records};
pub use expiry::expiry;
pub use listing::{count, namespaces, scan_paging};
pub use near_cache::{near_cache_counts_exactly, near_cache_invalidation, near_cache_never_serves_expired};
pub use records::{crud, preconditions, values_round_trip, versions_never_repeat, write_over_known_records};
pub use sessions::{schema_versions, session_ttl, size_limit, undecodable_policies, writes_only_changes};

pub(super) const MINUTE: Duration = Duration::from_secs(60);

pub(super) fn key(ns: &Namespace, scope: Scope) -> SessionKey {
    SessionKey::new(ns.clone(), scope)
}

pub(super) fn w(value: &[u8]) -> Write<'_> {
    Write::new(value, 1, None)
}

pub(super) fn clock() -> ManualClock {
    ManualClock::starting_now()
}

pub(super) fn now(c: &ManualClock) -> Timestamp {
    crate::Clock::now(c)
}

pub(super) fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict { key }) => assert!(!key.is_empty(), "{what}: conflict must name the key"),
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

/// Runs every conformance property as its own `#[tokio::test]` against the stores a
/// factory makes: `conformance_tests!(factory)` where `async fn factory() -> DynStore`.
///
/// `conformance_tests!(factory, near_cache)` runs them all again with the factory's
/// store behind a [`NearCache`](crate::store::near_cache::NearCache) (module
/// `conformance_near_cache`): the store properties through the cache, and the session
/// properties with updates and opens starting from cached records.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:ident) => {
        $crate::conformance_tests!(@list conformance, $factory, ::std::convert::identity);
    };
    ($factory:ident, near_cache) => {
        $crate::conformance_tests!($factory);
        $crate::conformance_tests!(@list conformance_near_cache, $factory, $crate::testing::near_cached);
    };
    (@list $module:ident, $factory:ident, $wrap:path) => {
        $crate::conformance_tests!(@each $module, $factory, $wrap;
            crud, versions_never_repeat, forget_user_reaches_owned_records, values_round_trip, preconditions,
            write_over_known_records, expiry,
            forget_user, scan_paging, count, namespaces,
            concurrent_compare_and_set, sessions_concurrency, sessions_across_instances, writes_only_changes, session_ttl,
            undecodable_policies, schema_versions, size_limit, model_lifetimes,
            near_cache_counts_exactly, near_cache_never_serves_expired, near_cache_invalidation);
    };
    (@each $module:ident, $factory:ident, $wrap:path; $($name:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::testing::conformance::$name($wrap(super::$factory().await)).await;
                }
            )*
        }
    };
}
