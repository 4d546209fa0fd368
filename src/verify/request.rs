//! Builds the verification request of an app for one connection's values: the URL, the
//! credentials applied as the catalog says (headers, query parameters, HTTP Basic) and the body.

use std::collections::BTreeMap;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use crate::catalog::{App, FormValues, Template, VerifyMethod};

/// The values a request is built from: the form, plus an access token for OAuth apps.
pub struct RequestValues<'a> {
    pub app: &'a App,
    pub form: &'a FormValues,
    pub access_token: Option<&'a SecretString>,
}

impl RequestValues<'_> {
    fn lookup(&self, key: &str) -> Option<&str> {
        if key == "access_token" {
            return self.access_token.map(|t| t.expose_secret());
        }
        (self.app.template_values(self.form))(key)
    }
}

/// What to send. Holds secrets in its headers: never log it.
pub struct PreparedRequest {
    pub method: Method,
    pub url: url::Url,
    /// Whether a user's form chose the host, which subjects it to the egress policy.
    pub user_supplied_host: bool,
    pub headers: Vec<(String, SecretString)>,
    pub basic: Option<(String, SecretString)>,
    pub json_body: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0} has no verification request in the catalog")]
    NoVerification(String),
    #[error("the connection has no value for `{0}`, which the check request needs")]
    Missing(String),
    #[error("the check request's URL is not valid: {0}")]
    BadUrl(String),
}

pub fn prepare(values: &RequestValues<'_>) -> Result<PreparedRequest, BuildError> {
    let app = values.app;
    let verify = app.verify().ok_or_else(|| BuildError::NoVerification(app.name().to_owned()))?;
    let lookup = |key: &str| values.lookup(key);
    let missing = |err: crate::catalog::MissingValue| BuildError::Missing(err.name);

    let url_text = verify.url(app.api_base_url(), lookup).map_err(missing)?;
    let mut url = url::Url::parse(&url_text).map_err(|err| BuildError::BadUrl(err.to_string()))?;
    let host_template = if verify.is_absolute() { verify.path() } else { app.api_base_url() };
    let user_supplied_host = host_is_templated(host_template);

    let rules = app.credentials();
    for param in rules.query().iter().filter(|p| p.applies(lookup)) {
        let name = param.name().render(lookup).map_err(missing)?;
        let value = param.value().render(lookup).map_err(missing)?;
        url.query_pairs_mut().append_pair(&name, &value);
    }
    let mut headers = Vec::new();
    for param in rules.headers().iter().filter(|p| p.applies(lookup)) {
        let name = param.name().render(lookup).map_err(missing)?;
        headers.push((name, SecretString::from(param.value().render(lookup).map_err(missing)?)));
    }
    let basic = match rules.basic() {
        Some(basic) => Some((
            basic.username().render(lookup).map_err(missing)?,
            SecretString::from(basic.password().render(lookup).map_err(missing)?),
        )),
        None => None,
    };
    let json_body = match verify.body() {
        Some(body) => Some(SecretString::from(render_json(body, values)?)),
        None => None,
    };
    Ok(PreparedRequest {
        method: method(verify.method()),
        url,
        user_supplied_host,
        headers,
        basic,
        json_body,
    })
}

/// Renders a JSON body template with every value JSON-escaped, so a value cannot break out of
/// its string.
fn render_json(template: &Template, values: &RequestValues<'_>) -> Result<String, BuildError> {
    let escaped: BTreeMap<&str, String> = template
        .placeholders()
        .filter_map(|name| {
            let raw = values.lookup(name)?;
            let quoted = serde_json::Value::String(raw.to_owned()).to_string();
            Some((name, quoted[1..quoted.len() - 1].to_owned()))
        })
        .collect();
    template.render(|name| escaped.get(name).map(String::as_str)).map_err(|err| BuildError::Missing(err.name))
}

/// Whether the scheme or host of a URL template comes from a placeholder.
pub fn host_is_templated(template: &Template) -> bool {
    let text = template.as_str();
    if text.starts_with('{') {
        return true;
    }
    let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('{')
}

fn method(method: VerifyMethod) -> Method {
    match method {
        VerifyMethod::Get => Method::GET,
        VerifyMethod::Head => Method::HEAD,
        VerifyMethod::Post => Method::POST,
        VerifyMethod::Put => Method::PUT,
        VerifyMethod::Patch => Method::PATCH,
    }
}

#[cfg(test)]
mod tests {
    use super::host_is_templated;
    use crate::catalog::Template;

    #[test]
    fn hosts_from_placeholders_are_user_supplied() {
        for (template, templated) in [
            ("{base_url}", true),
            ("{base_url}/v2", true),
            ("https://{site}.atlassian.net", true),
            ("https://api.openai.com/v1", false),
            ("https://api.example.com/{version}/me", false),
        ] {
            assert_eq!(host_is_templated(&Template::parse(template).unwrap()), templated, "{template}");
        }
    }
}
