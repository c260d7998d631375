//! Reading and writing stored session values without knowing their Rust type: what an
//! operator tool needs to show a session as JSON and to put an edited one back.
//!
//! A stored value is the codec's bytes, optionally after the 13-byte header that
//! carries a session's own TTL (see [`Sessions::update_with_ttl`](super::Sessions::update_with_ttl)).
//! [`inspect`] splits the header off and decodes the rest as JSON or, with the
//! `msgpack` feature, MessagePack, whichever it is; [`encode_value`] does the reverse.
//!
//! # Examples
//!
//! ```
//! use bot_sessions::Codec;
//! use bot_sessions::session::{encode_value, inspect};
//!
//! let bytes = encode_value(&serde_json::json!({"step": "email"}), Codec::Json, None)?;
//! let seen = inspect(&bytes)?;
//! assert_eq!((seen.codec, seen.ttl), (Codec::Json, None));
//! assert_eq!(seen.value["step"], "email");
//! # Ok::<(), bot_sessions::codec::CodecError>(())
//! ```
use super::Ttl;
use super::header;
use crate::Codec;
use crate::codec::CodecError;

/// A stored value, decoded without its Rust type.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    /// The session's own TTL, when the value carries the TTL header.
    pub ttl: Option<Ttl>,
    /// The codec the body was written with, as detected.
    pub codec: Codec,
    /// The body, as JSON.
    pub value: serde_json::Value,
}

/// Splits stored bytes into the session's own TTL (when the value carries the TTL
/// header) and the codec's bytes.
///
/// # Errors
///
/// A header that starts like one but is truncated or of an unknown kind.
pub fn split_ttl_header(bytes: &[u8]) -> Result<(Option<Ttl>, &[u8]), CodecError> {
    header::split(bytes)
}

/// Decodes stored bytes whatever their codec: the TTL header (if any) is split off and
/// the body is read as JSON, then (feature `msgpack`) as MessagePack.
///
/// A body that is both valid JSON and valid MessagePack is read as JSON: only a
/// MessagePack value that is a single small integer from 48 to 57 (the bytes of the
/// digits `0`-`9`) can be, and it reads as that digit.
///
/// # Errors
///
/// A damaged header, or a body that no codec of this build decodes; the error names
/// the last codec tried.
pub fn inspect(bytes: &[u8]) -> Result<Inspected, CodecError> {
    let (ttl, body) = split_ttl_header(bytes)?;
    let json = Codec::Json.decode::<serde_json::Value>(body);
    #[cfg(feature = "msgpack")]
    let decoded = json.map(|v| (Codec::Json, v)).or_else(|_| whole_msgpack(body).map(|v| (Codec::MessagePack, v)));
    #[cfg(not(feature = "msgpack"))]
    let decoded = json.map(|v| (Codec::Json, v));
    let (codec, value) = decoded?;
    Ok(Inspected { ttl, codec, value })
}

/// One MessagePack value that takes up all of `body` (a decoder alone stops after the
/// first value, and the first byte of almost any text is a small MessagePack integer).
#[cfg(feature = "msgpack")]
fn whole_msgpack(body: &[u8]) -> Result<serde_json::Value, CodecError> {
    use serde::Deserialize;
    let err = |e: crate::store::BoxError| CodecError { codec: Codec::MessagePack.name(), source: e };
    let mut rest = body;
    let value =
        serde_json::Value::deserialize(&mut rmp_serde::Deserializer::new(&mut rest)).map_err(|e| err(e.into()))?;
    if !rest.is_empty() {
        return Err(err(format!("{} bytes after the value", rest.len()).into()));
    }
    Ok(value)
}

/// The bytes to store for `value` encoded with `codec`, behind the TTL header when the
/// session has its own TTL (`ttl`): the inverse of [`inspect`].
///
/// # Errors
///
/// When the codec cannot encode the value.
pub fn encode_value(value: &serde_json::Value, codec: Codec, ttl: Option<Ttl>) -> Result<Vec<u8>, CodecError> {
    Ok(header::join(ttl, codec.encode(value)?))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reads_back_what_it_writes_with_and_without_header() {
        let v = serde_json::json!({"n": 3, "name": "Ada"});
        let codecs = [
            Codec::Json,
            #[cfg(feature = "msgpack")]
            Codec::MessagePack,
        ];
        for codec in codecs {
            for ttl in [None, Some(Ttl::idle(Duration::from_secs(5)))] {
                let bytes = encode_value(&v, codec, ttl).unwrap();
                assert_eq!(inspect(&bytes).unwrap(), Inspected { ttl, codec, value: v.clone() });
            }
        }
    }

    #[test]
    fn garbage_and_damaged_headers_are_errors() {
        assert!(inspect(b"\xc1BS").is_err(), "truncated header");
        assert!(inspect(b"{\"open\": ").is_err(), "truncated JSON");
    }
}
