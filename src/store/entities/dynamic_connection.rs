use sea_orm::entity::prelude::*;

use crate::domain::{ConnectionId, DynamicConnectionId, TeamId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dynamic_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: DynamicConnectionId,
    pub team_id: TeamId,
    pub name: String,
    pub app_key: String,
    pub default_connection_id: Option<ConnectionId>,
    /// Increases with every change; a write based on an older one is refused.
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
