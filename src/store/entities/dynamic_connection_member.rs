use sea_orm::entity::prelude::*;

use crate::domain::{ConnectionId, DynamicConnectionId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dynamic_connection_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub dynamic_connection_id: DynamicConnectionId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub connection_id: ConnectionId,
    pub label: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
