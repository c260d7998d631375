//! Discord's request signatures: every interaction Discord POSTs carries
//! `X-Signature-Ed25519` (hex) over `X-Signature-Timestamp` followed by the raw body,
//! made with the application's key. A request that does not verify is answered 401
//! (Discord itself sends invalid signatures now and then, and removes an endpoint
//! that accepts them).

use ed25519_dalek::{Signature, VerifyingKey};

/// The header carrying the signature (hex, 64 bytes).
pub const SIGNATURE_HEADER: &str = "x-signature-ed25519";
/// The header carrying the signed timestamp.
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";

/// Why a request's signature was refused. Every variant is answered 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No `X-Signature-Ed25519` header (or not valid text).
    #[error("the request has no X-Signature-Ed25519 header")]
    MissingSignature,
    /// No `X-Signature-Timestamp` header (or not valid text).
    #[error("the request has no X-Signature-Timestamp header")]
    MissingTimestamp,
    /// The signature header is not 128 hex digits.
    #[error("the X-Signature-Ed25519 header is not 128 hex digits")]
    Malformed,
    /// The signature does not verify over timestamp and body with the key.
    #[error("the signature does not verify")]
    Invalid,
}

/// Why a public key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// Not 64 hex digits.
    #[error("a Discord public key is 64 hex digits (32 bytes)")]
    Malformed,
    /// 32 bytes that are not a point of the curve.
    #[error("the public key is not a valid Ed25519 key")]
    Invalid,
}

/// An application's public key (the "Public Key" of the Discord developer portal),
/// which verifies its requests.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::{PublicKey, SignatureError};
///
/// // RFC 8032 §7.1, test 1: the empty message.
/// let key = PublicKey::from_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")?;
/// let sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
/// assert_eq!(key.verify(Some(sig), Some(""), b""), Ok(()));
/// assert_eq!(key.verify(Some(sig), Some("1"), b""), Err(SignatureError::Invalid));
/// assert_eq!(key.verify(Some("zz"), Some(""), b""), Err(SignatureError::Malformed));
/// assert_eq!(key.verify(None, Some(""), b""), Err(SignatureError::MissingSignature));
/// # Ok::<(), bot_sessions::discord::PublicKeyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", encode_hex(self.0.as_bytes()))
    }
}

impl PublicKey {
    /// Reads the key from its 64 hex digits (upper or lower case; surrounding spaces
    /// are ignored).
    ///
    /// # Errors
    ///
    /// [`PublicKeyError`] for anything else, or bytes that are not a key.
    pub fn from_hex(hex: &str) -> Result<Self, PublicKeyError> {
        let bytes: [u8; 32] = decode_hex(hex.trim()).ok_or(PublicKeyError::Malformed)?;
        Self::from_bytes(&bytes)
    }

    /// The key from its 32 bytes.
    ///
    /// # Errors
    ///
    /// [`PublicKeyError::Invalid`] for bytes that are not a key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PublicKeyError> {
        VerifyingKey::from_bytes(bytes).map(PublicKey).map_err(|_| PublicKeyError::Invalid)
    }

    /// Checks a request: `signature` and `timestamp` are the two headers' values
    /// (`None` when absent), `body` the raw bytes as received (not re-serialised JSON).
    /// Uses strict verification (no small-order keys, no non-canonical signatures).
    ///
    /// # Errors
    ///
    /// [`SignatureError`], which names what is wrong.
    pub fn verify(&self, signature: Option<&str>, timestamp: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::MissingSignature)?;
        let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
        let bytes: [u8; 64] = decode_hex(signature.trim()).ok_or(SignatureError::Malformed)?;
        let signature = Signature::from_bytes(&bytes);
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        self.0.verify_strict(&message, &signature).map_err(|_| SignatureError::Invalid)
    }
}

/// Decodes exactly `N` bytes of hex; `None` for a wrong length or a non-hex digit.
pub(crate) fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        assert_eq!(decode_hex::<2>("00fF"), Some([0, 255]));
        assert_eq!(decode_hex::<2>("00f"), None);
        assert_eq!(decode_hex::<2>("00fg"), None);
        assert_eq!(decode_hex::<1>("é"), None);
        assert_eq!(encode_hex(&[0, 171, 255]), "00abff");
        assert_eq!(PublicKey::from_hex("abcd"), Err(PublicKeyError::Malformed));
    }
}
