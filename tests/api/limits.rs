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

#[tokio::test]
async fn a_body_that_trickles_in_is_refused_once_its_time_is_up() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_REQUEST_BODY_TIMEOUT_SECS", "1")]).await.unwrap();
    let address = app.address.trim_start_matches("http://");
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    // A head that promises 100 bytes, then a byte at a time, slower than the time allowed.
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let trickle = async {
        for byte in br#"{"query":"{ __typename }"}"# {
            if slow.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), trickle).await;

    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the service kept waiting for the body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("BAD_USER_INPUT") && answer.contains("did not arrive within 1 s"), "{answer}");

    // Everyone else is served as before, the same query included.
    let body = app.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query");
}
