//! Authenticated encryption at rest (feature `encryption`): the sealing layer.
//!
//! A [`KeyRing`] seals session values with XChaCha20-Poly1305 and opens them. The
//! record's textual key is the associated data, so a sealed value copied under another
//! key does not open; each sealed value names the key that sealed it, so keys rotate:
//! values are sealed with the newest key of the ring, values sealed with any key still
//! in it open, and [`rekey`] re-seals a namespace of a store with the newest key so old
//! keys can be retired. A value sealed with a key the ring does not hold, altered,
//! stored under another key, or not sealed at all (unless the ring
//! [accepts plaintext](KeyRing::accept_plaintext) during a migration) fails with a
//! typed [`SealError`] naming the key.
//!
//! **Use:** [`SessionsBuilder::encryption`](crate::session::SessionsBuilder::encryption)
//! seals every value a [`Sessions`](crate::Sessions) stores, and
//! `ManagerBuilder::encryption` (feature `interactive`) the state of interactive
//! sessions; a value that does not open reaches the session type's
//! [`DecodePolicy`](crate::DecodePolicy) as a decode error naming the key. The ring and
//! [`rekey`] also work on their own over any [`Store`](crate::Store); the operator
//! tool's `bot-sessions rekey` drives [`rekey_page`].
//!
//! What stays in plaintext: keys (chat and user ids), versions, timestamps, the schema
//! version and the owner. Only values are sealed.
//!
//! # Example
//!
//! ```
//! use bot_sessions::encryption::KeyRing;
//! use bot_sessions::{Namespace, Scope, SessionKey};
//!
//! // Keys as `ID=HEX` pairs (32 bytes each); the last one is the newest.
//! let ring = KeyRing::parse(&format!("1={},2={}", "11".repeat(32), "22".repeat(32)))?;
//! let key = SessionKey::new(Namespace::new("profile")?, Scope::User(7));
//! let sealed = ring.seal(&key, br#"{"email":"a@example.com"}"#)?;
//! assert_eq!(KeyRing::sealed_with(&sealed), Some(2));
//! assert_eq!(&*ring.open(&key, &sealed)?, br#"{"email":"a@example.com"}"#);
//!
//! // The same bytes under another key do not open.
//! let other = SessionKey::new(Namespace::new("profile")?, Scope::User(8));
//! assert!(ring.open(&other, &sealed).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod keyring;
mod rekey;
mod sealed;

pub use keyring::{KEY_LEN, KeyRing, KeyRingError};
pub use rekey::{RekeyReport, rekey, rekey_page};
pub use sealed::{OVERHEAD, SealError};
