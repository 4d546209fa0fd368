//! The apps of the catalog as the rest of Plugboard sees them. Values are only built by
//! validation (`validate.rs`), so every one a caller holds is known to be well formed; fields are
//! private to the catalog and read through accessors.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use url::Url;

use super::proxy_rules::{RateLimits, RequestRule};
use super::request::{CredentialRules, VerifyRequest};
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

    pub fn module(&self, key: &str) -> Option<&AppModule> {
        self.modules.iter().find(|module| module.key == key)
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
}

impl OAuthSettings {
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
