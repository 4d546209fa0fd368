//! An index on a webhook endpoint's deliveries by status and age. The dispatcher claims, per
//! endpoint, only its oldest due delivery and none while one is in flight; both questions are
//! asked of one endpoint's pending deliveries, which this index finds without reading the
//! endpoint's delivered history. A team's delivery log (`deliveries` of one webhook) uses it
//! too.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_webhook_deliveries_endpoint";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(INDEX).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    WebhookId,
    Status,
    CreatedAt,
}
