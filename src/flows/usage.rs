//! Which modules use a connection and which scopes they miss: the facts behind safe deletes,
//! edit warnings, scope findings at checks, and `Connection.usedBy` / `missingScopes`.

use std::collections::{HashMap, HashSet};

use sea_orm::ConnectionTrait;

use crate::catalog::Catalog;
use crate::domain::{
    Connection, ConnectionId, DynamicConnectionId, Flow, FlowModule, ModuleTarget, TeamId, missing_scopes,
};
use crate::error::FlowRef;
use crate::store;

/// A module that uses a connection (directly, or through a dynamic connection it belongs to).
#[derive(Debug, Clone)]
pub struct Usage {
    pub flow: Flow,
    pub module_key: String,
    /// Scopes the module needs that the connection was not granted.
    pub missing_scopes: Vec<String>,
}

/// Every module that uses `connection`, with what it misses.
pub async fn usages(
    db: &impl ConnectionTrait,
    catalog: &Catalog,
    connection: &Connection,
) -> Result<Vec<Usage>, sea_orm::DbErr> {
    usages_with_scopes(db, catalog, connection.team_id, connection.id, &connection.scopes).await
}

/// Like `usages`, for the scopes the connection would have (after an edit).
pub async fn usages_with_scopes(
    db: &impl ConnectionTrait,
    catalog: &Catalog,
    team_id: TeamId,
    connection_id: ConnectionId,
    scopes: &[String],
) -> Result<Vec<Usage>, sea_orm::DbErr> {
    let dynamics: Vec<DynamicConnectionId> =
        store::dynamic_connections::containing(db, team_id, connection_id)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
    let flows = store::flows::using(db, team_id, connection_id, &dynamics).await?;
    let mut found = Vec::new();
    for flow in flows {
        for module in flow.modules.iter().filter(|m| uses(m, connection_id, &dynamics)) {
            found.push(Usage {
                flow: flow.clone(),
                module_key: module.key.clone(),
                missing_scopes: scopes_missing(catalog, module, scopes),
            });
        }
    }
    Ok(found)
}

/// A module that uses a connection, before its scopes are compared with the connection's.
#[derive(Debug, Clone)]
pub struct ModuleUse {
    pub flow: Flow,
    pub module: FlowModule,
}

impl ModuleUse {
    /// The usage, with what the module misses of `scopes` (the connection's grant).
    pub fn with_scopes(&self, catalog: &Catalog, scopes: &[String]) -> Usage {
        Usage {
            flow: self.flow.clone(),
            module_key: self.module.key.clone(),
            missing_scopes: scopes_missing(catalog, &self.module, scopes),
        }
    }
}

/// For each of `ids` (connections of `team_id`) that any module uses, directly or through a
/// dynamic connection, those modules: one look-up for a whole page of connections.
pub async fn modules_using(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    ids: &[ConnectionId],
) -> Result<HashMap<ConnectionId, Vec<ModuleUse>>, sea_orm::DbErr> {
    let dynamics = store::dynamic_connections::containing_any(db, team_id, ids).await?;
    let dynamic_ids: Vec<DynamicConnectionId> = dynamics.iter().map(|d| d.id).collect();
    let flows = store::flows::using_any(db, team_id, ids, &dynamic_ids).await?;
    let mut found: HashMap<ConnectionId, Vec<ModuleUse>> = HashMap::new();
    for &id in ids {
        let groups: Vec<DynamicConnectionId> = dynamics
            .iter()
            .filter(|d| d.default_connection == Some(id) || d.members.iter().any(|m| m.connection_id == id))
            .map(|d| d.id)
            .collect();
        for flow in &flows {
            for module in flow.modules.iter().filter(|m| uses(m, id, &groups)) {
                found.entry(id).or_default().push(ModuleUse { flow: flow.clone(), module: module.clone() });
            }
        }
    }
    Ok(found)
}

fn uses(module: &FlowModule, connection_id: ConnectionId, dynamics: &[DynamicConnectionId]) -> bool {
    match module.target {
        ModuleTarget::Connection(id) => id == connection_id,
        ModuleTarget::Dynamic(id) => dynamics.contains(&id),
        ModuleTarget::Unset => false,
    }
}

/// The scopes a flow module needs, as its catalog module declares them.
pub fn required_scopes<'a>(catalog: &'a Catalog, module: &FlowModule) -> &'a [String] {
    catalog.get(&module.app_key).and_then(|app| app.module(&module.app_module)).map_or(&[], |m| m.scopes())
}

/// The scopes `module` needs that `granted` does not cover, as its app defines its scopes
/// (Shopify's `write_products` includes `read_products`).
pub fn scopes_missing(catalog: &Catalog, module: &FlowModule, granted: &[String]) -> Vec<String> {
    let required = required_scopes(catalog, module);
    match catalog.get(&module.app_key) {
        Some(app) => app.missing_scopes(required, granted),
        None => missing_scopes(required, granted),
    }
}

/// The flows that deleting the connection would break: running flows using it directly, or
/// through a dynamic connection whose default it is.
pub async fn flows_broken_by_delete(
    db: &impl ConnectionTrait,
    connection: &Connection,
) -> Result<Vec<FlowRef>, sea_orm::DbErr> {
    let defaults: Vec<DynamicConnectionId> =
        store::dynamic_connections::containing(db, connection.team_id, connection.id)
            .await?
            .into_iter()
            .filter(|d| d.default_connection == Some(connection.id))
            .map(|d| d.id)
            .collect();
    let flows = store::flows::using(db, connection.team_id, connection.id, &defaults).await?;
    Ok(flows.into_iter().filter(|f| f.status.is_running()).map(|f| flow_ref(&f)).collect())
}

pub fn flow_ref(flow: &Flow) -> FlowRef {
    FlowRef { id: flow.id.to_string(), name: flow.name.clone(), status: flow.status.as_str().to_owned() }
}

/// A person-readable list of modules of running flows that miss scopes; empty when none do.
pub fn gaps_message(usages: &[Usage]) -> Option<String> {
    let gaps: Vec<String> = usages
        .iter()
        .filter(|u| u.flow.status.is_running() && !u.missing_scopes.is_empty())
        .map(|u| {
            format!(
                "module {} of flow \"{}\" needs {}",
                u.module_key,
                u.flow.name,
                u.missing_scopes.join(", ")
            )
        })
        .collect();
    if gaps.len() <= MAX_GAPS_NAMED {
        return (!gaps.is_empty()).then(|| gaps.join("; "));
    }
    let more = gaps.len() - MAX_GAPS_NAMED;
    Some(format!("{}; and {more} more modules", gaps[..MAX_GAPS_NAMED].join("; ")))
}

/// Modules a check's message names at most: it goes into every live event and history row of
/// the check, and a connection used by hundreds of flows would make it kilobytes.
const MAX_GAPS_NAMED: usize = 10;

/// Of `ids`, the connections that may have usages: those a module names, or that belong to a
/// dynamic connection. Lets a batch look up usages only where there can be some.
pub async fn possibly_used(
    db: &impl ConnectionTrait,
    ids: &[ConnectionId],
) -> Result<HashSet<ConnectionId>, sea_orm::DbErr> {
    let mut found: HashSet<ConnectionId> =
        store::flows::named_by_modules(db, ids).await?.into_iter().collect();
    found.extend(store::dynamic_connections::grouped(db, ids).await?);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{FlowId, FlowStatus};

    fn usage(flow: usize) -> Usage {
        Usage {
            flow: Flow {
                id: FlowId::new(),
                team_id: TeamId::new(),
                name: format!("Flow {flow}"),
                status: FlowStatus::Active,
                modules: Vec::new(),
                created_at: Utc::now(),
                updated_at: Utc::now(),
            },
            module_key: "read".into(),
            missing_scopes: vec!["records.read".into()],
        }
    }

    #[test]
    fn a_message_names_a_few_gaps_and_counts_the_rest() {
        let few: Vec<Usage> = (0..2).map(usage).collect();
        assert_eq!(
            gaps_message(&few).as_deref(),
            Some(
                r#"module read of flow "Flow 0" needs records.read; module read of flow "Flow 1" needs records.read"#
            )
        );
        let many: Vec<Usage> = (0..500).map(usage).collect();
        let message = gaps_message(&many).unwrap();
        assert!(message.ends_with("; and 490 more modules"), "{message}");
        assert!(message.len() < 1000, "{} bytes", message.len());
        assert_eq!(gaps_message(&[]), None);
    }
}
