//! `[credentials]` and `[verify]`: how requests carry credentials, and the request that
//! checks a connection.

use super::{Check, Scope, Use, absolute_url, dummy_url};
use crate::catalog::raw::{
    RawBasic, RawBodyRule, RawCondition, RawCredentials, RawFailure, RawParam, RawVerify,
};
use crate::catalog::request::{
    BasicCredentials, BodyRule, Condition, CredentialParam, CredentialRules, FailureOutcome, FailureRule,
    VerifyMethod, VerifyRequest, is_absolute_url, join_url,
};
use crate::catalog::template::Template;
use crate::domain::AuthType;

impl Check<'_> {
    pub(super) fn credentials(
        &mut self,
        auth_type: AuthType,
        raw: RawCredentials,
        scope: &Scope,
    ) -> CredentialRules {
        let declared = !raw.headers.is_empty() || !raw.query.is_empty() || raw.basic.is_some();
        if !declared && auth_type != AuthType::Custom {
            self.fail(
                "credentials",
                format!(
                    "{} apps must say how requests carry the credentials: add \
                     credentials.headers, credentials.query or credentials.basic",
                    auth_type.as_str()
                ),
            );
        }
        CredentialRules {
            headers: self.params("credentials.headers", raw.headers, scope, is_header_name),
            query: self.params("credentials.query", raw.query, scope, |name| !name.trim().is_empty()),
            basic: raw.basic.and_then(|basic| self.basic(basic, scope)),
        }
    }

    fn params(
        &mut self,
        at: &str,
        raw: Vec<RawParam>,
        scope: &Scope,
        valid_name: fn(&str) -> bool,
    ) -> Vec<CredentialParam> {
        let mut params = Vec::with_capacity(raw.len());
        for (index, param) in raw.into_iter().enumerate() {
            let at = format!("{at}[{index}]");
            let name = self.param_name(&format!("{at}.name"), &param.name, scope, valid_name);
            let value = self.template(&format!("{at}.value"), &param.value, Use::Credential, scope);
            let when = param.when.and_then(|when| self.condition(&format!("{at}.when"), when, scope));
            if let (Some(name), Some(value)) = (name, value) {
                params.push(CredentialParam { name, value, when });
            }
        }
        params
    }

    /// A header or query parameter name; generic apps take it from a field.
    fn param_name(
        &mut self,
        field: &str,
        source: &str,
        scope: &Scope,
        valid_name: fn(&str) -> bool,
    ) -> Option<Template> {
        let name = self.template(field, source, Use::Logged, scope)?;
        // Field values are checked against the field's pattern, not here.
        if !valid_name(&name.render(|_| Some("X-Example")).ok()?) {
            self.fail(field, format!("`{source}` is not a valid name"));
            return None;
        }
        Some(name)
    }

    fn condition(&mut self, at: &str, raw: RawCondition, scope: &Scope) -> Option<Condition> {
        let Some(field) = scope.fields.get(&raw.field) else {
            self.fail(format!("{at}.field"), format!("`{}` is not a field of this app", raw.field));
            return None;
        };
        if !field.choices.is_empty() && !field.choices.contains(&raw.equals) {
            self.fail(
                format!("{at}.equals"),
                format!(
                    "`{}` is not one of the choices of `{}` ({})",
                    raw.equals,
                    raw.field,
                    field.choices.join(", ")
                ),
            );
            return None;
        }
        Some(Condition { field: raw.field, equals: raw.equals })
    }

    fn basic(&mut self, raw: RawBasic, scope: &Scope) -> Option<BasicCredentials> {
        let username = self.template("credentials.basic.username", &raw.username, Use::Credential, scope);
        let password = self.template("credentials.basic.password", &raw.password, Use::Credential, scope);
        Some(BasicCredentials { username: username?, password: password? })
    }

    pub(super) fn verify(
        &mut self,
        raw: RawVerify,
        api_base_url: Option<&Template>,
        scope: &Scope,
    ) -> Option<VerifyRequest> {
        let method = VerifyMethod::parse(&raw.method.to_ascii_uppercase());
        if method.is_none() {
            let known: Vec<_> = VerifyMethod::ALL.iter().map(|m| m.as_str()).collect();
            self.fail("verify.method", format!("`{}` is not one of {}", raw.method, known.join(", ")));
        }
        let path = self.verify_path(&raw.path, api_base_url, scope);
        for (index, status) in raw.ok_statuses.iter().enumerate() {
            if !(100..=599).contains(status) {
                self.fail(
                    format!("verify.ok_statuses[{index}]"),
                    format!("`{status}` is not an HTTP status"),
                );
            }
        }
        if let Some(pointer) = &raw.account_pointer
            && !pointer.is_empty()
        {
            self.json_pointer("verify.account_pointer", pointer);
        }
        let ok_body = raw
            .ok_body
            .into_iter()
            .enumerate()
            .filter_map(|(index, rule)| self.body_rule(&format!("verify.ok_body[{index}]"), rule))
            .collect();
        let failures = raw
            .failures
            .into_iter()
            .enumerate()
            .filter_map(|(index, rule)| self.failure_rule(&format!("verify.failures[{index}]"), rule))
            .collect();
        if raw.insufficient_scope_body.as_deref() == Some("") {
            self.fail("verify.insufficient_scope_body", "cannot be empty: it would match every 403");
        }
        let body = raw.body.filter(|body| !body.trim().is_empty());
        let body = match (method, body) {
            (Some(method), Some(_)) if !method.has_body() => {
                self.fail(
                    "verify.body",
                    format!("a {} request sends no body: use POST or remove body", method.as_str()),
                );
                None
            }
            (_, Some(body)) => self.json_body(&body, scope),
            (_, None) => None,
        };
        Some(VerifyRequest {
            method: method?,
            path: path?,
            ok_statuses: raw.ok_statuses,
            account_pointer: raw.account_pointer,
            insufficient_scope_body: raw.insufficient_scope_body,
            body,
            ok_body,
            failures,
        })
    }

    /// An RFC 6901 pointer: empty (the whole document) or starting with `/`.
    fn json_pointer(&mut self, at: &str, pointer: &str) -> bool {
        if pointer.is_empty() || pointer.starts_with('/') {
            return true;
        }
        self.fail(at, format!("`{pointer}` is not a JSON pointer: it starts with `/`, as in `/user/email`"));
        false
    }

    fn body_rule(&mut self, at: &str, raw: RawBodyRule) -> Option<BodyRule> {
        let valid = self.json_pointer(&format!("{at}.pointer"), &raw.pointer);
        let rule = match (raw.equals, raw.absent, raw.present) {
            (Some(value), false, false) => {
                BodyRule::Equals { pointer: raw.pointer, value: self.json_value(at, value)? }
            }
            (None, true, false) => BodyRule::Absent { pointer: raw.pointer },
            (None, false, true) => BodyRule::Present { pointer: raw.pointer },
            (None, false, false) => {
                self.fail(
                    at,
                    "say what the pointer must hold: `equals = <value>`, `absent = true` or `present = true`",
                );
                return None;
            }
            _ => {
                self.fail(at, "give one of `equals`, `absent = true` and `present = true`");
                return None;
            }
        };
        valid.then_some(rule)
    }

    fn failure_rule(&mut self, at: &str, raw: RawFailure) -> Option<FailureRule> {
        let outcome = FailureOutcome::parse(&raw.outcome);
        if outcome.is_none() {
            let known: Vec<_> = FailureOutcome::ALL.iter().map(|o| o.as_str()).collect();
            self.fail(
                format!("{at}.outcome"),
                format!("`{}` is not one of {}", raw.outcome, known.join(", ")),
            );
        }
        for (index, status) in raw.statuses.iter().enumerate() {
            if !(100..=599).contains(status) {
                self.fail(format!("{at}.statuses[{index}]"), format!("`{status}` is not an HTTP status"));
            }
        }
        let mut valid = true;
        for (key, pointer) in [("pointer", &raw.pointer), ("scope_pointer", &raw.scope_pointer)] {
            if let Some(pointer) = pointer {
                valid &= self.json_pointer(&format!("{at}.{key}"), pointer);
            }
        }
        if raw.equals.is_some() && raw.pointer.is_none() {
            self.fail(format!("{at}.equals"), "compares the value at `pointer`: give the pointer too");
            valid = false;
        }
        if raw.www_authenticate.as_deref().is_some_and(|e| e.trim().is_empty()) {
            self.fail(format!("{at}.www_authenticate"), "cannot be empty");
            valid = false;
        }
        if raw.statuses.is_empty()
            && raw.pointer.is_none()
            && raw.www_authenticate.is_none()
            && raw.header.is_none()
        {
            self.fail(at, "matches every answer: give `statuses`, `pointer`, `www_authenticate` or `header`");
            valid = false;
        }
        let header = match raw.header {
            Some(header) if reqwest::header::HeaderName::from_bytes(header.name.as_bytes()).is_err() => {
                self.fail(format!("{at}.header.name"), format!("`{}` is not a header name", header.name));
                valid = false;
                None
            }
            Some(header) => Some((header.name.to_ascii_lowercase(), header.equals)),
            None => None,
        };
        if raw.scope_pointer.is_some() && outcome != Some(FailureOutcome::InsufficientScopes) {
            self.fail(format!("{at}.scope_pointer"), "only an INSUFFICIENT_SCOPES rule names scopes");
            valid = false;
        }
        let equals = match raw.equals {
            Some(toml::Value::Array(values)) => {
                values.into_iter().map(|value| self.json_value(at, value)).collect::<Option<Vec<_>>>()?
            }
            Some(value) => vec![self.json_value(at, value)?],
            None => Vec::new(),
        };
        if !valid {
            return None;
        }
        Some(FailureRule {
            outcome: outcome?,
            statuses: raw.statuses,
            pointer: raw.pointer,
            equals,
            www_authenticate: raw.www_authenticate.map(|e| e.trim().to_owned()),
            header,
            scope_pointer: raw.scope_pointer,
        })
    }

    fn json_value(&mut self, at: &str, value: toml::Value) -> Option<serde_json::Value> {
        match serde_json::to_value(value) {
            Ok(value) => Some(value),
            Err(error) => {
                self.fail(format!("{at}.equals"), format!("cannot be compared with JSON: {error}"));
                None
            }
        }
    }

    fn verify_path(
        &mut self,
        source: &str,
        api_base_url: Option<&Template>,
        scope: &Scope,
    ) -> Option<Template> {
        if source.trim().is_empty() {
            self.fail("verify.path", "cannot be empty: use `/` for the base URL itself");
            return None;
        }
        if is_absolute_url(source) {
            return self.url_template("verify.path", source, scope);
        }
        let path = self.template("verify.path", source, Use::Logged, scope)?;
        // Without a valid base URL (already reported), the joined URL cannot be checked.
        if let Some(base) = api_base_url {
            let joined = join_url(&dummy_url(base), &path.render(|_| Some("example")).ok()?);
            if let Err(reason) = absolute_url(&joined) {
                self.fail("verify.path", format!("{reason} (`{}` under `{}`)", source, base.as_str()));
                return None;
            }
        }
        Some(path)
    }

    fn json_body(&mut self, source: &str, scope: &Scope) -> Option<Template> {
        let body = self.template("verify.body", source, Use::Credential, scope)?;
        // "0" is valid JSON both inside a string and as a bare value.
        let filled = body.render(|_| Some("0")).ok()?;
        if let Err(error) = serde_json::from_str::<serde_json::Value>(&filled) {
            self.fail("verify.body", format!("is not JSON once filled in: {error}"));
            return None;
        }
        Some(body)
    }
}

/// An RFC 9110 token.
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
