//! Plugboard's database schema, as migrations. They are the only source of the schema and run
//! unchanged on SQLite and PostgreSQL; the service applies them at start.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_foundation;
mod m20261128_000002_verifications;
mod m20261128_000003_connection_health;
mod m20261128_000004_oauth_states;
mod m20261128_000005_flows;
mod m20261128_000006_webhooks;
mod m20261128_000007_list_index;
mod m20261130_000008_app_health;
mod m20261130_100001_event_outbox;
mod m20261130_100002_dynamic_connection_version;
mod m20261130_140001_token_lifecycle;
mod m20261130_160000_token_expiry_and_identities;
mod m20261130_170001_api_calls;
mod m20261130_180001_drop_claimed_by_index;
mod m20261201_000001_connection_counts;
mod m20261201_000002_deliveries_by_endpoint;
mod m20261201_000003_drop_secrets_key_index;
mod m20261201_000004_check_leases;

pub struct Migrator;

/// A foreign key from `from_table.from_col` to `to_table.to_col`, with what happens to the row
/// when its parent goes.
pub(crate) fn foreign_key(
    from_table: impl IntoIden,
    from_col: impl IntoIden,
    to_table: impl IntoIden,
    to_col: impl IntoIden,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from_table, from_col).to(to_table, to_col).on_delete(on_delete).to_owned()
}

/// A migration that runs whole or not at all, on SQLite too (its DDL is transactional; the
/// library wraps only PostgreSQL's by default): a first start killed halfway through one left
/// a database that no later start could migrate ("duplicate column name").
struct Whole(Box<dyn MigrationTrait>);

impl MigrationName for Whole {
    fn name(&self) -> &str {
        self.0.name()
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Whole {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.0.up(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.0.down(manager).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let migrations: Vec<Box<dyn MigrationTrait>> = vec![
            Box::new(m20261128_000001_foundation::Migration),
            Box::new(m20261128_000002_verifications::Migration),
            Box::new(m20261128_000003_connection_health::Migration),
            Box::new(m20261128_000004_oauth_states::Migration),
            Box::new(m20261128_000005_flows::Migration),
            Box::new(m20261128_000006_webhooks::Migration),
            Box::new(m20261128_000007_list_index::Migration),
            Box::new(m20261130_000008_app_health::Migration),
            Box::new(m20261130_100001_event_outbox::Migration),
            Box::new(m20261130_100002_dynamic_connection_version::Migration),
            Box::new(m20261130_140001_token_lifecycle::Migration),
            Box::new(m20261130_160000_token_expiry_and_identities::Migration),
            Box::new(m20261130_170001_api_calls::Migration),
            Box::new(m20261130_180001_drop_claimed_by_index::Migration),
            Box::new(m20261201_000001_connection_counts::Migration),
            Box::new(m20261201_000002_deliveries_by_endpoint::Migration),
            Box::new(m20261201_000003_drop_secrets_key_index::Migration),
            Box::new(m20261201_000004_check_leases::Migration),
        ];
        migrations
            .into_iter()
            .map(|migration| Box::new(Whole(migration)) as Box<dyn MigrationTrait>)
            .collect()
    }
}
