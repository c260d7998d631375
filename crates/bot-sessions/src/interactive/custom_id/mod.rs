//! Custom IDs: the text a component (button, select menu, inline keyboard key) carries
//! so that a click can be routed back to its session.
//!
//! Layout, fields separated by `:`:
//!
//! ```text
//! NAMESPACE:SESSION:COMPONENT[:TOKEN]*[:SIGNATURE]
//! poll:Xk3v9QeR1bT0aZ7y:vote:2:q1UZ8R0dWk4
//! ```
//!
//! - `NAMESPACE` tells this bot's ids from any other component's (a foreign id is
//!   [`DecodeError::NotOurs`]);
//! - `SESSION` is a random, unguessable [`SessionId`] (96 bits, 16 URL-safe characters);
//! - `COMPONENT` names the component on its message (`next`, `vote`, ...), which keeps
//!   the ids of one message apart (platforms require them unique per message);
//! - `TOKEN`s are free text of the session's own; `%` and `:` inside a component or a
//!   token are escaped as `%25` and `%3A`, everything else (non-ASCII included) is kept;
//! - `SIGNATURE`, when the codec has [`SigningKeys`], is a truncated HMAC-SHA256 of
//!   everything before it and of the codec's [`Target`] and
//!   [bot](CustomIdCodec::bot), so an edited or forged id, or one signed for another
//!   bot or platform, is refused ([`DecodeError::Forged`]).
//!
//! The limit belongs to the [`Target`]: Discord counts 100 characters, Telegram's
//! callback data 64 bytes. [`CustomIdCodec::encode`] fails over the limit, at build
//! time, with the id and both numbers in the error.

mod codec;
mod error;
mod escape;
mod id;
mod signing;
mod target;

pub use codec::{CustomIdCodec, MAX_NAMESPACE_LEN};
pub use error::{CustomIdError, DecodeError};
pub use escape::SEPARATOR;
pub use id::{CustomId, SessionId};
pub use signing::SigningKeys;
pub use target::{Target, Unit};
