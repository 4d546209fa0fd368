//! Reads a token endpoint's answer into a `TokenSet` or a `TokenError`, and decides which
//! failures are transient (5xx, 429, timeouts, connection errors), which kill the grant
//! (`invalid_grant`) and which are other refusals. Text from the provider is kept short and
//! stripped of the request's secrets before it goes into an error.

use std::borrow::Cow;
use std::error::Error as _;

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::{TokenError, TokenSet};

/// Token responses are a few kilobytes; a larger body is not one, and is not read further.
const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_ERROR_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 300;
/// Providers' own names for `invalid_grant`: the code or refresh token is dead, or only a
/// person can renew the grant (GitHub's `bad_refresh_token` and `bad_verification_code`;
/// Slack's `invalid_refresh_token`, `invalid_code`, `code_already_used`, `code_expired`;
/// HubSpot's `BAD_REFRESH_TOKEN`, sent as `status`; Microsoft's `interaction_required`,
/// `consent_required` and `login_required`, which MSAL answers by signing the user in again).
const DEAD_GRANT_SYNONYMS: [&str; 9] = [
    "bad_refresh_token",
    "bad_verification_code",
    "invalid_refresh_token",
    "invalid_code",
    "code_already_used",
    "code_expired",
    "interaction_required",
    "consent_required",
    "login_required",
];
/// The `error` of a body that is no OAuth error response.
pub(super) const INVALID_RESPONSE: &str = "invalid_response";

/// Replaces the request's secrets in provider text: some providers quote what they refused,
/// as sent (form-encoded) or decoded.
pub(super) struct Redactor<'s> {
    secrets: Vec<Cow<'s, str>>,
}

impl<'s> Redactor<'s> {
    pub(super) fn new(secrets: impl IntoIterator<Item = &'s SecretString>) -> Self {
        let mut all = Vec::new();
        for secret in secrets.into_iter().map(|secret| secret.expose_secret()).filter(|s| !s.is_empty()) {
            all.extend(crate::outbound::redact::encodings(secret).into_iter().map(Cow::Owned));
        }
        all.sort_by_key(|secret: &Cow<'_, str>| std::cmp::Reverse(secret.len()));
        Self { secrets: all }
    }

    /// Also hides the `user:password` pair of an HTTP Basic header as sent (its base64 is
    /// what an endpoint echoing the header shows).
    pub(super) fn with_basic(mut self, user: &str, password: &str) -> Self {
        let pair = format!("{user}:{password}");
        self.secrets.extend(crate::outbound::redact::encodings(&pair).into_iter().map(Cow::Owned));
        self.secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        self
    }

    /// `text` without secrets or control characters, cut to `max` characters.
    fn clean(&self, text: &str, max: usize) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            text = text.replace(secret.as_ref(), "***");
        }
        let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max).collect();
        text.trim().to_owned()
    }
}

/// A request that got no answer: never the grant's fault, unless the egress policy refused the
/// host, which no retry will change.
pub(super) fn unavailable(error: reqwest::Error) -> TokenError {
    if let Some(refused) = crate::outbound::find_error::<crate::outbound::InternalResolution>(&error) {
        return TokenError::Rejected {
            error: "egress_refused".into(),
            description: Some(refused.to_string()),
            status: 0,
        };
    }
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let reason = if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        format!("cannot connect: {}", causes.join(": "))
    } else {
        format!("the request failed: {}", causes.join(": "))
    };
    TokenError::Unavailable { reason }
}

pub(super) async fn read(
    mut response: reqwest::Response,
    scope_separator: &str,
    redactor: &Redactor<'_>,
) -> Result<TokenSet, TokenError> {
    let status = response.status();
    let form_encoded =
        response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).is_some_and(|value| {
            value.starts_with("application/x-www-form-urlencoded") || value.starts_with("text/plain")
        });
    let mut bytes = Vec::new();
    let mut complete = true;
    while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            complete = false;
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    let body = if complete { parse_body(&bytes, form_encoded) } else { None };
    classify(status, body.as_ref(), scope_separator, redactor)
}

/// A JSON object, or `a=1&b=2` when the provider says it sends a form (old GitHub and Facebook
/// endpoints ignore `Accept: application/json`).
fn parse_body(bytes: &[u8], form_encoded: bool) -> Option<Map<String, Value>> {
    if let Ok(Value::Object(object)) = serde_json::from_slice(bytes) {
        return Some(object);
    }
    if !form_encoded {
        return None;
    }
    let object: Map<String, Value> = url::form_urlencoded::parse(bytes)
        .map(|(key, value)| (key.into_owned(), Value::from(value)))
        .collect();
    (object.contains_key("access_token") || object.contains_key("error")).then_some(object)
}

fn classify(
    status: StatusCode,
    body: Option<&Map<String, Value>>,
    scope_separator: &str,
    redactor: &Redactor<'_>,
) -> Result<TokenSet, TokenError> {
    let code = status.as_u16();
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return Err(TokenError::Unavailable { reason: format!("HTTP {code}") });
    }
    let rejected = |description: String| TokenError::Rejected {
        error: INVALID_RESPONSE.to_owned(),
        description: Some(description),
        status: code,
    };
    let Some(body) = body else {
        return Err(rejected(format!("HTTP {code} with a body that is no JSON object")));
    };
    if let Some((error, description)) = oauth_error(body, redactor) {
        return Err(match error.as_str() {
            "invalid_grant" => TokenError::InvalidGrant { description },
            code if DEAD_GRANT_SYNONYMS.contains(&code) => {
                let description =
                    Some(description.map_or_else(|| error.clone(), |text| format!("{error}: {text}")));
                TokenError::InvalidGrant { description }
            }
            // RFC 6749 §4.1.2.1's transient errors, which some token endpoints also use.
            "temporarily_unavailable" | "server_error" => TokenError::Unavailable { reason: error },
            _ => TokenError::Rejected { error, description, status: code },
        });
    }
    if !status.is_success() {
        if let Some(dead) = dead_grant_status(body, redactor) {
            return Err(dead);
        }
        return Err(rejected(format!("HTTP {code} without an OAuth error")));
    }
    TokenSet::from_response(body, scope_separator)
        .ok_or_else(|| rejected("no access_token in the response".to_owned()))
}

/// A refusal that names a dead grant in `status` instead of `error`, with its text in
/// `message`: HubSpot's `{"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid
/// refresh token"}`.
fn dead_grant_status(body: &Map<String, Value>, redactor: &Redactor<'_>) -> Option<TokenError> {
    let status = body.get("status").and_then(Value::as_str)?.to_ascii_lowercase();
    if !DEAD_GRANT_SYNONYMS.contains(&status.as_str()) {
        return None;
    }
    let message =
        body.get("message").and_then(Value::as_str).map(|text| redactor.clean(text, MAX_DESCRIPTION_CHARS));
    let description = match message.filter(|text| !text.is_empty()) {
        Some(text) => format!("{status}: {text}"),
        None => status,
    };
    Some(TokenError::InvalidGrant { description: Some(description) })
}

/// The `error` and `error_description` of an error body (RFC 6749 §5.2), whatever the status;
/// Slack's `{"ok": false, "error": ...}` counts too.
fn oauth_error(body: &Map<String, Value>, redactor: &Redactor<'_>) -> Option<(String, Option<String>)> {
    let error = body.get("error").filter(|error| !matches!(error, Value::Null | Value::Bool(false)));
    let failed = body.get("ok") == Some(&Value::Bool(false));
    if error.is_none() && !failed {
        return None;
    }
    let printable = |c: &char| c.is_ascii_graphic() && *c != '"' && *c != '\\';
    let code = redactor.clean(error.and_then(Value::as_str).unwrap_or_default(), MAX_ERROR_CHARS);
    let code: String = code.chars().filter(printable).collect();
    let code = if code.is_empty() { "unknown_error".to_owned() } else { code };
    let description = body
        .get("error_description")
        .and_then(Value::as_str)
        .map(|text| redactor.clean(text, MAX_DESCRIPTION_CHARS))
        .filter(|text| !text.is_empty());
    Some((code, description))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn outcome(status: u16, body: Value) -> Result<TokenSet, TokenError> {
        let secret = SecretString::from("s3cr3t-value");
        let redactor = Redactor::new([&secret]);
        let status = StatusCode::from_u16(status).unwrap();
        classify(status, body.as_object(), " ", &redactor)
    }

    #[test]
    fn invalid_grant_is_recognised_at_any_client_error_status() {
        for status in [400, 401] {
            let error = outcome(status, json!({"error": "invalid_grant", "error_description": "revoked"}));
            assert_eq!(
                error.unwrap_err(),
                TokenError::InvalidGrant { description: Some("revoked".to_owned()) }
            );
        }
    }

    #[test]
    fn providers_names_for_a_dead_grant_count_as_invalid_grant() {
        let error = outcome(200, json!({"error": "bad_refresh_token", "error_description": "expired"}));
        let expected = Some("bad_refresh_token: expired".to_owned());
        assert_eq!(error.unwrap_err(), TokenError::InvalidGrant { description: expected });
        let error = outcome(200, json!({"ok": false, "error": "invalid_refresh_token"}));
        let expected = Some("invalid_refresh_token".to_owned());
        assert_eq!(error.unwrap_err(), TokenError::InvalidGrant { description: expected });
    }

    #[test]
    fn server_errors_are_transient_whatever_the_body_says() {
        for status in [500, 502, 503, 429, 408] {
            let error = outcome(status, json!({"error": "invalid_grant"})).unwrap_err();
            assert!(error.is_transient(), "{status}: {error:?}");
        }
        assert!(outcome(400, json!({"error": "temporarily_unavailable"})).unwrap_err().is_transient());
    }

    #[test]
    fn a_body_that_is_no_oauth_answer_is_a_rejection() {
        let error = outcome(200, json!({"token": "x"})).unwrap_err();
        assert!(
            matches!(&error, TokenError::Rejected { error, status: 200, .. } if error == INVALID_RESPONSE)
        );
        assert!(matches!(outcome(404, json!({})).unwrap_err(), TokenError::Rejected { status: 404, .. }));
        let error = classify(StatusCode::OK, None, " ", &Redactor::new([])).unwrap_err();
        assert!(matches!(error, TokenError::Rejected { status: 200, .. }));
    }

    #[test]
    fn provider_text_loses_secrets_control_characters_and_length() {
        let long = "x".repeat(1000);
        let description = format!("got s3cr3t-value\n{long}");
        let body = json!({"error": "bad\"code s3cr3t-value", "error_description": description});
        let TokenError::Rejected { error, description: Some(description), .. } =
            outcome(400, body).unwrap_err()
        else {
            panic!("not a rejection");
        };
        assert_eq!(error, "badcode***");
        assert!(description.starts_with("got *** xxx"), "{description}");
        assert_eq!(description.chars().count(), MAX_DESCRIPTION_CHARS);
    }

    #[test]
    fn a_null_error_is_no_error() {
        let tokens = outcome(200, json!({"access_token": "a", "error": null})).unwrap();
        assert_eq!(tokens.access_token.expose_secret(), "a");
    }

    #[test]
    fn form_encoded_bodies_are_read_when_declared() {
        let body = parse_body(b"access_token=a&scope=repo%2Cuser&token_type=bearer", true).unwrap();
        assert_eq!(body.get("scope"), Some(&json!("repo,user")));
        assert!(parse_body(b"access_token=a", false).is_none());
        assert!(parse_body(b"<html>hello</html>", true).is_none());
    }
}
