use sea_orm::entity::prelude::*;

use crate::domain::ConnectionId;

/// A sweep's claim on a batch of due connections: every due connection up to and including
/// (`last_due`, `last_id`) in the order sweeps claim, until `expires_at` (see `store::checks`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "check_leases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The sweep that holds the lease; its leases are given back together when it ends.
    pub sweep: String,
    pub expires_at: DateTimeUtc,
    pub last_due: DateTimeUtc,
    pub last_id: ConnectionId,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
