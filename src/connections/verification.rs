//! Checking a connection against its provider and recording what was found: status, health,
//! history, audit, events. Used at create and edit (before storing), by `verifyConnection`,
//! and by the scheduler, which checks through `check_stored` and records a batch at a time
//! (`scheduled`).

use chrono::Utc;

use super::record::{self, Change, Fact, Write};
use super::secrets::StoredSecrets;
use super::{granted, tokens};
use crate::access;
use crate::catalog::{App, FormValues};
use crate::domain::{
    Actor, Connection, ConnectionId, ConnectionStatus, Health, Principal, TeamId, Verification,
    VerificationOutcome,
};
use crate::domain::{GrantStatus, next_grant_attention};
use crate::error::{AppError, AppResult};
use crate::events::VerificationEvent;
use crate::flows;
use crate::oauth::TokenProblem;
use crate::state::AppState;
use crate::store;
use crate::verify::{self, CheckResult, RequestValues, VerifyError};

/// Checks credentials not stored yet (of connection `id`, new or edited). `None` when the app
/// declares no check.
pub(super) async fn check_form(
    state: &AppState,
    app: &App,
    form: &FormValues,
    team_id: TeamId,
    id: ConnectionId,
) -> AppResult<Option<CheckResult>> {
    if app.verify().is_none() {
        return Ok(None);
    }
    state.events.publish(VerificationEvent::started(team_id, id)).await;
    let values = RequestValues { app, form, access_token: None };
    let _permit = state.provider_gate.enter(team_id).await;
    verify::check(&state.outbound, &values).await.map(Some).map_err(settings_error)
}

/// The health of credentials just checked (or not: `None`) when they are stored.
pub(super) fn initial_health(
    state: &AppState,
    check: Option<&CheckResult>,
    grant_expires_at: Option<chrono::DateTime<Utc>>,
) -> Health {
    let now = Utc::now();
    match check {
        Some(check) => state.schedule.after_check(
            &Health::default(),
            check.verification.outcome,
            now,
            jitter(),
            next_grant_attention(grant_expires_at, now),
            check.retry_after,
        ),
        None => Health { next_check_at: Some(now + state.schedule.interval), ..Health::default() },
    }
}

/// `verifyConnection`: checks the stored credentials and records the result.
pub async fn verify_connection(
    state: &AppState,
    principal: &Principal,
    id: ConnectionId,
) -> AppResult<Verification> {
    let (connection, sealed) = super::get_with_secrets(state, principal, id).await?;
    access::require_manage(&state.db, principal, connection.team_id).await?;
    let check = check_stored(state, &connection, sealed.as_deref()).await?;
    let recorded = record_check(state, &principal.actor(), &connection, &check).await?.ok_or_else(|| {
        AppError::Conflict("the connection was edited while it was being checked; verify it again".into())
    })?;
    // What was recorded, which includes what the flows' modules made of the check.
    Ok(recorded.last_verification.unwrap_or(check.verification))
}

/// Checks a stored connection with its provider, announcing the start to watchers.
#[tracing::instrument(skip_all, fields(connection_id = %connection.id, app = %connection.app_key))]
pub async fn check_stored(
    state: &AppState,
    connection: &Connection,
    sealed: Option<&[u8]>,
) -> AppResult<CheckResult> {
    let app = super::find_app(state, &connection.app_key)?;
    if app.verify().is_none() {
        return Err(AppError::bad_input("id", format!("{} offers no way to check a connection", app.name())));
    }
    if connection.status == ConnectionStatus::PendingAuthorization {
        return Err(AppError::bad_input("id", "the connection is waiting for consent; complete it first"));
    }
    let secrets = StoredSecrets::open(&state.sealer, connection.team_id, connection.id, sealed)?;
    let form = FormValues::from_parts(connection.public_fields.clone(), secrets.form);
    let form = granted::with_details(&form, &connection.token_details);
    state.events.publish(VerificationEvent::started(connection.team_id, connection.id)).await;
    if app.oauth().is_none() {
        let values = RequestValues { app, form: &form, access_token: None };
        return gated_check(state, connection, &values).await;
    }
    let started_at = Utc::now();
    // A grant that ends soon is exercised: providers with sliding grant lifetimes (rotating
    // refresh tokens with an idle limit) extend it when its refresh token is used.
    let exercise = GrantStatus::of(connection.grant_expires_at, started_at) == GrantStatus::Expiring;
    let token = match tokens::fresh_access_token(state, connection, exercise).await {
        Ok(token) => token,
        Err(problem) => return token_problem_check(problem, started_at),
    };
    let values = RequestValues { app, form: &form, access_token: Some(&token) };
    let check = gated_check(state, connection, &values).await?;
    // Only a plain rejection of the token is worth a renewal, whatever its status: Salesforce's
    // userinfo answers 403 `Bad_OAuth_Token` once a session without a stated expiry has timed
    // out, Slack 200 `token_expired`. A refusal that names a missing scope (Dropbox's 401) is
    // classified as such, and would be refused again whatever the token.
    if check.verification.outcome != VerificationOutcome::InvalidCredentials {
        return Ok(check);
    }
    // The provider refused a token we thought valid: renew it once and ask again.
    let token = match tokens::replace_refused_token(state, connection, &token).await {
        Ok(token) => token,
        Err(problem) => return token_problem_check(problem, started_at),
    };
    let values = RequestValues { app, form: &form, access_token: Some(&token) };
    gated_check(state, connection, &values).await
}

/// A check within the team's provider permits.
async fn gated_check(
    state: &AppState,
    connection: &Connection,
    values: &RequestValues<'_>,
) -> AppResult<CheckResult> {
    let _permit = state.provider_gate.enter(connection.team_id).await;
    verify::check(&state.outbound, values).await.map_err(settings_error)
}

/// A token that could not be had is itself the check's finding.
fn token_problem_check(problem: TokenProblem, started_at: chrono::DateTime<Utc>) -> AppResult<CheckResult> {
    let outcome = match &problem {
        TokenProblem::NeedsReauthorization(_) => VerificationOutcome::NeedsReauthorization,
        TokenProblem::Unavailable(_) => VerificationOutcome::ProviderUnavailable,
        TokenProblem::Rejected(_) => VerificationOutcome::InvalidCredentials,
        TokenProblem::Gone | TokenProblem::Internal => return Err(problem.into()),
    };
    Ok(CheckResult {
        verification: Verification {
            outcome,
            message: Some(problem.to_string()),
            account_label: None,
            started_at,
            finished_at: Utc::now(),
        },
        account_label: None,
        http_status: None,
        retry_after: None,
    })
}

/// Writes a manual check's result if the connection is still at the version checked: status,
/// health, history and audit in one transaction, then tells watchers. Answers the updated
/// connection, or `None` when the result was stale and dropped.
pub async fn record_check(
    state: &AppState,
    actor: &Actor,
    connection: &Connection,
    check: &CheckResult,
) -> AppResult<Option<Connection>> {
    let txn = crate::store::begin(&state.db).await?;
    let check = with_module_scopes(&txn, state, connection, check.clone()).await?;
    let outcome = check.verification.outcome;
    let (status, health) = next_state(state, connection, outcome, check.retry_after);
    let change = |found, status| Change {
        actor,
        fact: Fact::Checked,
        before: Some(found),
        write: Write::Check { version: connection.version, status, health: health.clone() },
        check: Some(&check.verification),
    };
    // Nearly always the status is still the one read before the check: written over it, with
    // no read first.
    let mut recorded = record::record(&txn, state, change(connection, status)).await?;
    if recorded.is_none() {
        // Edited or deleted meanwhile (then nothing lands), or a refresh during the check
        // flagged it, a change announced already: written over the status as it stands, from
        // which the outcome's status is worked out again (an outage's keeps it).
        if let Some(stored) = store::connections::find(&txn, connection.team_id, connection.id).await?
            && stored.version == connection.version
            && stored.status != connection.status
        {
            let found = Connection { status: stored.status, ..connection.clone() };
            recorded =
                record::record(&txn, state, change(&found, outcome.next_status(stored.status))).await?;
        }
    }
    if recorded.is_some() {
        super::commit(state, txn).await?;
    }
    Ok(recorded)
}

/// The status and health a check's outcome leads to.
pub(super) fn next_state(
    state: &AppState,
    connection: &Connection,
    outcome: VerificationOutcome,
    retry_after: Option<std::time::Duration>,
) -> (ConnectionStatus, Health) {
    let health = state.schedule.after_check(
        &connection.health,
        outcome,
        Utc::now(),
        jitter(),
        next_grant_attention(connection.grant_expires_at, Utc::now()),
        retry_after,
    );
    (outcome.next_status(connection.status), health)
}

/// A passing check of a connection whose running flows' modules need scopes it was not granted
/// becomes `INSUFFICIENT_SCOPES`, naming them: those flows would fail.
/// Reads through `db`: inside a transaction, its own connection (asking the pool for another
/// while holding SQLite's write lock can wait on writers that wait on this one).
pub(super) async fn with_module_scopes(
    db: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    connection: &Connection,
    mut check: CheckResult,
) -> AppResult<CheckResult> {
    if check.verification.outcome != VerificationOutcome::Ok {
        return Ok(check);
    }
    let usages = flows::usage::usages(db, &state.catalog, connection).await?;
    if let Some(gaps) = flows::usage::gaps_message(&usages) {
        check.verification.outcome = VerificationOutcome::InsufficientScopes;
        check.verification.message =
            Some(format!("the credentials work, but {gaps}; reauthorize with these scopes"));
    }
    Ok(check)
}

/// A number in [0, 1) to spread checks over time.
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// A check that could not be sent says something about the connection's settings.
fn settings_error(err: VerifyError) -> AppError {
    match err {
        VerifyError::Build(build) => AppError::bad_input("fields", build),
        VerifyError::Egress(egress) => AppError::bad_input("fields", egress),
        VerifyError::InternalHost(message) => AppError::bad_input("fields", message),
    }
}
