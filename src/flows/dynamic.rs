//! Dynamic connections: a named set of one app's connections with a default, so a flow can be
//! switched between them (one per department) without editing it.

use crate::access;
use crate::domain::{ConnectionId, DynamicConnection, DynamicConnectionId, DynamicMember, Principal, TeamId};
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
    };
    for member in input.members {
        add(state, &mut dynamic, member).await?;
    }
    dynamic.default_connection = match input.default_connection_id {
        Some(id) => Some(member_id(&dynamic, id, "defaultConnectionId")?),
        None => dynamic.members.first().map(|m| m.connection_id),
    };
    let txn = crate::store::begin(&state.db).await?;
    store::dynamic_connections::save(&txn, &dynamic, true).await?;
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
    let mut dynamic = get_for_change(state, principal, id).await?;
    dynamic.default_connection = Some(member_id(&dynamic, connection_id, "connectionId")?);
    store::dynamic_connections::save(&state.db, &dynamic, false).await?;
    tracing::info!(dynamic_connection_id = %id, %connection_id, "dynamic connection default switched");
    Ok(dynamic)
}

pub async fn add_member(
    state: &AppState,
    principal: &Principal,
    id: DynamicConnectionId,
    member: MemberInput,
) -> AppResult<DynamicConnection> {
    let mut dynamic = get_for_change(state, principal, id).await?;
    add(state, &mut dynamic, member).await?;
    if dynamic.default_connection.is_none() {
        dynamic.default_connection = dynamic.members.first().map(|m| m.connection_id);
    }
    store::dynamic_connections::save(&state.db, &dynamic, false).await?;
    Ok(dynamic)
}

pub async fn remove_member(
    state: &AppState,
    principal: &Principal,
    id: DynamicConnectionId,
    connection_id: ConnectionId,
) -> AppResult<DynamicConnection> {
    let mut dynamic = get_for_change(state, principal, id).await?;
    member_id(&dynamic, connection_id, "connectionId")?;
    if dynamic.default_connection == Some(connection_id) {
        return Err(AppError::bad_input(
            "connectionId",
            "this connection is the default; switch the default to another member first",
        ));
    }
    dynamic.members.retain(|m| m.connection_id != connection_id);
    store::dynamic_connections::save(&state.db, &dynamic, false).await?;
    Ok(dynamic)
}

pub async fn delete_dynamic(
    state: &AppState,
    principal: &Principal,
    id: DynamicConnectionId,
) -> AppResult<DynamicConnectionId> {
    let dynamic = get_for_change(state, principal, id).await?;
    store::dynamic_connections::delete(&state.db, dynamic.team_id, id).await?;
    Ok(id)
}

/// A dynamic connection of one of the caller's teams that the caller may change.
async fn get_for_change(
    state: &AppState,
    principal: &Principal,
    id: DynamicConnectionId,
) -> AppResult<DynamicConnection> {
    let not_found = || AppError::NotFound("dynamic connection");
    let team_id = store::dynamic_connections::owner_of(&state.db, id).await?.ok_or_else(not_found)?;
    access::team_access(&state.db, principal, team_id).await.map_err(|_| not_found())?;
    access::require_manage(&state.db, principal, team_id).await?;
    store::dynamic_connections::find(&state.db, team_id, id).await?.ok_or_else(not_found)
}

async fn add(state: &AppState, dynamic: &mut DynamicConnection, member: MemberInput) -> AppResult<()> {
    let label = member.label.trim().to_owned();
    if label.is_empty() || label.chars().count() > 100 {
        return Err(AppError::bad_input("label", "a member label has 1 to 100 characters"));
    }
    let connection = store::connections::find(&state.db, dynamic.team_id, member.connection_id)
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
