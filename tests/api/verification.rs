//! Checking connections against a local provider over real HTTP.

use plugboard::domain::TeamRole;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Backend, CREATE_CONNECTION, Member, TestApp, error_code};
use crate::on_every_database;

on_every_database!(
    every_provider_answer_maps_to_its_outcome_and_status,
    a_provider_outage_keeps_the_status_and_a_recovery_restores_it,
    history_keeps_the_newest_checks_with_account_labels,
    a_providers_retry_after_holds_back_the_next_check,
);

const VERIFY: &str = r#"
mutation($id: ID!) { verifyConnection(id: $id) { outcome message accountLabel startedAt finishedAt } }"#;
const STATUS: &str =
    r#"query($id: ID!) { connection(id: $id) { status accountLabel lastVerification { outcome message } } }"#;

/// Makes the test CRM answer `response` to the key `key`.
async fn crm_answers(provider: &MockServer, key: &str, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path("/crm/me"))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .respond_with(response)
        .mount(provider)
        .await;
}

async fn create_crm(app: &TestApp, member: &Member, key: &str) -> Value {
    let data = app
        .ok(
            &member.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": member.team_id, "app": "test-crm", "name": "CRM", "fields": { "api_key": key } } }),
        )
        .await;
    data["createConnection"].clone()
}

fn me(email: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "user": { "email": email } }))
}

async fn every_provider_answer_maps_to_its_outcome_and_status(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let p = &app.provider;
    crm_answers(p, "good-key", me("sales@acme.test")).await;
    crm_answers(p, "revoked-key", ResponseTemplate::new(401).set_body_string("bad key revoked-key")).await;
    crm_answers(
        p,
        "narrow-key",
        ResponseTemplate::new(403).insert_header("www-authenticate", r#"Bearer error="insufficient_scope""#),
    )
    .await;
    crm_answers(
        p,
        "app-signal-key",
        ResponseTemplate::new(403).set_body_string(r#"{"error":"missing_scope"}"#),
    )
    .await;
    crm_answers(p, "blocked-key", ResponseTemplate::new(403)).await;
    crm_answers(p, "gone-key", ResponseTemplate::new(404)).await;
    crm_answers(p, "busy-key", ResponseTemplate::new(503)).await;
    crm_answers(p, "limited-key", ResponseTemplate::new(429)).await;
    crm_answers(p, "slow-key", me("late@acme.test").set_delay(std::time::Duration::from_secs(4))).await;

    for (key, outcome, status) in [
        ("good-key", "OK", "ACTIVE"),
        ("revoked-key", "INVALID_CREDENTIALS", "INVALID"),
        ("narrow-key", "INSUFFICIENT_SCOPES", "INVALID"),
        ("app-signal-key", "INSUFFICIENT_SCOPES", "INVALID"),
        ("blocked-key", "INVALID_CREDENTIALS", "INVALID"),
        ("gone-key", "INVALID_CREDENTIALS", "INVALID"),
        ("busy-key", "PROVIDER_UNAVAILABLE", "UNVERIFIED"),
        ("limited-key", "PROVIDER_UNAVAILABLE", "UNVERIFIED"),
        ("slow-key", "PROVIDER_UNAVAILABLE", "UNVERIFIED"),
    ] {
        let created = create_crm(&app, &member, key).await;
        assert_eq!(created["verification"]["outcome"], outcome, "{key}: {created:#}");
        assert_eq!(created["connection"]["status"], status, "{key}");
        let message = created["verification"]["message"].as_str().unwrap();
        assert!(message.starts_with("Test CRM "), "{key}: {message}");
        assert!(!created.to_string().contains(key), "{key} leaked into the answer: {created}");
    }
    let created = create_crm(&app, &member, "good-key").await;
    assert_eq!(created["verification"]["accountLabel"], "sales@acme.test");
    let slow = create_crm(&app, &member, "slow-key").await;
    assert!(slow["verification"]["message"].as_str().unwrap().contains("within 2 s"), "{slow}");
}

async fn a_provider_outage_keeps_the_status_and_a_recovery_restores_it(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    crm_answers(&app.provider, "key-1", me("ops@acme.test")).await;
    let created = create_crm(&app, &member, "key-1").await;
    let id = created["connection"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["connection"]["status"], "ACTIVE");

    app.provider.reset().await;
    crm_answers(&app.provider, "key-1", ResponseTemplate::new(502)).await;
    let check = app.ok(&member.token, VERIFY, json!({ "id": id })).await;
    assert_eq!(check["verifyConnection"]["outcome"], "PROVIDER_UNAVAILABLE");
    let after = app.ok(&member.token, STATUS, json!({ "id": id })).await;
    assert_eq!(after["connection"]["status"], "ACTIVE", "an outage is not the connection's fault");
    assert_eq!(after["connection"]["lastVerification"]["outcome"], "PROVIDER_UNAVAILABLE");
    assert_eq!(after["connection"]["accountLabel"], "ops@acme.test", "the last known account is kept");

    app.provider.reset().await;
    crm_answers(&app.provider, "key-1", ResponseTemplate::new(401)).await;
    let check = app.ok(&member.token, VERIFY, json!({ "id": id })).await;
    assert_eq!(check["verifyConnection"]["outcome"], "INVALID_CREDENTIALS");
    assert_eq!(app.ok(&member.token, STATUS, json!({ "id": id })).await["connection"]["status"], "INVALID");

    app.provider.reset().await;
    crm_answers(&app.provider, "key-1", me("ops@acme.test")).await;
    let check = app.ok(&member.token, VERIFY, json!({ "id": id })).await;
    assert_eq!(check["verifyConnection"]["outcome"], "OK");
    assert_eq!(check["verifyConnection"]["accountLabel"], "ops@acme.test");
    assert_eq!(app.ok(&member.token, STATUS, json!({ "id": id })).await["connection"]["status"], "ACTIVE");
}

async fn history_keeps_the_newest_checks_with_account_labels(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_answers(&app.provider, "key-h", me("h@acme.test")).await;
    let created = create_crm(&app, &member, "key-h").await;
    let id = created["connection"]["id"].as_str().unwrap().to_owned();
    let mut finished = Vec::new();
    for _ in 0..25 {
        let check = app.ok(&member.token, VERIFY, json!({ "id": id })).await;
        finished.push(check["verifyConnection"]["finishedAt"].as_str().unwrap().to_owned());
    }
    let data = app
        .ok(
            &member.token,
            "query($id: ID!) { connection(id: $id) { verifications(first: 100) { outcome accountLabel finishedAt } } }",
            json!({ "id": id }),
        )
        .await;
    let history = data["connection"]["verifications"].as_array().unwrap();
    assert_eq!(history.len(), 20, "the default history keeps 20 checks");
    assert!(history.iter().all(|v| v["outcome"] == "OK" && v["accountLabel"] == "h@acme.test"));
    let times: Vec<&str> = history.iter().map(|v| v["finishedAt"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let newest: Vec<&str> = finished.iter().rev().take(20).map(String::as_str).collect();
    assert_eq!(times, newest, "the 20 kept are the 20 newest checks");

    let audit = app
        .ok(
            &member.token,
            "query($t: ID!) { team(id: $t) { auditEvents(first: 100) { edges { node { action } } } } }",
            json!({ "t": member.team_id }),
        )
        .await;
    let verified = audit["team"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["action"] == "CONNECTION_VERIFIED")
        .count();
    assert_eq!(verified, 26, "the check at create and every verify are audited");
}

#[tokio::test]
async fn credentials_are_applied_as_the_catalog_says() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let p = &app.provider;
    Mock::given(path("/hdr"))
        .and(header("x-api-key", "Key k-header"))
        .respond_with(ResponseTemplate::new(200))
        .mount(p)
        .await;
    Mock::given(path("/qry"))
        .and(query_param("token", "k-query"))
        .respond_with(ResponseTemplate::new(200))
        .mount(p)
        .await;
    Mock::given(path("/basic"))
        .and(header("authorization", "Basic dXNlcjpzM2NyZXQ=")) // user:s3cret
        .respond_with(ResponseTemplate::new(200))
        .mount(p)
        .await;
    let cases = [
        (
            "http-api-key",
            json!({ "base_url": p.uri(), "header_name": "X-Api-Key", "value_prefix": "Key ", "api_key": "k-header", "verify_path": "/hdr" }),
        ),
        (
            "http-api-key",
            json!({ "base_url": p.uri(), "placement": "query", "query_param": "token", "api_key": "k-query", "verify_path": "/qry" }),
        ),
        (
            "http-basic",
            json!({ "base_url": p.uri(), "username": "user", "password": "s3cret", "verify_path": "/basic" }),
        ),
    ];
    for (app_key, fields) in cases {
        let created = app
            .ok(
                &member.token,
                CREATE_CONNECTION,
                json!({ "input": { "teamId": member.team_id, "app": app_key, "name": "c", "fields": fields } }),
            )
            .await;
        assert_eq!(created["createConnection"]["verification"]["outcome"], "OK", "{fields}: {created:#}");
    }
}

#[tokio::test]
async fn unreachable_hosts_are_transient() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for (base_url, expected) in [
        (format!("http://{closed}"), "could not be reached"),
        ("http://no-such-host.invalid".to_owned(), "does not resolve"),
    ] {
        let created = app
            .ok(
                &member.token,
                CREATE_CONNECTION,
                json!({ "input": { "teamId": member.team_id, "app": "http-api-key", "name": "c",
                    "fields": { "base_url": base_url, "api_key": "k", "verify_path": "/" } } }),
            )
            .await;
        let verification = &created["createConnection"]["verification"];
        assert_eq!(verification["outcome"], "PROVIDER_UNAVAILABLE", "{base_url}");
        assert!(verification["message"].as_str().unwrap().contains(expected), "{verification}");
        assert_eq!(created["createConnection"]["connection"]["status"], "UNVERIFIED");
    }
}

#[tokio::test]
async fn user_supplied_urls_may_not_reach_internal_addresses() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_EGRESS_ALLOW_PRIVATE", "false")]).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let port = app.provider.address().port();
    for base_url in
        [app.provider.uri(), format!("http://localhost:{port}"), "http://169.254.169.254".to_owned()]
    {
        let body = app
            .graphql(
                Some(&member.token),
                CREATE_CONNECTION,
                json!({ "input": { "teamId": member.team_id, "app": "http-api-key", "name": "c",
                    "fields": { "base_url": base_url, "api_key": "k-internal", "verify_path": "/" } } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{base_url}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("internal address") && message.contains("PLUGBOARD_EGRESS_ALLOW_PRIVATE"),
            "{message}"
        );
        assert!(!body.to_string().contains("k-internal"));
    }
    assert!(app.provider.received_requests().await.unwrap().is_empty(), "nothing was sent");
    let count = app
        .ok(
            &member.token,
            "query($t: ID!) { team(id: $t) { connections { totalCount } } }",
            json!({ "t": member.team_id }),
        )
        .await;
    assert_eq!(count["team"]["connections"]["totalCount"], 0, "nothing was created");
    // Catalog apps keep their operator-chosen hosts, here the local provider.
    let created = app.create_api_key_connection(&member, "OpenAI", "sk-fine").await;
    assert!(!created.is_empty());
}

#[tokio::test]
async fn monitoring_members_cannot_verify() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let watcher = app.member("Acme", "mo@acme.test", TeamRole::Monitoring).await;
    let id = app.create_api_key_connection(&admin, "OpenAI", "sk-abc").await;
    let body = app.graphql(Some(&watcher.token), VERIFY, json!({ "id": id })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
}

#[tokio::test]
async fn redirects_to_another_host_are_not_followed() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/steal")).respond_with(ResponseTemplate::new(200)).mount(&elsewhere).await;
    crm_answers(
        &app.provider,
        "moved-key",
        ResponseTemplate::new(302).insert_header("location", format!("{}/steal", elsewhere.uri()).as_str()),
    )
    .await;
    let created = create_crm(&app, &member, "moved-key").await;
    assert_eq!(created["verification"]["outcome"], "INVALID_CREDENTIALS");
    assert!(created["verification"]["message"].as_str().unwrap().contains("redirected"));
    assert!(elsewhere.received_requests().await.unwrap().is_empty(), "the credentials stayed home");
}

/// GitHub, Slack and Microsoft Graph send `Retry-After` with 429 and 503, in seconds or as a
/// date, and ask to be left alone that long: the next check is not sooner.
async fn a_providers_retry_after_holds_back_the_next_check(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    crm_answers(&app.provider, "key-1", me("ops@acme.test")).await;
    let created = create_crm(&app, &member, "key-1").await;
    let id = created["connection"]["id"].as_str().unwrap().to_owned();
    let next_check = "query($id: ID!) { connection(id: $id) { status nextCheckAt } }";
    let in_minutes = |answer: &Value| {
        let at = answer["connection"]["nextCheckAt"].as_str().unwrap();
        (chrono::DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&chrono::Utc) - chrono::Utc::now())
            .num_seconds() as f64
            / 60.0
    };
    let in_half_an_hour =
        (chrono::Utc::now() + chrono::Duration::minutes(30)).format("%a, %d %b %Y %H:%M:%S GMT");
    for (retry_after, minutes) in [("600".to_owned(), 10.0), (in_half_an_hour.to_string(), 30.0)] {
        app.provider.reset().await;
        crm_answers(
            &app.provider,
            "key-1",
            ResponseTemplate::new(429).insert_header("retry-after", retry_after.as_str()),
        )
        .await;
        let check = app.ok(&member.token, VERIFY, json!({ "id": id })).await;
        assert_eq!(check["verifyConnection"]["outcome"], "PROVIDER_UNAVAILABLE", "{check}");
        assert!(check["verifyConnection"]["message"].as_str().unwrap().contains("asked to wait"), "{check}");
        let after = app.ok(&member.token, next_check, json!({ "id": id })).await;
        assert_eq!(after["connection"]["status"], "ACTIVE");
        let waits = in_minutes(&after);
        // Without it the first retry would come after a minute.
        assert!(
            waits > minutes - 1.0 && waits <= minutes + 0.1,
            "{retry_after}: next check in {waits:.1} min"
        );
    }
}
