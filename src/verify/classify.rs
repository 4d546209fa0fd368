//! Turns what a provider answered into a verification outcome and a message a person can act
//! on: the status, and what the app file says its body and `WWW-Authenticate` header mean
//! (`[verify] ok_body` and `failures`). Only a definite rejection condemns credentials; 5xx,
//! 429, timeouts and network failures are the provider's trouble and change nothing. Messages
//! never quote the provider's body, which may echo what was sent; the account label and scope
//! names taken from it are stripped of the request's secrets.
//!
//! [`response`] is the one place that reads a provider's answer; the proxy uses it too, and
//! [`by_failure_rules`] for successful answers whose body may say otherwise.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use serde_json::Value;

use crate::catalog::{FailureOutcome, FailureRule, VerifyRequest};
use crate::domain::VerificationOutcome;
use crate::outbound::redact::Redactor;

/// The outcome of one answer, with the account the provider named when it was OK and the
/// scopes it said were missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub outcome: VerificationOutcome,
    pub message: String,
    pub account_label: Option<String>,
    pub missing_scopes: Vec<String>,
}

const MAX_LABEL_CHARS: usize = 200;
const MAX_SCOPES: usize = 20;
const MAX_SCOPE_CHARS: usize = 100;

/// Classifies a provider's answer to a request made with a connection's credentials.
/// `redactor` holds what the request sent, so nothing echoed comes back out.
pub fn response(
    app_name: &str,
    verify: &VerifyRequest,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    redactor: &Redactor,
) -> Classified {
    let code = status.as_u16();
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(classified) = first_rule(app_name, verify, code, headers, json.as_ref(), redactor) {
        return classified;
    }
    if verify.is_ok(code) {
        return ok_answer(app_name, verify, code, json.as_ref(), redactor);
    }
    if bearer_param(headers, "error").is_some_and(|error| error.eq_ignore_ascii_case("insufficient_scope")) {
        let scopes = bearer_param(headers, "scope").map(|s| scope_list(&Value::String(s), redactor));
        return missing_scope(app_name, code, scopes.unwrap_or_default());
    }
    if (400..500).contains(&code)
        && verify
            .insufficient_scope_body()
            .is_some_and(|signal| String::from_utf8_lossy(body).contains(signal))
    {
        return missing_scope(app_name, code, Vec::new());
    }
    by_status(app_name, code)
}

/// What the app's failure rules say of this answer, when one describes it; `None` when none
/// does. For answers whose status says nothing (a proxied call's 200 carrying Slack's
/// `{"ok": false, "error": "token_revoked"}`): only what the app file states is taken.
pub fn by_failure_rules(
    app_name: &str,
    verify: &VerifyRequest,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    redactor: &Redactor,
) -> Option<Classified> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    first_rule(app_name, verify, status.as_u16(), headers, json.as_ref(), redactor)
}

/// The first of the app's failure rules that describes the answer, applied.
fn first_rule(
    app_name: &str,
    verify: &VerifyRequest,
    code: u16,
    headers: &HeaderMap,
    json: Option<&Value>,
    redactor: &Redactor,
) -> Option<Classified> {
    let rule = verify.failures().iter().find(|rule| matches(rule, code, headers, json))?;
    Some(by_rule(app_name, rule, code, headers, json, redactor))
}

/// Whether `rule` describes this answer: every part it gives must match.
fn matches(rule: &FailureRule, code: u16, headers: &HeaderMap, json: Option<&Value>) -> bool {
    if !rule.statuses().is_empty() && !rule.statuses().contains(&code) {
        return false;
    }
    if let Some(pointer) = rule.pointer() {
        let Some(found) = json.and_then(|json| json.pointer(pointer)).filter(|v| !v.is_null()) else {
            return false;
        };
        if !rule.equals().is_empty() && !rule.equals().contains(found) {
            return false;
        }
    }
    if let Some(expected) = rule.www_authenticate()
        && !bearer_param(headers, "error").is_some_and(|error| error.eq_ignore_ascii_case(expected))
    {
        return false;
    }
    if let Some((name, expected)) = rule.header() {
        let value = headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
        let holds = match (value, expected) {
            (Some(value), Some(expected)) => value.eq_ignore_ascii_case(expected),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !holds {
            return false;
        }
    }
    true
}

fn by_rule(
    app_name: &str,
    rule: &FailureRule,
    code: u16,
    headers: &HeaderMap,
    json: Option<&Value>,
    redactor: &Redactor,
) -> Classified {
    match rule.outcome() {
        FailureOutcome::InsufficientScopes => {
            let named = rule.scope_pointer().and_then(|pointer| json.and_then(|json| json.pointer(pointer)));
            let scopes = match named {
                Some(value) => scope_list(value, redactor),
                None => bearer_param(headers, "scope")
                    .map(|s| scope_list(&Value::String(s), redactor))
                    .unwrap_or_default(),
            };
            missing_scope(app_name, code, scopes)
        }
        FailureOutcome::InvalidCredentials => failed(
            VerificationOutcome::InvalidCredentials,
            format!(
                "{app_name} rejected the credentials (HTTP {code}, as its answer says); check that they are right and have not been revoked or expired"
            ),
        ),
        FailureOutcome::ProviderUnavailable => failed(
            VerificationOutcome::ProviderUnavailable,
            format!(
                "{app_name} could not answer the check for now (HTTP {code}, as its answer says); the status is unchanged and the check will be retried"
            ),
        ),
    }
}

fn ok_answer(
    app_name: &str,
    verify: &VerifyRequest,
    code: u16,
    json: Option<&Value>,
    redactor: &Redactor,
) -> Classified {
    if !verify.ok_body().is_empty() {
        let Some(json) = json else {
            return failed(
                VerificationOutcome::ProviderUnavailable,
                format!(
                    "{app_name} answered HTTP {code} without the JSON body its check expects; the status is unchanged and the check will be retried"
                ),
            );
        };
        if let Some(broken) = verify.ok_body().iter().find(|rule| !rule.holds(json)) {
            return failed(
                VerificationOutcome::InvalidCredentials,
                format!(
                    "{app_name} answered HTTP {code} but its body reports a failure ({}); check that the credentials are right and have not been revoked",
                    broken.describe()
                ),
            );
        }
    }
    let account_label = verify
        .account_pointer()
        .and_then(|pointer| json.and_then(|json| account_label(json, pointer, redactor)));
    let message = match &account_label {
        Some(label) => format!("{app_name} accepted the credentials (account {label})"),
        None => format!("{app_name} accepted the credentials"),
    };
    Classified { outcome: VerificationOutcome::Ok, message, account_label, missing_scopes: Vec::new() }
}

fn missing_scope(app_name: &str, code: u16, scopes: Vec<String>) -> Classified {
    let which = if scopes.is_empty() {
        "a permission (scope) the check needs".to_owned()
    } else {
        format!("the scope {}", scopes.join(", "))
    };
    Classified {
        outcome: VerificationOutcome::InsufficientScopes,
        message: format!(
            "{app_name} accepted the credentials but they lack {which} (HTTP {code}); grant it and reconnect"
        ),
        account_label: None,
        missing_scopes: scopes,
    }
}

fn failed(outcome: VerificationOutcome, message: String) -> Classified {
    Classified { outcome, message, account_label: None, missing_scopes: Vec::new() }
}

fn by_status(app_name: &str, code: u16) -> Classified {
    let (outcome, message) = match code {
        401 => (
            VerificationOutcome::InvalidCredentials,
            format!(
                "{app_name} rejected the credentials (HTTP 401); check that they are right and have not been revoked or expired"
            ),
        ),
        403 => (
            VerificationOutcome::InvalidCredentials,
            format!(
                "{app_name} refused access with these credentials (HTTP 403); check their permissions and that the account is active"
            ),
        ),
        429 => (
            VerificationOutcome::ProviderUnavailable,
            format!(
                "{app_name} is rate limiting requests (HTTP 429); the status is unchanged and the check will be retried"
            ),
        ),
        408 | 500..=599 => (
            VerificationOutcome::ProviderUnavailable,
            format!(
                "{app_name} had a server error (HTTP {code}); the status is unchanged and the check will be retried"
            ),
        ),
        300..=399 => (
            VerificationOutcome::InvalidCredentials,
            format!(
                "{app_name} redirected the check elsewhere (HTTP {code}); check the connection's URL settings"
            ),
        ),
        _ => (
            VerificationOutcome::InvalidCredentials,
            format!(
                "{app_name} answered HTTP {code} to the check; check the connection's settings (such as its site or URL)"
            ),
        ),
    };
    failed(outcome, message)
}

/// A failure to get any answer: always transient.
pub fn unreachable(app_name: &str, host: &str, error: &reqwest::Error, timeout_secs: u64) -> Classified {
    let reason = if error.is_timeout() {
        format!("did not answer within {timeout_secs} s")
    } else if chain_mentions(error, "dns error") || chain_mentions(error, "failed to lookup") {
        format!("could not be found: the name {host} does not resolve")
    } else if error.is_connect() {
        format!("could not be reached at {host} (connection refused or failed)")
    } else {
        format!("could not be reached at {host}")
    };
    Classified {
        outcome: VerificationOutcome::ProviderUnavailable,
        message: format!("{app_name} {reason}; the status is unchanged and the check will be retried"),
        account_label: None,
        missing_scopes: Vec::new(),
    }
}

/// A parameter of a `WWW-Authenticate: Bearer` challenge (RFC 6750 §3), e.g. `error` or
/// `scope`, unquoted.
fn bearer_param(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(WWW_AUTHENTICATE).iter().filter_map(|value| value.to_str().ok()).find_map(|value| {
        let lower = value.to_ascii_lowercase();
        let bearer = lower.find("bearer")?;
        let mut from = bearer;
        while let Some(found) = lower[from..].find(name) {
            let at = from + found;
            let before_ok = lower[..at].ends_with([' ', ',', '\t']);
            let rest = value[at + name.len()..].trim_start();
            from = at + name.len();
            let Some(rest) = rest.strip_prefix('=').filter(|_| before_ok) else { continue };
            let rest = rest.trim_start();
            return Some(match rest.strip_prefix('"') {
                Some(quoted) => quoted.split('"').next().unwrap_or_default().to_owned(),
                None => rest.split([',', ' ']).next().unwrap_or_default().to_owned(),
            });
        }
        None
    })
}

/// Scope names from a string (separated by spaces or commas) or a list of strings; clamped,
/// and stripped of anything the request sent.
fn scope_list(value: &Value, redactor: &Redactor) -> Vec<String> {
    let names: Vec<String> = match value {
        Value::String(text) => text.split([' ', ',']).map(str::to_owned).collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    names
        .into_iter()
        .map(|name| redactor.redact(name.trim()))
        .map(|name| name.chars().filter(|c| !c.is_control()).take(MAX_SCOPE_CHARS).collect::<String>())
        .filter(|name| !name.is_empty())
        .take(MAX_SCOPES)
        .collect()
}

fn account_label(json: &Value, pointer: &str, redactor: &Redactor) -> Option<String> {
    let label = match json.pointer(pointer)? {
        Value::String(text) => redactor.redact(text.trim()),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    let label: String = label.chars().filter(|c| !c.is_control()).take(MAX_LABEL_CHARS).collect();
    (!label.is_empty()).then_some(label)
}

/// Whether any error in the chain mentions `needle`, so the message can say what happened.
pub fn chain_mentions(error: &(dyn std::error::Error + 'static), needle: &str) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        if err.to_string().to_ascii_lowercase().contains(needle) {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;
    use crate::catalog::Catalog;

    const APP: &str = r#"
key = "chatty"
name = "Chatty"
description = "An API that answers errors with HTTP 200."
docs_url = "https://example.com/docs"
auth_type = "API_KEY"
api_base_url = "https://api.chatty.example"

[[fields]]
key = "api_key"
label = "API key"
secret = true
required = true

[credentials]
headers = [{ name = "Authorization", value = "Bearer {api_key}" }]

[verify]
path = "/auth.test"
account_pointer = "/user"
ok_body = [{ pointer = "/ok", equals = true }]

[[verify.failures]]
outcome = "INSUFFICIENT_SCOPES"
pointer = "/error"
equals = "missing_scope"
scope_pointer = "/needed"

[[verify.failures]]
outcome = "PROVIDER_UNAVAILABLE"
statuses = [403]
header = { name = "x-ratelimit-remaining", equals = "0" }
"#;

    fn classify(status: u16, headers: &[(&str, &str)], body: &str) -> Classified {
        let catalog = Catalog::from_sources([("chatty.toml", APP)]).unwrap();
        let verify = catalog.get("chatty").unwrap().verify().unwrap().clone();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let redactor = Redactor::new(["k-secret"]);
        response("Chatty", &verify, StatusCode::from_u16(status).unwrap(), &map, body.as_bytes(), &redactor)
    }

    #[test]
    fn an_ok_status_needs_its_body_rules() {
        let ok = classify(200, &[], r#"{"ok": true, "user": "grace"}"#);
        assert_eq!((ok.outcome, ok.account_label.as_deref()), (VerificationOutcome::Ok, Some("grace")));
        let refused = classify(200, &[], r#"{"ok": false, "error": "invalid_auth"}"#);
        assert_eq!(refused.outcome, VerificationOutcome::InvalidCredentials);
        assert!(refused.message.contains("`/ok` must be true"), "{}", refused.message);
        assert!(!refused.message.contains("invalid_auth"), "the body is not quoted");
        let garbled = classify(200, &[], "<html>maintenance</html>");
        assert_eq!(garbled.outcome, VerificationOutcome::ProviderUnavailable);
    }

    #[test]
    fn failure_rules_come_first_and_name_the_scope() {
        let scope = classify(
            200,
            &[],
            r#"{"ok": false, "error": "missing_scope", "needed": "chat:write,files:read"}"#,
        );
        assert_eq!(scope.outcome, VerificationOutcome::InsufficientScopes);
        assert_eq!(scope.missing_scopes, ["chat:write", "files:read"]);
        assert!(scope.message.contains("chat:write, files:read"), "{}", scope.message);
        let limited = classify(403, &[("X-RateLimit-Remaining", "0")], "{}");
        assert_eq!(limited.outcome, VerificationOutcome::ProviderUnavailable);
        assert_eq!(
            classify(403, &[("x-ratelimit-remaining", "12")], "{}").outcome,
            VerificationOutcome::InvalidCredentials
        );
    }

    #[test]
    fn an_rfc_6750_scope_challenge_is_a_missing_scope_on_any_status() {
        let header = r#"Bearer realm="example", error_description="needs more", error="insufficient_scope", scope="read write""#;
        for status in [401, 403] {
            let scope = classify(status, &[("www-authenticate", header)], "");
            assert_eq!(scope.outcome, VerificationOutcome::InsufficientScopes, "{status}");
            assert_eq!(scope.missing_scopes, ["read", "write"]);
        }
        let invalid = classify(401, &[("www-authenticate", "Bearer error=invalid_token")], "");
        assert_eq!(invalid.outcome, VerificationOutcome::InvalidCredentials);
        let basic =
            classify(401, &[("www-authenticate", r#"Basic realm="x", error="insufficient_scope""#)], "");
        assert_eq!(basic.outcome, VerificationOutcome::InvalidCredentials, "only Bearer challenges count");
    }

    #[test]
    fn what_the_provider_echoes_loses_the_sent_secrets() {
        let echoed = classify(200, &[], r#"{"ok": true, "user": "Bearer k-secret"}"#);
        assert_eq!(echoed.account_label.as_deref(), Some("Bearer ***"));
        let scope = classify(200, &[], r#"{"ok": false, "error": "missing_scope", "needed": ["k-secret"]}"#);
        assert_eq!(scope.missing_scopes, ["***"]);
    }

    #[test]
    fn statuses_decide_when_no_rule_does() {
        for (status, outcome) in [
            (401, VerificationOutcome::InvalidCredentials),
            (403, VerificationOutcome::InvalidCredentials),
            (404, VerificationOutcome::InvalidCredentials),
            (408, VerificationOutcome::ProviderUnavailable),
            (429, VerificationOutcome::ProviderUnavailable),
            (503, VerificationOutcome::ProviderUnavailable),
        ] {
            assert_eq!(classify(status, &[], "{}").outcome, outcome, "{status}");
        }
    }
}
