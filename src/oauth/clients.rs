//! Which OAuth client a connection uses: its own (the `client_id` and `client_secret` advanced
//! fields) or else the operator's, configured per app as `PLUGBOARD_APP_<KEY>_CLIENT_ID` and
//! `PLUGBOARD_APP_<KEY>_CLIENT_SECRET`. A client secret is never printed.

use std::collections::HashMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::catalog::{App, FormValues};
use crate::domain::AuthType;

/// The form fields through which a connection brings its own client.
const ID_FIELD: &str = "client_id";
const SECRET_FIELD: &str = "client_secret";

/// An OAuth client: its id, and its secret unless it is a public client (PKCE only).
#[derive(Clone)]
pub struct ClientCredentials {
    pub id: String,
    pub secret: Option<SecretString>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.secret.is_some() { "Some(***)" } else { "None" };
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .field("secret", &format_args!("{secret}"))
            .finish()
    }
}

/// The operator's OAuth clients by app key, read once at start.
#[derive(Debug, Clone, Default)]
pub struct OAuthClients {
    by_app: HashMap<String, ClientCredentials>,
}

/// A client secret configured without its client id: a typo the operator should hear about at
/// start rather than when a connection fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{set} is set but {missing} is not: an OAuth client needs its id")]
pub struct ClientConfigError {
    pub set: String,
    pub missing: String,
}

/// Why a connection has no usable OAuth client. The message says what to set or enter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissingClient {
    #[error(
        "{app} needs an OAuth client: set {id_variable} and {secret_variable}{}",
        or_own_fields(*.own_fields)
    )]
    NotConfigured { app: String, id_variable: String, secret_variable: String, own_fields: bool },
    #[error("{app} needs the operator's client secret: set {secret_variable}")]
    NoOperatorSecret { app: String, secret_variable: String },
    #[error("{app} needs the client secret of your own OAuth client: enter it with the client id")]
    NoOwnSecret { app: String },
    #[error(
        "a client secret was entered without its client id: \
         enter both, or neither to use the operator's client"
    )]
    NoOwnId { app: String },
    /// The connection names another server than the app's own (a self-managed host): the
    /// operator's client is never sent there.
    #[error(
        "{app} at another host than its default ({fields} changed) needs its own OAuth client: \
         register one on that server and enter its client id and secret"
    )]
    CustomHost { app: String, fields: String },
}

impl MissingClient {
    /// The form field the user should fill in, when the fix is in the form rather than the
    /// operator's configuration.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            MissingClient::NotConfigured { .. } | MissingClient::NoOperatorSecret { .. } => None,
            MissingClient::NoOwnSecret { .. } => Some(SECRET_FIELD),
            MissingClient::NoOwnId { .. } | MissingClient::CustomHost { .. } => Some(ID_FIELD),
        }
    }
}

fn or_own_fields(own_fields: bool) -> &'static str {
    if own_fields {
        ", or enter your own client id and secret in the connection's advanced fields"
    } else {
        ""
    }
}

impl OAuthClients {
    /// Reads each app's client through `lookup` (the environment, or a test's map). Blank values
    /// count as unset.
    pub fn from_lookup<'k>(
        lookup: impl Fn(&str) -> Option<String>,
        app_keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<Self, ClientConfigError> {
        let read =
            |name: &str| lookup(name).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty());
        let mut by_app = HashMap::new();
        for key in app_keys {
            let (id_variable, secret_variable) = (Self::id_variable(key), Self::secret_variable(key));
            match (read(&id_variable), read(&secret_variable)) {
                (Some(id), secret) => {
                    by_app.insert(
                        key.to_owned(),
                        ClientCredentials { id, secret: secret.map(SecretString::from) },
                    );
                }
                (None, Some(_)) => {
                    return Err(ClientConfigError { set: secret_variable, missing: id_variable });
                }
                (None, None) => {}
            }
        }
        Ok(Self { by_app })
    }

    /// The variable holding the operator's client id for `app_key`, e.g.
    /// `PLUGBOARD_APP_MICROSOFT_365_CLIENT_ID`.
    pub fn id_variable(app_key: &str) -> String {
        format!("PLUGBOARD_APP_{}_CLIENT_ID", variable_part(app_key))
    }

    pub fn secret_variable(app_key: &str) -> String {
        format!("PLUGBOARD_APP_{}_CLIENT_SECRET", variable_part(app_key))
    }

    /// Whether the operator configured a client for the app (for the catalog's "ready to use").
    /// Whether `form` brings the connection's own client (either advanced field filled in):
    /// a refusal of the client is then the connection's to fix, not the operator's.
    pub fn brings_own_client(form: &FormValues) -> bool {
        form.lookup(ID_FIELD).is_some_and(|id| !id.is_empty())
            || form.secret(SECRET_FIELD).is_some_and(|secret| !secret.expose_secret().is_empty())
    }

    pub fn is_configured(&self, app_key: &str) -> bool {
        self.by_app.contains_key(app_key)
    }

    /// The client a connection uses: its own when its form names a client id, else the
    /// operator's, but only while the app's host fields are at their defaults: the operator's
    /// client belongs to the app's own server, never to a host a user typed. The two are never
    /// mixed: the operator's secret is not sent with another id.
    /// A client without a secret is accepted only for apps that send PKCE in an authorization
    /// code flow (public clients); client-credentials apps always need one.
    pub fn for_app(&self, app: &App, form: &FormValues) -> Result<ClientCredentials, MissingClient> {
        let name = app.name().to_owned();
        let own_secret = form.secret(SECRET_FIELD).filter(|secret| !secret.expose_secret().is_empty());
        if let Some(id) = form.lookup(ID_FIELD).filter(|id| !id.is_empty()) {
            let own = ClientCredentials { id: id.to_owned(), secret: own_secret.cloned() };
            if own.secret.is_none() && !is_public_client(app) {
                return Err(MissingClient::NoOwnSecret { app: name });
            }
            return Ok(own);
        }
        if own_secret.is_some() {
            return Err(MissingClient::NoOwnId { app: name });
        }
        let custom = app.custom_host_fields(form);
        if !custom.is_empty() {
            return Err(MissingClient::CustomHost { app: name, fields: custom.join(", ") });
        }
        match self.by_app.get(app.key()) {
            Some(client) if client.secret.is_some() || is_public_client(app) => Ok(client.clone()),
            Some(_) => Err(MissingClient::NoOperatorSecret {
                app: name,
                secret_variable: Self::secret_variable(app.key()),
            }),
            None => Err(MissingClient::NotConfigured {
                app: name,
                id_variable: Self::id_variable(app.key()),
                secret_variable: Self::secret_variable(app.key()),
                own_fields: app.field(ID_FIELD).is_some() && app.field(SECRET_FIELD).is_some(),
            }),
        }
    }
}

/// A client that cannot keep a secret may still use the authorization code flow, because PKCE
/// proves the code's redeemer started the flow; nothing replaces the secret in other grants.
fn is_public_client(app: &App) -> bool {
    app.auth_type() == AuthType::OAuth2 && app.oauth().is_some_and(|oauth| oauth.pkce())
}

/// `microsoft-365` → `MICROSOFT_365`.
fn variable_part(app_key: &str) -> String {
    app_key.to_ascii_uppercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::oauth::tests::apps::{client_credentials_app, oauth_app};

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    fn form(id: Option<&str>, secret: Option<&str>) -> FormValues {
        let public: BTreeMap<_, _> = id.map(|id| (ID_FIELD.to_owned(), id.to_owned())).into_iter().collect();
        let secrets: BTreeMap<_, _> =
            secret.map(|secret| (SECRET_FIELD.to_owned(), SecretString::from(secret))).into_iter().collect();
        FormValues::from_parts(public, secrets)
    }

    fn secret_of(client: &ClientCredentials) -> Option<&str> {
        client.secret.as_ref().map(|secret| secret.expose_secret())
    }

    #[test]
    fn variables_are_named_after_the_app_key() {
        assert_eq!(OAuthClients::id_variable("microsoft-365"), "PLUGBOARD_APP_MICROSOFT_365_CLIENT_ID");
        assert_eq!(OAuthClients::secret_variable("slack"), "PLUGBOARD_APP_SLACK_CLIENT_SECRET");
    }

    #[test]
    fn the_operators_client_is_read_per_app() {
        let lookup = env(&[
            ("PLUGBOARD_APP_TEST_APP_CLIENT_ID", "op-id"),
            ("PLUGBOARD_APP_TEST_APP_CLIENT_SECRET", " op-secret\n"),
            ("PLUGBOARD_APP_OTHER_CLIENT_ID", "other-id"),
        ]);
        let clients = OAuthClients::from_lookup(lookup, ["test-app", "other", "unset"]).unwrap();
        assert!(clients.is_configured("test-app") && clients.is_configured("other"));
        assert!(!clients.is_configured("unset"));
        let client = clients.for_app(&oauth_app("", ""), &form(None, None)).unwrap();
        assert_eq!(client.id, "op-id");
        assert_eq!(secret_of(&client), Some("op-secret"));
    }

    #[test]
    fn a_secret_without_its_id_stops_the_start() {
        let lookup =
            env(&[("PLUGBOARD_APP_SLACK_CLIENT_SECRET", "s"), ("PLUGBOARD_APP_SLACK_CLIENT_ID", " ")]);
        let error = OAuthClients::from_lookup(lookup, ["slack"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "PLUGBOARD_APP_SLACK_CLIENT_SECRET is set but PLUGBOARD_APP_SLACK_CLIENT_ID is not: \
             an OAuth client needs its id"
        );
        assert!(!error.to_string().contains(" s "));
    }

    #[test]
    fn the_connections_own_client_wins_over_the_operators() {
        let lookup = env(&[
            ("PLUGBOARD_APP_TEST_APP_CLIENT_ID", "op-id"),
            ("PLUGBOARD_APP_TEST_APP_CLIENT_SECRET", "op-secret"),
        ]);
        let clients = OAuthClients::from_lookup(lookup, ["test-app"]).unwrap();
        let client = clients.for_app(&oauth_app("", ""), &form(Some("own-id"), Some("own-secret"))).unwrap();
        assert_eq!(client.id, "own-id");
        assert_eq!(secret_of(&client), Some("own-secret"));
    }

    #[test]
    fn a_missing_client_names_both_variables_and_the_advanced_fields() {
        let app = oauth_app("", "pkce = false");
        let error = OAuthClients::default().for_app(&app, &form(None, None)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Test App needs an OAuth client: set PLUGBOARD_APP_TEST_APP_CLIENT_ID and \
             PLUGBOARD_APP_TEST_APP_CLIENT_SECRET, or enter your own client id and secret in the \
             connection's advanced fields"
        );
        assert_eq!(error.field(), None);
    }

    #[test]
    fn the_real_slack_app_names_its_variables() {
        let catalog = crate::catalog::Catalog::embedded().unwrap();
        let slack = catalog.get("slack").unwrap();
        let error = OAuthClients::default().for_app(slack, &form(None, None)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Slack needs an OAuth client: set PLUGBOARD_APP_SLACK_CLIENT_ID and \
             PLUGBOARD_APP_SLACK_CLIENT_SECRET, or enter your own client id and secret in the \
             connection's advanced fields"
        );
    }

    #[test]
    fn a_client_without_a_secret_is_public_only_with_pkce() {
        let operator =
            OAuthClients::from_lookup(env(&[("PLUGBOARD_APP_TEST_APP_CLIENT_ID", "op-id")]), ["test-app"])
                .unwrap();
        let pkce = oauth_app("", "pkce = true");
        assert_eq!(secret_of(&operator.for_app(&pkce, &form(None, None)).unwrap()), None);
        assert!(OAuthClients::default().for_app(&pkce, &form(Some("own-id"), None)).is_ok());

        let no_pkce = oauth_app("", "pkce = false");
        let error = operator.for_app(&no_pkce, &form(None, None)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Test App needs the operator's client secret: set PLUGBOARD_APP_TEST_APP_CLIENT_SECRET"
        );
        let error = OAuthClients::default().for_app(&no_pkce, &form(Some("own-id"), None)).unwrap_err();
        assert_eq!(error.field(), Some("client_secret"));

        // Client credentials have nothing but the secret to prove who asks.
        let machine = client_credentials_app("https://auth.test.example/token", "", "");
        assert!(operator.for_app(&machine, &form(None, None)).is_err());
    }

    #[test]
    fn an_own_secret_without_an_own_id_is_refused_not_ignored() {
        let lookup = env(&[
            ("PLUGBOARD_APP_TEST_APP_CLIENT_ID", "op-id"),
            ("PLUGBOARD_APP_TEST_APP_CLIENT_SECRET", "op-secret"),
        ]);
        let clients = OAuthClients::from_lookup(lookup, ["test-app"]).unwrap();
        let error = clients.for_app(&oauth_app("", ""), &form(None, Some("own-secret"))).unwrap_err();
        assert_eq!(error.field(), Some("client_id"));
        assert!(!error.to_string().contains("own-secret"));
    }

    #[test]
    fn the_operators_client_is_only_for_the_default_host() {
        let lookup = env(&[
            ("PLUGBOARD_APP_GITLAB_CLIENT_ID", "op-id"),
            ("PLUGBOARD_APP_GITLAB_CLIENT_SECRET", "op-secret"),
        ]);
        let clients = OAuthClients::from_lookup(lookup, ["gitlab"]).unwrap();
        let catalog = crate::catalog::Catalog::embedded().unwrap();
        let gitlab = catalog.get("gitlab").unwrap();
        let with_host = |host: &str, id: Option<&str>, secret: Option<&str>| {
            let mut form = form(id, secret);
            form = FormValues::from_parts(
                form.public().clone().into_iter().chain([("host".to_owned(), host.to_owned())]).collect(),
                form.secrets().clone(),
            );
            clients.for_app(gitlab, &form)
        };
        assert_eq!(with_host("gitlab.com", None, None).unwrap().id, "op-id");
        assert_eq!(with_host("GitLab.com", None, None).unwrap().id, "op-id");
        let error = with_host("gitlab.evil.example", None, None).unwrap_err();
        assert!(matches!(error, MissingClient::CustomHost { .. }), "{error:?}");
        assert_eq!(error.field(), Some("client_id"));
        assert!(!error.to_string().contains("op-secret"));
        let own = with_host("gitlab.example.org", Some("own-id"), Some("own-secret")).unwrap();
        assert_eq!((own.id.as_str(), secret_of(&own)), ("own-id", Some("own-secret")));
    }

    #[test]
    fn generic_apps_never_use_an_operators_client() {
        let lookup = env(&[
            ("PLUGBOARD_APP_HTTP_OAUTH2_CLIENT_ID", "op-id"),
            ("PLUGBOARD_APP_HTTP_OAUTH2_CLIENT_SECRET", "op-secret"),
        ]);
        let clients = OAuthClients::from_lookup(lookup, ["http-oauth2"]).unwrap();
        let catalog = crate::catalog::Catalog::embedded().unwrap();
        let app = catalog.get("http-oauth2").unwrap();
        let public: BTreeMap<_, _> = [("token_url", "https://auth.example.com/token")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let error = clients.for_app(app, &FormValues::from_parts(public, BTreeMap::new())).unwrap_err();
        assert!(matches!(error, MissingClient::CustomHost { .. }), "{error:?}");
    }

    #[test]
    fn debug_hides_the_client_secret() {
        let client = ClientCredentials { id: "id-1".to_owned(), secret: Some(SecretString::from("s3cr3t")) };
        let printed = format!("{client:?}");
        assert_eq!(printed, "ClientCredentials { id: \"id-1\", secret: Some(***) }");
    }
}
