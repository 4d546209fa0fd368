//! Grants that end soon, for the scheduler's warnings: which connections are inside a warning
//! window without that warning sent, and a guarded mark that one instance alone wins.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::connections::to_connection;
use super::entities::connection::{Column, Entity};
use crate::domain::{Connection, ConnectionId, ConnectionStatus, TeamId};

/// Up to `limit` connections, across teams, whose grant ends within `days` of `now` (and has
/// not ended) and that were not yet warned that close to the end.
pub async fn due_warning(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    days: i32,
    limit: u64,
) -> Result<Vec<Connection>, DbErr> {
    let horizon = now + chrono::Duration::days(i64::from(days));
    Entity::find()
        .filter(Column::GrantExpiresAt.gt(now))
        .filter(Column::GrantExpiresAt.lte(horizon))
        .filter(Column::Status.ne(ConnectionStatus::PendingAuthorization))
        .filter(Condition::any().add(Column::GrantWarnedDays.is_null()).add(Column::GrantWarnedDays.gt(days)))
        .order_by_asc(Column::GrantExpiresAt)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(to_connection)
        .collect()
}

/// Records that the `days` warning of the grant ending at `ends` was sent. Answers `false`
/// when another instance sent it first, or the grant changed meanwhile.
pub async fn mark_warned(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
    ends: DateTime<Utc>,
    days: i32,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::GrantWarnedDays, Expr::value(days))
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.eq(id))
        .filter(Column::GrantExpiresAt.eq(ends))
        .filter(Condition::any().add(Column::GrantWarnedDays.is_null()).add(Column::GrantWarnedDays.gt(days)))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
