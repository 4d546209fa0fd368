//! The audit trail as the team reads it.

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::enums::{ActorKind, AuditAction};
use crate::domain;

#[derive(SimpleObject)]
pub struct AuditEvent {
    id: ID,
    action: AuditAction,
    actor: AuditActor,
    connection_id: Option<ID>,
    /// The connection's name when it happened; kept after a delete.
    connection_name: Option<String>,
    /// Non-secret facts about the change, such as which fields changed.
    detail: async_graphql::Json<serde_json::Value>,
    created_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct AuditActor {
    kind: ActorKind,
    id: Option<ID>,
    /// An e-mail address or a service token's prefix.
    label: String,
}

#[derive(SimpleObject)]
pub struct AuditEventEdge {
    pub cursor: String,
    pub node: AuditEvent,
}

#[derive(SimpleObject)]
pub struct AuditEventList {
    pub edges: Vec<AuditEventEdge>,
    pub page_info: super::PageInfo,
}

impl From<domain::AuditEvent> for AuditEvent {
    fn from(event: domain::AuditEvent) -> Self {
        AuditEvent {
            id: ID(event.id.to_string()),
            action: event.action.into(),
            actor: AuditActor {
                kind: event.actor.kind.into(),
                id: event.actor.id.map(|id| ID(id.to_string())),
                label: event.actor.label,
            },
            connection_id: event.connection_id.map(|id| ID(id.to_string())),
            connection_name: event.connection_name,
            detail: async_graphql::Json(event.detail),
            created_at: event.created_at,
        }
    }
}

impl From<domain::Actor> for AuditActor {
    fn from(actor: domain::Actor) -> Self {
        AuditActor { kind: actor.kind.into(), id: actor.id.map(|id| ID(id.to_string())), label: actor.label }
    }
}
