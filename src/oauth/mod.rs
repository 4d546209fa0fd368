//! The OAuth 2.0 protocol core: `state` tokens, the operator's clients per app, authorization
//! URLs with PKCE, the token endpoint (code, refresh, client credentials) and in-process single
//! flight. It knows apps through the catalog and stores nothing. It must never log, return or
//! put in an error a token, an authorization code, a PKCE verifier or a client secret: those
//! travel only as `SecretString` to the provider they belong to, or back to the caller.

mod authorize;
mod clients;
mod endpoint;
mod pkce;
mod problem;
mod scope;
mod single_flight;
mod state;
mod token;
mod token_response;
mod token_set;

#[cfg(test)]
mod tests;

pub use authorize::{Authorization, authorization_url};
pub use clients::{ClientConfigError, ClientCredentials, MissingClient, OAuthClients};
pub use endpoint::token_url;
pub use problem::TokenProblem;
pub use scope::requested_scopes;
pub use single_flight::SingleFlight;
pub use state::StateToken;
pub use token::{TokenError, client_credentials, exchange_code, refresh};
pub use token_set::{MAX_LIFETIME, TokenSet};

/// A problem found before anything is sent to a provider: the app or the connection's values
/// cannot make the request. Messages name apps, fields and scopes, never secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("{app} does not use OAuth")]
    NotOAuth { app: String },
    #[error("{app} uses the client credentials grant: nobody is asked for consent")]
    NoConsent { app: String },
    #[error("the {app} connection has no value for `{field}`, which its {endpoint} URL needs")]
    MissingValue { app: String, field: String, endpoint: Endpoint },
    #[error("the {endpoint} URL of {app} is not a valid http(s) URL: {reason}")]
    InvalidUrl { app: String, endpoint: Endpoint, reason: String },
    #[error("{scope:?} is not a valid scope: {reason}")]
    InvalidScope { scope: String, reason: String },
    /// The operating system gave no random bytes; the caller cannot fix this, so it is internal.
    #[error("the system's random number generator failed: {0}")]
    NoRandomness(String),
}

/// Which OAuth endpoint a URL problem concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Authorization,
    Token,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Endpoint::Authorization => "authorization",
            Endpoint::Token => "token",
        })
    }
}
