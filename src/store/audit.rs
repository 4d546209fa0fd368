//! The audit trail, newest first.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Statement,
};

use super::entities::audit_event::{self, Column, Entity};
use super::prepared::PreparedWrites;
use crate::domain::{Actor, AuditEvent, AuditEventId, ConnectionId, TeamId};

pub async fn record(db: &impl ConnectionTrait, event: &AuditEvent) -> Result<(), DbErr> {
    record_many(db, std::slice::from_ref(event)).await
}

/// Records several events in one statement.
pub async fn record_many(db: &impl ConnectionTrait, events: &[AuditEvent]) -> Result<(), DbErr> {
    let mut writes = PreparedWrites::default();
    writes.extend(record_many_statement(db.get_database_backend(), events));
    writes.run(db).await
}

/// The statement `record_many` runs, to build ahead of a transaction; none for no events.
pub fn record_many_statement(backend: DatabaseBackend, events: &[AuditEvent]) -> Option<Statement> {
    if events.is_empty() {
        return None;
    }
    let models = events.iter().map(|event| audit_event::ActiveModel {
        id: Set(event.id),
        team_id: Set(event.team_id),
        actor_kind: Set(event.actor.kind),
        actor_id: Set(event.actor.id),
        actor_label: Set(event.actor.label.clone()),
        action: Set(event.action),
        connection_id: Set(event.connection_id),
        connection_name: Set(event.connection_name.clone()),
        detail: Set(event.detail.clone()),
        created_at: Set(event.created_at),
    });
    Some(Entity::insert_many(models).build(backend))
}

/// One page of a team's events, newest first, before the cursor `before`.
pub async fn list(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: Option<ConnectionId>,
    before: Option<AuditEventId>,
    limit: u64,
) -> Result<Vec<AuditEvent>, DbErr> {
    let mut query = Entity::find().filter(Column::TeamId.eq(team_id));
    if let Some(connection_id) = connection_id {
        query = query.filter(Column::ConnectionId.eq(connection_id));
    }
    if let Some(before) = before {
        query = query.filter(Column::Id.lt(before));
    }
    let rows = query.order_by_desc(Column::Id).limit(limit).all(db).await?;
    Ok(rows
        .into_iter()
        .map(|m| AuditEvent {
            id: m.id,
            team_id: m.team_id,
            actor: Actor { kind: m.actor_kind, id: m.actor_id, label: m.actor_label },
            action: m.action,
            connection_id: m.connection_id,
            connection_name: m.connection_name,
            detail: m.detail,
            created_at: m.created_at,
        })
        .collect())
}
