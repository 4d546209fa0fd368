//! The history of verifications: the last few checks of every connection.

use sea_orm_migration::{prelude::*, schema::*};

use crate::foreign_key;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Verifications::Table)
                    .col(pk_uuid(Verifications::Id))
                    .col(uuid(Verifications::TeamId))
                    .col(uuid(Verifications::ConnectionId))
                    .col(string(Verifications::Outcome))
                    .col(text_null(Verifications::Message))
                    .col(string_null(Verifications::AccountLabel))
                    .col(timestamp_with_time_zone(Verifications::StartedAt))
                    .col(timestamp_with_time_zone(Verifications::FinishedAt))
                    .foreign_key(&mut foreign_key(
                        Verifications::Table,
                        Verifications::ConnectionId,
                        Connections::Table,
                        Connections::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_verifications_connection")
                    .table(Verifications::Table)
                    .col(Verifications::ConnectionId)
                    .col(Verifications::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Verifications::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Verifications {
    Table,
    Id,
    TeamId,
    ConnectionId,
    Outcome,
    Message,
    AccountLabel,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
}
