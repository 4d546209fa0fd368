//! Checking a connection against its provider and recording what was found: status, history,
//! audit. Used at create and edit (before storing) and by `verifyConnection`.

use std::collections::BTreeMap;

use sea_orm::TransactionTrait;
use secrecy::SecretString;

use super::{audit, secrets};
use crate::access;
use crate::catalog::{App, FormValues};
use crate::domain::{
    AuditAction, Connection, ConnectionId, ConnectionStatus, Principal, TeamId, Verification,
};
use crate::error::{AppError, AppResult};
use crate::events::{ConnectionEvent, ConnectionEventKind, VerificationEvent};
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
    verify::check(&state.outbound, &values).await.map(Some).map_err(settings_error)
}

/// What watchers learn once a checked change is committed.
pub(super) async fn publish_finished(
    state: &AppState,
    connection: &Connection,
    check: Option<&Verification>,
    previous_status: ConnectionStatus,
) {
    if let Some(check) = check {
        state.events.publish(VerificationEvent::finished(connection.team_id, connection.id, check)).await;
    }
    if connection.status != previous_status {
        let changed = ConnectionEvent::changed(
            connection.team_id,
            connection.id,
            ConnectionEventKind::StatusChanged,
            Some(connection.status),
            Some(previous_status),
        );
        state.events.publish(changed).await;
    }
}

/// `verifyConnection`: checks the stored credentials and records the result.
pub async fn verify_connection(
    state: &AppState,
    principal: &Principal,
    id: ConnectionId,
) -> AppResult<Verification> {
    let current = super::get(state, principal, id).await?;
    access::require_manage(&state.db, principal, current.team_id).await?;
    let app = super::find_app(state, &current.app_key)?;
    if app.verify().is_none() {
        return Err(AppError::bad_input("id", format!("{} offers no way to check a connection", app.name())));
    }
    let (connection, sealed) = store::connections::find_with_secrets(&state.db, current.team_id, id)
        .await?
        .ok_or(AppError::NotFound("connection"))?;
    let secret_values: BTreeMap<String, SecretString> = match &sealed {
        Some(blob) => secrets::open(&state.sealer, connection.team_id, id, blob)?,
        None => BTreeMap::new(),
    };
    let form = FormValues::from_parts(connection.public_fields.clone(), secret_values);
    state.events.publish(VerificationEvent::started(connection.team_id, id)).await;
    let values = RequestValues { app, form: &form, access_token: None };
    let check = verify::check(&state.outbound, &values).await.map_err(settings_error)?;

    let status = check.verification.outcome.next_status(connection.status);
    let txn = state.db.begin().await?;
    let recorded = store::connections::record_check(
        &txn,
        connection.team_id,
        id,
        connection.version,
        &check.verification,
        status,
    )
    .await?
    .ok_or_else(|| {
        AppError::Conflict("the connection was edited while it was being checked; verify it again".into())
    })?;
    record_history(&txn, state, &recorded, &check.verification).await?;
    audit::record(
        &txn,
        principal,
        &recorded,
        AuditAction::ConnectionVerified,
        audit::verification(&check.verification),
    )
    .await?;
    txn.commit().await?;
    publish_finished(state, &recorded, Some(&check.verification), connection.status).await;
    tracing::info!(connection_id = %id, team_id = %recorded.team_id, outcome = check.verification.outcome.as_str(), "connection verified");
    Ok(check.verification)
}

pub(super) async fn record_history(
    db: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    connection: &Connection,
    check: &Verification,
) -> AppResult<()> {
    store::verifications::record(
        db,
        connection.team_id,
        connection.id,
        check,
        state.config.verification_history,
    )
    .await?;
    Ok(())
}

/// A check that could not be sent says something about the connection's settings.
fn settings_error(err: VerifyError) -> AppError {
    match err {
        VerifyError::Build(build) => AppError::bad_input("fields", build),
        VerifyError::Egress(egress) => AppError::bad_input("fields", egress),
        VerifyError::InternalHost(message) => AppError::bad_input("fields", message),
    }
}
