//! Turns what a provider answered into a verification outcome and a message a person can act
//! on. Only a definite rejection (401, 403, other 4xx) condemns credentials; 5xx, 429, timeouts
//! and network failures are the provider's trouble and change nothing. Messages never quote the
//! provider's body, which may echo what was sent.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};

use crate::catalog::VerifyRequest;
use crate::domain::VerificationOutcome;

/// The outcome of one answer, with the account the provider named when it was OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub outcome: VerificationOutcome,
    pub message: String,
    pub account_label: Option<String>,
}

const MAX_LABEL_CHARS: usize = 200;

pub fn answer(
    app_name: &str,
    verify: &VerifyRequest,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Classified {
    let code = status.as_u16();
    if verify.is_ok(code) {
        let account_label = verify.account_pointer().and_then(|pointer| account_label(body, pointer));
        let message = match &account_label {
            Some(label) => format!("{app_name} accepted the credentials (account {label})"),
            None => format!("{app_name} accepted the credentials"),
        };
        return Classified { outcome: VerificationOutcome::Ok, message, account_label };
    }
    let (outcome, message) = match code {
        401 => (
            VerificationOutcome::InvalidCredentials,
            format!(
                "{app_name} rejected the credentials (HTTP 401); check that they are right and have not been revoked or expired"
            ),
        ),
        403 if signals_missing_scope(verify, headers, body) => (
            VerificationOutcome::InsufficientScopes,
            format!(
                "{app_name} accepted the credentials but they lack a permission (scope) the check needs (HTTP 403); grant it and reconnect"
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
        500..=599 => (
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
    Classified { outcome, message, account_label: None }
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
    }
}

fn signals_missing_scope(verify: &VerifyRequest, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .any(|value| value.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("insufficient_scope")));
    let app_signal =
        verify.insufficient_scope_body().is_some_and(|signal| String::from_utf8_lossy(body).contains(signal));
    header || app_signal
}

fn account_label(body: &[u8], pointer: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let label = match json.pointer(pointer)? {
        serde_json::Value::String(text) => text.trim().to_owned(),
        serde_json::Value::Number(number) => number.to_string(),
        _ => return None,
    };
    (!label.is_empty()).then(|| label.chars().take(MAX_LABEL_CHARS).collect())
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
