//! Flows that use connections: creating and changing them (with warnings when a module's
//! connection lacks scopes), and dynamic connections.

mod dynamic;
pub mod usage;

use chrono::Utc;

pub use dynamic::{
    DynamicInput, MemberInput, add_member, create_dynamic, delete_dynamic, list_dynamic, remove_member,
    set_default,
};

use crate::access::{self, TeamScope};
use crate::domain::{
    AuditAction, AuditEvent, ConnectionId, DynamicConnectionId, Flow, FlowId, FlowModule, FlowStatus,
    ModuleTarget, Principal, TeamId,
};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;

pub struct ModuleInput {
    pub key: String,
    pub app: String,
    pub module: String,
    pub connection_id: Option<ConnectionId>,
    pub dynamic_connection_id: Option<DynamicConnectionId>,
}

/// A module whose connection lacks scopes it needs. Not an error: the person may reauthorize
/// next; the flow would fail with `ACCOUNT_VALIDATION_ERROR` until then.
#[derive(Debug, Clone)]
pub struct ScopeWarning {
    pub module_key: String,
    pub missing_scopes: Vec<String>,
    pub message: String,
}

const MAX_NAME_CHARS: usize = 100;

pub async fn create(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
    name: String,
    status: FlowStatus,
    modules: Vec<ModuleInput>,
) -> AppResult<(Flow, Vec<ScopeWarning>)> {
    access::require_manage(&state.db, principal, team_id).await?;
    let now = Utc::now();
    let flow = Flow {
        id: FlowId::new(),
        team_id,
        name: check_name(&name)?,
        status,
        modules: check_modules(state, team_id, modules).await?,
        created_at: now,
        updated_at: now,
    };
    let txn = crate::store::begin(&state.db).await?;
    store::flows::save(&txn, &flow, true).await?;
    audit(&txn, principal, &flow, AuditAction::FlowCreated).await?;
    txn.commit().await?;
    tracing::info!(flow_id = %flow.id, %team_id, modules = flow.modules.len(), "flow created");
    let warnings = warnings(state, &flow).await?;
    Ok((flow, warnings))
}

pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: FlowId,
    name: Option<String>,
    status: Option<FlowStatus>,
    modules: Option<Vec<ModuleInput>>,
) -> AppResult<(Flow, Vec<ScopeWarning>)> {
    let mut flow = get(state, principal, id).await?;
    access::require_manage(&state.db, principal, flow.team_id).await?;
    if let Some(name) = name {
        flow.name = check_name(&name)?;
    }
    if let Some(status) = status {
        flow.status = status;
    }
    if let Some(modules) = modules {
        flow.modules = check_modules(state, flow.team_id, modules).await?;
    }
    let txn = crate::store::begin(&state.db).await?;
    store::flows::save(&txn, &flow, false).await?;
    audit(&txn, principal, &flow, AuditAction::FlowUpdated).await?;
    txn.commit().await?;
    let flow = get(state, principal, id).await?;
    let warnings = warnings(state, &flow).await?;
    Ok((flow, warnings))
}

pub async fn delete(state: &AppState, principal: &Principal, id: FlowId) -> AppResult<FlowId> {
    let flow = get(state, principal, id).await?;
    access::require_manage(&state.db, principal, flow.team_id).await?;
    let txn = crate::store::begin(&state.db).await?;
    store::flows::delete(&txn, flow.team_id, id).await?;
    audit(&txn, principal, &flow, AuditAction::FlowDeleted).await?;
    txn.commit().await?;
    Ok(id)
}

/// The trail's entry for a change to `flow`: what it is and which connections its modules use.
async fn audit(
    txn: &impl sea_orm::ConnectionTrait,
    principal: &Principal,
    flow: &Flow,
    action: AuditAction,
) -> AppResult<()> {
    let modules: Vec<serde_json::Value> = flow
        .modules
        .iter()
        .map(|m| {
            let uses = match m.target {
                ModuleTarget::Unset => serde_json::Value::Null,
                ModuleTarget::Connection(id) => serde_json::json!({ "connection_id": id }),
                ModuleTarget::Dynamic(id) => serde_json::json!({ "dynamic_connection_id": id }),
            };
            serde_json::json!({ "key": m.key, "app": m.app_key, "module": m.app_module, "uses": uses })
        })
        .collect();
    let detail = serde_json::json!({
        "flow": { "id": flow.id, "name": flow.name, "status": flow.status.as_str() },
        "modules": modules,
    });
    store::audit::record(txn, &AuditEvent::about_team(flow.team_id, &principal.actor(), action, detail))
        .await?;
    Ok(())
}

/// A flow of one of the caller's teams; another team's answers like a missing one.
pub async fn get(state: &AppState, principal: &Principal, id: FlowId) -> AppResult<Flow> {
    let not_found = || AppError::NotFound("flow");
    let team_id = store::flows::owner_of(&state.db, id).await?.ok_or_else(not_found)?;
    access::team_access(&state.db, principal, team_id).await.map_err(|_| not_found())?;
    store::flows::find(&state.db, team_id, id).await?.ok_or_else(not_found)
}

/// A team's flows, by name.
pub async fn list(state: &AppState, scope: &TeamScope) -> AppResult<Vec<Flow>> {
    Ok(store::flows::list(&state.db, scope.team()).await?)
}

fn check_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AppError::bad_input("name", format!("a flow name has 1 to {MAX_NAME_CHARS} characters")));
    }
    Ok(name.to_owned())
}

/// Checks each module against the catalog and the team: a known module of a known app, and a
/// connection (or dynamic connection) of that app in the same team.
async fn check_modules(
    state: &AppState,
    team_id: TeamId,
    inputs: Vec<ModuleInput>,
) -> AppResult<Vec<FlowModule>> {
    let mut modules: Vec<FlowModule> = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let field = |name: &str| format!("modules[{index}].{name}");
        let key = input.key.trim().to_owned();
        if key.is_empty() || key.len() > 100 {
            return Err(AppError::bad_input(field("key"), "a module key has 1 to 100 characters"));
        }
        if modules.iter().any(|m| m.key == key) {
            return Err(AppError::bad_input(field("key"), format!("the module key {key:?} is used twice")));
        }
        let app = state.catalog.get(&input.app).ok_or_else(|| {
            AppError::bad_input(field("app"), format!("there is no app {:?} in the catalog", input.app))
        })?;
        if app.module(&input.module).is_none() {
            let known: Vec<&str> = app.modules().iter().map(|m| m.key()).collect();
            return Err(AppError::bad_input(
                field("module"),
                format!(
                    "{} has no module {:?}; its modules are {}",
                    app.name(),
                    input.module,
                    known.join(", ")
                ),
            ));
        }
        let target = match (input.connection_id, input.dynamic_connection_id) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input(
                    field("connectionId"),
                    "give a connection or a dynamic connection, not both",
                ));
            }
            (Some(id), None) => {
                let connection =
                    store::connections::find(&state.db, team_id, id).await?.ok_or_else(|| {
                        AppError::bad_input(field("connectionId"), "no such connection in this team")
                    })?;
                if connection.app_key != app.key() {
                    return Err(AppError::bad_input(
                        field("connectionId"),
                        format!("the connection is to {}, not {}", connection.app_key, app.key()),
                    ));
                }
                ModuleTarget::Connection(id)
            }
            (None, Some(id)) => {
                let dynamic =
                    store::dynamic_connections::find(&state.db, team_id, id).await?.ok_or_else(|| {
                        AppError::bad_input(
                            field("dynamicConnectionId"),
                            "no such dynamic connection in this team",
                        )
                    })?;
                if dynamic.app_key != app.key() {
                    return Err(AppError::bad_input(
                        field("dynamicConnectionId"),
                        format!("the dynamic connection is for {}, not {}", dynamic.app_key, app.key()),
                    ));
                }
                ModuleTarget::Dynamic(id)
            }
            (None, None) => ModuleTarget::Unset,
        };
        modules.push(FlowModule { key, app_key: app.key().to_owned(), app_module: input.module, target });
    }
    Ok(modules)
}

/// Warnings for the flow's modules whose connection (or dynamic connection's default) lacks
/// scopes they need.
pub async fn warnings(state: &AppState, flow: &Flow) -> AppResult<Vec<ScopeWarning>> {
    let mut found = Vec::new();
    for module in &flow.modules {
        let connection_id = match module.target {
            ModuleTarget::Connection(id) => Some(id),
            ModuleTarget::Dynamic(id) => store::dynamic_connections::find(&state.db, flow.team_id, id)
                .await?
                .and_then(|d| d.default_connection),
            ModuleTarget::Unset => None,
        };
        let Some(connection_id) = connection_id else { continue };
        let Some(connection) = store::connections::find(&state.db, flow.team_id, connection_id).await? else {
            continue;
        };
        let missing = usage::scopes_missing(&state.catalog, module, &connection.scopes);
        if !missing.is_empty() {
            found.push(ScopeWarning {
                module_key: module.key.clone(),
                message: format!(
                    "module {} needs {} which the connection \"{}\" was not granted; reauthorize it with these scopes",
                    module.key,
                    missing.join(", "),
                    connection.name.as_str()
                ),
                missing_scopes: missing,
            });
        }
    }
    Ok(found)
}
