//! The apps of the catalog as the rest of Plugboard sees them. Values are only built by
//! validation (`validate.rs`), so every one a caller holds is known to be well formed; fields are
//! private to the catalog and read through accessors.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use url::Url;

use super::proxy_rules::{GENERIC_MODULE_KEY, GENERIC_MODULE_NAME, RateLimits, RequestRule};
use super::request::{CredentialRules, VerifyRequest};
use super::scopes::ScopeImplications;
use super::template::Template;
use crate::domain::AuthType;

/// One app (provider) of the catalog: one `providers/<key>.toml` file.
#[derive(Debug, Clone)]
pub struct App {
    pub(super) key: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) docs_url: Url,
    pub(super) auth_type: AuthType,
    pub(super) api_base_url: Template,
    pub(super) default_scopes: Vec<String>,
    pub(super) oauth: Option<OAuthSettings>,
    pub(super) fields: Vec<AppField>,
    pub(super) credentials: CredentialRules,
    pub(super) verify: Option<VerifyRequest>,
    pub(super) modules: Vec<AppModule>,
    pub(super) rate_limits: RateLimits,
    pub(super) implied_scopes: ScopeImplications,
}

impl App {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn docs_url(&self) -> &Url {
        &self.docs_url
    }

    pub fn auth_type(&self) -> AuthType {
        self.auth_type
    }

    /// A generic app (`http-api-key`, ...): its whole base URL comes from the connection's
    /// form, so it stands for no provider of its own.
    pub fn is_generic(&self) -> bool {
        self.api_base_url.leading_placeholder().is_some()
    }

    /// Base of every request to the app; may use the connection's non-secret fields.
    pub fn api_base_url(&self) -> &Template {
        &self.api_base_url
    }

    pub fn default_scopes(&self) -> &[String] {
        &self.default_scopes
    }

    /// Present exactly when the auth type is OAUTH2 or OAUTH2_CLIENT_CREDENTIALS.
    pub fn oauth(&self) -> Option<&OAuthSettings> {
        self.oauth.as_ref()
    }

    /// The connection form's fields, in the order the form shows them.
    pub fn fields(&self) -> &[AppField] {
        &self.fields
    }

    pub fn field(&self, key: &str) -> Option<&AppField> {
        self.fields.iter().find(|field| field.key == key)
    }

    pub fn credentials(&self) -> &CredentialRules {
        &self.credentials
    }

    /// The request that tells whether a connection works; `None` when the app has none.
    pub fn verify(&self) -> Option<&VerifyRequest> {
        self.verify.as_ref()
    }

    pub fn modules(&self) -> &[AppModule] {
        &self.modules
    }

    /// The scopes of `required` that `granted` does not cover, in `required`'s order: neither
    /// held nor included in one held, as the provider defines its scopes.
    pub fn missing_scopes(&self, required: &[String], granted: &[String]) -> Vec<String> {
        required.iter().filter(|scope| !self.implied_scopes.covers(granted, scope)).cloned().collect()
    }

    pub fn module(&self, key: &str) -> Option<&AppModule> {
        self.modules.iter().find(|module| module.key == key)
    }

    /// The host fields (see [`OAuthSettings::host_fields`]) whose value in `form` is not the
    /// field's default: the connection talks to another server than the app's own, which
    /// must never receive the operator's OAuth client.
    pub fn custom_host_fields<'a>(&'a self, form: &super::FormValues) -> Vec<&'a str> {
        let Some(oauth) = &self.oauth else { return Vec::new() };
        oauth
            .host_fields
            .iter()
            .filter(|key| {
                let default = self.field(key).and_then(AppField::default);
                let value = form.lookup(key).unwrap_or_default();
                !default.is_some_and(|default| default.eq_ignore_ascii_case(value.trim()))
            })
            .map(String::as_str)
            .collect()
    }

    /// Every URL template the service itself requests whose host a connection's form chooses,
    /// with its name in the file and the fields that fill the host: what the egress policy must
    /// judge before storing. (The authorization URL is only ever opened by a person's browser.)
    pub fn user_supplied_urls(&self) -> Vec<(&'static str, &Template, Vec<&str>)> {
        let mut urls: Vec<(&'static str, &Template)> = vec![("api_base_url", &self.api_base_url)];
        if let Some(verify) = self.verify.as_ref().filter(|verify| verify.is_absolute()) {
            urls.push(("verify.path", verify.path()));
        }
        if let Some(oauth) = &self.oauth {
            urls.push(("oauth.token_url", &oauth.token_url));
        }
        urls.into_iter()
            .map(|(name, template)| (name, template, template.host_placeholders()))
            .filter(|(_, _, fields)| !fields.is_empty())
            .collect()
    }

    /// The provider's published limits the proxy keeps to.
    pub fn rate_limits(&self) -> RateLimits {
        self.rate_limits
    }
}

/// One field of the connection form.
#[derive(Debug, Clone)]
pub struct AppField {
    pub(super) key: String,
    pub(super) label: String,
    pub(super) help: Option<String>,
    pub(super) secret: bool,
    pub(super) required: bool,
    pub(super) default: Option<String>,
    pub(super) pattern: Option<FieldPattern>,
    pub(super) choices: Vec<String>,
}

/// A field's pattern as written, and compiled to match whole values only: an unanchored
/// `[a-z]+` must not let `evil.example/x` through.
#[derive(Debug, Clone)]
pub(super) struct FieldPattern {
    pub(super) source: String,
    pub(super) whole: Regex,
}

impl AppField {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// A secret value is sealed, never returned for prefill and never echoed in messages.
    pub fn is_secret(&self) -> bool {
        self.secret
    }

    pub fn is_required(&self) -> bool {
        self.required
    }

    /// Applied when a non-secret field is left blank; secret fields never have one.
    pub fn default(&self) -> Option<&str> {
        self.default.as_deref()
    }

    /// The pattern, compiled to match the whole value.
    pub fn pattern(&self) -> Option<&Regex> {
        self.pattern.as_ref().map(|pattern| &pattern.whole)
    }

    /// The pattern as written in the provider file, for messages and the form.
    pub fn pattern_source(&self) -> Option<&str> {
        self.pattern.as_ref().map(|pattern| pattern.source.as_str())
    }

    /// The allowed values; empty when any value is allowed.
    pub fn choices(&self) -> &[String] {
        &self.choices
    }
}

/// The OAuth endpoints and options of an OAUTH2 or OAUTH2_CLIENT_CREDENTIALS app.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub(super) authorize_url: Option<Template>,
    pub(super) token_url: Template,
    pub(super) scope_separator: String,
    pub(super) pkce: bool,
    pub(super) client_auth: ClientAuth,
    pub(super) extra_authorize_params: BTreeMap<String, String>,
    pub(super) extra_token_params: BTreeMap<String, String>,
    pub(super) host_fields: Vec<String>,
    pub(super) token_fields: Vec<String>,
}

impl OAuthSettings {
    /// The fields that can move the app to another server (a self-managed host): a
    /// connection that changes them from their default brings its own OAuth client.
    pub fn host_fields(&self) -> &[String] {
        &self.host_fields
    }

    /// Non-secret fields of the token response kept with the grant, usable in templates.
    pub fn token_fields(&self) -> &[String] {
        &self.token_fields
    }

    /// Always present for OAUTH2 apps, never for client-credentials apps.
    pub fn authorize_url(&self) -> Option<&Template> {
        self.authorize_url.as_ref()
    }

    pub fn token_url(&self) -> &Template {
        &self.token_url
    }

    pub fn scope_separator(&self) -> &str {
        &self.scope_separator
    }

    pub fn pkce(&self) -> bool {
        self.pkce
    }

    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    pub fn extra_authorize_params(&self) -> &BTreeMap<String, String> {
        &self.extra_authorize_params
    }

    pub fn extra_token_params(&self) -> &BTreeMap<String, String> {
        &self.extra_token_params
    }
}

/// How the OAuth client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (RFC 6749's preferred way).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// A module a flow can use, and the scopes it needs.
#[derive(Debug, Clone)]
pub struct AppModule {
    pub(super) key: String,
    pub(super) name: String,
    pub(super) scopes: Vec<String>,
    pub(super) requests: Vec<RequestRule>,
}

impl AppModule {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

impl AppModule {
    /// The requests the module declares; empty means any request under the API base.
    pub fn requests(&self) -> &[RequestRule] {
        &self.requests
    }

    /// Whether the module may make this request (path under the API base, without query).
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.requests.is_empty() || self.requests.iter().any(|rule| rule.matches(method, path))
    }

    /// The module every app has when its file does not define one with the same key.
    pub(super) fn generic() -> Self {
        AppModule {
            key: GENERIC_MODULE_KEY.to_owned(),
            name: GENERIC_MODULE_NAME.to_owned(),
            scopes: Vec::new(),
            requests: Vec::new(),
        }
    }
}
