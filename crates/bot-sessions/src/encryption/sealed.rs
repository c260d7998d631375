//! The sealed value format:
//!
//! ```text
//! C1 'B' 'S' 02 | key id (4 bytes, big endian) | nonce (24 bytes) | ciphertext | tag (16 bytes)
//! ```
//!
//! The associated data is the first 8 bytes followed by the record's textual key. The
//! first byte is the one MessagePack never uses and is not valid UTF-8, so no JSON or
//! MessagePack value starts like a sealed one (the session TTL header uses the same
//! first byte with version 01 and sits inside the sealed bytes).

/// The marker that starts every sealed value.
pub(super) const MAGIC: [u8; 4] = [0xC1, b'B', b'S', 2];
/// Marker and key id.
pub(super) const PREFIX: usize = 8;
/// The XChaCha20 nonce length.
pub(super) const NONCE: usize = 24;
/// The Poly1305 tag length.
pub(super) const TAG: usize = 16;
/// How many bytes sealing adds to a value.
pub const OVERHEAD: usize = PREFIX + NONCE + TAG;

/// A value that cannot be sealed or opened. It names the record's key; it never holds
/// key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The value was sealed with a key the ring does not hold (retired, or never given).
    #[error("`{key}`: sealed with key id {id}, which the key ring does not hold")]
    MissingKey {
        /// The record's key.
        key: String,
        /// The key id in the sealed value.
        id: u32,
    },
    /// The value does not open with the key it names: altered, truncated, copied from
    /// another key, or sealed with another key under the same id.
    #[error("`{key}`: the sealed value does not open with key id {id} (altered, or stored under another key)")]
    Forged {
        /// The record's key.
        key: String,
        /// The key id in the sealed value.
        id: u32,
    },
    /// The value starts like a sealed one but is shorter than the format allows.
    #[error("`{key}`: sealed value truncated ({len} bytes, at least {OVERHEAD} expected)")]
    Truncated {
        /// The record's key.
        key: String,
        /// The stored length.
        len: usize,
    },
    /// The value is not sealed and the ring does not
    /// [accept plaintext](super::KeyRing::accept_plaintext).
    #[error("`{key}`: the value is not encrypted and plaintext is not accepted")]
    NotSealed {
        /// The record's key.
        key: String,
    },
    /// Sealing failed (the cipher refused the input length).
    #[error("`{key}`: cannot seal a value of {len} bytes")]
    Seal {
        /// The record's key.
        key: String,
        /// The value's length.
        len: usize,
    },
}

/// Whether `stored` is a sealed value (by its marker).
pub(super) fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(&MAGIC)
}

/// The key id of a sealed value, when it is long enough to hold one.
pub(super) fn key_id(stored: &[u8]) -> Option<u32> {
    if !is_sealed(stored) || stored.len() < PREFIX {
        return None;
    }
    let mut id = [0u8; 4];
    id.copy_from_slice(&stored[4..PREFIX]);
    Some(u32::from_be_bytes(id))
}

/// The associated data: the sealed value's prefix, then the record's key.
pub(super) fn aad(prefix: &[u8], key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(prefix.len() + key.len());
    aad.extend_from_slice(prefix);
    aad.extend_from_slice(key.as_bytes());
    aad
}
