//! The `plugboard` binary as an operator runs it.

use std::process::{Command, Output};

use plugboard::connections::open_secrets;
use plugboard::crypto::{Sealer, parse_master_keys};
use plugboard::domain::{ConnectionId, TeamRole};
use plugboard::store::entities::connection;
use sea_orm::EntityTrait;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::{TEST_MASTER_KEYS, TestApp};
use crate::on_every_database;

on_every_database!(
    bootstrap_prints_a_working_token_as_its_last_line,
    rotate_keys_reseals_every_secret_and_can_rerun,
    a_lost_development_key_file_is_not_silently_replaced
);

pub(crate) const NEW_KEY: &str = "k2:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

pub(crate) fn plugboard(database_url: &str, keys: &str, args: &[&str]) -> Output {
    let data_dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("PLUGBOARD_MASTER_KEYS", keys)
        .env("PLUGBOARD_DATA_DIR", data_dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

fn last_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().trim().to_owned()
}

/// As through the API, a team keeps its last ADMIN: the command line used to demote it.
#[tokio::test]
async fn bootstrap_keeps_a_teams_last_admin() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap();
    let make = |role: &str| {
        plugboard(
            &app.database_url,
            TEST_MASTER_KEYS,
            &["bootstrap", "--team", "Ops", "--email", "olga@ops.test", "--role", role],
        )
    };
    let admin = make("admin");
    assert!(admin.status.success());
    let token = last_line(&admin);
    let demoted = make("member");
    let stderr = String::from_utf8_lossy(&demoted.stderr);
    assert!(!demoted.status.success(), "{stderr}");
    assert!(stderr.contains("the only ADMIN of team \"Ops\""), "{stderr}");
    let viewer = app.ok(&token, "{ viewer { teams { name role } } }", json!({})).await;
    assert_eq!(viewer["viewer"]["teams"], json!([{ "name": "Ops", "role": "ADMIN" }]), "nothing was changed");
}

async fn bootstrap_prints_a_working_token_as_its_last_line(app: TestApp) {
    let out = plugboard(
        &app.database_url,
        TEST_MASTER_KEYS,
        &["bootstrap", "--team", "Ops", "--email", "Olga@Ops.test", "--role", "MEMBER"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = last_line(&out);
    let viewer = app.ok(&token, "{ viewer { email teams { name role } } }", json!({})).await;
    assert_eq!(viewer["viewer"]["email"], "olga@ops.test");
    assert_eq!(viewer["viewer"]["teams"], json!([{ "name": "Ops", "role": "MEMBER" }]));

    let out = plugboard(&app.database_url, TEST_MASTER_KEYS, &["service-token", "--team", "Ops"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let service = last_line(&out);
    let viewer = app.ok(&service, "{ viewer { kind teams { name } } }", json!({})).await;
    assert_eq!(viewer["viewer"]["kind"], "SERVICE");

    let out = plugboard(&app.database_url, TEST_MASTER_KEYS, &["service-token", "--team", "Nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no team named \"Nobody\""));
}

async fn rotate_keys_reseals_every_secret_and_can_rerun(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            app.create_api_key_connection(&member, &format!("Key {i}"), &format!("sk-rotate-{i}")).await,
        );
    }
    let both = format!("{NEW_KEY},{TEST_MASTER_KEYS}");
    let out = plugboard(&app.database_url, &both, &["rotate-keys", "--batch-size", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-sealed 7 connection(s) under key k2"));

    // Every blob now opens with the new key alone.
    let new_only = Sealer::new(parse_master_keys(NEW_KEY).unwrap()).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let id: ConnectionId = id.parse().unwrap();
        let row = connection::Entity::find_by_id(id).one(&app.state.db).await.unwrap().unwrap();
        assert_eq!(row.secrets_key_id.as_deref(), Some("k2"));
        let secrets = open_secrets(&new_only, row.team_id, id, &row.sealed_secrets.unwrap()).unwrap();
        assert_eq!(secrets["api_key"].expose_secret(), format!("sk-rotate-{i}"));
    }
    let again = plugboard(&app.database_url, &both, &["rotate-keys"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("re-sealed 0 connection(s)"));

    // Without the key a blob was sealed with, the error names the missing key.
    ids.push(app.create_api_key_connection(&member, "Old key", "sk-old").await);
    let out = plugboard(&app.database_url, NEW_KEY, &["rotate-keys"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("k1") && stderr.contains("PLUGBOARD_MASTER_KEYS"), "{stderr}");
}

#[test]
fn every_command_has_help_and_bad_flags_name_themselves() {
    for command in ["serve", "migrate", "bootstrap", "service-token", "rotate-keys"] {
        let out = Command::new(env!("CARGO_BIN_EXE_plugboard")).args([command, "--help"]).output().unwrap();
        assert!(out.status.success(), "{command} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{command} --help");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_plugboard")).args(["serve", "--colour"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--colour"));
    let out = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .args(["bootstrap", "--team", "T", "--email", "a@b.test", "--role", "OWNER"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OWNER"));
}

#[test]
fn a_bad_environment_value_stops_the_start_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .arg("migrate")
        .env("PLUGBOARD_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PLUGBOARD_LISTEN"));

    // Found before the database is touched: no database is created and migrated for nothing.
    let data_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .env("PLUGBOARD_DATA_DIR", data_dir.path())
        .env("PLUGBOARD_MASTER_KEYS", "k1:tooshort")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PLUGBOARD_MASTER_KEYS") && !stderr.contains("tooshort"), "{stderr}");
    assert!(!data_dir.path().join("plugboard.db").exists(), "no database was created");
}

/// A development key file deleted (or a second instance started from another folder) used to
/// be replaced by a new key without a word: new secrets were sealed with it, and none of the
/// stored ones could be opened any more.
async fn a_lost_development_key_file_is_not_silently_replaced(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    app.create_api_key_connection(&member, "Sealed", "sk-sealed").await;
    let data_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .arg("migrate")
        .env("DATABASE_URL", &app.database_url)
        .env_remove("PLUGBOARD_MASTER_KEYS")
        .env("PLUGBOARD_DATA_DIR", data_dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("does not exist: restore it, or set PLUGBOARD_MASTER_KEYS"), "{stderr}");
    assert!(!data_dir.path().join("master.key").exists(), "no key was generated");
}

/// A typo in an operator client's variable used to leave the client unused without a word.
#[test]
fn app_variables_that_configure_nothing_are_named() {
    let data_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .env("PLUGBOARD_DATA_DIR", data_dir.path())
        .env("PLUGBOARD_MASTER_KEYS", TEST_MASTER_KEYS)
        .env("RUST_LOG", "warn")
        .env("PLUGBOARD_APP_SLACK_CLIENT_SECRETS", "typo-secret-value")
        .env("PLUGBOARD_APP_SLACK_CLIENT_ID", "slack-id")
        .env("PLUGBOARD_APP_SLACK_CLIENT_SECRET", "slack-secret-value")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logged = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let warned: Vec<&str> = logged.lines().filter(|line| line.contains("configures nothing")).collect();
    assert_eq!(warned.len(), 1, "{logged}");
    assert!(warned[0].contains("PLUGBOARD_APP_SLACK_CLIENT_SECRETS"), "{logged}");
    assert!(!logged.contains("secret-value"), "never a value: {logged}");
}
