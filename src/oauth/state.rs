//! The `state` parameter of an authorization: 256 random bits that bind the callback to the
//! consent Plugboard started. Only its SHA-256 is stored, so a database reader cannot complete
//! someone else's consent; the value itself lives in the URL and nowhere else.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::OAuthError;

const RANDOM_BYTES: usize = 32;
/// The length of 32 bytes in base64 without padding.
const ENCODED_LEN: usize = 43;

/// A fresh `state` value: 32 random bytes as 43 characters of URL-safe base64.
pub struct StateToken {
    value: SecretString,
}

impl StateToken {
    pub fn generate() -> Result<Self, OAuthError> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut random).map_err(|error| OAuthError::NoRandomness(error.to_string()))?;
        Ok(Self { value: SecretString::from(URL_SAFE_NO_PAD.encode(random)) })
    }

    /// The value sent in the authorization URL.
    pub fn secret(&self) -> &SecretString {
        &self.value
    }

    /// What to store: the hex SHA-256 of the value.
    pub fn hash(&self) -> String {
        hash(self.value.expose_secret())
    }

    /// The stored hash of a `state` a callback presents, or `None` when it cannot be one of ours
    /// (wrong length or alphabet, or not canonical base64), so no lookup is made for garbage.
    pub fn hash_presented(presented: &str) -> Option<String> {
        if presented.len() != ENCODED_LEN {
            return None;
        }
        let decoded = URL_SAFE_NO_PAD.decode(presented).ok()?;
        (decoded.len() == RANDOM_BYTES).then(|| hash(presented))
    }
}

impl fmt::Debug for StateToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateToken(***)")
    }
}

fn hash(value: &str) -> String {
    Sha256::digest(value.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_43_url_safe_characters_and_unique() {
        let (one, two) = (StateToken::generate().unwrap(), StateToken::generate().unwrap());
        let value = one.secret().expose_secret();
        assert_eq!(value.len(), ENCODED_LEN);
        assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{value}");
        assert_ne!(value, two.secret().expose_secret());
    }

    #[test]
    fn the_presented_state_hashes_to_the_stored_hash() {
        let state = StateToken::generate().unwrap();
        assert_eq!(StateToken::hash_presented(state.secret().expose_secret()), Some(state.hash()));
        assert_eq!(state.hash().len(), 64);
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn malformed_states_are_not_hashed() {
        let good = StateToken::generate().unwrap();
        let good = good.secret().expose_secret();
        assert!(StateToken::hash_presented("").is_none());
        assert!(StateToken::hash_presented("short").is_none());
        assert!(StateToken::hash_presented(&format!("{good}A")).is_none());
        assert!(StateToken::hash_presented(&good[..42]).is_none());
        assert!(StateToken::hash_presented(&format!("{}+", &good[..42])).is_none());
        assert!(StateToken::hash_presented(&format!("{good}=")).is_none());
        // 43 characters whose last one carries bits beyond the 32 bytes: not canonical.
        assert!(StateToken::hash_presented(&format!("{}B", "A".repeat(42))).is_none());
        assert!(StateToken::hash_presented(&format!("{}A", "A".repeat(42))).is_some());
    }

    #[test]
    fn debug_hides_the_value() {
        let state = StateToken::generate().unwrap();
        let printed = format!("{state:?}");
        assert_eq!(printed, "StateToken(***)");
        assert!(!printed.contains(state.secret().expose_secret()));
    }
}
