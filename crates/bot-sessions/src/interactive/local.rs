//! What one manager remembers in memory: the sessions it started (with their
//! handles' senders) or routed, and an index of when to look at each again.
//!
//! The index is lazy: an idle refresh does not move an entry; when a popped entry's
//! session turns out not to be due, it is filed again at the stored deadline. Sessions
//! with a handle waiting here are also filed at most one watch period ahead, so an end
//! that happened in another process reaches the handle.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::oneshot;

use super::SessionId;
use super::handle::Delivery;
use crate::Timestamp;

#[derive(Debug)]
struct Entry {
    /// Started by this manager (ended by its `shutdown`).
    started_here: bool,
    /// The starter's handle, while anybody may be waiting.
    waiter: Option<oneshot::Sender<Delivery>>,
    /// Where the entry sits in `due`, if anywhere.
    at: Option<Timestamp>,
    /// The session's last signed custom id that verified and routed here: the same
    /// text again is as good, so its signature is not checked again (a user clicking
    /// one button over and over).
    verified: Option<Box<str>>,
}

impl Entry {
    fn watched(&self) -> bool {
        self.waiter.as_ref().is_some_and(|w| !w.is_closed())
    }
}

#[derive(Debug, Default)]
pub(crate) struct Local {
    /// Session ids are random (and only verified ones reach here): a fast hash will do.
    entries: DashMap<SessionId, Entry, foldhash::fast::RandomState>,
    due: Mutex<BTreeSet<(Timestamp, SessionId)>>,
}

impl Local {
    fn due(&self) -> std::sync::MutexGuard<'_, BTreeSet<(Timestamp, SessionId)>> {
        // Each operation on the set is a single insert, remove or split: a panic
        // elsewhere cannot leave it half-changed, so a poisoned lock is still usable.
        self.due.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers a session started here, whose handle waits on `waiter`.
    pub(crate) fn insert_started(
        &self,
        sid: SessionId,
        waiter: oneshot::Sender<Delivery>,
        deadline: Option<Timestamp>,
        now: Timestamp,
        watch: Duration,
    ) {
        self.entries.insert(sid, Entry { started_here: true, waiter: Some(waiter), at: None, verified: None });
        self.refile(sid, deadline, now, watch);
    }

    /// Remembers a session routed here (started elsewhere), so that this manager can
    /// expire it if its starter is gone, and the signed custom id it was routed by
    /// (`verified`, see [`verified`](Self::verified)). Remembers nothing new of a
    /// session without deadline that it does not know yet.
    pub(crate) fn adopt(&self, sid: SessionId, deadline: Option<Timestamp>, verified: Option<&str>) {
        if let Some(entry) = self.entries.get(&sid) {
            if verified.is_none_or(|v| entry.verified.as_deref() == Some(v)) {
                return;
            }
            drop(entry);
            if let Some(mut entry) = self.entries.get_mut(&sid) {
                entry.verified = verified.map(Box::from);
            }
            return;
        }
        let Some(deadline) = deadline else { return };
        let mut fresh = false;
        self.entries.entry(sid).or_insert_with(|| {
            fresh = true;
            Entry { started_here: false, waiter: None, at: Some(deadline), verified: verified.map(Box::from) }
        });
        if fresh {
            self.due().insert((deadline, sid));
        }
    }

    /// Whether `custom_id` is the signed custom id that `sid` was last routed by here
    /// (see [`adopt`](Self::adopt)): it verified then, under keys that never change.
    pub(crate) fn verified(&self, sid: SessionId, custom_id: &str) -> bool {
        self.entries.get(&sid).is_some_and(|e| e.verified.as_deref().is_some_and(|v| same(v, custom_id)))
    }

    /// Takes every entry due at `now` out of the index.
    pub(crate) fn pop_due(&self, now: Timestamp) -> Vec<SessionId> {
        let popped: Vec<(Timestamp, SessionId)> = {
            let mut due = self.due();
            let later = due.split_off(&(Timestamp(now.0.saturating_add(1)), SessionId::MIN));
            std::mem::replace(&mut *due, later).into_iter().collect()
        };
        popped
            .into_iter()
            .filter(|(t, sid)| match self.entries.get_mut(sid) {
                Some(mut e) if e.at == Some(*t) => {
                    e.at = None;
                    true
                }
                _ => false,
            })
            .map(|(_, sid)| sid)
            .collect()
    }

    /// Files a live session again: at its deadline, or sooner when a handle here is
    /// watching it. Forgets an adopted session that has nothing left to wait for.
    pub(crate) fn refile(&self, sid: SessionId, deadline: Option<Timestamp>, now: Timestamp, watch: Duration) {
        let Some(mut entry) = self.entries.get_mut(&sid) else { return };
        let at = match (deadline, entry.watched()) {
            (Some(d), true) => Some(d.min(now.saturating_add(watch))),
            (Some(d), false) => Some(d),
            (None, true) => Some(now.saturating_add(watch)),
            (None, false) => None,
        };
        let old = std::mem::replace(&mut entry.at, at);
        let forget = at.is_none() && !entry.started_here;
        drop(entry);
        if forget {
            self.entries.remove(&sid);
        }
        let mut due = self.due();
        if let Some(t) = old {
            due.remove(&(t, sid));
        }
        if let Some(t) = at {
            due.insert((t, sid));
        }
    }

    /// Files a remembered session at `at`, whatever its deadline (a retry after an error).
    pub(crate) fn file_at(&self, sid: SessionId, at: Timestamp) {
        let Some(mut entry) = self.entries.get_mut(&sid) else { return };
        let old = entry.at.replace(at);
        drop(entry);
        let mut due = self.due();
        if let Some(t) = old {
            due.remove(&(t, sid));
        }
        due.insert((at, sid));
    }

    /// Forgets a session and hands its waiting handle (if any) `delivery`. Returns
    /// whether a handle got it.
    pub(crate) fn deliver(&self, sid: SessionId, delivery: Delivery) -> bool {
        let Some((_, mut entry)) = self.entries.remove(&sid) else { return false };
        if let Some(t) = entry.at {
            self.due().remove(&(t, sid));
        }
        entry.waiter.take().is_some_and(|w| w.send(delivery).is_ok())
    }

    /// Drops the sender of `sid`'s handle, which is gone: its channel is freed now, not
    /// when the session ends.
    pub(crate) fn release_waiter(&self, sid: SessionId) {
        let waiter = self.entries.get_mut(&sid).and_then(|mut e| e.waiter.take());
        drop(waiter);
    }

    /// Whether a handle here waits for `sid`'s end.
    pub(crate) fn waits(&self, sid: SessionId) -> bool {
        self.entries.get(&sid).is_some_and(|e| e.watched())
    }

    /// The sessions whose handle waits here.
    pub(crate) fn waiting(&self) -> Vec<SessionId> {
        self.entries.iter().filter(|e| e.watched()).map(|e| *e.key()).collect()
    }

    /// The sessions started here that are still remembered.
    pub(crate) fn started_here(&self) -> Vec<SessionId> {
        self.entries.iter().filter(|e| e.started_here).map(|e| *e.key()).collect()
    }

    /// Forgets everything; waiting handles get `make(session)`.
    pub(crate) fn drain(&self, make: impl Fn(SessionId) -> Delivery) {
        let sids: Vec<SessionId> = self.entries.iter().map(|e| *e.key()).collect();
        for sid in sids {
            self.deliver(sid, make(sid));
        }
        self.due().clear();
    }

    /// How many sessions are remembered.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Whether `a` and `b` are the same text, compared without an early exit (as the
/// signature check it stands in for: how far a guess matches must not show); the loop
/// vectorizes.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(c: char) -> SessionId {
        SessionId::parse(&c.to_string().repeat(16)).unwrap()
    }

    /// The routed signed id is remembered per session, replaced by the next one, and
    /// only for a session the manager remembers.
    #[test]
    fn remembers_the_last_verified_id() {
        let local = Local::default();
        let (a, b) = (sid('a'), sid('b'));
        local.adopt(a, Some(Timestamp(10)), Some("a:1"));
        assert!(local.verified(a, "a:1"));
        assert!(!local.verified(a, "a:2") && !local.verified(a, "a:1 ") && !local.verified(b, "a:1"));
        assert!(!local.verified(a, "b:1") && !local.verified(a, "a:") && !local.verified(a, ""));
        local.adopt(a, Some(Timestamp(10)), None);
        assert!(local.verified(a, "a:1"), "a click without an id keeps it");
        local.adopt(a, Some(Timestamp(10)), Some("a:2"));
        assert!(local.verified(a, "a:2") && !local.verified(a, "a:1"));
        // Without a deadline an unknown session is not remembered, nor its id.
        local.adopt(b, None, Some("b:1"));
        assert!(!local.verified(b, "b:1"));
        assert_eq!(local.len(), 1);
    }

    #[test]
    fn index_pops_only_due_and_refiles() {
        let local = Local::default();
        let w = Duration::from_millis(1_000);
        let (tx, _rx) = oneshot::channel();
        local.insert_started(sid('a'), tx, Some(Timestamp(5_000)), Timestamp(0), w);
        local.adopt(sid('b'), Some(Timestamp(2_000)), None);
        local.adopt(sid('b'), Some(Timestamp(9_000)), None);
        local.adopt(sid('c'), None, None);
        assert_eq!(local.len(), 2);
        // `a` is watched: filed at now + watch.
        assert_eq!(local.pop_due(Timestamp(999)), vec![]);
        assert_eq!(local.pop_due(Timestamp(1_000)), vec![sid('a')]);
        assert_eq!(local.pop_due(Timestamp(2_000)), vec![sid('b')]);
        local.refile(sid('b'), Some(Timestamp(3_000)), Timestamp(2_000), w);
        assert_eq!(local.pop_due(Timestamp(3_000)), vec![sid('b')]);
        local.refile(sid('b'), None, Timestamp(3_000), w);
        assert_eq!(local.len(), 1, "an adopted session without deadline is forgotten");
        assert!(local.deliver(sid('a'), Err(super::super::HandleError::Lost { session: sid('a') })));
        assert_eq!(local.len(), 0);
    }
}
