//! The audit trail: who did what to which connection, and when. Never holds a secret.

use chrono::{DateTime, Utc};

use super::{AuditEventId, ConnectionId, TeamId};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditAction {
    ConnectionCreated,
    /// An OAuth connection's first consent completed.
    ConnectionAuthorized,
    ConnectionEdited,
    ConnectionDeleted,
    ConnectionVerified,
    ConnectionReauthorized,
    CredentialsRead,
    FlowCreated,
    FlowUpdated,
    FlowDeleted,
    DynamicConnectionCreated,
    /// Members added or removed, or the default switched (which moves every flow using it).
    DynamicConnectionChanged,
    DynamicConnectionDeleted,
    WebhookCreated,
    WebhookDeleted,
    TeamCreated,
    MemberAdded,
    MemberRoleChanged,
    MemberRemoved,
    ServiceTokenCreated,
    ServiceTokenRevoked,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// Who acted, as recorded: the actor's kind, id and a label a person recognises (an e-mail or
/// a token prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<uuid::Uuid>,
    pub label: String,
}

impl Actor {
    /// Plugboard itself, doing `what` (the scheduler, token refresh, the command line).
    pub fn system(what: &str) -> Self {
        Actor { kind: ActorKind::System, id: None, label: what.to_owned() }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ActorKind {
    User,
    Service,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub team_id: TeamId,
    pub actor: Actor,
    pub action: AuditAction,
    pub connection_id: Option<ConnectionId>,
    /// The connection's name at the time, so the trail stays readable after a delete.
    pub connection_name: Option<String>,
    /// Non-secret facts about the change, such as the fields that changed.
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl AuditEvent {
    /// An entry about something of the team other than a connection (a flow, a dynamic
    /// connection, a webhook), made now; `detail` names it.
    pub fn about_team(
        team_id: TeamId,
        actor: &Actor,
        action: AuditAction,
        detail: serde_json::Value,
    ) -> Self {
        AuditEvent {
            id: AuditEventId::new(),
            team_id,
            actor: actor.clone(),
            action,
            connection_id: None,
            connection_name: None,
            detail,
            created_at: Utc::now(),
        }
    }
}
