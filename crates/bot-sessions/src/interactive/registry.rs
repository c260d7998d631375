//! The kinds a manager has registered, read on every route.
//!
//! A route holds the session's kind across its awaits (the key's lock, the store), and
//! every core routes at once. Two ways of holding it would write a cache line that
//! every core shares: cloning the kind's `Arc` (its reference count), and an
//! `arc_swap` guard (one of a few debt slots per thread, shared with every `ArcSwap`
//! of the process; not meant to be held across awaits). So each thread keeps a copy of
//! the map of its own ([`PerThread`], made again after a registration), and a route
//! clones that copy's `Arc`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::per_thread::PerThread;

/// What is registered, by name (for a manager: the kinds, `core::Kinds`).
pub(crate) type Named<V> = HashMap<Arc<str>, V>;

/// The registered kinds (`V`: a kind, as the manager keeps it): the map every
/// registration replaces, and each thread's copy.
pub(crate) struct Registry<V: Send + Sync> {
    /// Every kind registered so far: replaced whole by each registration.
    kinds: arc_swap::ArcSwap<Named<V>>,
    /// Registrations so far; a thread's copy made at an older count is stale.
    registrations: AtomicU64,
    /// Each thread's copy, made at a registration count.
    here: PerThread<Arc<Named<V>>>,
}

impl<V: Send + Sync> Default for Registry<V> {
    fn default() -> Self {
        Registry {
            kinds: arc_swap::ArcSwap::from_pointee(HashMap::new()),
            registrations: AtomicU64::new(0),
            here: PerThread::default(),
        }
    }
}

impl<V: Clone + Send + Sync> Registry<V> {
    /// The kinds as of now, for a read that does not await while it holds them.
    pub(crate) fn now(&self) -> arc_swap::Guard<Arc<Named<V>>> {
        self.kinds.load()
    }

    /// The kinds as of now, for a route to hold across its awaits: this thread's copy.
    pub(crate) fn held(&self) -> Arc<Named<V>> {
        self.here.get(self.registrations.load(Ordering::Acquire), || self.copy())
    }

    /// A map of this thread's own (its `Arc` counts apart from every other thread's).
    fn copy(&self) -> Arc<Named<V>> {
        Arc::new(HashMap::clone(&self.kinds.load()))
    }

    /// Registers `engine` under `name`; `false` (and nothing changed) when the name
    /// is taken. Registrations are rare: each copies the map (`rcu` retries on a race).
    pub(crate) fn register(&self, name: &Arc<str>, engine: V) -> bool {
        let mut taken = false;
        self.kinds.rcu(|kinds| {
            taken = kinds.contains_key(name);
            if taken {
                return Arc::clone(kinds);
            }
            let mut more = HashMap::clone(kinds);
            more.insert(name.clone(), engine.clone());
            Arc::new(more)
        });
        if !taken {
            // After the map is in place: a thread that sees the new count copies it.
            self.registrations.fetch_add(1, Ordering::Release);
        }
        !taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_made_before_a_registration_is_made_again() {
        let registry = Registry::<Arc<str>>::default();
        assert!(registry.held().is_empty());
        let held = registry.held();
        // The same thread's copy, until something registers.
        assert!(Arc::ptr_eq(&held, &registry.held()));
        let name: Arc<str> = "menu".into();
        assert!(registry.register(&name, "the menu".into()));
        assert!(!registry.register(&name, "another menu".into()), "a taken name is refused");
        let after = registry.held();
        assert_eq!(after.get("menu").map(|v| &**v), Some("the menu"));
        assert!(!Arc::ptr_eq(&held, &after));
        assert!(held.is_empty(), "a route that held the old copy keeps it");
        assert!(registry.now().contains_key("menu"));
        // Another thread makes a copy of its own.
        let other = std::thread::scope(|s| s.spawn(|| registry.held()).join().expect("the thread ran"));
        assert!(other.contains_key("menu") && !Arc::ptr_eq(&other, &after));
    }
}
