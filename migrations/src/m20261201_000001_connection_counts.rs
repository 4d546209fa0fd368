//! How many connections each team has, kept by the database itself: `connection_counts` holds
//! one row per team that ever had a connection, and triggers on `connections` move it with
//! every insert and delete, in the same transaction. A team's unfiltered `totalCount` reads
//! that one row instead of counting the team's index entries on every page (on PostgreSQL the
//! `COUNT(*)` of 10,000 connections cost about seven times the page itself).
//!
//! The triggers differ by database: PostgreSQL's run once per statement over its transition
//! table (a bulk insert is one update, not one per row), SQLite has only row triggers. A
//! connection never moves to another team (nothing in the service does it), and a trigger
//! refuses it, so the counts cannot drift that way.
//!
//! The migration runs in one transaction on both databases and, on PostgreSQL, locks
//! `connections` against writes before it counts what is there: a connection inserted while it
//! runs waits, and is then counted by the trigger, not twice or never.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, uuid};
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::foreign_key;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &str = r#"
LOCK TABLE connections IN SHARE ROW EXCLUSIVE MODE;

CREATE FUNCTION connection_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO connection_counts (team_id, connections)
    SELECT team_id, COUNT(*) FROM inserted GROUP BY team_id
    ON CONFLICT (team_id) DO UPDATE SET connections = connection_counts.connections + EXCLUDED.connections;
    RETURN NULL;
END $$;

CREATE FUNCTION connection_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE connection_counts SET connections = connection_counts.connections - removed.connections
    FROM (SELECT team_id, COUNT(*) AS connections FROM deleted GROUP BY team_id) AS removed
    WHERE connection_counts.team_id = removed.team_id;
    RETURN NULL;
END $$;

CREATE FUNCTION connection_stays_in_its_team() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a connection stays in its team' USING ERRCODE = 'check_violation';
END $$;

CREATE TRIGGER connection_counts_on_insert AFTER INSERT ON connections
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION connection_counts_add();
CREATE TRIGGER connection_counts_on_delete AFTER DELETE ON connections
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION connection_counts_remove();
CREATE TRIGGER connection_stays_in_its_team BEFORE UPDATE OF team_id ON connections
    FOR EACH ROW WHEN (OLD.team_id IS DISTINCT FROM NEW.team_id)
    EXECUTE FUNCTION connection_stays_in_its_team();
"#;

const POSTGRES_DOWN: &str = r#"
DROP TRIGGER connection_stays_in_its_team ON connections;
DROP TRIGGER connection_counts_on_delete ON connections;
DROP TRIGGER connection_counts_on_insert ON connections;
DROP FUNCTION connection_stays_in_its_team();
DROP FUNCTION connection_counts_remove();
DROP FUNCTION connection_counts_add();
"#;

const SQLITE_UP: &str = r#"
CREATE TRIGGER connection_counts_on_insert AFTER INSERT ON connections BEGIN
    INSERT INTO connection_counts (team_id, connections) VALUES (NEW.team_id, 1)
    ON CONFLICT (team_id) DO UPDATE SET connections = connections + 1;
END;
CREATE TRIGGER connection_counts_on_delete AFTER DELETE ON connections BEGIN
    UPDATE connection_counts SET connections = connections - 1 WHERE team_id = OLD.team_id;
END;
CREATE TRIGGER connection_stays_in_its_team BEFORE UPDATE OF team_id ON connections
    WHEN OLD.team_id IS NOT NEW.team_id BEGIN
    SELECT RAISE(ABORT, 'a connection stays in its team');
END;
"#;

const SQLITE_DOWN: &str = r#"
DROP TRIGGER connection_stays_in_its_team;
DROP TRIGGER connection_counts_on_delete;
DROP TRIGGER connection_counts_on_insert;
"#;

/// The teams' counts as they stand, for the connections that exist before the triggers do.
const BACKFILL: &str = "INSERT INTO connection_counts (team_id, connections) SELECT team_id, COUNT(*) FROM connections GROUP BY team_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConnectionCounts::Table)
                    .col(uuid(ConnectionCounts::TeamId).primary_key())
                    .col(big_integer(ConnectionCounts::Connections))
                    .foreign_key(&mut foreign_key(
                        ConnectionCounts::Table,
                        ConnectionCounts::TeamId,
                        Teams::Table,
                        Teams::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let triggers = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        db.execute_unprepared(triggers).await?;
        db.execute_unprepared(BACKFILL).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let triggers = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_DOWN,
            _ => SQLITE_DOWN,
        };
        manager.get_connection().execute_unprepared(triggers).await?;
        manager.drop_table(Table::drop().table(ConnectionCounts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ConnectionCounts {
    Table,
    TeamId,
    Connections,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
}
