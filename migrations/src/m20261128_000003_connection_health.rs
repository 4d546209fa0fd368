//! What the scheduler needs on each connection: when to check it next, who has claimed the
//! check (and until when), and how its recent checks went.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            timestamp_with_time_zone_null(Connections::NextCheckAt),
            string_null(Connections::ClaimedBy),
            timestamp_with_time_zone_null(Connections::ClaimExpiresAt),
            integer(Connections::ConsecutiveFailures).default(0).to_owned(),
            timestamp_with_time_zone_null(Connections::LastSuccessAt),
            timestamp_with_time_zone_null(Connections::LastFailureAt),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(Connections::Table).add_column(&mut column).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_next_check_at")
                    .table(Connections::Table)
                    .col(Connections::NextCheckAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_claimed_by")
                    .table(Connections::Table)
                    .col(Connections::ClaimedBy)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_connections_claimed_by").to_owned()).await?;
        manager.drop_index(Index::drop().name("idx_connections_next_check_at").to_owned()).await?;
        for column in [
            Connections::NextCheckAt,
            Connections::ClaimedBy,
            Connections::ClaimExpiresAt,
            Connections::ConsecutiveFailures,
            Connections::LastSuccessAt,
            Connections::LastFailureAt,
        ] {
            manager
                .alter_table(Table::alter().table(Connections::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    NextCheckAt,
    ClaimedBy,
    ClaimExpiresAt,
    ConsecutiveFailures,
    LastSuccessAt,
    LastFailureAt,
}
