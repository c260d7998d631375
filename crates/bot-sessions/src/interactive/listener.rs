//! The listening state of one manager (its task and counters); what it does is in
//! [`listen`](super::listen).

#[cfg(feature = "testing")]
use std::sync::atomic::Ordering;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};

/// The listening side of one manager: its task (started with the first session whose
/// handle waits here) and the counters tests read.
#[derive(Debug, Default)]
pub(crate) struct Listener {
    pub(super) started: OnceLock<()>,
    pub(super) task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// A re-check pass is running (passes do not pile up).
    pub(super) rechecking: Arc<AtomicBool>,
    /// Test hook: notices heard are dropped (to exercise the fallback).
    pub(super) dropping: AtomicBool,
    /// Notices that led to reading a waited-for session.
    pub(crate) heard: AtomicU64,
    /// Notices dropped by the test hook.
    pub(crate) dropped: AtomicU64,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

#[cfg(feature = "testing")]
impl Listener {
    pub(crate) fn set_dropping(&self, on: bool) {
        self.dropping.store(on, Ordering::Release);
    }
}
