use sea_orm::entity::prelude::*;

use crate::domain::TeamId;

/// How many connections a team has, moved by triggers on `connections` (migration
/// `m20261201_000001_connection_counts`); the service only reads it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connection_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub team_id: TeamId,
    pub connections: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
