//! The life of a connection: create, read, edit (replace), delete, and key rotation.
//!
//! Every change checks the caller's access to the team, validates the form against the app's
//! catalog entry, seals the secrets, and writes the change and its audit event in one
//! transaction. Nothing here returns or logs a secret value.

mod secrets;

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

use crate::access;
use crate::catalog::{App, FormMode};
use crate::domain::{
    AuditAction, AuditEvent, AuditEventId, Connection, ConnectionId, ConnectionName, ConnectionStatus,
    Principal, TeamId,
};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;
use crate::store::connections::{ConnectionData, ConnectionFilter, NewConnection};

pub use secrets::open as open_secrets;

pub struct CreateConnection {
    pub team_id: TeamId,
    pub app: String,
    pub name: String,
    pub fields: serde_json::Value,
    pub scopes: Option<Vec<String>>,
}

pub struct EditConnection {
    pub name: Option<String>,
    pub fields: serde_json::Value,
    pub scopes: Option<Vec<String>>,
    /// The version the caller edited; a newer stored version is a conflict.
    pub version: Option<i32>,
}

/// Most scopes a connection may list, and the longest scope accepted.
const MAX_SCOPES: usize = 100;
const MAX_SCOPE_CHARS: usize = 200;

pub async fn create(
    state: &AppState,
    principal: &Principal,
    input: CreateConnection,
) -> AppResult<Connection> {
    access::require_manage(&state.db, principal, input.team_id).await?;
    let app = find_app(state, &input.app)?;
    refuse_consent_apps(app)?;
    let name = ConnectionName::parse(&input.name).map_err(|m| AppError::bad_input("name", m))?;
    let form = app.check_form(&input.fields, FormMode::Create).map_err(field_error)?;
    let scopes = check_scopes(input.scopes.unwrap_or_default())?;

    let id = ConnectionId::new();
    let sealed = secrets::seal(&state.sealer, input.team_id, id, form.secrets())?;
    let data = ConnectionData {
        name,
        status: ConnectionStatus::Unverified,
        public_fields: form.public().clone(),
        secret_fields: form.secret_keys().map(str::to_owned).collect(),
        sealed,
        scopes,
    };
    let txn = state.db.begin().await?;
    let connection = store::connections::insert(
        &txn,
        NewConnection {
            id,
            team_id: input.team_id,
            app_key: app.key().to_owned(),
            auth_type: app.auth_type(),
            data,
            created_by: principal.user_id(),
        },
    )
    .await?;
    audit(&txn, principal, &connection, AuditAction::ConnectionCreated, change_detail(&connection)).await?;
    txn.commit().await?;
    tracing::info!(connection_id = %connection.id, team_id = %connection.team_id, app = %connection.app_key, "connection created");
    Ok(connection)
}

pub async fn edit(
    state: &AppState,
    principal: &Principal,
    id: ConnectionId,
    input: EditConnection,
) -> AppResult<Connection> {
    let current = get(state, principal, id).await?;
    access::require_manage(&state.db, principal, current.team_id).await?;
    if let Some(version) = input.version
        && version != current.version
    {
        return Err(stale(current.version));
    }
    let app = find_app(state, &current.app_key)?;
    refuse_consent_apps(app)?;
    let name = match input.name {
        Some(raw) => ConnectionName::parse(&raw).map_err(|m| AppError::bad_input("name", m))?,
        None => current.name.clone(),
    };
    let form = app.check_form(&input.fields, FormMode::Edit).map_err(field_error)?;
    let scopes = match input.scopes {
        Some(scopes) => check_scopes(scopes)?,
        None => current.scopes.clone(),
    };
    let sealed = secrets::seal(&state.sealer, current.team_id, id, form.secrets())?;
    let data = ConnectionData {
        name,
        // New credentials have not been checked yet.
        status: ConnectionStatus::Unverified,
        public_fields: form.public().clone(),
        secret_fields: form.secret_keys().map(str::to_owned).collect(),
        sealed,
        scopes,
    };
    let txn = state.db.begin().await?;
    let edited =
        store::connections::replace(&txn, current.team_id, id, current.version, data, principal.user_id())
            .await?
            .ok_or_else(|| stale(current.version))?;
    let mut detail = change_detail(&edited);
    detail["changed_fields"] = json!(changed_fields(&current, &edited));
    audit(&txn, principal, &edited, AuditAction::ConnectionEdited, detail).await?;
    txn.commit().await?;
    tracing::info!(connection_id = %id, team_id = %edited.team_id, version = edited.version, "connection edited");
    Ok(edited)
}

pub async fn delete(state: &AppState, principal: &Principal, id: ConnectionId) -> AppResult<ConnectionId> {
    let current = get(state, principal, id).await?;
    access::require_manage(&state.db, principal, current.team_id).await?;
    let txn = state.db.begin().await?;
    if !store::connections::delete(&txn, current.team_id, id).await? {
        return Err(AppError::NotFound("connection"));
    }
    audit(&txn, principal, &current, AuditAction::ConnectionDeleted, json!({ "app": current.app_key }))
        .await?;
    txn.commit().await?;
    tracing::info!(connection_id = %id, team_id = %current.team_id, "connection deleted");
    Ok(id)
}

/// A connection the caller can see; another team's answers exactly like a missing one.
pub async fn get(state: &AppState, principal: &Principal, id: ConnectionId) -> AppResult<Connection> {
    let not_found = || AppError::NotFound("connection");
    let team_id = store::connections::owner_of(&state.db, id).await?.ok_or_else(not_found)?;
    access::team_access(&state.db, principal, team_id).await.map_err(|_| not_found())?;
    store::connections::find(&state.db, team_id, id).await?.ok_or_else(not_found)
}

pub struct Page {
    pub connections: Vec<Connection>,
    pub has_next_page: bool,
    pub total_count: u64,
}

/// One page of a team's connections. The caller's access to the team is checked first.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
    filter: &ConnectionFilter,
    after: Option<ConnectionId>,
    first: u64,
) -> AppResult<Page> {
    access::team_access(&state.db, principal, team_id).await?;
    let mut connections = store::connections::list(&state.db, team_id, filter, after, first + 1).await?;
    let has_next_page = connections.len() as u64 > first;
    connections.truncate(first as usize);
    let total_count = store::connections::count(&state.db, team_id, filter).await?;
    Ok(Page { connections, has_next_page, total_count })
}

/// Re-seals every secret not yet under the active key, in batches. Safe to stop and rerun:
/// each row is swapped on its own, and only if nobody changed it meanwhile.
pub async fn rotate_keys(state: &AppState, batch_size: u64) -> anyhow::Result<RotationReport> {
    let active = state.sealer.active_key_id().to_string();
    let mut report = RotationReport::default();
    let mut after = None;
    loop {
        let rows = store::connections::sealed_under_other_keys(&state.db, &active, after, batch_size).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id);
        let txn = state.db.begin().await?;
        for row in &rows {
            let resealed = secrets::reseal(&state.sealer, row.team_id, row.id, &row.blob)?;
            if store::connections::swap_sealed(&txn, row, resealed).await? {
                report.resealed += 1;
            } else {
                report.skipped_changed += 1;
            }
        }
        txn.commit().await?;
        tracing::info!(resealed = report.resealed, "key rotation batch done");
    }
    Ok(report)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RotationReport {
    pub resealed: u64,
    /// Rows edited while the rotation ran; the edit sealed them under the active key already.
    pub skipped_changed: u64,
}

fn find_app<'a>(state: &'a AppState, key: &str) -> AppResult<&'a App> {
    state.catalog.get(key).ok_or_else(|| {
        AppError::bad_input(
            "app",
            format!("there is no app {key:?} in the catalog; query `apps` to list them"),
        )
    })
}

/// OAuth apps need the consent flow, which this server does not run yet; refuse clearly rather
/// than store a connection that can never work.
fn refuse_consent_apps(app: &App) -> AppResult<()> {
    if app.auth_type().needs_consent() || app.auth_type() == crate::domain::AuthType::OAuth2ClientCredentials
    {
        return Err(AppError::bad_input(
            "app",
            format!(
                "{} uses OAuth 2.0 ({}), which this server cannot connect yet; use an API-key or basic-auth app",
                app.name(),
                app.auth_type().as_str()
            ),
        ));
    }
    Ok(())
}

fn field_error(err: crate::catalog::FieldError) -> AppError {
    AppError::BadUserInput { message: err.to_string(), field: Some(format!("fields.{}", err.field)) }
}

fn check_scopes(scopes: Vec<String>) -> AppResult<Vec<String>> {
    if scopes.len() > MAX_SCOPES {
        return Err(AppError::bad_input("scopes", format!("at most {MAX_SCOPES} scopes")));
    }
    let mut checked: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let scope = scope.trim().to_owned();
        if scope.is_empty() || scope.len() > MAX_SCOPE_CHARS || scope.chars().any(char::is_whitespace) {
            return Err(AppError::bad_input(
                "scopes",
                format!("a scope is 1 to {MAX_SCOPE_CHARS} characters without spaces"),
            ));
        }
        if !checked.contains(&scope) {
            checked.push(scope);
        }
    }
    Ok(checked)
}

fn stale(current_version: i32) -> AppError {
    AppError::Conflict(format!(
        "the connection was changed by someone else (it is now at version {current_version}); reload it and edit again"
    ))
}

/// Names only, never values: what the audit trail records about a connection's content.
fn change_detail(connection: &Connection) -> serde_json::Value {
    json!({
        "app": connection.app_key,
        "fields": connection.public_fields.keys().collect::<Vec<_>>(),
        "secret_fields": connection.secret_fields,
        "scopes": connection.scopes,
    })
}

fn changed_fields(before: &Connection, after: &Connection) -> Vec<String> {
    let mut changed: Vec<String> = before
        .public_fields
        .keys()
        .chain(after.public_fields.keys())
        .filter(|k| before.public_fields.get(*k) != after.public_fields.get(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if before.name != after.name {
        changed.insert(0, "name".into());
    }
    // Secrets are always re-entered on edit; record that they were replaced, not their values.
    changed.extend(after.secret_fields.iter().map(|k| format!("{k} (secret, replaced)")));
    changed
}

async fn audit(
    db: &impl ConnectionTrait,
    principal: &Principal,
    connection: &Connection,
    action: AuditAction,
    detail: serde_json::Value,
) -> AppResult<()> {
    let event = AuditEvent {
        id: AuditEventId::new(),
        team_id: connection.team_id,
        actor: principal.actor(),
        action,
        connection_id: Some(connection.id),
        connection_name: Some(connection.name.as_str().to_owned()),
        detail,
        created_at: Utc::now(),
    };
    store::audit::record(db, &event).await?;
    Ok(())
}

/// For tests and tools that need a field map without going through the form.
pub type PublicFields = BTreeMap<String, String>;
