//! `[credentials]` and `[verify]`: how requests carry credentials, and the request that
//! checks a connection.

use super::{Check, Scope, Use, absolute_url, dummy_url};
use crate::catalog::raw::{RawBasic, RawCondition, RawCredentials, RawParam, RawVerify};
use crate::catalog::request::{
    BasicCredentials, Condition, CredentialParam, CredentialRules, VerifyMethod, VerifyRequest,
    is_absolute_url, join_url,
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
            && !pointer.starts_with('/')
        {
            self.fail(
                "verify.account_pointer",
                format!("`{pointer}` is not a JSON pointer: it starts with `/`, as in `/user/email`"),
            );
        }
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
        })
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
