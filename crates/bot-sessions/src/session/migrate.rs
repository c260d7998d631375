//! Ordered schema migrations on [`serde_json::Value`].

use std::sync::Arc;

use serde_json::Value;

use crate::store::BoxError;

type Step = Arc<dyn Fn(Value) -> Result<Value, BoxError> + Send + Sync>;

/// The schema history of a session type: step *i* turns version *i* into *i + 1*.
///
/// A record is migrated on load, in order, up to [`Migrations::current`]; the result is
/// written back on the next save. A record newer than `current` is an error and is
/// never overwritten.
///
/// # Examples
///
/// ```
/// use bot_sessions::Migrations;
/// use serde_json::json;
///
/// // v1 stored {"name": ".."}; v2 splits it; v3 adds a default.
/// let migrations = Migrations::new()
///     .step(|mut v| {
///         let name = v["name"].take();
///         Ok(json!({ "first": name, "last": null }))
///     })
///     .step(|mut v| {
///         v["lang"] = json!("en");
///         Ok(v)
///     });
/// assert_eq!(migrations.current(), 3);
/// ```
#[derive(Clone, Default)]
pub struct Migrations {
    steps: Vec<Step>,
}

impl std::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Migrations {{ current: {} }}", self.current())
    }
}

impl Migrations {
    /// No migrations: the schema is at version 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the step from version [`current`](Self::current) to the next.
    pub fn step<F>(mut self, f: F) -> Self
    where
        F: Fn(Value) -> Result<Value, BoxError> + Send + Sync + 'static,
    {
        self.steps.push(Arc::new(f));
        self
    }

    /// The schema version this code writes.
    pub fn current(&self) -> u32 {
        u32::try_from(self.steps.len()).map_or(u32::MAX, |n| n.saturating_add(1))
    }

    /// Migrates `value` from version `from` to [`current`](Self::current).
    ///
    /// # Errors
    ///
    /// The version whose step failed, with the step's error. A `from` of 0 is refused
    /// (versions start at 1); `from` above `current` is the caller's to refuse.
    pub(crate) fn apply(&self, from: u32, mut value: Value) -> Result<Value, (u32, BoxError)> {
        if from == 0 {
            return Err((0, "schema versions start at 1".into()));
        }
        for (i, step) in self.steps.iter().enumerate().skip(from as usize - 1) {
            let version = u32::try_from(i + 1).unwrap_or(u32::MAX);
            value = step(value).map_err(|e| (version, e))?;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applies_in_order_from_the_stored_version() {
        let m = Migrations::new().step(|v| Ok(json!([v, 2]))).step(|v| Ok(json!([v, 3])));
        assert_eq!(m.apply(1, json!(1)).unwrap(), json!([[1, 2], 3]));
        assert_eq!(m.apply(2, json!(2)).unwrap(), json!([2, 3]));
        assert_eq!(m.apply(3, json!(3)).unwrap(), json!(3));
        assert_eq!(m.apply(0, json!(0)).unwrap_err().0, 0);
    }

    #[test]
    fn reports_the_failing_step() {
        let m = Migrations::new().step(Ok).step(|_| Err("boom".into()));
        let (from, err) = m.apply(1, json!(null)).unwrap_err();
        assert_eq!(from, 2);
        assert_eq!(err.to_string(), "boom");
    }
}
