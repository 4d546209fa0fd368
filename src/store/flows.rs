//! Flows with their modules, and which modules use a connection.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};

use super::entities::{flow, flow_module};
use super::json_rows;
use crate::domain::{ConnectionId, DynamicConnectionId, Flow, FlowId, FlowModule, ModuleTarget, TeamId};

fn to_module(model: &flow_module::Model) -> FlowModule {
    let target = match (model.connection_id, model.dynamic_connection_id) {
        (Some(id), _) => ModuleTarget::Connection(id),
        (None, Some(id)) => ModuleTarget::Dynamic(id),
        (None, None) => ModuleTarget::Unset,
    };
    FlowModule {
        key: model.key.clone(),
        app_key: model.app_key.clone(),
        app_module: model.app_module.clone(),
        target,
    }
}

/// Assembles flows from their rows and all of their modules' rows.
fn assemble(flows: Vec<flow::Model>, modules: &[flow_module::Model]) -> Vec<Flow> {
    flows
        .into_iter()
        .map(|f| {
            let mut own: Vec<&flow_module::Model> = modules.iter().filter(|m| m.flow_id == f.id).collect();
            own.sort_by_key(|m| m.position);
            Flow {
                id: f.id,
                team_id: f.team_id,
                name: f.name,
                status: f.status,
                modules: own.into_iter().map(to_module).collect(),
                created_at: f.created_at,
                updated_at: f.updated_at,
            }
        })
        .collect()
}

async fn with_modules(db: &impl ConnectionTrait, flows: Vec<flow::Model>) -> Result<Vec<Flow>, DbErr> {
    let ids: Vec<FlowId> = flows.iter().map(|f| f.id).collect();
    let modules = flow_module::Entity::find().filter(flow_module::Column::FlowId.is_in(ids)).all(db).await?;
    Ok(assemble(flows, &modules))
}

pub async fn find(db: &impl ConnectionTrait, team_id: TeamId, id: FlowId) -> Result<Option<Flow>, DbErr> {
    let Some(row) = flow::Entity::find()
        .filter(flow::Column::TeamId.eq(team_id))
        .filter(flow::Column::Id.eq(id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(with_modules(db, vec![row]).await?.pop())
}

/// The team that owns a flow, to check the caller's access before anything else is read.
pub async fn owner_of(db: &impl ConnectionTrait, id: FlowId) -> Result<Option<TeamId>, DbErr> {
    Ok(flow::Entity::find_by_id(id).one(db).await?.map(|f| f.team_id))
}

pub async fn list(db: &impl ConnectionTrait, team_id: TeamId) -> Result<Vec<Flow>, DbErr> {
    let rows = flow::Entity::find()
        .filter(flow::Column::TeamId.eq(team_id))
        .order_by_asc(flow::Column::Name)
        .order_by_asc(flow::Column::Id)
        .all(db)
        .await?;
    with_modules(db, rows).await
}

/// Writes a flow and replaces its modules.
pub async fn save(db: &impl ConnectionTrait, flow: &Flow, is_new: bool) -> Result<(), DbErr> {
    let model = flow::ActiveModel {
        id: Set(flow.id),
        team_id: Set(flow.team_id),
        name: Set(flow.name.clone()),
        status: Set(flow.status),
        created_at: Set(flow.created_at),
        updated_at: Set(Utc::now()),
    };
    if is_new {
        flow::Entity::insert(model).exec_without_returning(db).await?;
    } else {
        flow::Entity::update_many()
            .col_expr(flow::Column::Name, Expr::value(flow.name.clone()))
            .col_expr(flow::Column::Status, Expr::value(flow.status))
            .col_expr(flow::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(flow::Column::TeamId.eq(flow.team_id))
            .filter(flow::Column::Id.eq(flow.id))
            .exec(db)
            .await?;
        flow_module::Entity::delete_many().filter(flow_module::Column::FlowId.eq(flow.id)).exec(db).await?;
    }
    if flow.modules.is_empty() {
        return Ok(());
    }
    let rows = flow.modules.iter().enumerate().map(|(position, module)| {
        let (connection_id, dynamic_connection_id) = match module.target {
            ModuleTarget::Unset => (None, None),
            ModuleTarget::Connection(id) => (Some(id), None),
            ModuleTarget::Dynamic(id) => (None, Some(id)),
        };
        flow_module::ActiveModel {
            flow_id: Set(flow.id),
            key: Set(module.key.clone()),
            team_id: Set(flow.team_id),
            position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            app_key: Set(module.app_key.clone()),
            app_module: Set(module.app_module.clone()),
            connection_id: Set(connection_id),
            dynamic_connection_id: Set(dynamic_connection_id),
        }
    });
    flow_module::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}

pub async fn delete(db: &impl ConnectionTrait, team_id: TeamId, id: FlowId) -> Result<bool, DbErr> {
    let result = flow::Entity::delete_many()
        .filter(flow::Column::TeamId.eq(team_id))
        .filter(flow::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Leaves every module using the connection without one, and takes it out of dynamic
/// connections (clearing a default it was), before it is deleted.
pub async fn detach_connection(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: ConnectionId,
) -> Result<(), DbErr> {
    use super::entities::{dynamic_connection, dynamic_connection_member};
    flow_module::Entity::update_many()
        .col_expr(flow_module::Column::ConnectionId, Expr::value(Option::<ConnectionId>::None))
        .filter(flow_module::Column::TeamId.eq(team_id))
        .filter(flow_module::Column::ConnectionId.eq(connection_id))
        .exec(db)
        .await?;
    dynamic_connection::Entity::update_many()
        .col_expr(dynamic_connection::Column::DefaultConnectionId, Expr::value(Option::<ConnectionId>::None))
        .filter(dynamic_connection::Column::TeamId.eq(team_id))
        .filter(dynamic_connection::Column::DefaultConnectionId.eq(connection_id))
        .exec(db)
        .await?;
    dynamic_connection_member::Entity::delete_many()
        .filter(dynamic_connection_member::Column::ConnectionId.eq(connection_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The flows with a module that uses the connection directly or through one of `dynamics`.
pub async fn using(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: ConnectionId,
    dynamics: &[DynamicConnectionId],
) -> Result<Vec<Flow>, DbErr> {
    using_any(db, team_id, &[connection_id], dynamics).await
}

/// The flows with a module that uses one of `connections` directly or through one of
/// `dynamics`, by name: three queries however many connections are asked about.
pub async fn using_any(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connections: &[ConnectionId],
    dynamics: &[DynamicConnectionId],
) -> Result<Vec<Flow>, DbErr> {
    let mut uses = Condition::any().add(flow_module::Column::ConnectionId.is_in(connections.to_vec()));
    if !dynamics.is_empty() {
        uses = uses.add(flow_module::Column::DynamicConnectionId.is_in(dynamics.to_vec()));
    }
    let flow_ids: Vec<FlowId> = flow_module::Entity::find()
        .select_only()
        .column(flow_module::Column::FlowId)
        .distinct()
        .filter(flow_module::Column::TeamId.eq(team_id))
        .filter(uses)
        .into_tuple()
        .all(db)
        .await?;
    if flow_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = flow::Entity::find()
        .filter(flow::Column::TeamId.eq(team_id))
        .filter(flow::Column::Id.is_in(flow_ids))
        .order_by_asc(flow::Column::Name)
        .all(db)
        .await?;
    with_modules(db, rows).await
}

/// Of `ids`, the connections some module names directly.
pub async fn named_by_modules(
    db: &impl ConnectionTrait,
    ids: &[ConnectionId],
) -> Result<Vec<ConnectionId>, DbErr> {
    flow_module::Entity::find()
        .select_only()
        .column(flow_module::Column::ConnectionId)
        .distinct()
        .filter(json_rows::is_in(
            db.get_database_backend(),
            flow_module::Column::ConnectionId,
            ids.iter().map(|id| id.as_uuid()),
        ))
        .into_tuple()
        .all(db)
        .await
}
