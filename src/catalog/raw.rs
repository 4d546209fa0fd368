//! A provider file exactly as written, for serde. Unknown keys are rejected so that a typo'd key
//! fails the load instead of being silently ignored; everything serde cannot check is left to
//! `validate.rs`, which turns these into the catalog's types.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::types::ClientAuth;
use crate::domain::AuthType;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub key: String,
    pub name: String,
    pub description: String,
    pub docs_url: String,
    pub auth_type: AuthType,
    pub api_base_url: String,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    pub oauth: Option<RawOAuth>,
    #[serde(default)]
    pub fields: Vec<RawField>,
    #[serde(default)]
    pub credentials: RawCredentials,
    pub verify: Option<RawVerify>,
    #[serde(default)]
    pub modules: Vec<RawModule>,
    /// The provider's published rate limits (see `proxy_rules.rs`).
    pub rate_limits: Option<RawRateLimits>,
    /// Scopes a granted one includes (see `scopes.rs`).
    #[serde(default)]
    pub implied_scopes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth {
    pub authorize_url: Option<String>,
    pub token_url: String,
    #[serde(default = "default_scope_separator")]
    pub scope_separator: String,
    #[serde(default = "default_pkce")]
    pub pkce: bool,
    #[serde(default)]
    pub client_auth: ClientAuth,
    #[serde(default)]
    pub extra_authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    pub extra_token_params: BTreeMap<String, String>,
    #[serde(default)]
    pub host_fields: Vec<String>,
    /// Non-secret fields of the token response to keep with the grant (`instance_url`); the
    /// app's templates may name them like fields.
    #[serde(default)]
    pub token_fields: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawField {
    pub key: String,
    pub label: String,
    pub help: Option<String>,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub required: bool,
    pub default: Option<String>,
    pub pattern: Option<String>,
    #[serde(default)]
    pub choices: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCredentials {
    #[serde(default)]
    pub headers: Vec<RawParam>,
    #[serde(default)]
    pub query: Vec<RawParam>,
    pub basic: Option<RawBasic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParam {
    pub name: String,
    pub value: String,
    pub when: Option<RawCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCondition {
    pub field: String,
    pub equals: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBasic {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerify {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub ok_statuses: Vec<u16>,
    pub account_pointer: Option<String>,
    pub insufficient_scope_body: Option<String>,
    pub body: Option<String>,
    #[serde(default)]
    pub ok_body: Vec<RawBodyRule>,
    #[serde(default)]
    pub failures: Vec<RawFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBodyRule {
    pub pointer: String,
    pub equals: Option<toml::Value>,
    #[serde(default)]
    pub absent: bool,
    #[serde(default)]
    pub present: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFailure {
    pub outcome: String,
    #[serde(default)]
    pub statuses: Vec<u16>,
    pub pointer: Option<String>,
    pub equals: Option<toml::Value>,
    pub www_authenticate: Option<String>,
    pub header: Option<RawHeaderMatch>,
    pub scope_pointer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderMatch {
    pub name: String,
    pub equals: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModule {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The requests the module makes through the proxy; none means any under the API base.
    #[serde(default)]
    pub requests: Vec<RawRequestRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequestRule {
    pub method: String,
    pub path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimits {
    pub per_connection: Option<RawRateLimit>,
    pub per_app: Option<RawRateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub requests: u32,
    pub per_secs: u32,
}

fn default_scope_separator() -> String {
    " ".to_owned()
}

fn default_pkce() -> bool {
    true
}

fn default_method() -> String {
    "GET".to_owned()
}
