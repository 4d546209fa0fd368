//! Consents in progress: one row per `state` handed to a provider, consumed by the callback.

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
                    .table(OauthStates::Table)
                    .col(pk_uuid(OauthStates::Id))
                    .col(string_uniq(OauthStates::StateHash))
                    .col(uuid(OauthStates::TeamId))
                    .col(uuid(OauthStates::ConnectionId))
                    .col(string(OauthStates::Purpose))
                    .col(integer(OauthStates::ConnectionVersion))
                    .col(json(OauthStates::Scopes))
                    .col(blob(OauthStates::SealedPayload))
                    .col(string(OauthStates::PayloadKeyId))
                    .col(string(OauthStates::ActorKind))
                    .col(uuid_null(OauthStates::ActorId))
                    .col(string(OauthStates::ActorLabel))
                    .col(timestamp_with_time_zone(OauthStates::ExpiresAt))
                    .col(timestamp_with_time_zone(OauthStates::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        OauthStates::Table,
                        OauthStates::ConnectionId,
                        Connections::Table,
                        Connections::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(OauthStates::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    Id,
    StateHash,
    TeamId,
    ConnectionId,
    Purpose,
    ConnectionVersion,
    Scopes,
    SealedPayload,
    PayloadKeyId,
    ActorKind,
    ActorId,
    ActorLabel,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
}
