//! The last checks of each connection, newest first.

use sea_orm::sea_query::{Expr, ExprTrait, Func, Order, Query, WindowStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, DeriveIden, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
};

use super::entities::verification::{self, Column, Entity};
use super::prepared::PreparedWrites;
use crate::domain::{ConnectionId, TeamId, Verification};

/// Records a check and forgets all but the newest `keep` of the connection.
pub async fn record(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: ConnectionId,
    check: &Verification,
    keep: u64,
) -> Result<(), DbErr> {
    record_many(db, &[(team_id, connection_id, check)], keep).await
}

/// Records checks of several connections (two statements, however many), and forgets all but
/// the newest `keep` of each.
pub async fn record_many(
    db: &impl ConnectionTrait,
    checks: &[(TeamId, ConnectionId, &Verification)],
    keep: u64,
) -> Result<(), DbErr> {
    let mut writes = PreparedWrites::default();
    writes.extend(record_many_statements(db.get_database_backend(), checks, keep));
    writes.run(db).await
}

/// The statements `record_many` runs, to build ahead of a transaction: the history's rows,
/// then the deletion of what falls beyond `keep`. None when there is nothing to record.
pub fn record_many_statements(
    backend: DatabaseBackend,
    checks: &[(TeamId, ConnectionId, &Verification)],
    keep: u64,
) -> Vec<Statement> {
    if checks.is_empty() {
        return Vec::new();
    }
    let models = checks.iter().map(|(team_id, connection_id, check)| verification::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        team_id: Set(*team_id),
        connection_id: Set(*connection_id),
        outcome: Set(check.outcome),
        message: Set(check.message.clone()),
        account_label: Set(check.account_label.clone()),
        started_at: Set(check.started_at),
        finished_at: Set(check.finished_at),
    });
    let insert = Entity::insert_many(models).build(backend);
    // Rank each connection's history newest first and delete what falls beyond `keep`.
    let connections: Vec<ConnectionId> = checks.iter().map(|(_, id, _)| *id).collect();
    let ranked = Query::select()
        .column(Column::Id)
        .expr_window_as(
            Func::cust(RowNumber),
            WindowStatement::partition_by(Column::ConnectionId).order_by(Column::Id, Order::Desc).to_owned(),
            Ranked::Newer,
        )
        .from(Entity)
        .and_where(Column::ConnectionId.is_in(connections))
        .to_owned();
    let stale = Query::select()
        .column(Column::Id)
        .from_subquery(ranked, Ranked::Table)
        .and_where(Expr::col(Ranked::Newer).gt(keep))
        .to_owned();
    let prune = Entity::delete_many().filter(Column::Id.in_subquery(stale)).build(backend);
    vec![insert, prune]
}

#[derive(DeriveIden)]
struct RowNumber;

/// A connection's history numbered newest first.
#[derive(DeriveIden)]
enum Ranked {
    Table,
    Newer,
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
