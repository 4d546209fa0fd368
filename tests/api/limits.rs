use plugboard::domain::TeamRole;
use serde_json::json;

use crate::helpers::{Backend, TestApp, error_code};

#[tokio::test]
async fn too_deep_and_too_complex_queries_are_refused_with_a_code() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("PLUGBOARD_MAX_QUERY_COMPLEXITY", "20"), ("PLUGBOARD_MAX_QUERY_DEPTH", "5")],
    )
    .await
    .unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let deep = "{ viewer { teams { connections { edges { node { app { name } } } } } } }";
    let body = app.graphql(Some(&member.token), deep, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("deep"), "{body}");

    let wide = format!(
        "{{ {} }}",
        (0..30).map(|i| format!("a{i}: viewer {{ email }}")).collect::<Vec<_>>().join(" ")
    );
    let body = app.graphql(Some(&member.token), &wide, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("complex"), "{body}");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused_with_a_code() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_MAX_BODY_BYTES", "1024")]).await.unwrap();
    let url = format!("{}/graphql", app.address);
    let big = json!({ "query": format!("{{ viewer {{ email }} }} # {}", "x".repeat(2000)) });
    let response = app.client.post(&url).json(&big).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("1024 bytes"));

    let response = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    let body = app.graphql(None, "{ viewer { ", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "a syntax error carries a code too");
    let body = app.graphql(None, "{ noSuchField }", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}
