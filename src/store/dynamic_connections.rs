//! Dynamic connections and their members.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::entities::{dynamic_connection, dynamic_connection_member};
use super::json_rows;
use crate::domain::{ConnectionId, DynamicConnection, DynamicConnectionId, DynamicMember, TeamId};

async fn with_members(
    db: &impl ConnectionTrait,
    rows: Vec<dynamic_connection::Model>,
) -> Result<Vec<DynamicConnection>, DbErr> {
    let ids: Vec<DynamicConnectionId> = rows.iter().map(|r| r.id).collect();
    let members = dynamic_connection_member::Entity::find()
        .filter(dynamic_connection_member::Column::DynamicConnectionId.is_in(ids))
        .order_by_asc(dynamic_connection_member::Column::Label)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| DynamicConnection {
            id: row.id,
            team_id: row.team_id,
            name: row.name,
            app_key: row.app_key,
            default_connection: row.default_connection_id,
            version: row.version,
            members: members
                .iter()
                .filter(|m| m.dynamic_connection_id == row.id)
                .map(|m| DynamicMember { connection_id: m.connection_id, label: m.label.clone() })
                .collect(),
        })
        .collect())
}

pub async fn find(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: DynamicConnectionId,
) -> Result<Option<DynamicConnection>, DbErr> {
    let rows = dynamic_connection::Entity::find()
        .filter(dynamic_connection::Column::TeamId.eq(team_id))
        .filter(dynamic_connection::Column::Id.eq(id))
        .all(db)
        .await?;
    Ok(with_members(db, rows).await?.pop())
}

/// Like `find`, inside a transaction that will change it: on PostgreSQL the row stays locked
/// until the transaction ends (SQLite's write transactions are serialized already), so
/// concurrent changes apply one after the other instead of overwriting each other.
/// The team's dynamic connections among `ids`, with their members; another team's are not.
pub async fn find_many(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    ids: &[DynamicConnectionId],
) -> Result<Vec<DynamicConnection>, DbErr> {
    let rows = dynamic_connection::Entity::find()
        .filter(dynamic_connection::Column::TeamId.eq(team_id))
        .filter(dynamic_connection::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    with_members(db, rows).await
}

pub async fn find_for_change(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: DynamicConnectionId,
) -> Result<Option<DynamicConnection>, DbErr> {
    let mut query = dynamic_connection::Entity::find()
        .filter(dynamic_connection::Column::TeamId.eq(team_id))
        .filter(dynamic_connection::Column::Id.eq(id));
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(with_members(db, query.all(db).await?).await?.pop())
}

pub async fn owner_of(db: &impl ConnectionTrait, id: DynamicConnectionId) -> Result<Option<TeamId>, DbErr> {
    Ok(dynamic_connection::Entity::find_by_id(id).one(db).await?.map(|d| d.team_id))
}

pub async fn list(db: &impl ConnectionTrait, team_id: TeamId) -> Result<Vec<DynamicConnection>, DbErr> {
    let rows = dynamic_connection::Entity::find()
        .filter(dynamic_connection::Column::TeamId.eq(team_id))
        .order_by_asc(dynamic_connection::Column::Name)
        .all(db)
        .await?;
    with_members(db, rows).await
}

/// The dynamic connections a connection belongs to (as a member or the default).
pub async fn containing(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: ConnectionId,
) -> Result<Vec<DynamicConnection>, DbErr> {
    containing_any(db, team_id, &[connection_id]).await
}

/// The dynamic connections one of `connections` belongs to (as a member or the default), with
/// all their members: one query, and a second for the members when there are any.
pub async fn containing_any(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connections: &[ConnectionId],
) -> Result<Vec<DynamicConnection>, DbErr> {
    let member_of = Query::select()
        .column(dynamic_connection_member::Column::DynamicConnectionId)
        .from(dynamic_connection_member::Entity)
        .and_where(dynamic_connection_member::Column::ConnectionId.is_in(connections.to_vec()))
        .to_owned();
    let rows = dynamic_connection::Entity::find()
        .filter(dynamic_connection::Column::TeamId.eq(team_id))
        .filter(
            sea_orm::Condition::any()
                .add(dynamic_connection::Column::Id.in_subquery(member_of))
                .add(dynamic_connection::Column::DefaultConnectionId.is_in(connections.to_vec())),
        )
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    with_members(db, rows).await
}

/// Writes a dynamic connection and replaces its members. A change is written only over the
/// version it was read at (`dynamic.version`); answers `false` when another change came first.
pub async fn save(
    db: &impl ConnectionTrait,
    dynamic: &DynamicConnection,
    is_new: bool,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    if is_new {
        let model = dynamic_connection::ActiveModel {
            id: Set(dynamic.id),
            team_id: Set(dynamic.team_id),
            name: Set(dynamic.name.clone()),
            app_key: Set(dynamic.app_key.clone()),
            default_connection_id: Set(dynamic.default_connection),
            version: Set(dynamic.version),
            created_at: Set(now),
            updated_at: Set(now),
        };
        dynamic_connection::Entity::insert(model).exec_without_returning(db).await?;
    } else {
        let updated = dynamic_connection::Entity::update_many()
            .col_expr(dynamic_connection::Column::Name, Expr::value(dynamic.name.clone()))
            .col_expr(
                dynamic_connection::Column::DefaultConnectionId,
                Expr::value(dynamic.default_connection),
            )
            .col_expr(dynamic_connection::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                dynamic_connection::Column::Version,
                Expr::col(dynamic_connection::Column::Version).add(1),
            )
            .filter(dynamic_connection::Column::TeamId.eq(dynamic.team_id))
            .filter(dynamic_connection::Column::Id.eq(dynamic.id))
            .filter(dynamic_connection::Column::Version.eq(dynamic.version))
            .exec(db)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(false);
        }
        dynamic_connection_member::Entity::delete_many()
            .filter(dynamic_connection_member::Column::DynamicConnectionId.eq(dynamic.id))
            .exec(db)
            .await?;
    }
    if dynamic.members.is_empty() {
        return Ok(true);
    }
    let rows = dynamic.members.iter().map(|m| dynamic_connection_member::ActiveModel {
        dynamic_connection_id: Set(dynamic.id),
        connection_id: Set(m.connection_id),
        label: Set(m.label.clone()),
    });
    dynamic_connection_member::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(true)
}

pub async fn delete(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: DynamicConnectionId,
) -> Result<bool, DbErr> {
    let result = dynamic_connection::Entity::delete_many()
        .filter(dynamic_connection::Column::TeamId.eq(team_id))
        .filter(dynamic_connection::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Of `ids`, the connections that belong to a dynamic connection, as a member or its default.
pub async fn grouped(db: &impl ConnectionTrait, ids: &[ConnectionId]) -> Result<Vec<ConnectionId>, DbErr> {
    let backend = db.get_database_backend();
    let uuids = || ids.iter().map(|id| id.as_uuid());
    let mut found: Vec<ConnectionId> = dynamic_connection_member::Entity::find()
        .select_only()
        .column(dynamic_connection_member::Column::ConnectionId)
        .distinct()
        .filter(json_rows::is_in(backend, dynamic_connection_member::Column::ConnectionId, uuids()))
        .into_tuple()
        .all(db)
        .await?;
    let defaults: Vec<Option<ConnectionId>> = dynamic_connection::Entity::find()
        .select_only()
        .column(dynamic_connection::Column::DefaultConnectionId)
        .distinct()
        .filter(json_rows::is_in(backend, dynamic_connection::Column::DefaultConnectionId, uuids()))
        .into_tuple()
        .all(db)
        .await?;
    found.extend(defaults.into_iter().flatten());
    Ok(found)
}
