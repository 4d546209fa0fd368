//! One compact row per call through the proxy: who called what of which connection, and how it
//! went. Never a body or a header value; the path is kept without query values.

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
                    .table(ApiCalls::Table)
                    .col(pk_uuid(ApiCalls::Id))
                    .col(uuid(ApiCalls::TeamId))
                    .col(uuid(ApiCalls::ConnectionId))
                    .col(uuid_null(ApiCalls::FlowId))
                    .col(string_null(ApiCalls::ModuleKey))
                    .col(string(ApiCalls::Method))
                    .col(text(ApiCalls::Path))
                    .col(integer(ApiCalls::Status))
                    .col(integer(ApiCalls::DurationMs))
                    .col(string_null(ApiCalls::PlugboardError))
                    .col(string(ApiCalls::ActorKind))
                    .col(uuid_null(ApiCalls::ActorId))
                    .col(string(ApiCalls::ActorLabel))
                    .col(timestamp_with_time_zone(ApiCalls::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        ApiCalls::Table,
                        ApiCalls::ConnectionId,
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
                    .name("idx_api_calls_connection_id_id")
                    .table(ApiCalls::Table)
                    .col(ApiCalls::ConnectionId)
                    .col(ApiCalls::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_calls_created_at")
                    .table(ApiCalls::Table)
                    .col(ApiCalls::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ApiCalls::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ApiCalls {
    Table,
    Id,
    TeamId,
    ConnectionId,
    FlowId,
    ModuleKey,
    Method,
    Path,
    Status,
    DurationMs,
    PlugboardError,
    ActorKind,
    ActorId,
    ActorLabel,
    CreatedAt,
}
