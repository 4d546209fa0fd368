//! Flows and the modules that use connections, and dynamic connections (a named set of
//! connections of one app with a default).

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
                    .table(DynamicConnections::Table)
                    .col(pk_uuid(DynamicConnections::Id))
                    .col(uuid(DynamicConnections::TeamId))
                    .col(string(DynamicConnections::Name))
                    .col(string(DynamicConnections::AppKey))
                    .col(uuid_null(DynamicConnections::DefaultConnectionId))
                    .col(timestamp_with_time_zone(DynamicConnections::CreatedAt))
                    .col(timestamp_with_time_zone(DynamicConnections::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        DynamicConnections::Table,
                        DynamicConnections::TeamId,
                        Teams::Table,
                        Teams::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        DynamicConnections::Table,
                        DynamicConnections::DefaultConnectionId,
                        Connections::Table,
                        Connections::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DynamicConnectionMembers::Table)
                    .col(uuid(DynamicConnectionMembers::DynamicConnectionId))
                    .col(uuid(DynamicConnectionMembers::ConnectionId))
                    .col(string(DynamicConnectionMembers::Label))
                    .primary_key(
                        Index::create()
                            .col(DynamicConnectionMembers::DynamicConnectionId)
                            .col(DynamicConnectionMembers::ConnectionId),
                    )
                    .foreign_key(&mut foreign_key(
                        DynamicConnectionMembers::Table,
                        DynamicConnectionMembers::DynamicConnectionId,
                        DynamicConnections::Table,
                        DynamicConnections::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        DynamicConnectionMembers::Table,
                        DynamicConnectionMembers::ConnectionId,
                        Connections::Table,
                        Connections::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Flows::Table)
                    .col(pk_uuid(Flows::Id))
                    .col(uuid(Flows::TeamId))
                    .col(string(Flows::Name))
                    .col(string(Flows::Status))
                    .col(timestamp_with_time_zone(Flows::CreatedAt))
                    .col(timestamp_with_time_zone(Flows::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        Flows::Table,
                        Flows::TeamId,
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
                    .table(FlowModules::Table)
                    .col(uuid(FlowModules::FlowId))
                    .col(string(FlowModules::Key))
                    .col(uuid(FlowModules::TeamId))
                    .col(integer(FlowModules::Position))
                    .col(string(FlowModules::AppKey))
                    .col(string(FlowModules::AppModule))
                    .col(uuid_null(FlowModules::ConnectionId))
                    .col(uuid_null(FlowModules::DynamicConnectionId))
                    .primary_key(Index::create().col(FlowModules::FlowId).col(FlowModules::Key))
                    .foreign_key(&mut foreign_key(
                        FlowModules::Table,
                        FlowModules::FlowId,
                        Flows::Table,
                        Flows::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        FlowModules::Table,
                        FlowModules::ConnectionId,
                        Connections::Table,
                        Connections::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        FlowModules::Table,
                        FlowModules::DynamicConnectionId,
                        DynamicConnections::Table,
                        DynamicConnections::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_flow_modules_connection", FlowModules::ConnectionId),
            ("idx_flow_modules_dynamic", FlowModules::DynamicConnectionId),
        ] {
            manager
                .create_index(Index::create().name(name).table(FlowModules::Table).col(column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(FlowModules::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Flows::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(DynamicConnectionMembers::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(DynamicConnections::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum DynamicConnections {
    Table,
    Id,
    TeamId,
    Name,
    AppKey,
    DefaultConnectionId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DynamicConnectionMembers {
    Table,
    DynamicConnectionId,
    ConnectionId,
    Label,
}

#[derive(DeriveIden)]
enum Flows {
    Table,
    Id,
    TeamId,
    Name,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FlowModules {
    Table,
    FlowId,
    Key,
    TeamId,
    Position,
    AppKey,
    AppModule,
    ConnectionId,
    DynamicConnectionId,
}
