//! PKCE (RFC 7636) with S256: the verifier stays with Plugboard until the code is exchanged, the
//! challenge goes in the authorization URL. The randomness is ours (getrandom, whose failure is
//! an error rather than a panic); the S256 transform is the `oauth2` crate's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use secrecy::SecretString;

use super::OAuthError;

/// 32 random bytes make a 43-character verifier, RFC 7636's minimum length and 256 bits.
const VERIFIER_BYTES: usize = 32;

/// A fresh verifier and its S256 challenge.
pub(super) struct Pkce {
    pub(super) verifier: SecretString,
    pub(super) challenge: String,
}

pub(super) const METHOD: &str = "S256";

impl Pkce {
    pub(super) fn generate() -> Result<Self, OAuthError> {
        let mut random = [0u8; VERIFIER_BYTES];
        getrandom::fill(&mut random).map_err(|error| OAuthError::NoRandomness(error.to_string()))?;
        Ok(Self::from_verifier(URL_SAFE_NO_PAD.encode(random)))
    }

    /// `verifier` must be 43 to 128 characters; `generate` always makes 43.
    pub(super) fn from_verifier(verifier: String) -> Self {
        let verifier = PkceCodeVerifier::new(verifier);
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier).as_str().to_owned();
        Self { verifier: SecretString::from(verifier.into_secret()), challenge }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_challenge_matches_rfc_7636_appendix_b() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned());
        assert_eq!(pkce.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn generated_verifiers_are_43_unreserved_characters_and_unique() {
        let (one, two) = (Pkce::generate().unwrap(), Pkce::generate().unwrap());
        let verifier = one.verifier.expose_secret();
        assert_eq!(verifier.len(), 43);
        assert!(verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(verifier, two.verifier.expose_secret());
        assert_eq!(one.challenge, Pkce::from_verifier(verifier.to_owned()).challenge);
    }
}
