//! Flows and the modules that use connections, and dynamic connections (a named set of
//! connections of one app with a default).

use sea_orm_migration::{prelude::*, schema::*};

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
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(DynamicConnections::Table, DynamicConnections::TeamId)
                            .to(Teams::Table, Teams::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(DynamicConnections::Table, DynamicConnections::DefaultConnectionId)
                            .to(Connections::Table, Connections::Id)
                            .on_delete(ForeignKeyAction::SetNull)
                            .to_owned(),
                    )
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
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(
                                DynamicConnectionMembers::Table,
                                DynamicConnectionMembers::DynamicConnectionId,
                            )
                            .to(DynamicConnections::Table, DynamicConnections::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(DynamicConnectionMembers::Table, DynamicConnectionMembers::ConnectionId)
                            .to(Connections::Table, Connections::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
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
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(Flows::Table, Flows::TeamId)
                            .to(Teams::Table, Teams::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
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
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(FlowModules::Table, FlowModules::FlowId)
                            .to(Flows::Table, Flows::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(FlowModules::Table, FlowModules::ConnectionId)
                            .to(Connections::Table, Connections::Id)
                            .on_delete(ForeignKeyAction::SetNull)
                            .to_owned(),
                    )
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(FlowModules::Table, FlowModules::DynamicConnectionId)
                            .to(DynamicConnections::Table, DynamicConnections::Id)
                            .on_delete(ForeignKeyAction::SetNull)
                            .to_owned(),
                    )
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
