//! The authorization URL a person opens to grant consent (RFC 6749 §4.1.1 with RFC 7636 PKCE).
//! Built by hand with `url` rather than by the `oauth2` client: apps join scopes with their own
//! separator and add their own parameters, which the crate's builder cannot express.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::pkce::{self, Pkce};
use super::{ClientCredentials, OAuthError, StateToken, endpoint, requested_scopes};
use crate::catalog::{App, FormValues};

/// A consent to start: where to send the person, and what to keep until the callback.
pub struct Authorization {
    /// Carries the `state` value: hand it to the person who consents, log it nowhere.
    pub url: Url,
    /// Store it (sealed) with the state's hash; the code exchange needs it.
    pub pkce_verifier: Option<SecretString>,
    /// The scopes asked for: the app's defaults, then those requested.
    pub scopes: Vec<String>,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = format!("{}{}", self.url.origin().ascii_serialization(), self.url.path());
        let verifier = if self.pkce_verifier.is_some() { "Some(***)" } else { "None" };
        f.debug_struct("Authorization")
            .field("endpoint", &endpoint)
            .field("pkce_verifier", &format_args!("{verifier}"))
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The app's authorization endpoint (its template filled from `values`) with `response_type`,
/// `client_id`, `redirect_uri`, `scope` (omitted when there is none), `state`, a PKCE S256
/// challenge unless the app turns PKCE off, and the app's extra parameters, in that order.
pub fn authorization_url(
    app: &App,
    values: &FormValues,
    client: &ClientCredentials,
    redirect_uri: &Url,
    scopes: &[String],
    state: &StateToken,
) -> Result<Authorization, OAuthError> {
    let oauth = endpoint::settings(app)?;
    let mut url = endpoint::authorization_url(app, values)?;
    let scopes = requested_scopes(app, scopes)?;
    let pkce = if oauth.pkce() { Some(Pkce::generate()?) } else { None };
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", redirect_uri.as_str());
        if !scopes.is_empty() {
            query.append_pair("scope", &scopes.join(oauth.scope_separator()));
        }
        query.append_pair("state", state.secret().expose_secret());
        if let Some(pkce) = &pkce {
            query.append_pair("code_challenge", &pkce.challenge).append_pair("code_challenge_method", pkce::METHOD);
        }
        for (name, value) in oauth.extra_authorize_params() {
            query.append_pair(name, value);
        }
    }
    Ok(Authorization { url, pkce_verifier: pkce.map(|pkce| pkce.verifier), scopes })
}
