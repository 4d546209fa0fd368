//! Outbound HTTP: the clients every request to a provider goes through (verification, token
//! endpoints), with timeouts, a cap on what is read, no redirect to another host, and the egress
//! policy for hosts that come from users' forms.
//!
//! Two clients: `trusted` for hosts fixed by the catalog (the operator chose them), and
//! `guarded` for hosts a user typed, whose DNS answers are filtered so a name cannot lead into
//! the internal network. The guard checks the address actually connected to, so DNS rebinding
//! does not get around it. Literal IP hosts are checked before the request.

pub mod policy;
mod provider_gate;
pub mod redact;

pub use provider_gate::{ProviderGate, ProviderPermit};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

/// Most bytes read from a provider's answer; the rest is ignored.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
const MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// `PLUGBOARD_EGRESS_ALLOW_PRIVATE`: let user-supplied hosts reach internal addresses.
    pub allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(
        "{host} is an internal address ({ip}), which connections may not reach; an operator can allow it \
         with PLUGBOARD_EGRESS_ALLOW_PRIVATE=true"
    )]
    InternalAddress { host: String, ip: IpAddr },
    #[error("{0} is not an http(s) URL with a host")]
    BadUrl(String),
    /// Never the URL itself: its user and password would be shown, and logged.
    #[error(
        "the URL carries a user name or password before its host; those would be stored and shown as plain \
         text: put credentials in the connection's secret fields"
    )]
    CredentialsInUrl,
}

#[derive(Clone)]
pub struct Outbound {
    trusted: reqwest::Client,
    guarded: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Outbound {
    pub fn new(settings: &OutboundSettings) -> anyhow::Result<Self> {
        let guard = Arc::new(GuardedResolver { allow_private: settings.allow_private });
        Ok(Outbound {
            trusted: builder(settings).build()?,
            guarded: builder(settings).dns_resolver(guard).build()?,
            allow_private: settings.allow_private,
            timeout: settings.timeout,
        })
    }

    /// How long a whole request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The client for a request to `url`. `user_supplied_host` says whether a user's form chose
    /// the host; such hosts are held to the egress policy.
    pub fn client_for(
        &self,
        url: &url::Url,
        user_supplied_host: bool,
    ) -> Result<&reqwest::Client, EgressError> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::CredentialsInUrl);
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::BadUrl(url.to_string()));
        }
        let host = url.host().ok_or_else(|| EgressError::BadUrl(url.to_string()))?;
        if !user_supplied_host {
            return Ok(&self.trusted);
        }
        if !self.allow_private {
            let literal: Option<IpAddr> = match host {
                url::Host::Ipv4(v4) => Some(v4.into()),
                url::Host::Ipv6(v6) => Some(v6.into()),
                url::Host::Domain(name)
                    if name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost") =>
                {
                    Some(IpAddr::from([127, 0, 0, 1]))
                }
                url::Host::Domain(_) => None,
            };
            if let Some(ip) = literal.filter(|ip| policy::is_internal(*ip)) {
                return Err(EgressError::InternalAddress { host: host.to_string(), ip });
            }
        }
        Ok(&self.guarded)
    }

    /// Judges a user-supplied URL before it is stored: a literal internal address, or a name
    /// whose every address is internal, is refused (unless private egress is allowed). A name
    /// that does not resolve now is not refused: that may be the network's passing trouble, and
    /// requests are guarded again when they are sent.
    pub async fn check_user_url(&self, url: &url::Url) -> Result<(), EgressError> {
        self.client_for(url, true)?;
        if self.allow_private {
            return Ok(());
        }
        let Some(url::Host::Domain(name)) = url.host() else { return Ok(()) };
        let port = url.port_or_known_default().unwrap_or(443);
        let Ok(resolved) = tokio::net::lookup_host((name, port)).await else { return Ok(()) };
        let addresses: Vec<IpAddr> = resolved.map(|addr| addr.ip()).collect();
        match addresses.iter().find(|ip| policy::is_internal(**ip)) {
            Some(ip) if addresses.iter().all(|ip| policy::is_internal(*ip)) => {
                Err(EgressError::InternalAddress { host: name.to_owned(), ip: *ip })
            }
            _ => Ok(()),
        }
    }
}

fn builder(settings: &OutboundSettings) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .user_agent(concat!("Plugboard/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect::Policy::custom(same_host_only))
}

/// Follows a few redirects on the same host; a redirect elsewhere is answered as it came, so the
/// credentials never travel to a host the catalog did not name.
fn same_host_only(attempt: redirect::Attempt<'_>) -> redirect::Action {
    let same_host = attempt.previous().first().is_some_and(|first| {
        first.host_str() == attempt.url().host_str()
            && first.port_or_known_default() == attempt.url().port_or_known_default()
    });
    if same_host && attempt.previous().len() <= MAX_REDIRECTS { attempt.follow() } else { attempt.stop() }
}

/// Resolves names with the system resolver and drops internal addresses unless allowed.
struct GuardedResolver {
    allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves only to internal addresses, which connections may not reach; an operator can allow it with PLUGBOARD_EGRESS_ALLOW_PRIVATE=true"
)]
pub struct InternalResolution {
    pub host: String,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| allow_private || !policy::is_internal(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(InternalResolution { host }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The first error of type `T` in `error`'s chain of sources.
pub fn find_error<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// Reads at most `MAX_RESPONSE_BYTES` of a response body.
pub async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(allow_private: bool) -> Outbound {
        Outbound::new(&OutboundSettings {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            allow_private,
        })
        .unwrap()
    }

    #[test]
    fn user_supplied_internal_literals_are_refused_unless_allowed() {
        let strict = outbound(false);
        for url in
            ["http://127.0.0.1:9/x", "http://[::1]/", "http://169.254.169.254/latest", "http://localhost/"]
        {
            let url = url::Url::parse(url).unwrap();
            assert!(
                matches!(strict.client_for(&url, true), Err(EgressError::InternalAddress { .. })),
                "{url}"
            );
            assert!(strict.client_for(&url, false).is_ok(), "catalog hosts are the operator's choice");
            assert!(outbound(true).client_for(&url, true).is_ok());
        }
        assert!(strict.client_for(&url::Url::parse("ftp://example.com/").unwrap(), true).is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let error = outbound(false).guarded.get("http://localhost:9/").send().await.unwrap_err();
        let mut source: Option<&dyn std::error::Error> = Some(&error);
        let mut found = false;
        while let Some(err) = source {
            found |= err.to_string().contains("internal addresses");
            source = err.source();
        }
        assert!(found, "{error:?}");
    }
}
