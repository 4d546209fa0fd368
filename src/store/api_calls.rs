//! The proxy's call records, newest first, kept for the retention the operator chose.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::api_call::{self, Column, Entity};
use crate::domain::{Actor, ApiCall, ConnectionId, TeamId};

/// Records several calls in one statement.
pub async fn record_many(db: &impl ConnectionTrait, calls: &[ApiCall]) -> Result<(), DbErr> {
    if calls.is_empty() {
        return Ok(());
    }
    let models = calls.iter().map(|call| api_call::ActiveModel {
        id: Set(call.id),
        team_id: Set(call.team_id),
        connection_id: Set(call.connection_id),
        flow_id: Set(call.flow_id),
        module_key: Set(call.module_key.clone()),
        method: Set(call.method.clone()),
        path: Set(call.path.clone()),
        status: Set(i32::from(call.status)),
        duration_ms: Set(i32::try_from(call.duration_ms).unwrap_or(i32::MAX)),
        plugboard_error: Set(call.plugboard_error.clone()),
        actor_kind: Set(call.actor.kind),
        actor_id: Set(call.actor.id),
        actor_label: Set(call.actor.label.clone()),
        created_at: Set(call.created_at),
    });
    Entity::insert_many(models).exec_without_returning(db).await?;
    Ok(())
}

/// One page of a connection's calls, newest first, before the call `before`.
pub async fn list(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: ConnectionId,
    before: Option<uuid::Uuid>,
    limit: u64,
) -> Result<Vec<ApiCall>, DbErr> {
    let mut query =
        Entity::find().filter(Column::TeamId.eq(team_id)).filter(Column::ConnectionId.eq(connection_id));
    if let Some(before) = before {
        query = query.filter(Column::Id.lt(before));
    }
    let rows = query.order_by_desc(Column::Id).limit(limit).all(db).await?;
    Ok(rows.into_iter().map(from_model).collect())
}

/// Forgets up to `limit` of the oldest calls made before `cutoff`, through the `created_at`
/// index; answers how many went.
pub async fn purge_before(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    let mut oldest = sea_orm::sea_query::Query::select();
    oldest
        .column(Column::Id)
        .from(Entity)
        .and_where(Column::CreatedAt.lt(cutoff))
        .order_by(Column::CreatedAt, sea_orm::Order::Asc)
        .limit(limit);
    let result = Entity::delete_many().filter(Column::Id.in_subquery(oldest)).exec(db).await?;
    Ok(result.rows_affected)
}

fn from_model(m: api_call::Model) -> ApiCall {
    ApiCall {
        id: m.id,
        team_id: m.team_id,
        connection_id: m.connection_id,
        flow_id: m.flow_id,
        module_key: m.module_key,
        method: m.method,
        path: m.path,
        status: u16::try_from(m.status).unwrap_or(0),
        duration_ms: u32::try_from(m.duration_ms).unwrap_or(0),
        plugboard_error: m.plugboard_error,
        actor: Actor { kind: m.actor_kind, id: m.actor_id, label: m.actor_label },
        created_at: m.created_at,
    }
}
