//! The token lifecycle on each connection: a short lease on the right to refresh its tokens
//! (so no instance spends a rotating refresh token another is spending, without holding the
//! database while the provider answers), the generation of the tokens stored (bumped by every
//! token write, so a late result decided on older tokens cannot land), when the provider says
//! the grant itself ends (and which warning of that was sent), and the non-secret facts its token endpoint named.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            string_null(Connections::RefreshLeaseBy),
            timestamp_with_time_zone_null(Connections::RefreshLeaseExpiresAt),
            integer(Connections::TokenGeneration).default(0).to_owned(),
            timestamp_with_time_zone_null(Connections::GrantExpiresAt),
            json_null(Connections::TokenDetails),
            integer_null(Connections::GrantWarnedDays),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(Connections::Table).add_column(&mut column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Connections::RefreshLeaseBy,
            Connections::RefreshLeaseExpiresAt,
            Connections::TokenGeneration,
            Connections::GrantExpiresAt,
            Connections::TokenDetails,
            Connections::GrantWarnedDays,
        ] {
            manager
                .alter_table(Table::alter().table(Connections::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    RefreshLeaseBy,
    RefreshLeaseExpiresAt,
    TokenGeneration,
    GrantExpiresAt,
    TokenDetails,
    GrantWarnedDays,
}
