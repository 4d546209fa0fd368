//! The token endpoint (RFC 6749 §4.1.3, §4.4.2, §6): exchanging a code, refreshing, and the
//! client credentials grant, over the caller's `reqwest::Client` (its timeouts, redirect and
//! egress policy apply; none is built here).
//!
//! The request is a form POST written here rather than through the `oauth2` client: providers
//! answer errors with HTTP 200 (Slack's `ok: false`), omit or misspell `token_type`, put
//! scopes in commas and return fields we keep (`team`, `instance_url`), and telling
//! `invalid_grant` from a 503 needs the status and body side by side. The crate's typed
//! responses fight each of these; a plain POST and `token_response` handle them in one place.
//! `oauth2` still supplies PKCE.

use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use url::form_urlencoded::byte_serialize;

use super::token_response::{self, Redactor};
use super::{ClientCredentials, OAuthError, TokenSet, endpoint, requested_scopes};
use crate::catalog::{App, ClientAuth, FormValues};

/// Why the token endpoint gave no token. No variant holds a token, code or client secret:
/// provider texts are stripped of every secret the request carried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The grant is dead (revoked, expired, code already used): a person must reauthorize.
    /// Also for providers' synonyms of `invalid_grant`, which `description` then names.
    #[error(
        "the provider no longer accepts this authorization (invalid_grant{}): reauthorize the connection",
        suffix(.description)
    )]
    InvalidGrant { description: Option<String> },
    /// Any other refusal (`invalid_client`, `invalid_scope`, a 200 without a token, ...):
    /// permanent until someone fixes the client or the request, but the grant may be fine.
    #[error("the token endpoint refused the request with {error} (HTTP {status}){}", suffix(.description))]
    Rejected { error: String, description: Option<String>, status: u16 },
    /// 5xx, 429, timeouts, connection failures: try again later; nothing is wrong with the grant.
    #[error("the token endpoint is unavailable: {reason}")]
    Unavailable { reason: String },
    /// The request could not be built from the app and the connection's values.
    #[error(transparent)]
    Setup(#[from] OAuthError),
}

impl TokenError {
    /// Whether asking again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, TokenError::Unavailable { .. })
    }

    /// Whether the connection needs a person to reauthorize it.
    pub fn needs_reauthorization(&self) -> bool {
        matches!(self, TokenError::InvalidGrant { .. })
    }

    /// Whether the endpoint's answer was no OAuth answer at all (an HTML page from a firewall
    /// or a load balancer, a body cut short, a success without a token): it says nothing
    /// about the grant.
    pub fn is_unclear_answer(&self) -> bool {
        matches!(self, TokenError::Rejected { error, .. } if error == super::token_response::INVALID_RESPONSE)
    }

    /// Whether the endpoint refused the OAuth client rather than the grant (RFC 6749 §5.2's
    /// `invalid_client` and `unauthorized_client`).
    pub fn refuses_the_client(&self) -> bool {
        matches!(self, TokenError::Rejected { error, .. } if error == "invalid_client" || error == "unauthorized_client")
    }
}

fn suffix(description: &Option<String>) -> String {
    description.as_ref().map(|text| format!(": {text}")).unwrap_or_default()
}

/// Exchanges the code a callback received for tokens. `redirect_uri` must be the one the
/// authorization URL carried; `pkce_verifier` the one `authorization_url` returned.
#[tracing::instrument(skip_all, fields(app = app.key(), grant = "authorization_code"))]
pub async fn exchange_code(
    http: &reqwest::Client,
    app: &App,
    values: &FormValues,
    client: &ClientCredentials,
    redirect_uri: &Url,
    code: &SecretString,
    pkce_verifier: Option<&SecretString>,
) -> Result<TokenSet, TokenError> {
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose_secret()),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    if let Some(verifier) = pkce_verifier {
        params.push(("code_verifier", verifier.expose_secret()));
    }
    let secrets = [Some(code), pkce_verifier];
    post(http, app, values, client, params, &secrets).await
}

/// Spends a refresh token. Providers that rotate refresh tokens revoke the grant when one is
/// spent twice: call this once per connection at a time (see `SingleFlight`) and store the new
/// refresh token, if any, with the new access token.
#[tracing::instrument(skip_all, fields(app = app.key(), grant = "refresh_token"))]
pub async fn refresh(
    http: &reqwest::Client,
    app: &App,
    values: &FormValues,
    client: &ClientCredentials,
    refresh_token: &SecretString,
) -> Result<TokenSet, TokenError> {
    let params = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())];
    post(http, app, values, client, params, &[Some(refresh_token)]).await
}

/// Asks for a token with the client's own credentials; `scopes` follow the app's defaults.
#[tracing::instrument(skip_all, fields(app = app.key(), grant = "client_credentials"))]
pub async fn client_credentials(
    http: &reqwest::Client,
    app: &App,
    values: &FormValues,
    client: &ClientCredentials,
    scopes: &[String],
) -> Result<TokenSet, TokenError> {
    let separator = endpoint::settings(app)?.scope_separator();
    let scope = requested_scopes(app, scopes)?.join(separator);
    let mut params = vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        params.push(("scope", &scope));
    }
    post(http, app, values, client, params, &[]).await
}

/// POSTs the grant's parameters with the client's authentication and the app's extra
/// parameters, and reads the answer. `secrets` are the grant's secrets, to be kept out of errors.
async fn post(
    http: &reqwest::Client,
    app: &App,
    values: &FormValues,
    client: &ClientCredentials,
    grant: Vec<(&str, &str)>,
    secrets: &[Option<&SecretString>],
) -> Result<TokenSet, TokenError> {
    let oauth = endpoint::settings(app)?;
    // Rebound with a shorter lifetime, so that the client's and the app's values fit in.
    let mut params: Vec<(&str, &str)> = grant;
    let url = endpoint::token_url(app, values)?;
    let mut request = http.post(url).header(ACCEPT, "application/json");
    let mut redactor = Redactor::new(secrets.iter().flatten().copied().chain(client.secret.as_ref()));
    match (oauth.client_auth(), &client.secret) {
        // RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding, as `oauth2` does.
        (ClientAuth::Basic, Some(secret)) => {
            let id: String = byte_serialize(client.id.as_bytes()).collect();
            let secret: String = byte_serialize(secret.expose_secret().as_bytes()).collect();
            redactor = redactor.with_basic(&id, &secret);
            request = request.basic_auth(id, Some(secret));
        }
        (ClientAuth::Post, Some(secret)) => {
            params.push(("client_id", &client.id));
            params.push(("client_secret", secret.expose_secret()));
        }
        // A public client identifies itself in the body (RFC 6749 §3.2.1).
        (_, None) => params.push(("client_id", &client.id)),
    }
    for (name, value) in oauth.extra_token_params() {
        params.push((name, value));
    }
    let response = request.form(&params).send().await.map_err(token_response::unavailable)?;
    let result = token_response::read(response, oauth.scope_separator(), &redactor).await;
    match &result {
        Ok(tokens) => tracing::debug!(expires_in = ?tokens.expires_in, "token endpoint granted a token"),
        Err(error) => tracing::debug!(%error, "token endpoint gave no token"),
    }
    result
}
