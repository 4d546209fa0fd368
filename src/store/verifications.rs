//! The last checks of each connection, newest first.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::verification::{self, Column, Entity};
use crate::domain::{ConnectionId, TeamId, Verification};

/// Records a check and forgets all but the newest `keep` of the connection.
pub async fn record(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: ConnectionId,
    check: &Verification,
    keep: u64,
) -> Result<(), DbErr> {
    let model = verification::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        team_id: Set(team_id),
        connection_id: Set(connection_id),
        outcome: Set(check.outcome),
        message: Set(check.message.clone()),
        account_label: Set(check.account_label.clone()),
        started_at: Set(check.started_at),
        finished_at: Set(check.finished_at),
    };
    Entity::insert(model).exec_without_returning(db).await?;
    let stale: Vec<uuid::Uuid> = Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::ConnectionId.eq(connection_id))
        .order_by_desc(Column::Id)
        .offset(keep)
        // SQLite accepts OFFSET only after a LIMIT; nothing real has this many checks.
        .limit(1_000_000)
        .into_tuple()
        .all(db)
        .await?;
    if !stale.is_empty() {
        Entity::delete_many().filter(Column::Id.is_in(stale)).exec(db).await?;
    }
    Ok(())
}

pub async fn list(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: ConnectionId,
    limit: u64,
) -> Result<Vec<Verification>, DbErr> {
    let rows = Entity::find()
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::ConnectionId.eq(connection_id))
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| Verification {
            outcome: m.outcome,
            message: m.message,
            account_label: m.account_label,
            started_at: m.started_at,
            finished_at: m.finished_at,
        })
        .collect())
}
