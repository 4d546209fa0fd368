//! What an operator sees: metrics, request ids, and logs that never hold a secret.

use std::process::Command;

use plugboard::domain::TeamRole;
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Backend, TestApp};
use crate::process::ServiceProcess;

#[tokio::test]
async fn metrics_count_connections_verifications_and_requests() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    app.create_api_key_connection(&member, "OpenAI", "sk-metrics").await;
    let response = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for expected in [
        r#"plugboard_connections{app="openai",status="ACTIVE"}"#,
        r#"plugboard_verifications_total{app="openai",outcome="OK"}"#,
        "plugboard_verification_duration_seconds_bucket",
        r#"plugboard_http_requests_total{route="/graphql",method="POST",status="2xx"}"#,
        "plugboard_scheduler_lag_seconds",
        "plugboard_open_subscriptions",
        "plugboard_open_sockets",
        "plugboard_max_sockets",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(!text.contains("sk-metrics"));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let fresh = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(fresh.headers()["x-request-id"].to_str().unwrap().len(), 36);
    let given = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
}

/// Runs the real binary at TRACE level through create, verify, refresh, edit and credential
/// reads, and searches everything it logged for the secrets involved.
#[tokio::test]
async fn trace_logs_hold_no_secret() {
    let provider = MockServer::start().await;
    Mock::given(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": [] })))
        .mount(&provider)
        .await;
    let fake = crate::fake_oauth::FakeOAuth::mount(&provider).await;
    let data = tempfile::tempdir().unwrap();
    let providers = data.path().join("providers");
    crate::helpers::write_test_catalog(&providers, &provider.uri());
    let service = ServiceProcess::start(&[
        ("PLUGBOARD_PROVIDERS_DIR", providers.display().to_string()),
        ("PLUGBOARD_EGRESS_ALLOW_PRIVATE", "true".into()),
        ("PLUGBOARD_APP_TEST_OAUTH_CLIENT_ID", crate::helpers::OAUTH_CLIENT_ID.into()),
        ("PLUGBOARD_APP_TEST_OAUTH_CLIENT_SECRET", crate::helpers::OAUTH_CLIENT_SECRET.into()),
        ("RUST_LOG", "trace".into()),
        // Longer than the provider's token lifetime: every use refreshes, so refresh is logged too.
        ("PLUGBOARD_TOKEN_REFRESH_SKEW_SECS", "7200".into()),
    ]);
    let token = service.token.clone();
    let base = service.base_url.clone();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let gql = |query: &'static str, variables: serde_json::Value, token: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let team = gql("{ viewer { teams { id } } }", json!({}), token.clone()).await["data"]["viewer"]["teams"]
        [0]["id"]
        .clone();
    let create = "mutation($input: CreateConnectionInput!) { createConnection(input: $input) { authorizationUrl connection { id } } }";
    let api = gql(create, json!({ "input": { "teamId": team, "app": "openai", "name": "k", "fields": { "api_key": "sk-log-secret-one" } } }), token.clone()).await;
    let api_id = api["data"]["createConnection"]["connection"]["id"].clone();
    gql(
        "mutation($id: ID!) { verifyConnection(id: $id) { outcome } }",
        json!({ "id": api_id }),
        token.clone(),
    )
    .await;
    gql("mutation($id: ID!, $input: EditConnectionInput!) { editConnection(id: $id, input: $input) { connection { id } } }",
        json!({ "id": api_id, "input": { "fields": { "api_key": "sk-log-secret-two" } } }), token.clone()).await;
    let oauth = gql(
        create,
        json!({ "input": { "teamId": team, "app": "test-oauth", "name": "o", "fields": {} } }),
        token.clone(),
    )
    .await;
    let oauth_id = oauth["data"]["createConnection"]["connection"]["id"].clone();
    let authorize = oauth["data"]["createConnection"]["authorizationUrl"].as_str().unwrap().to_owned();
    let callback =
        client.get(&authorize).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(client.get(&callback).send().await.unwrap().status(), 200);
    let flow = gql(
        "mutation($input: CreateFlowInput!) { createFlow(input: $input) { flow { id } } }",
        json!({ "input": { "teamId": team, "name": "f", "status": "ACTIVE", "modules": [
            { "key": "o", "app": "test-oauth", "module": "read-records", "connectionId": oauth_id },
            { "key": "k", "app": "openai", "module": "create-response", "connectionId": api_id } ] } }),
        token.clone(),
    )
    .await;
    let flow_id = flow["data"]["createFlow"]["flow"]["id"].clone();
    // A service token for the runner, through the CLI like an operator.
    let issued = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .args(["service-token", "--team", "Demo"])
        .env("DATABASE_URL", service.database_url())
        .env("PLUGBOARD_MASTER_KEYS", crate::helpers::TEST_MASTER_KEYS)
        .env("PLUGBOARD_PROVIDERS_DIR", &providers)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let service_token = String::from_utf8_lossy(&issued.stdout).lines().last().unwrap().trim().to_owned();
    let credentials =
        "query($f: ID!, $m: String!) { moduleCredentials(flowId: $f, moduleKey: $m) { accessToken fields } }";
    let read = gql(credentials, json!({ "f": flow_id, "m": "k" }), service_token.clone()).await;
    assert_eq!(read["data"]["moduleCredentials"]["fields"]["api_key"], "sk-log-secret-two");
    let before = fake.token_requests();
    let refresh = gql(credentials, json!({ "f": flow_id, "m": "o" }), service_token.clone()).await;
    assert!(refresh["data"]["moduleCredentials"]["accessToken"].as_str().is_some(), "{refresh}");
    assert_eq!(fake.token_requests(), before + 1, "the credential read refreshed the token");

    let (_, logs) = service.terminate();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "logs were captured at a fine level");
    assert!(logs.contains("verification finished"));
    for secret in [
        "sk-log-secret-one",
        "sk-log-secret-two",
        "access-token-secret",
        "refresh-token-secret",
        crate::helpers::OAUTH_CLIENT_SECRET,
        &token[4..],
        &service_token[4..],
        "code-",
    ] {
        assert!(!logs.contains(secret), "{secret} appeared in the logs");
    }
}
