//! Sealing stored values when encryption at rest is on (feature `encryption`, see
//! [`SessionsBuilder::encryption`](super::SessionsBuilder::encryption)); a no-op that
//! costs nothing when it is off.
//!
//! Sealing wraps the whole stored value, TTL header included: `header::join` then
//! [`Sealer::seal`] on save, [`Sealer::open`] before any `header::split` on load.

use std::borrow::Cow;
#[cfg(feature = "encryption")]
use std::sync::Arc;

use crate::SessionKey;
#[cfg(feature = "encryption")]
use crate::encryption::KeyRing;
#[cfg(feature = "encryption")]
pub(crate) use crate::encryption::SealError;

/// Without the feature nothing can fail.
#[cfg(not(feature = "encryption"))]
pub(crate) type SealError = std::convert::Infallible;

/// The key ring values are sealed with, if any. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Sealer {
    #[cfg(feature = "encryption")]
    ring: Option<Arc<KeyRing>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "encryption")]
        if let Some(ring) = &self.ring {
            return ring.fmt(f);
        }
        f.write_str("off")
    }
}

impl Sealer {
    /// Seals with `ring`.
    #[cfg(feature = "encryption")]
    pub(crate) fn new(ring: Arc<KeyRing>) -> Self {
        Sealer { ring: Some(ring) }
    }

    /// Whether values are sealed.
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(feature = "encryption")]
        if self.ring.is_some() {
            return true;
        }
        false
    }

    /// The plaintext of `stored`, loaded from `key` (borrowed, with no copy, when
    /// encryption is off).
    #[cfg_attr(not(feature = "encryption"), allow(clippy::unnecessary_wraps, unused_variables))]
    pub(crate) fn open<'a>(&self, key: &SessionKey, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, SealError> {
        #[cfg(feature = "encryption")]
        if let Some(ring) = &self.ring {
            return ring.open(key, stored);
        }
        Ok(Cow::Borrowed(stored))
    }

    /// The bytes to store for `plain` under `key` (`plain` itself when encryption is off).
    #[cfg_attr(not(feature = "encryption"), allow(clippy::unnecessary_wraps, unused_variables))]
    pub(crate) fn seal(&self, key: &SessionKey, plain: Vec<u8>) -> Result<Vec<u8>, SealError> {
        #[cfg(feature = "encryption")]
        if let Some(ring) = &self.ring {
            return ring.seal(key, &plain);
        }
        Ok(plain)
    }
}
