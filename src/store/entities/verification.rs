use sea_orm::entity::prelude::*;

use crate::domain::{ConnectionId, TeamId, VerificationOutcome};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "verifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub team_id: TeamId,
    pub connection_id: ConnectionId,
    pub outcome: VerificationOutcome,
    pub message: Option<String>,
    pub account_label: Option<String>,
    pub started_at: DateTimeUtc,
    pub finished_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
