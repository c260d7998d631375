//! The optional header in front of a stored value: a session's own TTL.
//!
//! A session that a handler gave its own TTL ([`SessionGuard::set_ttl`](super::SessionGuard::set_ttl),
//! [`Sessions::update_with_ttl`](super::Sessions::update_with_ttl)) must keep it across
//! later saves that do not mention it, so the TTL is stored with the value. It goes in
//! a 13-byte header before the codec's bytes:
//!
//! ```text
//! C1 'B' 'S' 01 | kind (1 byte) | milliseconds (8 bytes, big endian) | codec bytes
//! ```
//!
//! `kind` is 0 (never expires), 1 (idle), 2 (idle, refreshed on read) or 3 (absolute).
//! Every other session is stored exactly as before, codec bytes only, so existing
//! records decode unchanged and stay readable. The header cannot be mistaken for a
//! value: `0xC1` is the one byte MessagePack never uses, and it is not valid UTF-8, so
//! no JSON text starts with it.

use std::time::Duration;

use super::Ttl;
use crate::codec::CodecError;

const MAGIC: [u8; 4] = [0xC1, b'B', b'S', 1];
/// The header's length in bytes.
pub(super) const LEN: usize = 13;

fn error(what: &str) -> CodecError {
    CodecError { codec: "session header", source: what.to_owned().into() }
}

/// Splits stored bytes into the session's own TTL (if it has one) and the codec bytes.
///
/// # Errors
///
/// A header that starts like one but is truncated or of an unknown kind.
pub(super) fn split(bytes: &[u8]) -> Result<(Option<Ttl>, &[u8]), CodecError> {
    if !bytes.starts_with(&MAGIC[..1]) {
        return Ok((None, bytes));
    }
    if bytes.len() < LEN || !bytes.starts_with(&MAGIC) {
        return Err(error("truncated or unknown header"));
    }
    let mut ms = [0u8; 8];
    ms.copy_from_slice(&bytes[5..LEN]);
    let d = Duration::from_millis(u64::from_be_bytes(ms));
    let ttl = match bytes[4] {
        0 => Ttl::None,
        1 => Ttl::idle(d),
        2 => Ttl::idle_refreshed_on_read(d),
        3 => Ttl::absolute(d),
        k => return Err(error(&format!("unknown TTL kind {k}"))),
    };
    Ok((Some(ttl), &bytes[LEN..]))
}

/// The bytes to store for `body` of a session whose own TTL is `own`.
pub(super) fn join(own: Option<Ttl>, body: Vec<u8>) -> Vec<u8> {
    let Some(ttl) = own else { return body };
    let (kind, d) = match ttl {
        Ttl::None => (0u8, Duration::ZERO),
        Ttl::Idle { idle, refresh_on_read: false } => (1, idle),
        Ttl::Idle { idle, refresh_on_read: true } => (2, idle),
        Ttl::Absolute(d) => (3, d),
    };
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let mut out = Vec::with_capacity(LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(kind);
    out.extend_from_slice(&ms.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_leaves_plain_values_alone() {
        let d = Duration::from_millis(1_234);
        for ttl in [Ttl::None, Ttl::idle(d), Ttl::idle_refreshed_on_read(d), Ttl::absolute(d)] {
            let bytes = join(Some(ttl), b"{\"n\":1}".to_vec());
            assert_eq!(split(&bytes).unwrap(), (Some(ttl), &b"{\"n\":1}"[..]));
        }
        assert_eq!(join(None, b"[1]".to_vec()), b"[1]");
        assert_eq!(split(b"[1]").unwrap(), (None, &b"[1]"[..]));
        assert_eq!(split(b"").unwrap(), (None, &b""[..]));
    }

    #[test]
    fn a_damaged_header_is_an_error() {
        assert!(split(&[0xC1, b'B']).is_err());
        assert!(split(&[0xC1, b'B', b'S', 1, 9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(split(&[0xC1, b'X', b'S', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
