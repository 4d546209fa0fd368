//! The audit trail: who did what to which connection, and when. Never holds a secret.

use chrono::{DateTime, Utc};

use super::{AuditEventId, ConnectionId, TeamId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    pub const ALL: [AuditAction; 21] = [
        AuditAction::ConnectionCreated,
        AuditAction::ConnectionAuthorized,
        AuditAction::ConnectionEdited,
        AuditAction::ConnectionDeleted,
        AuditAction::ConnectionVerified,
        AuditAction::ConnectionReauthorized,
        AuditAction::CredentialsRead,
        AuditAction::FlowCreated,
        AuditAction::FlowUpdated,
        AuditAction::FlowDeleted,
        AuditAction::DynamicConnectionCreated,
        AuditAction::DynamicConnectionChanged,
        AuditAction::DynamicConnectionDeleted,
        AuditAction::WebhookCreated,
        AuditAction::WebhookDeleted,
        AuditAction::TeamCreated,
        AuditAction::MemberAdded,
        AuditAction::MemberRoleChanged,
        AuditAction::MemberRemoved,
        AuditAction::ServiceTokenCreated,
        AuditAction::ServiceTokenRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ConnectionCreated => "CONNECTION_CREATED",
            AuditAction::ConnectionAuthorized => "CONNECTION_AUTHORIZED",
            AuditAction::ConnectionEdited => "CONNECTION_EDITED",
            AuditAction::ConnectionDeleted => "CONNECTION_DELETED",
            AuditAction::ConnectionVerified => "CONNECTION_VERIFIED",
            AuditAction::ConnectionReauthorized => "CONNECTION_REAUTHORIZED",
            AuditAction::CredentialsRead => "CREDENTIALS_READ",
            AuditAction::FlowCreated => "FLOW_CREATED",
            AuditAction::FlowUpdated => "FLOW_UPDATED",
            AuditAction::FlowDeleted => "FLOW_DELETED",
            AuditAction::DynamicConnectionCreated => "DYNAMIC_CONNECTION_CREATED",
            AuditAction::DynamicConnectionChanged => "DYNAMIC_CONNECTION_CHANGED",
            AuditAction::DynamicConnectionDeleted => "DYNAMIC_CONNECTION_DELETED",
            AuditAction::WebhookCreated => "WEBHOOK_CREATED",
            AuditAction::WebhookDeleted => "WEBHOOK_DELETED",
            AuditAction::TeamCreated => "TEAM_CREATED",
            AuditAction::MemberAdded => "MEMBER_ADDED",
            AuditAction::MemberRoleChanged => "MEMBER_ROLE_CHANGED",
            AuditAction::MemberRemoved => "MEMBER_REMOVED",
            AuditAction::ServiceTokenCreated => "SERVICE_TOKEN_CREATED",
            AuditAction::ServiceTokenRevoked => "SERVICE_TOKEN_REVOKED",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    User,
    Service,
    System,
}

impl ActorKind {
    pub const ALL: [ActorKind; 3] = [ActorKind::User, ActorKind::Service, ActorKind::System];

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "USER",
            ActorKind::Service => "SERVICE",
            ActorKind::System => "SYSTEM",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
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
