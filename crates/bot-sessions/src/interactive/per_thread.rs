//! A shared value of which every thread keeps a copy of its own.
//!
//! Routes run on every core at once, and each clones a few shared `Arc`s (the
//! manager's namespace into every key it builds, the registered kinds for a route to
//! hold across its awaits). Cloning and dropping one shared `Arc` writes its reference
//! count, a cache line every core then passes back and forth. A clone of this
//! thread's copy writes a count only its thread writes (unless the task moves to
//! another thread before it drops the clone: still right, only slower).

use std::cell::RefCell;

use thread_local::ThreadLocal;

/// Each thread's copy of a value, with the generation it was made at; a copy made at
/// another generation is made again.
pub(crate) struct PerThread<T: Send> {
    here: ThreadLocal<RefCell<Option<(u64, T)>>>,
}

impl<T: Send> Default for PerThread<T> {
    fn default() -> Self {
        PerThread { here: ThreadLocal::new() }
    }
}

impl<T: Clone + Send> PerThread<T> {
    /// A clone of this thread's copy as of `generation` (a value that never changes:
    /// always the same one), made with `make` when this thread has none yet or its
    /// copy is of another generation.
    ///
    /// Nothing runs while the cell is borrowed but a clone of `T`: `make`, and the
    /// drop of a copy it replaces, run with the cell free (they may even call `get`
    /// again: the last copy stored wins).
    pub(crate) fn get(&self, generation: u64, make: impl FnOnce() -> T) -> T {
        let cell = self.here.get_or(|| RefCell::new(None));
        if let Some((made_at, copy)) = &*cell.borrow()
            && *made_at == generation
        {
            return copy.clone();
        }
        let made = make();
        let old = cell.replace(Some((generation, made.clone())));
        drop(old);
        made
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_copy_is_kept_per_thread_until_its_generation_moves() {
        let shared: Arc<str> = "menu".into();
        let per = PerThread::<Arc<str>>::default();
        let first = per.get(0, || Arc::from(&*shared));
        assert!(!Arc::ptr_eq(&first, &shared), "a copy of its own");
        let again = per.get(0, || unreachable!("the copy is kept"));
        assert!(Arc::ptr_eq(&first, &again));
        let next = per.get(1, || "menu v2".into());
        assert_eq!(&*next, "menu v2");
        assert_eq!(&*first, "menu", "a clone taken before stays as it was");
        let other = std::thread::scope(|s| s.spawn(|| per.get(1, || "other thread".into())).join().expect("ran"));
        assert_eq!(&*other, "other thread", "another thread makes a copy of its own");
        assert!(Arc::ptr_eq(&per.get(1, || unreachable!("kept")), &next));
    }
}
