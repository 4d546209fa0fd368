//! Teams, users, memberships, API tokens, connections and the audit trail.

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
                    .table(Teams::Table)
                    .col(pk_uuid(Teams::Id))
                    .col(string_uniq(Teams::Name))
                    .col(timestamp_with_time_zone(Teams::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string_uniq(Users::Email))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(uuid(Memberships::TeamId))
                    .col(uuid(Memberships::UserId))
                    .col(string(Memberships::Role))
                    .col(timestamp_with_time_zone(Memberships::CreatedAt))
                    .primary_key(Index::create().col(Memberships::TeamId).col(Memberships::UserId))
                    .foreign_key(&mut foreign_key(
                        Memberships::Table,
                        Memberships::TeamId,
                        Teams::Table,
                        Teams::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Memberships::Table,
                        Memberships::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(pk_uuid(ApiTokens::Id))
                    .col(string(ApiTokens::Kind))
                    .col(uuid_null(ApiTokens::UserId))
                    .col(uuid_null(ApiTokens::TeamId))
                    .col(string(ApiTokens::Name))
                    .col(string(ApiTokens::Prefix))
                    .col(string_uniq(ApiTokens::TokenHash))
                    .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                    .foreign_key(&mut foreign_key(
                        ApiTokens::Table,
                        ApiTokens::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        ApiTokens::Table,
                        ApiTokens::TeamId,
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
                    .table(Connections::Table)
                    .col(pk_uuid(Connections::Id))
                    .col(uuid(Connections::TeamId))
                    .col(string(Connections::AppKey))
                    .col(string(Connections::Name))
                    .col(string(Connections::AuthType))
                    .col(string(Connections::Status))
                    .col(json(Connections::PublicFields))
                    .col(json(Connections::SecretFields))
                    .col(blob_null(Connections::SealedSecrets))
                    .col(string_null(Connections::SecretsKeyId))
                    .col(json(Connections::Scopes))
                    .col(timestamp_with_time_zone_null(Connections::ExpiresAt))
                    .col(string_null(Connections::AccountLabel))
                    .col(string_null(Connections::LastVerificationOutcome))
                    .col(text_null(Connections::LastVerificationMessage))
                    .col(timestamp_with_time_zone_null(Connections::LastVerificationStartedAt))
                    .col(timestamp_with_time_zone_null(Connections::LastVerificationFinishedAt))
                    .col(integer(Connections::Version))
                    .col(uuid_null(Connections::CreatedBy))
                    .col(uuid_null(Connections::UpdatedBy))
                    .col(timestamp_with_time_zone(Connections::CreatedAt))
                    .col(timestamp_with_time_zone(Connections::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        Connections::Table,
                        Connections::TeamId,
                        Teams::Table,
                        Teams::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_team_app")
                    .table(Connections::Table)
                    .col(Connections::TeamId)
                    .col(Connections::AppKey)
                    .to_owned(),
            )
            .await?;
        // Key rotation looks for blobs still sealed under a retired key.
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_secrets_key_id")
                    .table(Connections::Table)
                    .col(Connections::SecretsKeyId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(pk_uuid(AuditEvents::Id))
                    .col(uuid(AuditEvents::TeamId))
                    .col(string(AuditEvents::ActorKind))
                    .col(uuid_null(AuditEvents::ActorId))
                    .col(string(AuditEvents::ActorLabel))
                    .col(string(AuditEvents::Action))
                    .col(uuid_null(AuditEvents::ConnectionId))
                    .col(string_null(AuditEvents::ConnectionName))
                    .col(json(AuditEvents::Detail))
                    .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        AuditEvents::Table,
                        AuditEvents::TeamId,
                        Teams::Table,
                        Teams::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_team_connection")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::TeamId)
                    .col(AuditEvents::ConnectionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            Connections::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
            Teams::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    TeamId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Kind,
    UserId,
    TeamId,
    Name,
    Prefix,
    TokenHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
    TeamId,
    AppKey,
    Name,
    AuthType,
    Status,
    PublicFields,
    SecretFields,
    SealedSecrets,
    SecretsKeyId,
    Scopes,
    ExpiresAt,
    AccountLabel,
    LastVerificationOutcome,
    LastVerificationMessage,
    LastVerificationStartedAt,
    LastVerificationFinishedAt,
    Version,
    CreatedBy,
    UpdatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    TeamId,
    ActorKind,
    ActorId,
    ActorLabel,
    Action,
    ConnectionId,
    ConnectionName,
    Detail,
    CreatedAt,
}
