//! The kinds a manager has registered, read on every route.
//!
//! A route holds the session's kind across its awaits (the key's lock, the store), and
//! every core routes at once. Two ways of holding it would write a cache line that
//! every core shares: cloning the kind's `Arc` (its reference count), and an
//! `arc_swap` guard (one of a few debt slots per thread, shared with every `ArcSwap`
//! of the process; not meant to be held across awaits). So each thread keeps a copy of
//! the map of its own, and a route clones that copy's `Arc`: a count only its thread
//! writes, unless the task moves to another thread before it drops it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use thread_local::ThreadLocal;

use super::core::{ErasedKind, Kinds};

/// The registered kinds: the map every registration replaces, and each thread's copy.
#[derive(Default)]
pub(crate) struct Registry {
    /// Every kind registered so far: replaced whole by each registration.
    kinds: arc_swap::ArcSwap<Kinds>,
    /// Registrations so far; a thread's copy made at an older count is stale.
    registrations: AtomicU64,
    /// Each thread's copy, with the registration count it was made at.
    here: ThreadLocal<RefCell<(u64, Arc<Kinds>)>>,
}

impl Registry {
    /// The kinds as of now, for a read that does not await while it holds them.
    pub(crate) fn now(&self) -> arc_swap::Guard<Arc<Kinds>> {
        self.kinds.load()
    }

    /// The kinds as of now, for a route to hold across its awaits: this thread's copy.
    pub(crate) fn held(&self) -> Arc<Kinds> {
        let seen = self.registrations.load(Ordering::Acquire);
        let copy = self.here.get_or(|| RefCell::new((seen, self.copy())));
        // Nothing below calls out while the cell is borrowed: no borrow can overlap.
        let mut copy = copy.borrow_mut();
        if copy.0 != seen {
            *copy = (seen, self.copy());
        }
        Arc::clone(&copy.1)
    }

    /// A map of this thread's own (its `Arc` counts apart from every other thread's).
    fn copy(&self) -> Arc<Kinds> {
        Arc::new(HashMap::clone(&self.kinds.load()))
    }

    /// Registers `engine` under `name`; `false` (and nothing changed) when the name
    /// is taken. Registrations are rare: each copies the map (`rcu` retries on a race).
    pub(crate) fn register(&self, name: &Arc<str>, engine: Arc<dyn ErasedKind>) -> bool {
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
    use crate::interactive::engine::Engine;
    use crate::interactive::{Interactive, StartCx, Step, UpdateCx};
    use crate::store::BoxError;

    struct Nothing;

    impl Interactive for Nothing {
        type State = ();
        type Args = ();
        type Output = ();

        async fn start(&self, _: &mut StartCx<'_>, (): ()) -> Result<(), BoxError> {
            Ok(())
        }

        async fn update(&self, _: &mut UpdateCx<'_>, (): &mut ()) -> Result<Step<()>, BoxError> {
            Ok(Step::refresh())
        }
    }

    #[test]
    fn a_copy_made_before_a_registration_is_made_again() {
        let registry = Registry::default();
        assert!(registry.held().is_empty());
        let held = registry.held();
        // The same thread's copy, until something registers.
        assert!(Arc::ptr_eq(&held, &registry.held()));
        let name: Arc<str> = "menu".into();
        let engine: Arc<dyn ErasedKind> = Arc::new(Engine::new(name.clone(), Nothing));
        assert!(registry.register(&name, engine.clone()));
        assert!(!registry.register(&name, engine), "a taken name is refused");
        let after = registry.held();
        assert!(after.contains_key("menu") && !Arc::ptr_eq(&held, &after));
        assert!(held.is_empty(), "a route that held the old copy keeps it");
        assert!(registry.now().contains_key("menu"));
        // Another thread makes a copy of its own.
        let other = std::thread::scope(|s| s.spawn(|| registry.held()).join().expect("the thread ran"));
        assert!(other.contains_key("menu") && !Arc::ptr_eq(&other, &after));
    }
}
