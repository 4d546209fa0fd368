//! Webhook endpoints of a team and the deliveries made to them.

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
                    .table(Webhooks::Table)
                    .col(pk_uuid(Webhooks::Id))
                    .col(uuid(Webhooks::TeamId))
                    .col(string(Webhooks::Url))
                    .col(blob(Webhooks::SealedSecret))
                    .col(string(Webhooks::SecretKeyId))
                    .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Webhooks::Table,
                        Webhooks::TeamId,
                        Teams::Table,
                        Teams::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(pk_uuid(WebhookDeliveries::Id))
                    .col(uuid(WebhookDeliveries::WebhookId))
                    .col(uuid(WebhookDeliveries::TeamId))
                    .col(string(WebhookDeliveries::Event))
                    .col(json(WebhookDeliveries::Payload))
                    .col(string(WebhookDeliveries::Status))
                    .col(integer(WebhookDeliveries::Attempts))
                    .col(text_null(WebhookDeliveries::LastError))
                    .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                    .col(string_null(WebhookDeliveries::ClaimedBy))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::ClaimExpiresAt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::DeliveredAt))
                    .foreign_key(&mut foreign_key(
                        WebhookDeliveries::Table,
                        WebhookDeliveries::WebhookId,
                        Webhooks::Table,
                        Webhooks::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Webhooks::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    TeamId,
    Url,
    SealedSecret,
    SecretKeyId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    TeamId,
    Event,
    Payload,
    Status,
    Attempts,
    LastError,
    NextAttemptAt,
    ClaimedBy,
    ClaimExpiresAt,
    CreatedAt,
    DeliveredAt,
}
