use sea_orm::entity::prelude::*;

/// An app whose provider is or was degraded; no row means healthy.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "app_health")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub app_key: String,
    /// `HEALTHY` or `DEGRADED`.
    pub status: String,
    pub since: DateTimeUtc,
    pub last_error: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
