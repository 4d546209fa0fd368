use plugboard::domain::TeamRole;
use serde_json::json;

use crate::helpers::{EDIT_CONNECTION, TestApp};
use crate::on_every_database;

on_every_database!(
    every_change_is_audited_without_secrets,
    concurrent_member_edits_of_a_dynamic_connection_all_apply_and_are_audited,
    flows_dynamic_connections_and_webhooks_are_audited
);

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

const TRAIL: &str = r#"
query($team: ID!, $first: Int) {
  team(id: $team) { auditEvents(first: $first) { edges { node { action connectionId detail actor { label } } } } }
}"#;

async fn trail(app: &TestApp, token: &str, team: &str) -> Vec<serde_json::Value> {
    let data = app.ok(token, TRAIL, json!({ "team": team, "first": 100 })).await;
    data["team"]["auditEvents"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

async fn concurrent_member_edits_of_a_dynamic_connection_all_apply_and_are_audited(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let mut ids = Vec::new();
    for i in 0..11 {
        ids.push(app.create_api_key_connection(&admin, &format!("OpenAI {i}"), &format!("sk-{i}")).await);
    }
    let created = app
        .ok(
            &admin.token,
            "mutation($input: CreateDynamicConnectionInput!) { createDynamicConnection(input: $input) { id version } }",
            json!({ "input": { "teamId": admin.team_id, "name": "OpenAI per department", "app": "openai",
                "members": [{ "connectionId": ids[0], "label": "dept-0" }] } }),
        )
        .await;
    let dynamic = created["createDynamicConnection"]["id"].as_str().unwrap().to_owned();
    let add = "mutation($id: ID!, $c: ID!, $l: String!) { addDynamicConnectionMember(id: $id, connectionId: $c, label: $l) { version } }";
    let adds = ids[1..].iter().enumerate().map(|(i, connection)| {
        let variables = json!({ "id": dynamic, "c": connection, "l": format!("dept-{}", i + 1) });
        app.graphql(Some(&admin.token), add, variables)
    });
    for answer in futures_util::future::join_all(adds).await {
        assert!(answer["errors"].is_null(), "every concurrent add applies: {answer}");
    }
    let read = app
        .ok(
            &admin.token,
            "query($t: ID!) { team(id: $t) { dynamicConnections { id version members { label } } } }",
            json!({ "t": admin.team_id }),
        )
        .await;
    let found = &read["team"]["dynamicConnections"][0];
    assert_eq!(found["members"].as_array().unwrap().len(), 11, "{found}");
    assert_eq!(found["version"], 11);
    let changes = trail(&app, &admin.token, &admin.team_id)
        .await
        .into_iter()
        .filter(|e| e["action"] == "DYNAMIC_CONNECTION_CHANGED")
        .count();
    assert_eq!(changes, 10);
}

async fn flows_dynamic_connections_and_webhooks_are_audited(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let watcher = app.member("Acme", "mo@acme.test", TeamRole::Monitoring).await;
    let (a, b) = (
        app.create_api_key_connection(&admin, "OpenAI a", "sk-a").await,
        app.create_api_key_connection(&admin, "OpenAI b", "sk-b").await,
    );
    let dynamic = app
        .ok(
            &admin.token,
            "mutation($input: CreateDynamicConnectionInput!) { createDynamicConnection(input: $input) { id } }",
            json!({ "input": { "teamId": admin.team_id, "name": "Per department", "app": "openai",
                "members": [{ "connectionId": a, "label": "sales" }, { "connectionId": b, "label": "support" }] } }),
        )
        .await["createDynamicConnection"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        &admin.token,
        "mutation($id: ID!, $c: ID!) { setDynamicConnectionDefault(id: $id, connectionId: $c) { id } }",
        json!({ "id": dynamic, "c": b }),
    )
    .await;
    let flow = app
        .ok(
            &admin.token,
            "mutation($input: CreateFlowInput!) { createFlow(input: $input) { flow { id } } }",
            json!({ "input": { "teamId": admin.team_id, "name": "Nightly", "status": "ACTIVE",
                "modules": [{ "key": "m", "app": "openai", "module": "create-response", "dynamicConnectionId": dynamic }] } }),
        )
        .await["createFlow"]["flow"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(&admin.token, "mutation($id: ID!) { deleteFlow(id: $id) { deletedId } }", json!({ "id": flow }))
        .await;
    let hook = app
        .ok(
            &admin.token,
            "mutation($t: ID!, $url: String!, $secret: String!) { createWebhook(teamId: $t, url: $url, secret: $secret) { id } }",
            json!({ "t": admin.team_id, "url": "http://127.0.0.1:9/hooks?token=receiver-secret", "secret": "whsec-long-enough-secret" }),
        )
        .await["createWebhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        &admin.token,
        "mutation($id: ID!) { deleteWebhook(id: $id) { deletedId } }",
        json!({ "id": hook }),
    )
    .await;

    let events = trail(&app, &watcher.token, &admin.team_id).await;
    let actions: Vec<&str> = events.iter().take(6).map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "WEBHOOK_DELETED",
            "WEBHOOK_CREATED",
            "FLOW_DELETED",
            "FLOW_CREATED",
            "DYNAMIC_CONNECTION_CHANGED",
            "DYNAMIC_CONNECTION_CREATED"
        ]
    );
    assert!(events.iter().take(6).all(|e| e["actor"]["label"] == "ana@acme.test"));
    let switch = &events[4]["detail"];
    assert_eq!(
        (switch["change"].as_str(), switch["to"].as_str()),
        (Some("default_switched"), Some(b.as_str())),
        "{switch}"
    );
    assert_eq!(events[3]["detail"]["modules"][0]["uses"]["dynamic_connection_id"], dynamic.as_str());
    assert_eq!(events[1]["detail"]["webhook"]["host"], "127.0.0.1");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("receiver-secret") && !text.contains("whsec-long"), "{text}");
}
