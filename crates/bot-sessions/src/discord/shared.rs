//! What every clone of an [`Endpoint`](super::Endpoint) shares, and the counters behind
//! its [`Stats`](super::Stats): the endpoint builds it, the request handler
//! (`dispatch.rs`) reads it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::handler::{Handler, Texts};
use super::messages::Messages;
use super::replay::Replays;
use super::rest::Rest;
use super::signature::PublicKey;
use crate::interactive::Manager;

#[derive(Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pub(super) replays: AtomicU64,
    pub(super) bad_requests: AtomicU64,
    pub(super) pings: AtomicU64,
    pub(super) routed: AtomicU64,
    pub(super) handled: AtomicU64,
    pub(super) deferred: AtomicU64,
    pub(super) failures: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What every clone of an [`Endpoint`](super::Endpoint) shares.
pub(super) struct Shared {
    pub(super) key: PublicKey,
    pub(super) manager: Option<Manager>,
    pub(super) handler: Option<Arc<dyn Handler>>,
    pub(super) rest: Rest,
    pub(super) messages: Option<Messages>,
    pub(super) defer_after: Duration,
    pub(super) texts: Texts,
    pub(super) counters: Counters,
    pub(super) replays: Replays,
}
