//! [`SigningKeys`]: the truncated HMAC-SHA256 signature of custom ids, with key
//! rotation.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::CustomIdError;

/// Keys that sign custom ids, **the newest last** (the order of the encryption
/// [`KeyRing`](crate::encryption::KeyRing)): the last one signs, every one verifies,
/// so a key is rotated in by appending it, keeping the old ones before it until the
/// messages carrying their ids are gone.
///
/// Before this order was settled, the *first* key signed: a list written newest first
/// for an older version must be reversed (ids it signed still verify, since every key
/// verifies; only which key signs new ids changes).
///
/// The signature is HMAC-SHA256 truncated to [`tag_bytes`](Self::tag_bytes) bytes
/// (8 by default: 11 characters of the id).
///
/// # Examples
///
/// ```
/// use bot_sessions::interactive::SigningKeys;
///
/// let keys = SigningKeys::new([b"old key, at least 16 bytes".as_slice(), b"new key, at least 16 bytes"])?
///     .tag_bytes(6)?;
/// # Ok::<(), bot_sessions::interactive::CustomIdError>(())
/// ```
#[derive(Clone)]
pub struct SigningKeys {
    macs: Arc<[Hmac<Sha256>]>,
    tag_bytes: usize,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys").field("keys", &self.macs.len()).field("tag_bytes", &self.tag_bytes).finish()
    }
}

impl SigningKeys {
    /// The shortest accepted key, in bytes.
    pub const MIN_KEY_LEN: usize = 16;
    /// The default signature length, in bytes.
    pub const DEFAULT_TAG_BYTES: usize = 8;

    /// Keys, the newest last (it signs; all of them verify).
    ///
    /// # Errors
    ///
    /// [`CustomIdError::InvalidKeys`] for an empty list or a key under 16 bytes.
    pub fn new<I, K>(keys: I) -> Result<Self, CustomIdError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let mut macs = Vec::new();
        for key in keys {
            let key = key.as_ref();
            if key.len() < Self::MIN_KEY_LEN {
                return Err(CustomIdError::InvalidKeys { reason: "a key is shorter than 16 bytes" });
            }
            let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                .map_err(|_| CustomIdError::InvalidKeys { reason: "HMAC refused the key" })?;
            macs.push(mac);
        }
        if macs.is_empty() {
            return Err(CustomIdError::InvalidKeys { reason: "no key given" });
        }
        Ok(SigningKeys { macs: macs.into(), tag_bytes: Self::DEFAULT_TAG_BYTES })
    }

    /// Sets the signature length in bytes (4 to 32; default 8).
    ///
    /// # Errors
    ///
    /// [`CustomIdError::InvalidKeys`] outside 4..=32.
    pub fn tag_bytes(mut self, n: usize) -> Result<Self, CustomIdError> {
        if !(4..=32).contains(&n) {
            return Err(CustomIdError::InvalidKeys { reason: "the signature length must be 4 to 32 bytes" });
        }
        self.tag_bytes = n;
        Ok(self)
    }

    /// The signature of `body` bound to `binding` (the codec's target and bot).
    pub(super) fn sign(&self, binding: &[u8], body: &str) -> String {
        let mut tag = String::new();
        if let Some(mac) = self.macs.last() {
            let mut mac = mac.clone();
            mac.update(binding);
            mac.update(body.as_bytes());
            let full = mac.finalize().into_bytes();
            URL_SAFE_NO_PAD.encode_string(&full[..self.tag_bytes.min(full.len())], &mut tag);
        }
        tag
    }

    pub(super) fn verify(&self, binding: &[u8], body: &str, tag: &str) -> bool {
        // Only the canonical encoding of exactly `tag_bytes` bytes is accepted; decoded
        // on the stack. `decode_slice` wants room for its estimate (33 bytes for the 43
        // characters of a 32-byte tag); a text too long for that fails.
        let mut buf = [0u8; 36];
        let Ok(len) = URL_SAFE_NO_PAD.decode_slice(tag, &mut buf) else { return false };
        if len != self.tag_bytes {
            return false;
        }
        let tag = &buf[..len];
        self.macs.iter().any(|mac| {
            let mut mac = mac.clone();
            mac.update(binding);
            mac.update(body.as_bytes());
            mac.verify_truncated_left(tag).is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        assert!(SigningKeys::new(Vec::<Vec<u8>>::new()).is_err());
        assert!(SigningKeys::new([b"short"]).is_err());
        let keys = SigningKeys::new([[7u8; 16]]).unwrap();
        assert!(keys.clone().tag_bytes(3).is_err());
        assert!(keys.tag_bytes(32).is_ok());
    }

    #[test]
    fn every_tag_length_verifies_and_nothing_else_does() {
        for n in 4..=32 {
            let keys = SigningKeys::new([[7u8; 16]]).unwrap().tag_bytes(n).unwrap();
            let tag = keys.sign(b"binding", "m:body");
            assert!(keys.verify(b"binding", "m:body", &tag), "{n} bytes");
            assert!(!keys.verify(b"binding", "m:bodY", &tag), "{n} bytes, another body");
            assert!(!keys.verify(b"other", "m:body", &tag), "{n} bytes, another binding");
            let shorter = &tag[..tag.len() - 1];
            assert!(!keys.verify(b"binding", "m:body", shorter), "{n} bytes, a character short");
            let longer = format!("{tag}AAAA");
            assert!(!keys.verify(b"binding", "m:body", &longer), "{n} bytes, longer");
        }
        let keys = SigningKeys::new([[7u8; 16]]).unwrap();
        assert!(!keys.verify(b"binding", "m:body", &"A".repeat(400)), "far too long");
        assert!(!keys.verify(b"binding", "m:body", ""), "empty");
    }
}
