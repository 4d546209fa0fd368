//! The issuer's signing keys: found through its discovery document, fetched from its JWKS,
//! cached, refreshed periodically, and refetched when a token names a key we do not know (the
//! issuer rotated). Refetches are spaced so that tokens with made-up key ids cannot make us
//! hammer the issuer.

use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Deserialize;
use tokio::sync::Mutex;

/// Keys older than this are refetched on the next use.
const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);
/// After a fetch for an unknown key id that did not find it, the least time before another.
const MIN_REFETCH: Duration = Duration::from_secs(5);

pub struct KeyCache {
    issuer: String,
    http: reqwest::Client,
    state: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    jwks_uri: Option<String>,
    keys: Vec<Jwk>,
    fetched_at: Option<Instant>,
    /// When a fetch for an unknown key id last came back without it.
    missed_at: Option<Instant>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl KeyCache {
    pub fn new(issuer: String, http: reqwest::Client) -> Self {
        KeyCache { issuer, http, state: Mutex::new(Cached::default()) }
    }

    /// The key `kid` (or the only key, for a token without `kid`), fetching the JWKS again when
    /// it is unknown or the cache is stale. `Ok(None)` when the issuer has no such key.
    pub async fn key(&self, kid: Option<&str>) -> anyhow::Result<Option<Jwk>> {
        let mut cached = self.state.lock().await;
        let stale = cached.fetched_at.is_none_or(|at| at.elapsed() > REFRESH_AFTER);
        if stale && let Err(err) = self.refresh(&mut cached).await {
            // Keep serving with the keys we have; without any, nothing can be verified.
            if cached.keys.is_empty() {
                return Err(err);
            }
            tracing::warn!(error = format!("{err:#}"), "could not refresh the identity provider's keys");
        }
        if let Some(key) = find(&cached.keys, kid) {
            return Ok(Some(key));
        }
        let missed_recently = cached.missed_at.is_some_and(|at| at.elapsed() < MIN_REFETCH);
        if stale || missed_recently {
            return Ok(None);
        }
        self.refresh(&mut cached).await?;
        let found = find(&cached.keys, kid);
        if found.is_none() {
            cached.missed_at = Some(Instant::now());
        }
        Ok(found)
    }

    async fn refresh(&self, cached: &mut Cached) -> anyhow::Result<()> {
        let jwks_uri = match &cached.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
                let discovery: Discovery = self.get_json(&url).await.context("the discovery document")?;
                if discovery.issuer != self.issuer {
                    anyhow::bail!(
                        "the discovery document names the issuer {:?}, not PLUGBOARD_OIDC_ISSUER {:?}",
                        discovery.issuer,
                        self.issuer
                    );
                }
                cached.jwks_uri = Some(discovery.jwks_uri.clone());
                discovery.jwks_uri
            }
        };
        let set: JwkSet = self.get_json(&jwks_uri).await.context("the JWKS")?;
        cached.keys = set.keys;
        cached.fetched_at = Some(Instant::now());
        Ok(())
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> anyhow::Result<T> {
        let response = self.http.get(url).send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("GET {url} answered {status}");
        }
        response
            .json()
            .await
            .with_context(|| format!("GET {url} answered something that is not the expected JSON"))
    }
}

fn find(keys: &[Jwk], kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => keys.iter().find(|key| key.common.key_id.as_deref() == Some(kid)).cloned(),
        None if keys.len() == 1 => keys.first().cloned(),
        None => None,
    }
}
