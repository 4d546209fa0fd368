//! Persistence: sea-orm entities and the queries the rest of the service needs.
//!
//! Every function that reads or writes a team's data takes the team's id, so no query can
//! forget its tenant. Functions take any `ConnectionTrait`, so callers can group several writes
//! (a change and its audit event) in one transaction. Rows leave this module as domain values.

pub mod api_calls;
pub mod app_health;
pub mod audit;
mod by_index;
pub mod checks;
mod columns;
mod connection_rows;
pub mod connections;
pub mod dynamic_connections;
pub mod entities;
pub mod flows;
pub mod grants;
mod json_rows;
pub mod oauth_states;
pub mod outbox;
pub mod postgres_sockets;
mod prepared;
pub mod sealed;
mod sqlite_plans;
mod stored_time;
pub mod teams;
pub mod token_leases;
pub mod tokens;
pub mod verifications;
pub mod webhooks;
mod write_turns;

pub use prepared::PreparedWrites;
pub use write_turns::WriteTurns;

use std::time::Duration;

use anyhow::Context;
use plugboard_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// How long a pooled connection may sit idle before the pool checks, with a round trip, that the
/// database still holds its session (a restart, a failover or a proxy's idle timeout ends
/// sessions silently). A connection used more recently is handed out as it is: checking it on
/// every use would cost each query a round trip more. sqlx still checks each one as it comes
/// back to the pool.
pub const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Rows a purge forgets per statement: after an upgrade or a long pause, months of rows may be
/// past their retention at once, and on SQLite one statement holds the only write lock.
pub const PURGE_BATCH: u64 = 1000;

/// Runs `purge_batch`, which forgets at most the number of rows it is given, until it forgets
/// fewer: a purge of any size as statements of `PURGE_BATCH` rows (each may take a write turn
/// of its own). Answers how many rows went.
pub async fn purge_in_batches<F, Fut>(mut purge_batch: F) -> Result<u64, sea_orm::DbErr>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<u64, sea_orm::DbErr>>,
{
    let mut purged = 0;
    loop {
        let forgotten = purge_batch(PURGE_BATCH).await?;
        purged += forgotten;
        if forgotten < PURGE_BATCH {
            return Ok(purged);
        }
    }
}

/// Starts a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`IMMEDIATE`), waiting its turn behind other writers; a deferred transaction that read first
/// would instead fail with `database is locked` as soon as any other write committed meanwhile,
/// busy timeout or not. PostgreSQL's transactions need no such help.
pub async fn begin(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    let mode = (db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite)
        .then_some(SqliteTransactionMode::Immediate);
    db.begin_with_options(TransactionOptions { sqlite_transaction_mode: mode, ..Default::default() }).await
}

/// Opens the database at `url` (SQLite files are created when missing, with their folder).
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    if let Some(folder) = sqlite_folder(url) {
        // Private to the service's user, like the key file that may live beside it.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&folder)
            .with_context(|| format!("could not create {} for the SQLite database", folder.display()))?;
    }
    // Unreadable, its parts cannot be told apart: none of it is shown, the password included.
    url::Url::parse(url).map_err(|err| {
        anyhow::anyhow!("DATABASE_URL is not a URL that can be read ({err}); check it (it is not shown: it may hold a password)")
    })?;
    // The password travels apart from the URL, which the database drivers quote in their
    // errors and trace spans.
    let (url_without_password, password) = split_password(url);
    let mut options = ConnectOptions::new(url_without_password);
    if let Some(password) = password {
        options.map_sqlx_postgres_opts(move |postgres| postgres.password(&password));
    }
    options
        .max_connections(if url.starts_with("sqlite") { 8 } else { 20 })
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire_if_idle_for(PING_WHEN_IDLE_FOR)
        .sqlx_logging_level(tracing::log::LevelFilter::Debug)
        // Write-ahead logging: readers never wait for the writer (a sweep recording results
        // does not hold up the Connections page), and a commit is one append and one sync of
        // the log instead of a rollback journal's three. `FULL` keeps every commit durable
        // through a power cut: a rotated refresh token, once stored, must not be lost.
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Full)
        })
        .map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_connect(|connection, _| Box::pin(sqlite_plans::keep_prepared(connection)))
        })
        .map_sqlx_postgres_pool_opts(|pool| {
            pool.after_connect(|connection, _| Box::pin(postgres_sockets::send_without_delay(connection)))
        });
    Database::connect(options)
        .await
        .with_context(|| format!("could not open the database at {}; check DATABASE_URL", redact_url(url)))
}

/// The folder of a SQLite database file, if `url` names one.
fn sqlite_folder(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()).map(Into::into)
}

/// Brings the schema up to date. Safe to run on every start.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("database migration failed")
}

/// Whether anything in the database is sealed with a master key: a connection's secrets, or a
/// webhook's signing secret.
pub async fn holds_sealed_secrets(db: &DatabaseConnection) -> anyhow::Result<bool> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    // One row of each is enough: a count would read every connection at every start.
    let connection: Option<uuid::Uuid> = entities::connection::Entity::find()
        .select_only()
        .column(entities::connection::Column::Id)
        .filter(entities::connection::Column::SealedSecrets.is_not_null())
        .into_tuple()
        .one(db)
        .await?;
    let webhook: Option<uuid::Uuid> = entities::webhook::Entity::find()
        .select_only()
        .column(entities::webhook::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    Ok(connection.is_some() || webhook.is_some())
}

/// Whether the database answers; for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

/// The URL without its password (in its user info, or libpq's `password=`), for messages; an
/// unreadable one is not shown at all.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(an unreadable URL, not shown)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(key, _)| key == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "password" { "***".to_owned() } else { value.into_owned() };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// `url` without its password, and the password, decoded: from its user info or libpq's
/// `password=` parameter.
fn split_password(url: &str) -> (String, Option<String>) {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return (url.to_owned(), None);
    };
    let mut password = parsed
        .password()
        .map(|encoded| percent_encoding::percent_decode_str(encoded).decode_utf8_lossy().into_owned());
    if password.is_some() {
        let _ = parsed.set_password(None);
    }
    if parsed.query_pairs().any(|(key, _)| key == "password") {
        let mut kept = Vec::new();
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "password" => password = Some(value.into_owned()),
                _ => kept.push((key.into_owned(), value.into_owned())),
            }
        }
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    (parsed.to_string(), password)
}

/// Converts a stored JSON column into the type it holds, or says which column is corrupt.
fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    column: &str,
) -> Result<T, sea_orm::DbErr> {
    serde_json::from_value(value)
        .map_err(|err| sea_orm::DbErr::Json(format!("column {column} holds unexpected JSON: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_kept_out_of_urls_shown_and_given_to_drivers() {
        let (url, password) = split_password("postgres://ana:p%40ss@db.example:5432/app?sslmode=require");
        assert_eq!(
            (url.as_str(), password.as_deref()),
            ("postgres://ana@db.example:5432/app?sslmode=require", Some("p@ss"))
        );
        let (url, password) = split_password("postgres://db.example/app?password=s3cret&user=ana");
        assert_eq!(
            (url.as_str(), password.as_deref()),
            ("postgres://db.example/app?user=ana", Some("s3cret"))
        );
        let (url, password) = split_password("postgres://postgres@127.0.0.1:5432/test");
        assert_eq!((url.as_str(), password), ("postgres://postgres@127.0.0.1:5432/test", None));

        assert_eq!(redact_url("postgres://ana:s3cret@db/app"), "postgres://ana:***@db/app");
        assert_eq!(
            redact_url("postgres://db/app?password=s3cret&user=ana"),
            "postgres://db/app?password=***&user=ana"
        );
        assert!(!redact_url("postgres://ana:s3cret@db:notaport/app").contains("s3cret"));
    }
}
