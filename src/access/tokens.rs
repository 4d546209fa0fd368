//! Issuing and recognising API tokens.
//!
//! A token is `pbu_` (user) or `pbs_` (service) followed by 43 characters of URL-safe base64
//! from 32 random bytes. Only its SHA-256 is stored, with its first 12 characters as a prefix
//! a person can recognise in lists and audit entries.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::domain::{TeamId, TokenId, UserId};
use crate::store;
use crate::store::tokens::{NewToken, TokenKind};

const USER_PREFIX: &str = "pbu_";
const SERVICE_PREFIX: &str = "pbs_";
const RANDOM_CHARS: usize = 43;
const VISIBLE_CHARS: usize = 12;

/// A freshly issued token. The only time its value exists outside the caller's hands.
pub struct IssuedToken {
    pub id: TokenId,
    pub token: SecretString,
    pub prefix: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuedToken({}…)", self.prefix)
    }
}

pub async fn issue_user_token(
    db: &impl ConnectionTrait,
    user_id: UserId,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<IssuedToken> {
    issue(db, TokenKind::User, Some(user_id), None, name, expires_at).await
}

pub async fn issue_service_token(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<IssuedToken> {
    issue(db, TokenKind::Service, None, Some(team_id), name, expires_at).await
}

async fn issue(
    db: &impl ConnectionTrait,
    kind: TokenKind,
    user_id: Option<UserId>,
    team_id: Option<TeamId>,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<IssuedToken> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|err| anyhow::anyhow!("no randomness for a token: {err}"))?;
    let tag = match kind {
        TokenKind::User => USER_PREFIX,
        TokenKind::Service => SERVICE_PREFIX,
    };
    let token = SecretString::from(format!("{tag}{}", URL_SAFE_NO_PAD.encode(random)));
    let prefix = token.expose_secret()[..VISIBLE_CHARS].to_owned();
    let id = store::tokens::insert(
        db,
        NewToken {
            kind,
            user_id,
            team_id,
            name: name.to_owned(),
            prefix: prefix.clone(),
            token_hash: hash(token.expose_secret()),
            expires_at,
        },
    )
    .await?;
    Ok(IssuedToken { id, token, prefix })
}

/// The stored hash of a presented token, or `None` when it cannot be one of ours (so no
/// lookup is made for garbage).
pub(super) fn hash_presented(presented: &str) -> Option<String> {
    let well_formed = (presented.starts_with(USER_PREFIX) || presented.starts_with(SERVICE_PREFIX))
        && presented.len() == USER_PREFIX.len() + RANDOM_CHARS
        && presented.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    well_formed.then(|| hash(presented))
}

fn hash(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_are_not_looked_up() {
        assert!(hash_presented("").is_none());
        assert!(hash_presented("pbu_short").is_none());
        assert!(hash_presented(&format!("xyz_{}", "a".repeat(RANDOM_CHARS))).is_none());
        assert!(hash_presented(&format!("pbu_{}", "a".repeat(RANDOM_CHARS))).is_some());
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
