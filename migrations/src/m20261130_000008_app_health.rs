//! App-level incidents: whether an app's provider is degraded, since when, and the last error
//! seen, shared by every instance. No row means healthy.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AppHealth::Table)
                    .if_not_exists()
                    .col(string(AppHealth::AppKey).primary_key())
                    .col(string(AppHealth::Status))
                    .col(timestamp_with_time_zone(AppHealth::Since))
                    .col(text_null(AppHealth::LastError))
                    .col(timestamp_with_time_zone(AppHealth::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AppHealth::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum AppHealth {
    Table,
    AppKey,
    Status,
    Since,
    LastError,
    UpdatedAt,
}
