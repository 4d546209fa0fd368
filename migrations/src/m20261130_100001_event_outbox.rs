//! The outbox of live events: written in the transaction of the change they report, published
//! by a dispatcher afterwards, deleted once published. Webhook deliveries need no table of their
//! own here: their rows already are an outbox.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventOutbox::Table)
                    .col(pk_uuid(EventOutbox::Id))
                    .col(text(EventOutbox::Payload))
                    .col(timestamp_with_time_zone(EventOutbox::CreatedAt))
                    .col(string_null(EventOutbox::ClaimedBy))
                    .col(timestamp_with_time_zone_null(EventOutbox::ClaimExpiresAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EventOutbox::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum EventOutbox {
    Table,
    Id,
    Payload,
    CreatedAt,
    ClaimedBy,
    ClaimExpiresAt,
}
