//! The typed extension slot of a [`Context`](super::Context).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// Values of any type, one per type, that travel with a [`Context`](super::Context):
/// the platform's own update, a database handle, a locale.
///
/// Cloning is cheap (values are shared). Two slots compare equal when they hold the
/// same set of types (values of arbitrary types cannot be compared).
///
/// # Examples
///
/// ```
/// use bot_sessions::Context;
///
/// #[derive(Debug, PartialEq)]
/// struct Locale(&'static str);
///
/// let ctx = Context::new().with_extension(Locale("de"));
/// assert_eq!(ctx.extensions.get::<Locale>(), Some(&Locale("de")));
/// assert_eq!(ctx.extensions.get::<u32>(), None);
/// ```
#[derive(Clone, Default)]
pub struct Extensions {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Extensions {
    /// Stores `value`, replacing a value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one is stored.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map.get(&TypeId::of::<T>()).and_then(|v| v.downcast_ref::<T>())
    }

    /// Removes the value of type `T`; returns whether there was one.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> bool {
        self.map.remove(&TypeId::of::<T>()).is_some()
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl PartialEq for Extensions {
    fn eq(&self, other: &Self) -> bool {
        self.map.len() == other.map.len() && self.map.keys().all(|k| other.map.contains_key(k))
    }
}

impl Eq for Extensions {}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extensions({} values)", self.map.len())
    }
}
