//! Flows and the modules that use connections: what makes deletes and edits safe and scope
//! errors precise.

use chrono::{DateTime, Utc};

use super::{ConnectionId, DynamicConnectionId, FlowId, TeamId};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum FlowStatus {
    Active,
    Scheduled,
    Inactive,
}

impl FlowStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// Whether the flow runs, so that breaking its connections breaks it.
    pub fn is_running(self) -> bool {
        matches!(self, FlowStatus::Active | FlowStatus::Scheduled)
    }
}

#[derive(Debug, Clone)]
pub struct Flow {
    pub id: FlowId,
    pub team_id: TeamId,
    pub name: String,
    pub status: FlowStatus,
    pub modules: Vec<FlowModule>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One step of a flow: a catalog module of an app, and what it authenticates with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowModule {
    /// Unique within the flow; runners name modules by it.
    pub key: String,
    pub app_key: String,
    /// The catalog module's key, which declares the scopes it needs.
    pub app_module: String,
    pub target: ModuleTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleTarget {
    /// Left without a connection, e.g. after its connection was deleted.
    Unset,
    Connection(ConnectionId),
    Dynamic(DynamicConnectionId),
}

#[derive(Debug, Clone)]
pub struct DynamicConnection {
    pub id: DynamicConnectionId,
    pub team_id: TeamId,
    pub name: String,
    pub app_key: String,
    pub default_connection: Option<ConnectionId>,
    pub members: Vec<DynamicMember>,
    /// Increases with every change.
    pub version: i32,
}

/// A connection in a dynamic connection, with the label a run selects it by (e.g. a department).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicMember {
    pub connection_id: ConnectionId,
    pub label: String,
}

impl DynamicConnection {
    /// The member a run uses: the one named by `select` (label or connection id), else the
    /// default.
    pub fn resolve(&self, select: Option<&str>) -> Option<ConnectionId> {
        match select {
            Some(wanted) => self
                .members
                .iter()
                .find(|m| m.label == wanted || m.connection_id.to_string() == wanted)
                .map(|m| m.connection_id),
            None => self.default_connection,
        }
    }
}

/// The scopes in `required` that `granted` lacks, in `required`'s order.
pub fn missing_scopes(required: &[String], granted: &[String]) -> Vec<String> {
    required.iter().filter(|scope| !granted.contains(scope)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_scopes_keep_the_required_order() {
        let required = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(missing_scopes(&required, &["b".to_owned()]), ["a", "c"]);
        assert!(missing_scopes(&required, &required).is_empty());
    }

    #[test]
    fn a_dynamic_connection_resolves_the_selected_member_or_the_default() {
        let (sales, support) = (ConnectionId::new(), ConnectionId::new());
        let dynamic = DynamicConnection {
            id: DynamicConnectionId::new(),
            team_id: TeamId::new(),
            name: "Slack".into(),
            app_key: "slack".into(),
            default_connection: Some(sales),
            members: vec![
                DynamicMember { connection_id: sales, label: "sales".into() },
                DynamicMember { connection_id: support, label: "support".into() },
            ],
            version: 1,
        };
        assert_eq!(dynamic.resolve(None), Some(sales));
        assert_eq!(dynamic.resolve(Some("support")), Some(support));
        assert_eq!(dynamic.resolve(Some(&support.to_string())), Some(support));
        assert_eq!(dynamic.resolve(Some("marketing")), None);
    }
}
