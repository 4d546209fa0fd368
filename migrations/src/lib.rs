//! Plugboard's database schema, as migrations. They are the only source of the schema and run
//! unchanged on SQLite and PostgreSQL; the service applies them at start.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_foundation;
mod m20261128_000002_verifications;
mod m20261128_000003_connection_health;
mod m20261128_000004_oauth_states;
mod m20261128_000005_flows;
mod m20261128_000006_webhooks;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_foundation::Migration),
            Box::new(m20261128_000002_verifications::Migration),
            Box::new(m20261128_000003_connection_health::Migration),
            Box::new(m20261128_000004_oauth_states::Migration),
            Box::new(m20261128_000005_flows::Migration),
            Box::new(m20261128_000006_webhooks::Migration),
        ]
    }
}
