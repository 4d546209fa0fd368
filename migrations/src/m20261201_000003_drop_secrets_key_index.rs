//! Drops the index on `connections.secrets_key_id`. Key rotation, the one reader it was made
//! for, asks for rows sealed under any key *but* the active one, which a B-tree cannot answer:
//! it walks the primary key in id order instead. Meanwhile every check recorded (an update that
//! moves `next_check_at`, so never heap-only on PostgreSQL) wrote an entry into it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_connections_secrets_key_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(INDEX).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Connections::Table)
                    .col(Connections::SecretsKeyId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    SecretsKeyId,
}
