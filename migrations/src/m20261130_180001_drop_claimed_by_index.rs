//! Drops the index on `connections.claimed_by`. It served only the sweep's last statement (give
//! back what is still claimed, once per sweep), while every claim and every recorded check
//! rewrote an entry of it; on PostgreSQL it also kept each claim from being a HOT update (one
//! that writes no index at all). Claims and results name their rows by id.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_connections_claimed_by";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(INDEX).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create().name(INDEX).table(Connections::Table).col(Connections::ClaimedBy).to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    ClaimedBy,
}
