//! Fresh access tokens for OAuth connections. A token near its expiry (within the skew) is
//! refreshed first; a refresh is single-flight per connection: one per process (`SingleFlight`)
//! and one across instances (the row lock held while refreshing), so a rotating refresh token
//! is never spent twice. The new refresh token is stored in the same write as the new access
//! token. `invalid_grant` flags the connection `NEEDS_REAUTHORIZATION`; an unavailable provider
//! changes nothing.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::secrets::StoredSecrets;
use crate::catalog::{App, FormValues};
use crate::domain::{
    Actor, ActorKind, AuditAction, AuthType, Connection, ConnectionId, ConnectionStatus, TeamId,
    Verification, VerificationOutcome,
};
use crate::error::{AppError, AppResult};
use crate::events::VerificationEvent;
use crate::oauth::{self, TokenError, TokenSet};
use crate::state::AppState;
use crate::store;
use crate::verify::host_is_templated;
use crate::verify::{self, CheckResult, RequestValues};

/// Why no usable access token could be had. Messages are for people and hold no secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenProblem {
    #[error("{0}")]
    NeedsReauthorization(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Internal(String),
}

/// The connection's access token, refreshed first when it expires within the skew (or when
/// `force`, after the provider refused it).
pub async fn fresh_access_token(
    state: &AppState,
    connection: &Connection,
    force: bool,
) -> Result<SecretString, TokenProblem> {
    if !force && let Some(token) = current_token(state, connection).await? {
        return Ok(token);
    }
    let (state_for_flight, connection_for_flight) = (state.clone(), connection.clone());
    state
        .token_flights
        .run(connection.id, move || async move {
            // Spawned, so a caller that goes away cannot cancel a refresh between the provider
            // rotating the token and our storing it.
            let task = tokio::spawn(async move {
                refresh_locked(&state_for_flight, &connection_for_flight, force).await
            });
            task.await
                .unwrap_or_else(|err| Err(TokenProblem::Internal(format!("the refresh task failed: {err}"))))
        })
        .await
}

/// The stored token, if it is good for longer than the skew.
async fn current_token(
    state: &AppState,
    connection: &Connection,
) -> Result<Option<SecretString>, TokenProblem> {
    if !is_fresh(state, connection.expires_at) {
        return Ok(None);
    }
    let (_, sealed) = store::connections::find_with_secrets(&state.db, connection.team_id, connection.id)
        .await
        .map_err(internal)?
        .ok_or_else(|| TokenProblem::Internal("the connection is gone".into()))?;
    let secrets = StoredSecrets::open(&state.sealer, connection.team_id, connection.id, sealed.as_deref())
        .map_err(internal)?;
    Ok(secrets.access_token)
}

fn is_fresh(state: &AppState, expires_at: Option<DateTime<Utc>>) -> bool {
    let skew = chrono::Duration::from_std(state.config.token_refresh_skew).unwrap_or_default();
    expires_at.is_some_and(|expires| expires > Utc::now() + skew)
}

#[tracing::instrument(skip_all, fields(connection_id = %connection.id, app = %connection.app_key))]
async fn refresh_locked(
    state: &AppState,
    connection: &Connection,
    force: bool,
) -> Result<SecretString, TokenProblem> {
    let txn = crate::store::begin(&state.db).await.map_err(internal)?;
    let (current, sealed) = store::connections::lock_with_secrets(&txn, connection.team_id, connection.id)
        .await
        .map_err(internal)?
        .ok_or_else(|| TokenProblem::Internal("the connection is gone".into()))?;
    let mut secrets = StoredSecrets::open(&state.sealer, current.team_id, current.id, sealed.as_deref())
        .map_err(internal)?;
    // Another caller (or instance) may have refreshed while this one waited for the lock.
    let refreshed_meanwhile = current.expires_at != connection.expires_at;
    if (refreshed_meanwhile || !force)
        && is_fresh(state, current.expires_at)
        && let Some(token) = secrets.access_token.clone()
    {
        return Ok(token);
    }
    let app = state
        .catalog
        .get(&current.app_key)
        .ok_or_else(|| TokenProblem::Internal(format!("app {} is not in the catalog", current.app_key)))?;
    let form = FormValues::from_parts(current.public_fields.clone(), secrets.form.clone());
    let tokens = match request_tokens(state, app, &form, &current, &secrets).await {
        Ok(tokens) => tokens,
        Err(err) => {
            drop(txn);
            crate::metrics::refresh(app.key(), refresh_result(&err));
            return Err(on_token_error(state, &current, err).await);
        }
    };
    crate::metrics::refresh(app.key(), "ok");
    let expires_at = expiry(state, &tokens);
    secrets.access_token = Some(tokens.access_token.clone());
    if let Some(rotated) = tokens.refresh_token.clone() {
        secrets.refresh_token = Some(rotated);
    }
    let sealed = secrets
        .seal(&state.sealer, current.team_id, current.id)
        .map_err(internal)?
        .ok_or_else(|| TokenProblem::Internal("nothing to seal".into()))?;
    store::connections::store_tokens(
        &txn,
        current.team_id,
        current.id,
        sealed,
        expires_at,
        tokens.scopes.as_deref(),
    )
    .await
    .map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    tracing::info!(expires_at = %expires_at, rotated = tokens.refresh_token.is_some(), "access token refreshed");
    Ok(tokens.access_token)
}

/// A refresh with the refresh token, or for client-credentials apps a new token.
async fn request_tokens(
    state: &AppState,
    app: &App,
    form: &FormValues,
    connection: &Connection,
    secrets: &StoredSecrets,
) -> Result<TokenSet, TokenError> {
    let client = state.oauth_clients.for_app(app, form).map_err(|err| TokenError::Rejected {
        error: "no_client".into(),
        description: Some(err.to_string()),
        status: 0,
    })?;
    let http = token_client(state, app, form)?;
    match (connection.auth_type, &secrets.refresh_token) {
        (AuthType::OAuth2ClientCredentials, _) => {
            oauth::client_credentials(&http, app, form, &client, &connection.scopes).await
        }
        (_, Some(refresh_token)) => oauth::refresh(&http, app, form, &client, refresh_token).await,
        (_, None) => Err(TokenError::InvalidGrant {
            description: Some(
                "the provider gave no refresh token, so the access token cannot be renewed".into(),
            ),
        }),
    }
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
            let check = CheckResult { verification, account_label: None, http_status: None };
            return Ok(FirstToken { access_token: None, expires_at: None, check: Some(check) });
        }
    };
    let expires_at = expiry(state, &tokens);
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
    Ok(FirstToken { access_token: Some(tokens.access_token), expires_at: Some(expires_at), check })
}

/// The outbound client for the app's token endpoint, under the egress policy when a user's form
/// chose its host.
pub(super) fn token_client(
    state: &AppState,
    app: &App,
    form: &FormValues,
) -> Result<reqwest::Client, TokenError> {
    let url = oauth::token_url(app, form)?;
    let user_supplied = app.oauth().is_some_and(|o| host_is_templated(o.token_url()));
    state.outbound.client_for(&url, user_supplied).cloned().map_err(|err| TokenError::Rejected {
        error: "egress_refused".into(),
        description: Some(err.to_string()),
        status: 0,
    })
}

/// When tokens from this answer expire; an answer without an expiry gets the assumed lifetime,
/// so the token is still refreshed and checked.
pub(super) fn expiry(state: &AppState, tokens: &TokenSet) -> DateTime<Utc> {
    let lifetime = tokens.expires_in.unwrap_or(state.config.assumed_token_lifetime);
    Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1))
}

fn refresh_result(err: &TokenError) -> &'static str {
    match err {
        TokenError::InvalidGrant { .. } => "invalid_grant",
        TokenError::Unavailable { .. } => "unavailable",
        TokenError::Rejected { .. } | TokenError::Setup(_) => "rejected",
    }
}

/// Turns a failed refresh into a problem, flagging the connection when the grant is dead.
async fn on_token_error(state: &AppState, connection: &Connection, err: TokenError) -> TokenProblem {
    let app_name = state.catalog.get(&connection.app_key).map_or(connection.app_key.as_str(), App::name);
    match err {
        TokenError::Unavailable { reason } => {
            tracing::warn!(%reason, "token refresh failed for now; status unchanged");
            TokenProblem::Unavailable(format!(
                "{app_name} could not renew the access token right now ({reason}); the status is unchanged"
            ))
        }
        TokenError::InvalidGrant { description } => {
            let message = format!(
                "{app_name} no longer accepts this connection's grant{}; reauthorize the connection",
                description.map(|d| format!(" ({d})")).unwrap_or_default()
            );
            flag(
                state,
                connection,
                ConnectionStatus::NeedsReauthorization,
                VerificationOutcome::NeedsReauthorization,
                &message,
            )
            .await;
            TokenProblem::NeedsReauthorization(message)
        }
        other => {
            let message = format!("{app_name} refused to renew the access token: {other}");
            TokenProblem::Rejected(message)
        }
    }
}

/// Records a status found while refreshing, with its audit entry and events.
async fn flag(
    state: &AppState,
    connection: &Connection,
    status: ConnectionStatus,
    outcome: VerificationOutcome,
    message: &str,
) {
    let now = Utc::now();
    let note = Verification {
        outcome,
        message: Some(message.to_owned()),
        account_label: None,
        started_at: now,
        finished_at: now,
    };
    let result = async {
        let txn = crate::store::begin(&state.db).await?;
        let updated =
            store::connections::set_status(&txn, connection.team_id, connection.id, status, &note).await?;
        if let Some(updated) = &updated {
            let actor = Actor { kind: ActorKind::System, id: None, label: "token refresh".into() };
            super::audit::record(
                &txn,
                &actor,
                updated,
                AuditAction::ConnectionVerified,
                super::audit::verification(&note),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            super::verification::stage_finished(&txn, state, updated, Some(&note), connection.status)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        super::commit(state, txn).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::Ok(updated)
    }
    .await;
    match result {
        Ok(_) => {}
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "could not flag a connection after a refresh")
        }
    }
}

fn internal(err: impl std::fmt::Display) -> TokenProblem {
    tracing::error!(error = %err, "token handling failed");
    TokenProblem::Internal(crate::error::INTERNAL_MESSAGE.to_owned())
}
