//! How requests to an app carry a connection's credentials, and the request that verifies a
//! connection. The catalog only describes them; `verify/` and the flow runner send them.

use super::template::{MissingValue, Template};

/// How credentials are applied to every request to the app.
#[derive(Debug, Clone, Default)]
pub struct CredentialRules {
    pub(super) headers: Vec<CredentialParam>,
    pub(super) query: Vec<CredentialParam>,
    pub(super) basic: Option<BasicCredentials>,
}

impl CredentialRules {
    pub fn headers(&self) -> &[CredentialParam] {
        &self.headers
    }

    pub fn query(&self) -> &[CredentialParam] {
        &self.query
    }

    pub fn basic(&self) -> Option<&BasicCredentials> {
        self.basic.as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty() && self.basic.is_none()
    }
}

/// A header or query parameter carrying credentials, possibly only under a condition.
#[derive(Debug, Clone)]
pub struct CredentialParam {
    pub(super) name: Template,
    pub(super) value: Template,
    pub(super) when: Option<Condition>,
}

impl CredentialParam {
    /// A template too: generic apps let the connection choose the header or parameter name.
    /// Its rendered value comes from a non-secret field and must be checked before sending.
    pub fn name(&self) -> &Template {
        &self.name
    }

    pub fn value(&self) -> &Template {
        &self.value
    }

    pub fn when(&self) -> Option<&Condition> {
        self.when.as_ref()
    }

    /// Whether this parameter is sent for a connection whose values `lookup` gives.
    pub fn applies<'v>(&self, lookup: impl Fn(&str) -> Option<&'v str>) -> bool {
        self.when.as_ref().is_none_or(|when| lookup(&when.field) == Some(when.equals.as_str()))
    }
}

/// `field` must hold exactly `equals` (lets generic apps choose where a key goes).
#[derive(Debug, Clone)]
pub struct Condition {
    pub(super) field: String,
    pub(super) equals: String,
}

impl Condition {
    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn equals(&self) -> &str {
        &self.equals
    }
}

/// HTTP Basic credentials as templates over the form fields.
#[derive(Debug, Clone)]
pub struct BasicCredentials {
    pub(super) username: Template,
    pub(super) password: Template,
}

impl BasicCredentials {
    pub fn username(&self) -> &Template {
        &self.username
    }

    pub fn password(&self) -> &Template {
        &self.password
    }
}

/// The request that answers "does this connection work?".
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub(super) method: VerifyMethod,
    pub(super) path: Template,
    pub(super) ok_statuses: Vec<u16>,
    pub(super) account_pointer: Option<String>,
    pub(super) insufficient_scope_body: Option<String>,
    pub(super) body: Option<Template>,
    pub(super) ok_body: Vec<BodyRule>,
    pub(super) failures: Vec<FailureRule>,
}

/// What a JSON body must hold for an answer to count as OK: a value at a pointer, or nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyRule {
    /// `pointer` must hold exactly `value` (`/ok` = true).
    Equals { pointer: String, value: serde_json::Value },
    /// `pointer` must be missing or null (`/errors`).
    Absent { pointer: String },
    /// `pointer` must hold something other than null (`/user/id`).
    Present { pointer: String },
}

impl BodyRule {
    pub fn pointer(&self) -> &str {
        match self {
            BodyRule::Equals { pointer, .. }
            | BodyRule::Absent { pointer }
            | BodyRule::Present { pointer } => pointer,
        }
    }

    /// Whether `body` satisfies the rule.
    pub fn holds(&self, body: &serde_json::Value) -> bool {
        match self {
            BodyRule::Equals { pointer, value } => body.pointer(pointer) == Some(value),
            BodyRule::Absent { pointer } => body.pointer(pointer).is_none_or(serde_json::Value::is_null),
            BodyRule::Present { pointer } => body.pointer(pointer).is_some_and(|value| !value.is_null()),
        }
    }

    /// The rule as a person reads it, for messages.
    pub fn describe(&self) -> String {
        match self {
            BodyRule::Equals { pointer, value } => format!("`{pointer}` must be {value}"),
            BodyRule::Absent { pointer } => format!("`{pointer}` must be absent"),
            BodyRule::Present { pointer } => format!("`{pointer}` must be present"),
        }
    }
}

/// What a failure rule concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    InvalidCredentials,
    InsufficientScopes,
    ProviderUnavailable,
}

impl FailureOutcome {
    pub const ALL: [FailureOutcome; 3] = [
        FailureOutcome::InvalidCredentials,
        FailureOutcome::InsufficientScopes,
        FailureOutcome::ProviderUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureOutcome::InvalidCredentials => "INVALID_CREDENTIALS",
            FailureOutcome::InsufficientScopes => "INSUFFICIENT_SCOPES",
            FailureOutcome::ProviderUnavailable => "PROVIDER_UNAVAILABLE",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|outcome| outcome.as_str() == name)
    }
}

/// How a provider says a specific thing went wrong, beyond its status: `statuses` (any when
/// empty), a value at a JSON pointer (`/error` = "missing_scope"), the `error` of a
/// `WWW-Authenticate: Bearer` challenge (RFC 6750) and/or a response header. Every given part
/// must match.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRule {
    pub(super) outcome: FailureOutcome,
    pub(super) statuses: Vec<u16>,
    pub(super) pointer: Option<String>,
    /// Any of these values at `pointer`; empty: any value but null.
    pub(super) equals: Vec<serde_json::Value>,
    pub(super) www_authenticate: Option<String>,
    /// A response header that must be present, with this value when one is given
    /// (`x-ratelimit-remaining` = `0`).
    pub(super) header: Option<(String, Option<String>)>,
    /// Where the answer names the missing scope(s): a string or a list of strings.
    pub(super) scope_pointer: Option<String>,
}

impl FailureRule {
    pub fn outcome(&self) -> FailureOutcome {
        self.outcome
    }

    pub fn statuses(&self) -> &[u16] {
        &self.statuses
    }

    pub fn pointer(&self) -> Option<&str> {
        self.pointer.as_deref()
    }

    pub fn equals(&self) -> &[serde_json::Value] {
        &self.equals
    }

    pub fn www_authenticate(&self) -> Option<&str> {
        self.www_authenticate.as_deref()
    }

    pub fn scope_pointer(&self) -> Option<&str> {
        self.scope_pointer.as_deref()
    }

    /// The header name (lowercase) and the value it must have, if any.
    pub fn header(&self) -> Option<(&str, Option<&str>)> {
        self.header.as_ref().map(|(name, value)| (name.as_str(), value.as_deref()))
    }
}

impl VerifyRequest {
    pub fn method(&self) -> VerifyMethod {
        self.method
    }

    /// A full URL template when [`Self::is_absolute`], else appended to `api_base_url`.
    pub fn path(&self) -> &Template {
        &self.path
    }

    pub fn is_absolute(&self) -> bool {
        is_absolute_url(self.path.as_str())
    }

    /// The statuses that mean OK; empty means any 2xx.
    pub fn ok_statuses(&self) -> &[u16] {
        &self.ok_statuses
    }

    pub fn is_ok(&self, status: u16) -> bool {
        if self.ok_statuses.is_empty() {
            (200..300).contains(&status)
        } else {
            self.ok_statuses.contains(&status)
        }
    }

    /// RFC 6901 pointer to the account label in the response body.
    pub fn account_pointer(&self) -> Option<&str> {
        self.account_pointer.as_deref()
    }

    /// A substring of a 4xx body by which the app signals missing scopes.
    pub fn insufficient_scope_body(&self) -> Option<&str> {
        self.insufficient_scope_body.as_deref()
    }

    /// What the JSON body of an OK status must also hold.
    pub fn ok_body(&self) -> &[BodyRule] {
        &self.ok_body
    }

    /// How the app signals specific failures, in the order they are tried.
    pub fn failures(&self) -> &[FailureRule] {
        &self.failures
    }

    /// A JSON body template; values substituted into it must be JSON-escaped by the caller.
    pub fn body(&self) -> Option<&Template> {
        self.body.as_ref()
    }

    /// The URL to request: the path alone when absolute, else the path under `api_base_url`.
    pub fn url<'v>(
        &self,
        api_base_url: &Template,
        lookup: impl Fn(&str) -> Option<&'v str>,
    ) -> Result<String, MissingValue> {
        let path = self.path.render(&lookup)?;
        if self.is_absolute() {
            return Ok(path);
        }
        Ok(join_url(&api_base_url.render(&lookup)?, &path))
    }
}

/// The HTTP methods a verification request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMethod {
    Get,
    Head,
    Post,
    Put,
    Patch,
}

impl VerifyMethod {
    pub const ALL: [VerifyMethod; 5] =
        [VerifyMethod::Get, VerifyMethod::Head, VerifyMethod::Post, VerifyMethod::Put, VerifyMethod::Patch];

    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMethod::Get => "GET",
            VerifyMethod::Head => "HEAD",
            VerifyMethod::Post => "POST",
            VerifyMethod::Put => "PUT",
            VerifyMethod::Patch => "PATCH",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == name)
    }

    pub fn has_body(self) -> bool {
        matches!(self, VerifyMethod::Post | VerifyMethod::Put | VerifyMethod::Patch)
    }
}

/// Whether a URL template is a full URL rather than a path under the app's base URL.
pub(super) fn is_absolute_url(template: &str) -> bool {
    let lower = template.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `base` and `path` with exactly one `/` between them.
pub(super) fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}
