//! How a session value becomes bytes: JSON by default, MessagePack behind the
//! `msgpack` feature, bincode behind the `bincode` feature.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::BoxError;

/// An encoding or decoding failure.
#[derive(Debug, thiserror::Error)]
#[error("{codec}: {source}")]
pub struct CodecError {
    /// The codec that failed.
    pub codec: &'static str,
    /// The codec's own error.
    #[source]
    pub source: BoxError,
}

/// The encoding of stored values.
///
/// JSON is the default because an operator can read it. MessagePack (feature
/// `msgpack`) is smaller and faster; it writes maps with field names so migrations on
/// [`serde_json::Value`] see the same shape as with JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// `serde_json`.
    #[default]
    Json,
    /// `rmp-serde` with named fields.
    #[cfg(feature = "msgpack")]
    MessagePack,
    /// `bincode` 1.3 with its default options: the bytes teloxide's `Bincode`
    /// serializer writes, so dialogues imported from teloxide's storages
    /// (`bot-sessions import-teloxide --serializer bincode`) read as they are. Not
    /// self-describing: [`Migrations`](crate::Migrations), which work on JSON values,
    /// cannot read it, and the operator tool shows its values as bytes.
    #[cfg(feature = "bincode")]
    Bincode,
}

impl Codec {
    /// The codec's name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Json => "json",
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => "msgpack",
            #[cfg(feature = "bincode")]
            Codec::Bincode => "bincode",
        }
    }

    fn err(self, e: impl Into<BoxError>) -> CodecError {
        CodecError { codec: self.name(), source: e.into() }
    }

    /// Encodes a value.
    ///
    /// # Errors
    ///
    /// When `T`'s `Serialize` fails (a map with non-string keys in JSON, say).
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, CodecError> {
        match self {
            Codec::Json => serde_json::to_vec(value).map_err(|e| self.err(e)),
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => rmp_serde::to_vec_named(value).map_err(|e| self.err(e)),
            #[cfg(feature = "bincode")]
            Codec::Bincode => bincode::serialize(value).map_err(|e| self.err(e)),
        }
    }

    /// Encodes a value at the end of `out` (a buffer reused from one value to the next).
    ///
    /// # Errors
    ///
    /// As [`encode`](Self::encode); `out` may then hold part of the encoding.
    pub fn encode_into<T: Serialize + ?Sized>(self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            Codec::Json => serde_json::to_writer(out, value).map_err(|e| self.err(e)),
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => rmp_serde::encode::write_named(out, value).map_err(|e| self.err(e)),
            #[cfg(feature = "bincode")]
            Codec::Bincode => bincode::serialize_into(out, value).map_err(|e| self.err(e)),
        }
    }

    /// Decodes a value.
    ///
    /// # Errors
    ///
    /// When the bytes are not a valid encoding of `T`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| self.err(e)),
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => rmp_serde::from_slice(bytes).map_err(|e| self.err(e)),
            #[cfg(feature = "bincode")]
            Codec::Bincode => bincode::deserialize(bytes).map_err(|e| self.err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct S {
        a: u32,
        b: Option<String>,
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let codecs = [
            Codec::Json,
            #[cfg(feature = "msgpack")]
            Codec::MessagePack,
        ];
        for c in codecs {
            let v = S { a: 7, b: Some("é".into()) };
            let bytes = c.encode(&v).unwrap();
            assert_eq!(c.decode::<S>(&bytes).unwrap(), v);
            let as_value: serde_json::Value = c.decode(&bytes).unwrap();
            assert_eq!(as_value["a"], 7, "{c:?} keeps field names");
            let err = c.decode::<S>(b"\xc1\xff not it").unwrap_err();
            assert_eq!(err.codec, c.name());
        }
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_reads_what_bincode_1_writes() {
        let v = S { a: 7, b: Some("é".into()) };
        // bincode 1's default layout: u32 little endian, Option tag byte, u64 length.
        let written = [7, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0xa9];
        assert_eq!(Codec::Bincode.encode(&v).unwrap(), written);
        assert_eq!(Codec::Bincode.decode::<S>(&written).unwrap(), v);
        assert_eq!(Codec::Bincode.decode::<S>(&written[..6]).unwrap_err().codec, "bincode");
    }
}
