//! Values kept typed by an in-process store (the memory store): an update loads the
//! value the last update of this session type left, without decoding the bytes, and
//! hands its result back with the write (see [`InProcess::take_typed`]).
//!
//! Only where nothing else has to see the value in between: the store is in process,
//! values are not sealed (encryption keeps its plaintext out of the store), and the
//! record's schema is the current one. Loads for a read (`get`, a lazy session) decode
//! the bytes as before, and leave what was kept in place.
//!
//! The value handed out is the one the last update left, not a decode of its bytes:
//! a field the codec skips (`#[serde(skip)]`) keeps its value from one update to the
//! next here, as it does in teloxide's `InMemStorage`, where a store of bytes resets it.

use std::any::TypeId;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Base, SessionError, Sessions, Ttl, Via};
use crate::store::{Taken, TypedValue};
use crate::{InProcess, SessionKey, Timestamp};

/// What a session type keeps in the store: the value and its own TTL (which the bytes
/// carry in their header).
struct Kept<T> {
    value: T,
    own: Option<Ttl>,
}

/// `value` with its own TTL `own`, as the store keeps it.
pub(super) fn keep<T: Send + Sync + 'static>(value: T, own: Option<Ttl>) -> TypedValue {
    Box::new(Kept { value, own })
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The store's in-process side, when it may keep this type's values typed.
    pub(super) fn typed_store(&self) -> Option<&dyn InProcess> {
        if self.inner.sealer.is_on() {
            return None;
        }
        self.inner.store.in_process()
    }

    /// [`load`](Self::load) for an update, which saves with
    /// [`save_owned`](Self::save_owned): takes the value the store kept typed, if any.
    pub(super) async fn load_owned(
        &self,
        key: &SessionKey,
        now: Timestamp,
        via: Via,
    ) -> Result<(T, Base), SessionError> {
        let Some(local) = self.typed_store() else { return self.load(key, now, via).await };
        let current = self.inner.migrations.current();
        let record = match local.take_typed(key, now, TypeId::of::<Kept<T>>(), current)? {
            Taken::Encoded(record) => record,
            Taken::Typed(record, typed) => {
                if let Ok(kept) = typed.downcast::<Kept<T>>() {
                    let Kept { value, own } = *kept;
                    let meta = self.meta_of(&record, own);
                    if !now.is_expired(meta.expires_at) {
                        let base = Base {
                            version: Some(record.version),
                            created_at: Some(record.created_at),
                            stored: None,
                            initial: None,
                            must_write: own.unwrap_or(self.inner.ttl).refreshes_on_read(),
                            meta: Some(meta),
                            from_cache: false,
                            typed: true,
                        };
                        return Ok((value, base));
                    }
                }
                // Over for this session type (or, impossibly, another type): the stored
                // bytes decide, as for any load.
                local.load_now(key, now)?
            }
        };
        self.load_record(key, record, None, now, false).await
    }
}
