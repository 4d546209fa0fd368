//! Fresh access tokens for OAuth connections. A stored token is used as long as it is good for
//! longer than the skew; a token the provider gave no expiry does not expire (it is renewed
//! only when the provider refuses it). Renewing is single-flight per connection: one per
//! process (`SingleFlight`) and one across instances (a lease on the row, see `refresh`).

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::granted::{expiry, token_client, usable};
use super::refresh::{self, Need};
use super::secrets::StoredSecrets;
use crate::catalog::{App, FormValues};
use crate::domain::{Connection, ConnectionId, TeamId, Verification, VerificationOutcome};
use crate::error::{AppError, AppResult};
use crate::events::VerificationEvent;
use crate::oauth::{self, TokenError, TokenProblem};
use crate::state::AppState;
use crate::store;
use crate::verify::{self, CheckResult, RequestValues};

/// The connection's access token, renewed first when it expires within the skew (or when
/// `force`: a newer one than the generation `connection` holds is wanted).
pub async fn fresh_access_token(
    state: &AppState,
    connection: &Connection,
    force: bool,
) -> Result<SecretString, TokenProblem> {
    if !force && let Some(token) = stored_token(state, connection).await? {
        return Ok(token);
    }
    let need = if force { Need::NewerThan(connection.token_generation) } else { Need::Usable };
    obtain(state, connection, need).await
}

/// Another access token than `refused`, which the provider just refused: the one stored if
/// someone renewed it meanwhile, else a renewed one.
pub async fn replace_refused_token(
    state: &AppState,
    connection: &Connection,
    refused: &SecretString,
) -> Result<SecretString, TokenProblem> {
    obtain(state, connection, Need::Not(refused.clone())).await
}

async fn obtain(state: &AppState, connection: &Connection, need: Need) -> Result<SecretString, TokenProblem> {
    let patience = refresh::patience(state);
    let (state_for_flight, connection_for_flight) = (state.clone(), connection.clone());
    state
        .token_flights
        .run(connection.id, move || async move {
            // Spawned, so a caller that goes away cannot cancel a refresh between the provider
            // rotating the token and our storing it; the task goes on if the caller stops waiting.
            let task = tokio::spawn(async move {
                refresh::refresh(&state_for_flight, &connection_for_flight, need).await
            });
            match tokio::time::timeout(patience, task).await {
                Ok(Ok(result)) => result,
                Ok(Err(err)) => Err(TokenProblem::internal(format!("the refresh task failed: {err}"))),
                Err(_) => Err(TokenProblem::Unavailable(
                    "renewing the access token is taking too long; try again shortly".into(),
                )),
            }
        })
        .await
}

/// The stored token, if it can be used as it is.
async fn stored_token(
    state: &AppState,
    connection: &Connection,
) -> Result<Option<SecretString>, TokenProblem> {
    let (current, sealed) =
        store::connections::find_with_secrets(&state.db, connection.team_id, connection.id)
            .await
            .map_err(TokenProblem::internal)?
            .ok_or(TokenProblem::Gone)?;
    let secrets = StoredSecrets::open(&state.sealer, current.team_id, current.id, sealed.as_deref())
        .map_err(TokenProblem::internal)?;
    Ok(usable(state, &current, &secrets))
}

/// The first token of a client-credentials connection, and the check made with it.
pub(super) struct FirstToken {
    pub access_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
    pub check: Option<CheckResult>,
}

/// Asks the token endpoint for a client-credentials token and checks it. A refusal is stored as
/// the check's finding (the connection is saved `INVALID`, like a rejected API key); an
/// unavailable endpoint leaves it unverified, to be retried by the scheduler.
pub(super) async fn first_client_token(
    state: &AppState,
    app: &App,
    form: &FormValues,
    scopes: &[String],
    team_id: TeamId,
    id: ConnectionId,
) -> AppResult<FirstToken> {
    let client = state.oauth_clients.for_app(app, form).map_err(|err| match err.field() {
        Some(field) => AppError::bad_input(format!("fields.{field}"), err),
        None => AppError::bad_input("app", err),
    })?;
    state.events.publish(VerificationEvent::started(team_id, id)).await;
    let started_at = Utc::now();
    let http = token_client(state, app, form).map_err(|err| AppError::bad_input("fields", err))?;
    let permit = state.provider_gate.enter(team_id).await;
    let tokens = match oauth::client_credentials(&http, app, form, &client, scopes).await {
        Ok(tokens) => tokens,
        Err(TokenError::Setup(err)) => return Err(AppError::bad_input("fields", err)),
        Err(err) => {
            let outcome = if err.is_transient() {
                VerificationOutcome::ProviderUnavailable
            } else {
                VerificationOutcome::InvalidCredentials
            };
            let message = format!("{} did not issue a token: {err}", app.name());
            let verification = Verification {
                outcome,
                message: Some(message),
                account_label: None,
                started_at,
                finished_at: Utc::now(),
            };
            let check =
                CheckResult { verification, account_label: None, http_status: None, retry_after: None };
            return Ok(FirstToken { access_token: None, expires_at: None, check: Some(check) });
        }
    };
    let expires_at = expiry(Utc::now(), tokens.expires_in);
    let check = match app.verify() {
        Some(_) => {
            let values = RequestValues { app, form, access_token: Some(&tokens.access_token) };
            Some(
                verify::check(&state.outbound, &values)
                    .await
                    .map_err(|err| AppError::bad_input("fields", err))?,
            )
        }
        None => None,
    };
    drop(permit);
    Ok(FirstToken { access_token: Some(tokens.access_token), expires_at, check })
}
