//! Single sign-on: bearer JWTs from the identity provider named by `PLUGBOARD_OIDC_ISSUER`.
//!
//! A token is accepted only when signed by one of the issuer's current keys, with the algorithm
//! that key is for (never `none`, never HMAC: a token claiming `HS256` with the public key as
//! its secret is refused), and with `iss`, `aud`, `exp` and `nbf` as they must be. This module
//! answers what the token says about its holder; `access` decides who that is.

mod keys;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::OidcSettings;
use keys::KeyCache;

/// Clock difference tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Why a JWT was refused. The caller is anonymous either way; this is for the log.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the token is not a JWT this service accepts: {0}")]
    Malformed(String),
    #[error("the token names a key the issuer does not publish")]
    UnknownKey,
    #[error("the token's algorithm {0} is not the one its key is for")]
    WrongAlgorithm(String),
    #[error("the token did not validate: {0}")]
    Invalid(String),
    #[error("the identity provider's keys are unavailable: {0:#}")]
    KeysUnavailable(anyhow::Error),
}

/// What a valid token says about its holder.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    /// `email_verified` as the issuer stated it; absent counts as verified.
    pub email_verified: bool,
    /// The team names from the configured claim, when it is configured and present.
    pub teams: Option<Vec<String>>,
    pub expires_at: DateTime<Utc>,
}

pub struct OidcVerifier {
    settings: OidcSettings,
    keys: KeyCache,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl OidcVerifier {
    pub fn new(settings: OidcSettings, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(OidcVerifier { keys: KeyCache::new(settings.issuer.clone(), http), settings })
    }

    /// Whether `bearer` looks like a JWT (three base64url parts), so other tokens are not sent
    /// here.
    pub fn looks_like_jwt(bearer: &str) -> bool {
        bearer.split('.').count() == 3 && bearer.starts_with("ey")
    }

    pub async fn verify(&self, token: &str) -> Result<Identity, Refused> {
        // `alg: none` and unknown algorithms fail here already.
        let header = jsonwebtoken::decode_header(token).map_err(|err| Refused::Malformed(err.to_string()))?;
        let key = self
            .keys
            .key(header.kid.as_deref())
            .await
            .map_err(Refused::KeysUnavailable)?
            .ok_or(Refused::UnknownKey)?;
        let algorithm =
            pinned_algorithm(&key).ok_or_else(|| Refused::WrongAlgorithm(format!("{:?}", header.alg)))?;
        if header.alg != algorithm {
            return Err(Refused::WrongAlgorithm(format!("{:?}", header.alg)));
        }
        let decoding = DecodingKey::from_jwk(&key).map_err(|err| Refused::Invalid(err.to_string()))?;
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_audience(&[self.settings.audience.as_str()]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation.required_spec_claims =
            ["exp", "iss", "aud", "sub"].into_iter().map(String::from).collect::<HashSet<_>>();
        let data = jsonwebtoken::decode::<Claims>(token, &decoding, &validation)
            .map_err(|err| Refused::Invalid(err.to_string()))?;
        let claims = data.claims;
        let teams =
            self.settings.teams_claim.as_ref().and_then(|name| claims.rest.get(name)).map(
                |value| match value {
                    serde_json::Value::Array(items) => {
                        items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
                    }
                    serde_json::Value::String(one) => vec![one.clone()],
                    _ => Vec::new(),
                },
            );
        Ok(Identity {
            subject: claims.sub,
            email: claims.email,
            email_verified: claims.email_verified.unwrap_or(true),
            teams,
            expires_at: Utc.timestamp_opt(claims.exp, 0).single().unwrap_or_else(Utc::now),
        })
    }

    pub fn teams_claim_configured(&self) -> bool {
        self.settings.teams_claim.is_some()
    }
}

/// The one algorithm a key may verify: what the JWKS says (`alg`), or, when it says nothing,
/// the usual one for its key type. Symmetric keys are never accepted.
fn pinned_algorithm(key: &Jwk) -> Option<Algorithm> {
    let by_type = match &key.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        // Symmetric keys (`oct`) and whatever a later version adds.
        _ => return None,
    };
    let Some(stated) = key.common.key_algorithm else {
        return Some(by_type);
    };
    let stated: Algorithm = stated.to_string().parse().ok()?;
    let same_family = matches!(
        (stated, by_type),
        (Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512, Algorithm::RS256)
            | (Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512, Algorithm::RS256)
            | (Algorithm::ES256, Algorithm::ES256)
            | (Algorithm::ES384, Algorithm::ES384)
            | (Algorithm::EdDSA, Algorithm::EdDSA)
    );
    same_family.then_some(stated)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::Jwk;
    use serde_json::json;

    use super::*;

    fn jwk(value: serde_json::Value) -> Jwk {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn keys_pin_the_algorithm_they_are_for() {
        let rsa = json!({ "kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB" });
        assert_eq!(pinned_algorithm(&jwk(rsa.clone())), Some(Algorithm::RS256));
        let mut stated = rsa.clone();
        stated["alg"] = json!("PS384");
        assert_eq!(pinned_algorithm(&jwk(stated)), Some(Algorithm::PS384));
        // A key that claims an algorithm of another family is not trusted for anything.
        let mut confused = rsa;
        confused["alg"] = json!("HS256");
        assert_eq!(pinned_algorithm(&jwk(confused)), None);
        let ec = json!({ "kty": "EC", "crv": "P-256", "x": "AQAB", "y": "AQAB" });
        assert_eq!(pinned_algorithm(&jwk(ec)), Some(Algorithm::ES256));
        // Symmetric keys never verify bearer tokens.
        let oct = json!({ "kty": "oct", "k": "c2VjcmV0", "alg": "HS256" });
        assert_eq!(pinned_algorithm(&jwk(oct)), None);
    }

    #[test]
    fn only_jwt_shaped_bearers_go_to_the_issuer() {
        assert!(OidcVerifier::looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"));
        assert!(!OidcVerifier::looks_like_jwt("pbu_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"));
        assert!(!OidcVerifier::looks_like_jwt("a.b"));
    }
}
