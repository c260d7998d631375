//! The keys values are sealed with.

use std::borrow::Cow;
use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::sealed::{self, MAGIC, NONCE, OVERHEAD, PREFIX, SealError, TAG};
use crate::SessionKey;

/// The length of a key, in bytes.
pub const KEY_LEN: usize = 32;

/// A key ring that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// No key was given.
    #[error("a key ring needs at least one key")]
    Empty,
    /// A key is not 32 bytes long.
    #[error("key id {id}: a key is {KEY_LEN} bytes, this one is {len}")]
    Length {
        /// The key's id.
        id: u32,
        /// Its length.
        len: usize,
    },
    /// Two keys share an id.
    #[error("key id {id} is given twice")]
    DuplicateId {
        /// The repeated id.
        id: u32,
    },
    /// A textual key ring does not parse.
    #[error("key ring entry {entry}: {why} (expected ID=HEX, comma-separated, the newest last)")]
    Syntax {
        /// The position of the entry, from 1.
        entry: usize,
        /// What is wrong (never the key material).
        why: &'static str,
    },
}

/// The keys that seal and open session values: new values are sealed with the newest
/// (the last one given), values sealed with any key of the ring open.
///
/// A value that is not sealed is refused ([`SealError::NotSealed`]): otherwise anyone
/// who can write to the store could plant a value by writing it in plaintext. While
/// encryption is being turned on over existing data, [`KeyRing::accept_plaintext`]
/// lets plaintext values through until [`rekey`](super::rekey) has sealed them.
///
/// `Debug` shows the key ids only.
#[derive(Clone)]
pub struct KeyRing {
    /// Ids and ciphers, in the order given; the last is the newest.
    keys: Vec<(u32, XChaCha20Poly1305)>,
    accept_plaintext: bool,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("KeyRing")
            .field("ids", &ids)
            .field("newest", &self.newest_id())
            .field("accept_plaintext", &self.accept_plaintext)
            .finish()
    }
}

impl KeyRing {
    /// A ring of `(id, 32-byte key)` pairs, the newest last.
    ///
    /// # Errors
    ///
    /// No key, a key of another length, or an id given twice.
    pub fn new<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = (u32, K)>) -> Result<Self, KeyRingError> {
        let mut ring: Vec<(u32, XChaCha20Poly1305)> = Vec::new();
        for (id, key) in keys {
            let key = key.as_ref();
            if ring.iter().any(|(other, _)| *other == id) {
                return Err(KeyRingError::DuplicateId { id });
            }
            let cipher =
                XChaCha20Poly1305::new_from_slice(key).map_err(|_| KeyRingError::Length { id, len: key.len() })?;
            ring.push((id, cipher));
        }
        if ring.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(KeyRing { keys: ring, accept_plaintext: false })
    }

    /// Lets values that are not sealed (stored before encryption was turned on) open as
    /// they are, instead of refusing them. Meant for the migration: turn it on, run
    /// [`rekey`](super::rekey) over every namespace, turn it off.
    #[must_use]
    pub fn accept_plaintext(mut self, accept: bool) -> Self {
        self.accept_plaintext = accept;
        self
    }

    /// A ring from its textual form, `ID=HEX[,ID=HEX...]` with 64 hex digits per key and
    /// the newest last (the form the demo and the operator tool read from the
    /// environment). Errors never echo key material.
    ///
    /// # Errors
    ///
    /// [`KeyRingError::Syntax`] naming the entry, or what [`KeyRing::new`] refuses.
    pub fn parse(text: &str) -> Result<Self, KeyRingError> {
        let mut keys = Vec::new();
        for (i, entry) in text.split(',').map(str::trim).enumerate() {
            let syntax = |why| KeyRingError::Syntax { entry: i + 1, why };
            let (id, hex) = entry.split_once('=').ok_or_else(|| syntax("no `=`"))?;
            let id: u32 = id.trim().parse().map_err(|_| syntax("the id is not a number from 0 to 4294967295"))?;
            keys.push((id, decode_hex(hex.trim()).ok_or_else(|| syntax("the key is not hex"))?));
        }
        Self::new(keys)
    }

    /// The id new values are sealed with.
    pub fn newest_id(&self) -> u32 {
        self.keys.last().map_or(0, |(id, _)| *id)
    }

    /// The key ids of the ring, in the order given.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    /// The key id a stored value was sealed with; `None` for a value that is not sealed.
    pub fn sealed_with(stored: &[u8]) -> Option<u32> {
        sealed::key_id(stored)
    }

    /// Seals `plain`, stored under `key`, with the newest key.
    ///
    /// # Errors
    ///
    /// [`SealError::Seal`] only for values beyond the cipher's limit (256 GiB).
    pub fn seal(&self, key: &SessionKey, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let failed = || SealError::Seal { key: key.to_string(), len: plain.len() };
        let (id, cipher) = self.keys.last().ok_or_else(failed)?;
        let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&id.to_be_bytes());
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let aad = sealed::aad(&out[..PREFIX], key.as_str());
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[PREFIX + NONCE..])
            .map_err(|_| failed())?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens `stored`, loaded from `key`. A value that is not sealed comes back as it is
    /// only when the ring [accepts plaintext](KeyRing::accept_plaintext).
    ///
    /// # Errors
    ///
    /// [`SealError::MissingKey`], [`SealError::Forged`], [`SealError::Truncated`] or
    /// [`SealError::NotSealed`].
    pub fn open<'a>(&self, key: &SessionKey, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, SealError> {
        if !sealed::is_sealed(stored) {
            return if self.accept_plaintext {
                Ok(Cow::Borrowed(stored))
            } else {
                Err(SealError::NotSealed { key: key.to_string() })
            };
        }
        if stored.len() < OVERHEAD {
            return Err(SealError::Truncated { key: key.to_string(), len: stored.len() });
        }
        let id = sealed::key_id(stored).unwrap_or_default();
        let Some((_, cipher)) = self.keys.iter().find(|(k, _)| *k == id) else {
            return Err(SealError::MissingKey { key: key.to_string(), id });
        };
        let nonce = XNonce::from_slice(&stored[PREFIX..PREFIX + NONCE]);
        let body_end = stored.len() - TAG;
        let tag = Tag::from_slice(&stored[body_end..]);
        let mut plain = stored[PREFIX + NONCE..body_end].to_vec();
        let aad = sealed::aad(&stored[..PREFIX], key.as_str());
        cipher
            .decrypt_in_place_detached(nonce, &aad, &mut plain, tag)
            .map_err(|_| SealError::Forged { key: key.to_string(), id })?;
        Ok(Cow::Owned(plain))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    text.as_bytes().chunks(2).map(|pair| u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Namespace, Scope};

    fn key(user: i64) -> SessionKey {
        SessionKey::new(Namespace::new("profile").unwrap(), Scope::User(user))
    }

    fn ring(ids: &[u32]) -> KeyRing {
        KeyRing::new(ids.iter().map(|id| (*id, [*id as u8; KEY_LEN]))).unwrap()
    }

    #[test]
    fn seals_with_the_newest_and_opens_with_any() {
        let old = ring(&[1]);
        let rotated = ring(&[1, 2]);
        let sealed_old = old.seal(&key(1), b"hello").unwrap();
        assert_eq!(KeyRing::sealed_with(&sealed_old), Some(1));
        assert_eq!(&*rotated.open(&key(1), &sealed_old).unwrap(), b"hello");
        let sealed_new = rotated.seal(&key(1), b"hello").unwrap();
        assert_eq!(KeyRing::sealed_with(&sealed_new), Some(2));
        assert_eq!(sealed_new.len(), 5 + OVERHEAD);
        assert!(!sealed_new.windows(5).any(|w| w == b"hello"), "plaintext visible in the sealed bytes");
        assert_eq!(old.open(&key(1), &sealed_new), Err(SealError::MissingKey { key: key(1).to_string(), id: 2 }));
    }

    #[test]
    fn nonces_differ_so_equal_values_seal_differently() {
        let r = ring(&[1]);
        assert_ne!(r.seal(&key(1), b"same").unwrap(), r.seal(&key(1), b"same").unwrap());
    }

    #[test]
    fn another_key_a_flipped_bit_or_a_truncation_do_not_open() {
        let r = ring(&[1]);
        let sealed = r.seal(&key(1), b"secret value").unwrap();
        assert!(matches!(r.open(&key(2), &sealed), Err(SealError::Forged { id: 1, .. })));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(r.open(&key(1), &bad).is_err(), "a flip at byte {i} went unnoticed");
        }
        for len in 0..sealed.len() {
            assert!(r.open(&key(1), &sealed[..len]).is_err(), "truncation to {len} opened");
        }
        // The same id with other key material does not open either.
        let impostor = KeyRing::new([(1u32, [9u8; KEY_LEN])]).unwrap();
        assert!(matches!(impostor.open(&key(1), &sealed), Err(SealError::Forged { .. })));
    }

    #[test]
    fn plain_values_pass_only_when_accepted() {
        let r = ring(&[1]);
        assert_eq!(r.open(&key(1), br#"{"a":1}"#), Err(SealError::NotSealed { key: key(1).to_string() }));
        let migrating = ring(&[1]).accept_plaintext(true);
        assert_eq!(&*migrating.open(&key(1), br#"{"a":1}"#).unwrap(), br#"{"a":1}"#);
    }

    #[test]
    fn bad_rings_are_refused_without_echoing_keys() {
        assert_eq!(KeyRing::new(Vec::<(u32, Vec<u8>)>::new()).unwrap_err(), KeyRingError::Empty);
        assert_eq!(KeyRing::new([(1u32, vec![0u8; 31])]).unwrap_err(), KeyRingError::Length { id: 1, len: 31 });
        assert_eq!(KeyRing::new([(1u32, [0u8; 32]), (1, [1u8; 32])]).unwrap_err(), KeyRingError::DuplicateId { id: 1 });
        let secret = "ab".repeat(31) + "zz";
        let err = KeyRing::parse(&format!("1={secret}")).unwrap_err();
        assert!(matches!(err, KeyRingError::Syntax { entry: 1, .. }));
        assert!(!err.to_string().contains(&secret));
        assert!(matches!(KeyRing::parse("x=00").unwrap_err(), KeyRingError::Syntax { entry: 1, .. }));
        assert!(matches!(KeyRing::parse("1").unwrap_err(), KeyRingError::Syntax { .. }));
        let r = KeyRing::parse(&format!("7={}, 9={}", "0f".repeat(32), "A0".repeat(32))).unwrap();
        assert_eq!(r.ids().collect::<Vec<_>>(), vec![7, 9]);
        assert_eq!(format!("{r:?}"), "KeyRing { ids: [7, 9], newest: 9, accept_plaintext: false }");
    }
}
