//! Takes the sweep's claims off the connections' rows. A sweep used to claim a batch by writing
//! its token and an expiry into each of the batch's 500 rows, then wrote each row again to
//! record its check: two new versions of a wide row a check, each with an entry in every index
//! of `connections`. Now a batch is claimed by one row in `check_leases`, naming the last
//! connection it covers in the order sweeps claim (`next_check_at`, then `id`); a sweep claims
//! the due connections past the last one any live lease covers, and a check writes its
//! connection's row once.
//!
//! A connection waiting for consent is never due, and any other always has a `next_check_at`:
//! the few that had none (meaning "as soon as possible") are due from their creation.
//!
//! The old claim columns (`claimed_by`, `claim_expires_at`) stay, unused, for one release: an
//! instance of the version before, still running during a rolling upgrade, writes them when it
//! creates a connection or claims a batch. A later migration drops them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{pk_uuid, string, timestamp_with_time_zone, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

const OLD_INDEX: &str = "idx_connections_next_check_at";
const INDEX: &str = "idx_connections_next_check_at_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CheckLeases::Table)
                    .col(pk_uuid(CheckLeases::Id))
                    .col(string(CheckLeases::Sweep))
                    .col(timestamp_with_time_zone(CheckLeases::ExpiresAt))
                    .col(timestamp_with_time_zone(CheckLeases::LastDue))
                    .col(uuid(CheckLeases::LastId))
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().name(OLD_INDEX).to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Connections::Table)
                    .col(Connections::NextCheckAt)
                    .col(Connections::Id)
                    .to_owned(),
            )
            .await?;
        let never_scheduled = Query::update()
            .table(Connections::Table)
            .value(Connections::NextCheckAt, Expr::col(Connections::CreatedAt))
            .and_where(Expr::col(Connections::NextCheckAt).is_null())
            .and_where(Expr::col(Connections::Status).ne("PENDING_AUTHORIZATION"))
            .to_owned();
        manager.exec_stmt(never_scheduled).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(INDEX).to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD_INDEX)
                    .table(Connections::Table)
                    .col(Connections::NextCheckAt)
                    .to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table(CheckLeases::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum CheckLeases {
    Table,
    Id,
    Sweep,
    ExpiresAt,
    LastDue,
    LastId,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
    Status,
    CreatedAt,
    NextCheckAt,
}
