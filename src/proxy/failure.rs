//! What a provider's refusal of a proxied call says about the connection. The one place the
//! proxy classifies answers (verification's classifier decides, so the rules are the same), and
//! the one place it records a check because of a call.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::catalog::App;
use crate::connections;
use crate::domain::{Connection, Principal, Verification, VerificationOutcome};
use crate::state::AppState;
use crate::verify::CheckResult;

/// Most of a refusal's body read to classify it; the rest streams on untouched.
pub const CLASSIFY_BYTES: usize = 64 * 1024;

/// The outcome a refusal means for the connection, or `None` for an answer that says nothing
/// about the credentials.
pub fn classify(
    app: &App,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<(VerificationOutcome, String)> {
    if !matches!(status.as_u16(), 401 | 403) {
        return None;
    }
    let (outcome, message) = match app.verify() {
        Some(verify) => {
            // Only the outcome and its message are used, and a message never quotes the body:
            // nothing the call sent can come back out, so there is nothing to redact.
            let nothing_sent = crate::outbound::redact::Redactor::new([]);
            let classified =
                crate::verify::classify_response(app.name(), verify, status, headers, body, &nothing_sent);
            (classified.outcome, classified.message)
        }
        None if status == StatusCode::UNAUTHORIZED => (
            VerificationOutcome::InvalidCredentials,
            format!("{} rejected the credentials (HTTP 401)", app.name()),
        ),
        None if signals_scope(headers) => (
            VerificationOutcome::InsufficientScopes,
            format!("{} says the credentials lack a permission (scope) (HTTP 403)", app.name()),
        ),
        None => return None,
    };
    match (status.as_u16(), outcome) {
        (401, _) => Some((outcome, format!("{message} (on a proxied call)"))),
        // Any other 403 may be about the resource, not the credentials: it is passed on as is.
        (403, VerificationOutcome::InsufficientScopes) => Some((outcome, message)),
        _ => None,
    }
}

fn signals_scope(headers: &HeaderMap) -> bool {
    headers
        .get_all("www-authenticate")
        .iter()
        .any(|value| value.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("insufficient_scope")))
}

/// The scopes a scope refusal names that the connection was not granted: from the standard
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."` (RFC 6750 §3) or GitHub's
/// `X-Accepted-OAuth-Scopes`.
pub fn missing_scopes(headers: &HeaderMap, granted: &[String]) -> Vec<String> {
    let mut named: Vec<String> = Vec::new();
    for value in headers.get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok()) {
        if let Some((_, rest)) = value.split_once("scope=\"") {
            named.extend(rest.split('"').next().unwrap_or_default().split_whitespace().map(str::to_owned));
        }
    }
    if let Some(accepted) = headers.get("x-accepted-oauth-scopes").and_then(|v| v.to_str().ok()) {
        named.extend(accepted.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
    }
    let mut missing: Vec<String> = named.into_iter().filter(|scope| !granted.contains(scope)).collect();
    missing.sort();
    missing.dedup();
    missing.truncate(50);
    missing
}

/// Records what a call found as a check of the connection: status, history, audit, events and
/// webhooks, as verification does.
pub async fn record(
    state: &AppState,
    principal: &Principal,
    connection: &Connection,
    outcome: VerificationOutcome,
    message: String,
) {
    let check = CheckResult {
        verification: Verification::noted(outcome, message),
        account_label: None,
        http_status: None,
    };
    match connections::record_check(state, &principal.actor(), connection, &check).await {
        Ok(Some(_)) => {
            tracing::info!(connection_id = %connection.id, outcome = outcome.as_str(), "a proxied call recorded a check")
        }
        Ok(None) => {
            tracing::debug!(connection_id = %connection.id, "the connection changed meanwhile; the call's finding was dropped")
        }
        Err(err) => {
            tracing::error!(connection_id = %connection.id, error = %err, "could not record a proxied call's finding")
        }
    }
}
