//! Master keys and the ids that name them in every sealed envelope.
//! A key's bytes are only reachable through `expose_secret`; nothing here prints them.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};

/// Longest key id; the envelope stores the length in one byte, and short ids keep rows small.
const MAX_KEY_ID_LEN: usize = 32;

/// The name of a master key, written in clear into every envelope it seals.
///
/// 1 to 32 characters of `[A-Za-z0-9_-]`, so it is safe to print in logs and error messages and
/// cannot be confused with the base64 of a key (which is longer and may contain `+`, `/`, `=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

/// Why a string is not a valid [`KeyId`]. Never echoes the string: a misplaced key could be in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKeyId {
    #[error("the key id is empty")]
    Empty,
    #[error("the key id is {len} characters long; at most {MAX_KEY_ID_LEN} are allowed")]
    TooLong { len: usize },
    #[error("the key id may only contain the characters A-Z, a-z, 0-9, '_' and '-'")]
    BadCharacter,
}

impl KeyId {
    pub fn parse(value: &str) -> Result<Self, InvalidKeyId> {
        if value.is_empty() {
            return Err(InvalidKeyId::Empty);
        }
        if !value.bytes().all(is_key_id_byte) {
            return Err(InvalidKeyId::BadCharacter);
        }
        // All ASCII from here, so bytes and characters count alike.
        if value.len() > MAX_KEY_ID_LEN {
            return Err(InvalidKeyId::TooLong { len: value.len() });
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_key_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 256-bit master key and its id. The bytes are zeroized on drop (by `SecretBox`).
pub struct MasterKey {
    id: KeyId,
    key: SecretBox<[u8; 32]>,
}

impl MasterKey {
    pub fn new(id: KeyId, key: SecretBox<[u8; 32]>) -> Self {
        Self { id, key }
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Crate-internal on purpose: only the sealer needs the bytes.
    pub(super) fn bytes(&self) -> &[u8; 32] {
        self.key.expose_secret()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).field("key", &format_args!("***")).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_accepts_letters_digits_dash_and_underscore() {
        let id = KeyId::parse("prod-2025_01").expect("valid id");
        assert_eq!(id.as_str(), "prod-2025_01");
        assert_eq!(id.to_string(), "prod-2025_01");
        assert!(KeyId::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn key_id_rejects_empty_too_long_and_odd_characters() {
        assert_eq!(KeyId::parse(""), Err(InvalidKeyId::Empty));
        assert_eq!(KeyId::parse(&"a".repeat(33)), Err(InvalidKeyId::TooLong { len: 33 }));
        for bad in ["a b", "a:b", "a/b", "a+b=", "é", "k\n"] {
            assert_eq!(KeyId::parse(bad), Err(InvalidKeyId::BadCharacter), "{bad:?}");
        }
    }

    #[test]
    fn master_key_debug_shows_the_id_and_hides_the_key() {
        let key = MasterKey::new(KeyId::parse("k1").expect("valid id"), SecretBox::new(Box::new([0xAB; 32])));
        let debug = format!("{key:?}");
        assert_eq!(debug, r#"MasterKey { id: KeyId("k1"), key: *** }"#);
    }
}
