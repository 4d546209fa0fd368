//! Dynamic connections get a version, so a change made from a stale read is refused instead of
//! overwriting a concurrent one.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DynamicConnections::Table)
                    .add_column(integer(DynamicConnections::Version).default(1))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DynamicConnections::Table)
                    .drop_column(DynamicConnections::Version)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum DynamicConnections {
    Table,
    Version,
}
