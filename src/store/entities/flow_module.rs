use sea_orm::entity::prelude::*;

use crate::domain::{ConnectionId, DynamicConnectionId, FlowId, TeamId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "flow_modules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub flow_id: FlowId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub team_id: TeamId,
    pub position: i32,
    pub app_key: String,
    pub app_module: String,
    pub connection_id: Option<ConnectionId>,
    pub dynamic_connection_id: Option<DynamicConnectionId>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
