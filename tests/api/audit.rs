use plugboard::domain::TeamRole;
use serde_json::json;

use crate::helpers::{EDIT_CONNECTION, TestApp};
use crate::on_every_database;

on_every_database!(every_change_is_audited_without_secrets);

const AUDIT: &str = r#"
query($team: ID!) {
  team(id: $team) {
    auditEvents(first: 10) {
      edges { node { action connectionId connectionName detail actor { kind label } createdAt } }
    }
  }
}"#;

async fn every_change_is_audited_without_secrets(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let watcher = app.member("Acme", "mo@acme.test", TeamRole::Monitoring).await;
    let id = app.create_api_key_connection(&admin, "OpenAI", "sk-original-secret").await;
    app.ok(
        &admin.token,
        EDIT_CONNECTION,
        json!({ "id": id, "input": { "name": "OpenAI prod", "fields": { "api_key": "sk-edited-secret" } } }),
    )
    .await;
    app.ok(
        &admin.token,
        "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }",
        json!({ "id": id }),
    )
    .await;

    // Any member of the team can read the trail, monitoring included.
    let data = app.ok(&watcher.token, AUDIT, json!({ "team": admin.team_id })).await;
    // The team's own changes (members joining through `bootstrap`) are in the trail too.
    let events: Vec<&serde_json::Value> = data["team"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["connectionId"].is_string())
        .collect();
    let actions: Vec<&str> = events.iter().map(|e| e["node"]["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "CONNECTION_DELETED",
            "CONNECTION_VERIFIED",
            "CONNECTION_EDITED",
            "CONNECTION_VERIFIED",
            "CONNECTION_CREATED"
        ],
        "newest first; create and edit check the new key at once"
    );
    for event in &events {
        assert_eq!(event["node"]["connectionId"], id.as_str());
        assert_eq!(event["node"]["actor"], json!({ "kind": "USER", "label": "ana@acme.test" }));
    }
    assert_eq!(events[0]["node"]["connectionName"], "OpenAI prod");
    let changed = &events[2]["node"]["detail"]["changed_fields"];
    assert!(changed.as_array().unwrap().contains(&json!("name")), "{changed}");
    let text = data.to_string();
    assert!(!text.contains("sk-original-secret") && !text.contains("sk-edited-secret"));
}
