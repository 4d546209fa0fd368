//! Tokens that expire, and users known by an identity provider's subject (single sign-on).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_null, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(ApiTokens::Table)
                    .add_column(timestamp_with_time_zone_null(ApiTokens::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Users::Table).add_column(string_null(Users::OidcSubject)).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_oidc_subject")
                    .table(Users::Table)
                    .col(Users::OidcSubject)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_tokens_user_id")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_tokens_team_id")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::TeamId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("idx_api_tokens_team_id").table(ApiTokens::Table).to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name("idx_api_tokens_user_id").table(ApiTokens::Table).to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name("idx_users_oidc_subject").table(Users::Table).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Users::Table).drop_column(Users::OidcSubject).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(ApiTokens::Table).drop_column(ApiTokens::ExpiresAt).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    UserId,
    TeamId,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    OidcSubject,
}
