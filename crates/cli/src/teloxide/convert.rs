//! A dialogue's bytes as teloxide's serializer wrote them, turned into the bytes
//! [`DialogueStorage`](bot_sessions::telegram) reads, meaning kept.

use clap::ValueEnum;

/// teloxide's serializers (`teloxide::dispatching::dialogue::serializer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Serializer {
    /// `Json`: `serde_json`, read as it is by the default JSON codec.
    Json,
    /// `Bincode`: bincode 1.3, kept as it is; read it with `.codec(Codec::Bincode)`
    /// (feature `bincode`).
    Bincode,
    /// `Cbor`: CBOR, rewritten as JSON (CBOR describes itself, so the same serde value
    /// comes out), read by the default JSON codec.
    Cbor,
}

/// The first byte of a session header (see the library's `session::header`): a value
/// starting with it would be read as one.
const HEADER_BYTE: u8 = 0xC1;

/// The bytes to store for `bytes`, or why they cannot be imported.
pub fn convert(serializer: Serializer, bytes: &[u8]) -> Result<Vec<u8>, String> {
    match serializer {
        Serializer::Json => {
            serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| format!("not JSON: {e}"))?;
            Ok(bytes.to_vec())
        }
        Serializer::Bincode => {
            if bytes.first() == Some(&HEADER_BYTE) {
                return Err("bincode starting with byte 0xC1, which a session reads as its TTL header".into());
            }
            Ok(bytes.to_vec())
        }
        Serializer::Cbor => {
            let mut reader = std::io::Cursor::new(bytes);
            let value: serde_json::Value =
                ciborium::from_reader(&mut reader).map_err(|e| format!("not CBOR that JSON can hold: {e}"))?;
            if usize::try_from(reader.position()).ok() != Some(bytes.len()) {
                return Err("bytes left after the CBOR value".into());
            }
            serde_json::to_vec(&value).map_err(|e| format!("cannot write as JSON: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum State {
        Start,
        ReceiveAge { name: String },
    }

    #[test]
    fn cbor_becomes_the_json_of_the_same_value() {
        let state = State::ReceiveAge { name: "Ada".into() };
        let mut cbor = Vec::new();
        ciborium::into_writer(&state, &mut cbor).unwrap();
        let json = convert(Serializer::Cbor, &cbor).unwrap();
        assert_eq!(serde_json::from_slice::<State>(&json).unwrap(), state);
        let mut unit = Vec::new();
        ciborium::into_writer(&State::Start, &mut unit).unwrap();
        assert_eq!(convert(Serializer::Cbor, &unit).unwrap(), br#""Start""#);
    }

    #[test]
    fn what_cannot_be_kept_is_refused_with_a_reason() {
        assert!(convert(Serializer::Json, b"{not json").unwrap_err().contains("not JSON"));
        assert!(convert(Serializer::Bincode, &[0xC1, 0]).unwrap_err().contains("0xC1"));
        assert!(convert(Serializer::Cbor, &[0xff]).is_err());
        let mut two = Vec::new();
        ciborium::into_writer(&1u8, &mut two).unwrap();
        ciborium::into_writer(&2u8, &mut two).unwrap();
        assert!(convert(Serializer::Cbor, &two).unwrap_err().contains("left"));
        // A map with integer keys has no JSON form.
        let mut int_keys = Vec::new();
        ciborium::into_writer(&std::collections::BTreeMap::from([(1u8, 2u8)]), &mut int_keys).unwrap();
        assert!(convert(Serializer::Cbor, &int_keys).is_err());
        assert_eq!(convert(Serializer::Bincode, &[1, 2, 3]).unwrap(), [1, 2, 3], "kept as it is");
    }
}
