//! Turns a parsed provider file into an [`App`], checking what serde cannot: keys, URLs,
//! templates, patterns, and which tables an auth type needs. Every problem is recorded rather
//! than stopping at the first, and an `App` is built only from a file without any.

mod fields;
mod oauth;
mod proxy;
mod requests;

use std::collections::{HashMap, HashSet};

use url::Url;

use super::error::Problem;
use super::raw::{RawApp, RawField, RawModule};
use super::scopes::ScopeImplications;
use super::template::Template;
use super::types::{App, AppModule};
use crate::domain::AuthType;

/// The placeholder that OAuth apps' credential templates use for the current access token.
const ACCESS_TOKEN: &str = "access_token";

/// Validates one file's `raw` app; `stem` is its file name without `.toml`.
pub(super) fn app(file: &str, stem: &str, raw: RawApp, problems: &mut Vec<Problem>) -> Option<App> {
    let mut check = Check { file, problems, failed: false };
    check.app_key(&raw.key, stem);
    check.not_blank("name", &raw.name);
    check.not_blank("description", &raw.description);
    let docs_url = check.docs_url(&raw.docs_url);
    let token_fields = raw.oauth.as_ref().map(|oauth| oauth.token_fields.clone()).unwrap_or_default();
    let scope = Scope::new(&raw.fields, raw.auth_type, token_fields);
    let fields = check.fields(raw.fields);
    let api_base_url = check.url_template("api_base_url", &raw.api_base_url, &scope);
    let default_scopes = check.scopes("default_scopes", raw.default_scopes);
    let oauth = check.oauth(raw.auth_type, raw.oauth, &scope);
    let credentials = check.credentials(raw.auth_type, raw.credentials, &scope);
    let verify = raw.verify.and_then(|verify| check.verify(verify, api_base_url.as_ref(), &scope));
    let modules = check.modules(raw.modules);
    if let (Some(oauth), Some(base)) = (&oauth, &api_base_url) {
        check.host_fields(oauth, &fields, base);
    }
    let modules = proxy::with_generic_module(modules);
    let rate_limits = check.rate_limits(raw.rate_limits);
    let implied_scopes = check.implied_scopes(raw.implied_scopes);
    if check.failed {
        return None;
    }
    Some(App {
        key: raw.key,
        name: raw.name,
        description: raw.description,
        docs_url: docs_url?,
        auth_type: raw.auth_type,
        api_base_url: api_base_url?,
        default_scopes,
        oauth,
        fields,
        credentials,
        verify,
        modules,
        rate_limits,
        implied_scopes,
    })
}

/// Where a template is used decides which placeholders it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// URLs and parameter names end up in logs, so no secret may appear in them.
    Logged,
    /// Header, query and body values may carry secrets and the access token.
    Credential,
}

/// The names templates may use: the app's field keys, plus the access token for OAuth apps.
struct Scope {
    fields: HashMap<String, FieldInfo>,
    order: Vec<String>,
    oauth: bool,
    /// Non-secret token response fields kept with the grant (`[oauth] token_fields`).
    token_fields: Vec<String>,
}

struct FieldInfo {
    secret: bool,
    choices: Vec<String>,
}

impl Scope {
    fn new(fields: &[RawField], auth_type: AuthType, token_fields: Vec<String>) -> Self {
        Self {
            fields: fields
                .iter()
                .map(|field| {
                    let info = FieldInfo { secret: field.secret, choices: field.choices.clone() };
                    (field.key.clone(), info)
                })
                .collect(),
            order: fields.iter().map(|field| field.key.clone()).collect(),
            oauth: matches!(auth_type, AuthType::OAuth2 | AuthType::OAuth2ClientCredentials),
            token_fields,
        }
    }

    fn is_form_field(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    fn allows(&self, name: &str, usage: Use) -> Result<(), String> {
        match self.fields.get(name) {
            Some(field) if field.secret && usage == Use::Logged => Err(format!(
                "`{{{name}}}` is a secret field, and URLs and parameter names end up in logs: \
                 send it as the value of a credentials header or query parameter"
            )),
            Some(_) => Ok(()),
            None if self.oauth && self.token_fields.iter().any(|f| f == name) => Ok(()),
            None if name == ACCESS_TOKEN && self.oauth && usage == Use::Credential => Ok(()),
            None if name == ACCESS_TOKEN && self.oauth => {
                Err("`{access_token}` cannot be part of a URL: send it with credentials.headers".to_owned())
            }
            None => Err(format!("`{{{name}}}` is not a field of this app ({})", self.known(usage))),
        }
    }

    fn known(&self, usage: Use) -> String {
        let mut names: Vec<&str> = self.order.iter().map(String::as_str).collect();
        if self.oauth && usage == Use::Credential {
            names.push(ACCESS_TOKEN);
        }
        if names.is_empty() { "it has no fields".to_owned() } else { format!("known: {}", names.join(", ")) }
    }
}

struct Check<'a> {
    file: &'a str,
    problems: &'a mut Vec<Problem>,
    failed: bool,
}

impl Check<'_> {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.failed = true;
        self.problems.push(Problem {
            file: self.file.to_owned(),
            field: field.into(),
            message: message.into(),
        });
    }

    fn app_key(&mut self, key: &str, stem: &str) {
        if !is_key(key, b'-') {
            self.fail("key", format!("`{key}` must be lowercase letters, digits and `-`"));
        }
        if key != stem {
            self.fail("key", format!("`{key}` must equal the file name without .toml (`{stem}`)"));
        }
    }

    fn not_blank(&mut self, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.fail(field, "cannot be empty");
        }
    }

    fn docs_url(&mut self, source: &str) -> Option<Url> {
        match absolute_url(source) {
            Ok(url) => Some(url),
            Err(reason) => {
                self.fail("docs_url", format!("{reason} (`{source}`)"));
                None
            }
        }
    }

    fn template(&mut self, field: &str, source: &str, usage: Use, scope: &Scope) -> Option<Template> {
        let template = match Template::parse(source) {
            Ok(template) => template,
            Err(error) => {
                self.fail(field, error.to_string());
                return None;
            }
        };
        let mut reported = HashSet::new();
        for name in template.placeholders() {
            if let Err(message) = scope.allows(name, usage)
                && reported.insert(name)
            {
                self.fail(field, message);
            }
        }
        reported.is_empty().then_some(template)
    }

    /// A template that must be an absolute http(s) URL once its placeholders are filled.
    fn url_template(&mut self, field: &str, source: &str, scope: &Scope) -> Option<Template> {
        let template = self.template(field, source, Use::Logged, scope)?;
        match absolute_url(&dummy_url(&template)) {
            Ok(_) => Some(template),
            Err(reason) => {
                self.fail(field, format!("{reason} (`{source}`)"));
                None
            }
        }
    }

    fn scopes(&mut self, at: &str, scopes: Vec<String>) -> Vec<String> {
        for (index, scope) in scopes.iter().enumerate() {
            if scope.is_empty() {
                self.fail(format!("{at}[{index}]"), "a scope cannot be empty");
            } else if scope.chars().any(char::is_whitespace) {
                self.fail(
                    format!("{at}[{index}]"),
                    format!("`{scope}` contains whitespace: list each scope as its own string"),
                );
            }
        }
        scopes
    }

    fn implied_scopes(&mut self, raw: std::collections::BTreeMap<String, Vec<String>>) -> ScopeImplications {
        ScopeImplications::parse(raw).unwrap_or_else(|problems| {
            for (field, message) in problems {
                self.fail(field, message);
            }
            ScopeImplications::default()
        })
    }

    fn modules(&mut self, raw: Vec<RawModule>) -> Vec<AppModule> {
        let mut seen = HashSet::new();
        let mut modules = Vec::with_capacity(raw.len());
        for (index, module) in raw.into_iter().enumerate() {
            let at = format!("modules[{index}]");
            if !is_key(&module.key, b'-') {
                self.fail(
                    format!("{at}.key"),
                    format!("`{}` must be lowercase letters, digits and `-`", module.key),
                );
            } else if !seen.insert(module.key.clone()) {
                self.fail(format!("{at}.key"), format!("`{}` is defined twice", module.key));
            }
            self.not_blank(&format!("{at}.name"), &module.name);
            let scopes = self.scopes(&format!("{at}.scopes"), module.scopes);
            let requests = self.module_requests(&format!("{at}.requests"), module.requests);
            modules.push(AppModule { key: module.key, name: module.name, scopes, requests });
        }
        modules
    }
}

/// `text` parsed as an absolute http(s) URL, or why it is not one.
fn absolute_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| error.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{}:` URLs are not allowed, only http and https", url.scheme()));
    }
    Ok(url)
}

/// The template filled with stand-in values, to check the shape of the URL it makes. A leading
/// placeholder followed by nothing or a path supplies scheme and host (generic apps), so it
/// gets a whole base URL; `{site}.example.com` gets a bare word and is rejected.
fn dummy_url(template: &Template) -> String {
    let base = template.leading_placeholder().filter(|name| {
        // The template starts with `{name}`; what follows it decides.
        let rest = template.as_str().get(name.len() + 2..).unwrap_or_default();
        rest.is_empty() || rest.starts_with(['/', '?'])
    });
    template
        .render(|name| Some(if Some(name) == base { "https://example.com" } else { "example" }))
        .unwrap_or_default()
}

/// `[a-z0-9]` and `separator`, at least one character.
fn is_key(key: &str, separator: u8) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == separator)
}
