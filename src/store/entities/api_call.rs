use sea_orm::entity::prelude::*;

use crate::domain::{ActorKind, ConnectionId, FlowId, TeamId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_calls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub team_id: TeamId,
    pub connection_id: ConnectionId,
    pub flow_id: Option<FlowId>,
    pub module_key: Option<String>,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub duration_ms: i32,
    pub plugboard_error: Option<String>,
    pub actor_kind: ActorKind,
    pub actor_id: Option<Uuid>,
    pub actor_label: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
