//! A team's connections are listed in id (creation) order; without this index each page sorted
//! every connection of the team.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_team_id_id")
                    .table(Connections::Table)
                    .col(Connections::TeamId)
                    .col(Connections::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_connections_team_id_id").to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    TeamId,
    Id,
}
