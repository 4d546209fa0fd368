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
            query
                .append_pair("code_challenge", &pkce.challenge)
                .append_pair("code_challenge_method", pkce::METHOD);
        }
        for (name, value) in oauth.extra_authorize_params() {
            query.append_pair(name, value);
        }
    }
    Ok(Authorization { url, pkce_verifier: pkce.map(|pkce| pkce.verifier), scopes })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::oauth::pkce::Pkce;
    use crate::oauth::tests::apps::{app, client_credentials_app, oauth_app};

    fn client() -> ClientCredentials {
        ClientCredentials { id: "client-1".to_owned(), secret: Some(SecretString::from("client-secret-1")) }
    }

    fn redirect_uri() -> Url {
        Url::parse("https://plugboard.example/oauth/callback").unwrap()
    }

    fn query(url: &Url) -> Vec<(String, String)> {
        url.query_pairs().into_owned().collect()
    }

    fn param(url: &Url, name: &str) -> Option<String> {
        url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
    }

    fn scopes(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn authorize(app: &App, values: &FormValues, requested: &[&str]) -> (Authorization, StateToken) {
        let state = StateToken::generate().unwrap();
        let authorization =
            authorization_url(app, values, &client(), &redirect_uri(), &scopes(requested), &state).unwrap();
        (authorization, state)
    }

    fn google_like() -> App {
        let oauth = "pkce = true\nclient_auth = \"post\"\n\
                     extra_authorize_params = { access_type = \"offline\", prompt = \"consent\" }";
        oauth_app("default_scopes = [\"openid\", \"email\"]", oauth)
    }

    #[test]
    fn a_google_like_url_carries_every_parameter_in_order() {
        let (authorization, state) = authorize(&google_like(), &FormValues::default(), &["drive", "email"]);
        let url = &authorization.url;
        assert_eq!(url.origin().ascii_serialization(), "https://auth.test.example");
        assert_eq!(url.path(), "/authorize");

        let verifier = authorization.pkce_verifier.as_ref().expect("PKCE is on");
        let challenge = Pkce::from_verifier(verifier.expose_secret().to_owned()).challenge;
        let expected: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", "client-1"),
            ("redirect_uri", "https://plugboard.example/oauth/callback"),
            ("scope", "openid email drive"),
            ("state", state.secret().expose_secret()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("access_type", "offline"),
            ("prompt", "consent"),
        ]
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
        assert_eq!(query(url), expected);
        assert_eq!(authorization.scopes, ["openid", "email", "drive"]);
        assert!(!url.as_str().contains("client-secret-1"), "the secret stays out of the URL");
        assert!(!url.as_str().contains(verifier.expose_secret()), "only the challenge is sent");
    }

    #[test]
    fn no_pkce_when_the_app_turns_it_off() {
        let (authorization, _) = authorize(&oauth_app("", "pkce = false"), &FormValues::default(), &["a"]);
        assert!(authorization.pkce_verifier.is_none());
        assert_eq!(param(&authorization.url, "code_challenge"), None);
        assert_eq!(param(&authorization.url, "code_challenge_method"), None);
    }

    #[test]
    fn scopes_are_joined_with_the_apps_separator() {
        let app = oauth_app("default_scopes = [\"channels:read\"]", "scope_separator = \",\"");
        let (authorization, _) = authorize(&app, &FormValues::default(), &["chat:write", "channels:read"]);
        assert_eq!(param(&authorization.url, "scope").as_deref(), Some("channels:read,chat:write"));
        assert!(authorization.url.as_str().contains("scope=channels%3Aread%2Cchat%3Awrite"));
    }

    #[test]
    fn no_scope_parameter_when_there_is_no_scope() {
        let (authorization, _) = authorize(&oauth_app("", ""), &FormValues::default(), &[]);
        assert_eq!(param(&authorization.url, "scope"), None);
        assert!(authorization.scopes.is_empty());
    }

    #[test]
    fn a_templated_authorize_url_is_filled_from_the_form() {
        let fields =
            "[[fields]]\nkey = \"shop\"\nlabel = \"Store\"\nrequired = true\npattern = \"^[a-z0-9-]+$\"\n";
        let oauth = "authorize_url = \"https://{shop}.myshopify.com/admin/oauth/authorize\"\n\
                     token_url = \"https://{shop}.myshopify.com/admin/oauth/access_token\"\n\
                     scope_separator = \",\"\npkce = false";
        let shopify = app("OAUTH2", "default_scopes = [\"read_products\"]", oauth, fields);
        let values =
            FormValues::from_parts(BTreeMap::from([("shop".to_owned(), "acme".to_owned())]), BTreeMap::new());
        let (authorization, _) = authorize(&shopify, &values, &["write_products"]);
        let url = &authorization.url;
        assert_eq!(url.host_str(), Some("acme.myshopify.com"));
        assert_eq!(url.path(), "/admin/oauth/authorize");
        assert_eq!(param(url, "scope").as_deref(), Some("read_products,write_products"));

        let state = StateToken::generate().unwrap();
        let error =
            authorization_url(&shopify, &FormValues::default(), &client(), &redirect_uri(), &[], &state)
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the Test App connection has no value for `shop`, which its authorization URL needs"
        );
    }

    #[test]
    fn a_generic_apps_url_must_be_http() {
        let fields = "[[fields]]\nkey = \"authorize_url\"\nlabel = \"Authorization URL\"\nrequired = true\n";
        let oauth = "authorize_url = \"{authorize_url}\"\ntoken_url = \"https://auth.test.example/token\"\nhost_fields = [\"authorize_url\"]";
        let generic = app("OAUTH2", "", oauth, fields);
        let values = |url: &str| {
            FormValues::from_parts(
                BTreeMap::from([("authorize_url".to_owned(), url.to_owned())]),
                BTreeMap::new(),
            )
        };
        let state = StateToken::generate().unwrap();
        let build =
            |url: &str| authorization_url(&generic, &values(url), &client(), &redirect_uri(), &[], &state);
        assert!(build("https://idp.example/authorize?tenant=7").is_ok());
        for bad in ["javascript:alert(1)", "not a url", "ftp://idp.example/authorize"] {
            assert!(matches!(build(bad), Err(OAuthError::InvalidUrl { .. })), "{bad} was accepted");
        }
        let kept = build("https://idp.example/authorize?tenant=7").unwrap();
        assert_eq!(query(&kept.url)[0], ("tenant".to_owned(), "7".to_owned()));
    }

    #[test]
    fn only_consent_apps_have_an_authorization_url() {
        let state = StateToken::generate().unwrap();
        let machine = client_credentials_app("https://auth.test.example/token", "", "");
        let error =
            authorization_url(&machine, &FormValues::default(), &client(), &redirect_uri(), &[], &state)
                .unwrap_err();
        assert_eq!(error, OAuthError::NoConsent { app: "Test App".to_owned() });
    }

    #[test]
    fn an_invalid_requested_scope_is_refused() {
        let state = StateToken::generate().unwrap();
        let requested = scopes(&["read write"]);
        let app = oauth_app("", "");
        let error =
            authorization_url(&app, &FormValues::default(), &client(), &redirect_uri(), &requested, &state)
                .unwrap_err();
        assert!(matches!(error, OAuthError::InvalidScope { .. }), "{error:?}");
    }

    #[test]
    fn debug_shows_neither_state_nor_verifier() {
        let (authorization, state) = authorize(&google_like(), &FormValues::default(), &[]);
        let printed = format!("{authorization:?}");
        assert!(!printed.contains(state.secret().expose_secret()), "{printed}");
        let verifier = authorization.pkce_verifier.as_ref().unwrap().expose_secret();
        assert!(!printed.contains(verifier), "{printed}");
        assert!(printed.contains("https://auth.test.example/authorize"), "{printed}");
    }
}
