//! What is stored on disk: secrets only ever as sealed blobs bound to their row.

use plugboard::connections::open_secrets;
use plugboard::crypto::{Sealer, parse_master_keys};
use plugboard::domain::{ConnectionId, TeamId, TeamRole};
use plugboard::store::entities::connection;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, PaginatorTrait};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{Backend, TEST_MASTER_KEYS, TestApp};
use crate::on_every_database;

on_every_database!(sealed_blobs_do_not_contain_the_secret_and_only_open_on_their_own_row);

pub async fn sealed_blob(app: &TestApp, id: &str) -> Vec<u8> {
    let id: ConnectionId = id.parse().unwrap();
    let row = connection::Entity::find_by_id(id).one(&app.state.db).await.unwrap().expect("the row exists");
    row.sealed_secrets.expect("secrets are sealed")
}

pub fn open_blob(_app: &TestApp, team_id: &str, id: &str, blob: &[u8]) -> Value {
    let sealer = Sealer::new(parse_master_keys(TEST_MASTER_KEYS).unwrap()).unwrap();
    let secrets =
        open_secrets(&sealer, team_id.parse().unwrap(), id.parse().unwrap(), blob).expect("the blob opens");
    secrets.into_iter().map(|(k, v)| (k, Value::String(v.expose_secret().to_owned()))).collect()
}

pub async fn stored_rows(app: &TestApp) -> u64 {
    connection::Entity::find().count(&app.state.db).await.unwrap()
}

async fn sealed_blobs_do_not_contain_the_secret_and_only_open_on_their_own_row(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let first = app.create_api_key_connection(&member, "First", "sk-first-very-secret").await;
    let second = app.create_api_key_connection(&member, "Second", "sk-second-very-secret").await;
    let blob = sealed_blob(&app, &first).await;
    assert!(!contains(&blob, b"sk-first-very-secret"));
    assert_eq!(open_blob(&app, &member.team_id, &first, &blob), json!({ "api_key": "sk-first-very-secret" }));

    // Copy the first row's blob onto the second row: it must not open there.
    let second_id: ConnectionId = second.parse().unwrap();
    let mut row = connection::Entity::find_by_id(second_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    row.sealed_secrets = Set(Some(blob.clone()));
    row.update(&app.state.db).await.unwrap();
    let sealer = Sealer::new(parse_master_keys(TEST_MASTER_KEYS).unwrap()).unwrap();
    let team: TeamId = member.team_id.parse().unwrap();
    assert!(open_secrets(&sealer, team, second_id, &blob).is_err());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_sqlite_file_holds_no_secret_value() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let secrets = ["sk-plain-text-must-not-appear-1", "sk-plain-text-must-not-appear-2"];
    for (i, secret) in secrets.iter().enumerate() {
        app.create_api_key_connection(&member, &format!("Key {i}"), secret).await;
    }
    let id = app.create_api_key_connection(&member, "Edited", "sk-before-the-edit-secret").await;
    app.ok(
        &member.token,
        crate::helpers::EDIT_CONNECTION,
        json!({ "id": id, "input": { "fields": { "api_key": "sk-after-the-edit-secret" } } }),
    )
    .await;
    let file = app.sqlite_file.clone().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    // The write-ahead log may hold pages not yet checkpointed into the main file.
    let wal = file.with_extension("db-wal");
    if let Ok(more) = std::fs::read(&wal) {
        bytes.extend(more);
    }
    assert!(bytes.len() > 4096, "the database file was read");
    assert!(contains(&bytes, b"Key 0"), "non-secret data is there, so the search is meaningful");
    for secret in secrets.iter().chain(&["sk-before-the-edit-secret", "sk-after-the-edit-secret"]) {
        assert!(!contains(&bytes, secret.as_bytes()), "{secret} found in the SQLite file");
    }
}

/// SQLite runs with a write-ahead log, so the Connections page reads while a sweep writes, and
/// with every commit synced, so a stored refresh token survives a power cut.
#[tokio::test]
async fn sqlite_keeps_a_write_ahead_log_and_syncs_every_commit() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let db = &app.state.db;
    let pragma = |name: &str| {
        let statement = Statement::from_string(db.get_database_backend(), format!("PRAGMA {name}"));
        async move { db.query_one_raw(statement).await.unwrap().expect("the pragma answers") }
    };
    let journal: String = pragma("journal_mode").await.try_get_by_index(0).unwrap();
    assert_eq!(journal, "wal");
    let synchronous: i32 = pragma("synchronous").await.try_get_by_index(0).unwrap();
    assert_eq!(synchronous, 2, "FULL");
}

/// A start killed halfway through a migration used to leave SQLite with part of it applied and
/// unrecorded, so every later start failed on it ("duplicate column name"). Here a migration
/// fails halfway (an index name it creates is taken), then the obstacle goes and the next
/// start migrates: nothing of the failed attempt stayed behind.
#[tokio::test]
async fn a_migration_that_fails_halfway_leaves_nothing_behind_on_sqlite() {
    use sea_orm::ConnectionTrait;

    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/plugboard.db?mode=rwc", folder.path().display());
    let db = plugboard::store::connect(&url).await.unwrap();
    db.execute_unprepared("CREATE TABLE obstacle (x INTEGER)").await.unwrap();
    // Created by the third migration after it adds the health columns to `connections`.
    db.execute_unprepared("CREATE INDEX idx_connections_next_check_at ON obstacle (x)").await.unwrap();
    let failed = plugboard::store::migrate(&db).await.unwrap_err();
    assert!(format!("{failed:#}").contains("idx_connections_next_check_at"), "{failed:#}");

    db.execute_unprepared("DROP INDEX idx_connections_next_check_at").await.unwrap();
    plugboard::store::migrate(&db).await.expect("the next start migrates");
    let columns = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT name FROM pragma_table_info('connections') WHERE name = 'next_check_at'",
        ))
        .await
        .unwrap();
    assert_eq!(columns.len(), 1);
}
