//! Dynamic connections: a named set of one app's connections with a default, so a flow can be
//! switched between them (one per department) without editing it.
//!
//! Every change reads, changes and writes in one transaction, the row locked on PostgreSQL and
//! the write guarded by the version read, and records its audit entry in the same transaction:
//! a switch of the default changes the credentials every flow using it receives.

use sea_orm::DatabaseTransaction;
use serde_json::json;

use crate::access::{self, TeamScope};
use crate::domain::{
    AuditAction, AuditEvent, ConnectionId, DynamicConnection, DynamicConnectionId, DynamicMember, Principal,
    TeamId,
};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;

pub struct MemberInput {
    pub connection_id: ConnectionId,
    pub label: String,
}

pub struct DynamicInput {
    pub team_id: TeamId,
    pub name: String,
    pub app: String,
    pub members: Vec<MemberInput>,
    pub default_connection_id: Option<ConnectionId>,
}

/// A team's dynamic connections, by name.
pub async fn list_dynamic(state: &AppState, scope: &TeamScope) -> AppResult<Vec<DynamicConnection>> {
    Ok(store::dynamic_connections::list(&state.db, scope.team()).await?)
}

pub async fn create_dynamic(
    state: &AppState,
    principal: &Principal,
    input: DynamicInput,
) -> AppResult<DynamicConnection> {
    access::require_manage(&state.db, principal, input.team_id).await?;
    let app = state.catalog.get(&input.app).ok_or_else(|| {
        AppError::bad_input("app", format!("there is no app {:?} in the catalog", input.app))
    })?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input("name", "a name has 1 to 100 characters"));
    }
    let mut dynamic = DynamicConnection {
        id: DynamicConnectionId::new(),
        team_id: input.team_id,
        name: name.to_owned(),
        app_key: app.key().to_owned(),
        default_connection: None,
        members: Vec::new(),
        version: 1,
    };
    let txn = store::begin(&state.db).await?;
    for member in input.members {
        add(&txn, &mut dynamic, member).await?;
    }
    dynamic.default_connection = match input.default_connection_id {
        Some(id) => Some(member_id(&dynamic, id, "defaultConnectionId")?),
        None => dynamic.members.first().map(|m| m.connection_id),
    };
    store::dynamic_connections::save(&txn, &dynamic, true).await?;
    audit(&txn, principal, &dynamic, AuditAction::DynamicConnectionCreated, json!({})).await?;
    txn.commit().await?;
    Ok(dynamic)
}

/// Switches the default: every module using the dynamic connection gets the new one at once.
pub async fn set_default(
    state: &AppState,
    principal: &Principal,
    id: DynamicConnectionId,
    connection_id: ConnectionId,
) -> AppResult<DynamicConnection> {
    let (txn, mut dynamic) = begin_change(state, principal, id).await?;
    let previous = dynamic.default_connection;
    dynamic.default_connection = Some(member_id(&dynamic, connection_id, "connectionId")?);
    let detail = json!({ "change": "default_switched", "from": previous, "to": connection_id });
    let dynamic = finish_change(txn, principal, dynamic, detail).await?;
    tracing::info!(dynamic_connection_id = %id, %connection_id, "dynamic connection default switched");
    Ok(dynamic)
}

pub async fn add_member(
    state: &AppState,
    principal: &Principal,
    id: DynamicConnectionId,
    member: MemberInput,
) -> AppResult<DynamicConnection> {
    let (txn, mut dynamic) = begin_change(state, principal, id).await?;
    let detail = json!({ "change": "member_added", "connection_id": member.connection_id, "label": member.label.trim() });
    add(&txn, &mut dynamic, member).await?;
    if dynamic.default_connection.is_none() {
        dynamic.default_connection = dynamic.members.first().map(|m| m.connection_id);
    }
    finish_change(txn, principal, dynamic, detail).await
}

pub async fn remove_member(
    state: &AppState,
    principal: &Principal,
    id: DynamicConnectionId,
    connection_id: ConnectionId,
) -> AppResult<DynamicConnection> {
    let (txn, mut dynamic) = begin_change(state, principal, id).await?;
    member_id(&dynamic, connection_id, "connectionId")?;
    if dynamic.default_connection == Some(connection_id) {
        return Err(AppError::bad_input(
            "connectionId",
            "this connection is the default; switch the default to another member first",
        ));
    }
    dynamic.members.retain(|m| m.connection_id != connection_id);
    let detail = json!({ "change": "member_removed", "connection_id": connection_id });
    finish_change(txn, principal, dynamic, detail).await
}

pub async fn delete_dynamic(
    state: &AppState,
    principal: &Principal,
    id: DynamicConnectionId,
) -> AppResult<DynamicConnectionId> {
    let (txn, dynamic) = begin_change(state, principal, id).await?;
    store::dynamic_connections::delete(&txn, dynamic.team_id, id).await?;
    audit(&txn, principal, &dynamic, AuditAction::DynamicConnectionDeleted, json!({})).await?;
    txn.commit().await?;
    Ok(id)
}

/// Opens the transaction of a change to a dynamic connection of one of the caller's teams that
/// the caller may change, with the connection read (and on PostgreSQL locked) inside it.
async fn begin_change(
    state: &AppState,
    principal: &Principal,
    id: DynamicConnectionId,
) -> AppResult<(DatabaseTransaction, DynamicConnection)> {
    let not_found = || AppError::NotFound("dynamic connection");
    let team_id = store::dynamic_connections::owner_of(&state.db, id).await?.ok_or_else(not_found)?;
    access::team_access(&state.db, principal, team_id).await.map_err(|_| not_found())?;
    access::require_manage(&state.db, principal, team_id).await?;
    let txn = store::begin(&state.db).await?;
    let dynamic =
        store::dynamic_connections::find_for_change(&txn, team_id, id).await?.ok_or_else(not_found)?;
    Ok((txn, dynamic))
}

/// Writes the changed `dynamic` over the version it was read at, audits it, and commits.
async fn finish_change(
    txn: DatabaseTransaction,
    principal: &Principal,
    mut dynamic: DynamicConnection,
    detail: serde_json::Value,
) -> AppResult<DynamicConnection> {
    if !store::dynamic_connections::save(&txn, &dynamic, false).await? {
        return Err(AppError::Conflict(
            "the dynamic connection was changed meanwhile; read it again and retry".into(),
        ));
    }
    dynamic.version += 1;
    audit(&txn, principal, &dynamic, AuditAction::DynamicConnectionChanged, detail).await?;
    txn.commit().await?;
    Ok(dynamic)
}

async fn audit(
    txn: &DatabaseTransaction,
    principal: &Principal,
    dynamic: &DynamicConnection,
    action: AuditAction,
    mut detail: serde_json::Value,
) -> AppResult<()> {
    detail["dynamic_connection"] = json!({ "id": dynamic.id, "name": dynamic.name, "app": dynamic.app_key });
    detail["default_connection_id"] = json!(dynamic.default_connection);
    detail["members"] = json!(dynamic.members.len());
    let event = AuditEvent::about_team(dynamic.team_id, &principal.actor(), action, detail);
    store::audit::record(txn, &event).await?;
    Ok(())
}

async fn add(
    txn: &DatabaseTransaction,
    dynamic: &mut DynamicConnection,
    member: MemberInput,
) -> AppResult<()> {
    let label = member.label.trim().to_owned();
    if label.is_empty() || label.chars().count() > 100 {
        return Err(AppError::bad_input("label", "a member label has 1 to 100 characters"));
    }
    let connection = store::connections::find(txn, dynamic.team_id, member.connection_id)
        .await?
        .ok_or_else(|| AppError::bad_input("connectionId", "no such connection in this team"))?;
    if connection.app_key != dynamic.app_key {
        return Err(AppError::bad_input(
            "connectionId",
            format!(
                "the connection is to {}, but this dynamic connection is for {}",
                connection.app_key, dynamic.app_key
            ),
        ));
    }
    if dynamic.members.iter().any(|m| m.connection_id == member.connection_id || m.label == label) {
        return Err(AppError::bad_input("connectionId", "that connection or label is already a member"));
    }
    dynamic.members.push(DynamicMember { connection_id: member.connection_id, label });
    Ok(())
}

fn member_id(dynamic: &DynamicConnection, id: ConnectionId, field: &str) -> AppResult<ConnectionId> {
    dynamic.members.iter().any(|m| m.connection_id == id).then_some(id).ok_or_else(|| {
        AppError::bad_input(field, "the connection is not a member of this dynamic connection")
    })
}
