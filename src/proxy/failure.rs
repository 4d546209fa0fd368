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

/// What an answer says about the connection's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub outcome: VerificationOutcome,
    pub message: String,
    /// For `InsufficientScopes`: those the answer names that the connection lacks.
    pub missing_scopes: Vec<String>,
}

impl Finding {
    fn on_a_call(outcome: VerificationOutcome, message: &str, missing_scopes: Vec<String>) -> Finding {
        Finding { outcome, message: format!("{message} (on a proxied call)"), missing_scopes }
    }
}

/// What a refusal means for the connection, or `None` for an answer that says nothing about
/// the credentials. `granted` are the connection's scopes.
///
/// The app's rules were written for its verification request, where a bare 403 can only mean
/// a scope (Asana's `/users/me` needs nothing else). On any other path a 403 is more often
/// about the resource (a project the user is not in, a mailbox not theirs), so a call's 403
/// counts as missing scopes only where the answer itself says so: the app's
/// `insufficient_scope_body`, a rule's `scope_pointer`, an `insufficient_scope` challenge, or
/// GitHub's accepted scopes, none of them granted.
pub fn classify(
    app: &App,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    granted: &[String],
) -> Option<Finding> {
    if !matches!(status.as_u16(), 401 | 403) {
        return None;
    }
    let named = missing_scopes(app, headers, granted);
    if status == StatusCode::FORBIDDEN && (signals_scope(headers) || !named.is_empty()) {
        let message = format!("{} says the credentials lack a permission (scope) (HTTP 403)", app.name());
        return Some(Finding::on_a_call(VerificationOutcome::InsufficientScopes, &message, named));
    }
    let Some(verify) = app.verify() else {
        let message = format!("{} rejected the credentials (HTTP 401)", app.name());
        return (status == StatusCode::UNAUTHORIZED)
            .then(|| Finding::on_a_call(VerificationOutcome::InvalidCredentials, &message, Vec::new()));
    };
    // Only the outcome, its message and scope names are used, and a message never quotes the
    // body: nothing the call sent can come back out, so there is nothing to redact.
    let nothing_sent = crate::outbound::redact::Redactor::new([]);
    let classified =
        crate::verify::classify_response(app.name(), verify, status, headers, body, &nothing_sent);
    let says_scope = !classified.missing_scopes.is_empty()
        || verify
            .insufficient_scope_body()
            .is_some_and(|signal| body.windows(signal.len()).any(|window| window == signal.as_bytes()));
    let missing =
        if named.is_empty() { app.missing_scopes(&classified.missing_scopes, granted) } else { named };
    match (status.as_u16(), classified.outcome) {
        (401, outcome) => Some(Finding::on_a_call(outcome, &classified.message, missing)),
        (403, VerificationOutcome::InsufficientScopes) if says_scope => Some(Finding {
            outcome: VerificationOutcome::InsufficientScopes,
            message: classified.message,
            missing_scopes: missing,
        }),
        // Any other 403 may be about the resource, not the credentials: it is passed on as is.
        _ => None,
    }
}

/// Whether `app` may answer a failure with a 2xx status, as its verification request shows
/// (`ok_body`: Slack's `{"ok": false}`, GraphQL APIs' `errors`), and this answer is JSON: it
/// is then read to be classified.
pub fn fails_with_success(app: &App, headers: &HeaderMap) -> bool {
    let json = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().contains("json"));
    json && app.verify().is_some_and(|verify| !verify.ok_body().is_empty() && !verify.failures().is_empty())
}

/// What a 2xx answer's body says about the connection, where one of the app's failure rules
/// describes it: rejected credentials (Slack's `token_revoked`), or scopes it names that the
/// connection lacks. Anything else (`channel_not_found`) is the call's own business.
pub fn classify_success(app: &App, headers: &HeaderMap, body: &[u8], granted: &[String]) -> Option<Finding> {
    let verify = app.verify()?;
    let nothing_sent = crate::outbound::redact::Redactor::new([]);
    let classified =
        crate::verify::by_failure_rules(app.name(), verify, StatusCode::OK, headers, body, &nothing_sent)?;
    let missing = app.missing_scopes(&classified.missing_scopes, granted);
    match classified.outcome {
        VerificationOutcome::InvalidCredentials => {
            Some(Finding::on_a_call(classified.outcome, &classified.message, Vec::new()))
        }
        VerificationOutcome::InsufficientScopes if !missing.is_empty() => {
            Some(Finding::on_a_call(classified.outcome, &classified.message, missing))
        }
        _ => None,
    }
}

fn signals_scope(headers: &HeaderMap) -> bool {
    headers
        .get_all("www-authenticate")
        .iter()
        .any(|value| value.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("insufficient_scope")))
}

/// The scopes a scope refusal names that the connection's `granted` scopes do not cover (as
/// the app defines its scopes): from the standard `WWW-Authenticate: Bearer
/// error="insufficient_scope", scope="..."` (RFC 6750 §3), all needed, or GitHub's
/// `X-Accepted-OAuth-Scopes`, any one of which would do: none is missing when one is covered.
pub fn missing_scopes(app: &App, headers: &HeaderMap, granted: &[String]) -> Vec<String> {
    let mut named: Vec<String> = Vec::new();
    for value in headers.get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok()) {
        if let Some((_, rest)) = value.split_once("scope=\"") {
            named.extend(rest.split('"').next().unwrap_or_default().split_whitespace().map(str::to_owned));
        }
    }
    if let Some(accepted) = headers.get("x-accepted-oauth-scopes").and_then(|v| v.to_str().ok()) {
        let accepted: Vec<String> =
            accepted.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        if app.missing_scopes(&accepted, granted).len() == accepted.len() {
            named.extend(accepted);
        }
    }
    let mut missing = app.missing_scopes(&named, granted);
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
        retry_after: None,
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
