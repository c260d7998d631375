//! What the library serves over HTTP (feature `listener`, which `discord` turns on):
//! a [`Listener`] that bounds what unauthenticated clients can hold, for the Discord
//! interactions endpoint and any webhook a platform adapter serves.

mod listener;

pub use listener::{
    DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Limits, Listener,
    ListenerError,
};
