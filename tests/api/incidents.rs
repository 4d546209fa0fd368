//! App-level incidents: many connections of one app failing transiently in a sweep degrade the
//! app (`App.health`), one `app.degraded` webhook and event go to each team instead of one per
//! connection, later sweeps check the app through a few probes only, and `app.recovered`
//! follows when it answers again.

use std::time::Duration;

use chrono::Utc;
use plugboard::domain::{DEGRADED_MIN_FAILURES, DEGRADED_PROBES, TeamRole};
use plugboard::scheduler::run_due_checks;
use plugboard::store::entities::connection;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{Backend, TestApp};
use crate::ws::{Protocol, Subscriber};

const HEALTH: &str = r#"{ app(key: "openai") { health { status since lastError } } }"#;
const REGISTER: &str = "mutation($t: ID!, $url: String!, $secret: String!) { createWebhook(teamId: $t, url: $url, secret: $secret) { id } }";

async fn make_all_due(app: &TestApp) {
    connection::Entity::update_many()
        .col_expr(connection::Column::NextCheckAt, Expr::value(Utc::now() - chrono::Duration::minutes(1)))
        .filter(connection::Column::Id.is_not_null())
        .exec(&app.state.db)
        .await
        .unwrap();
}

/// The provider's models endpoint (what `openai` checks) answering `status`, and the team's
/// webhook endpoint answering 200.
async fn provider_answers(app: &TestApp, status: u16) {
    app.provider.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(status).set_body_json(json!({ "data": [] })))
        .mount(&app.provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&app.provider)
        .await;
}

async fn requests_to(app: &TestApp, wanted: &str) -> Vec<Value> {
    app.provider
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|request| request.url.path() == wanted)
        .map(|request| serde_json::from_slice(&request.body).unwrap_or(Value::Null))
        .collect()
}

/// The webhook deliveries received so far, waiting a little for the background delivery.
async fn webhooks_of_type(app: &TestApp, kind: &str, expected: usize) -> Vec<Value> {
    for _ in 0..50 {
        let found: Vec<Value> =
            requests_to(app, "/hooks").await.into_iter().filter(|body| body["type"] == kind).collect();
        if found.len() >= expected {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    requests_to(app, "/hooks").await.into_iter().filter(|body| body["type"] == kind).collect()
}

async fn many_transient_failures_degrade_the_app_until_it_recovers(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let outsider = app.member("Globex", "gil@globex.test", TeamRole::Admin).await;
    let total = DEGRADED_MIN_FAILURES as usize + 2;
    for n in 0..total {
        app.create_api_key_connection(&member, &format!("OpenAI {n}"), &format!("sk-{n}")).await;
    }
    app.ok(
        &member.token,
        REGISTER,
        json!({ "t": member.team_id, "url": format!("{}/hooks", app.provider.uri()), "secret": "a-signing-secret-of-length" }),
    )
    .await;
    let healthy = app.ok(&member.token, HEALTH, json!({})).await;
    assert_eq!(healthy["app"]["health"], json!({ "status": "HEALTHY", "since": null, "lastError": null }));
    let mut watcher =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &member.token).await.unwrap();
    watcher
        .subscribe(
            "a",
            "subscription($t: ID!) { appHealthEvents(teamId: $t) { app health { status lastError } } }",
            json!({ "t": member.team_id }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // An outage: every check fails transiently, and the app is degraded once.
    provider_answers(&app, 503).await;
    make_all_due(&app).await;
    let report = run_due_checks(&app.state).await.unwrap();
    assert_eq!(report.recorded, total as u64);
    let degraded = app.ok(&member.token, HEALTH, json!({})).await;
    assert_eq!(degraded["app"]["health"]["status"], "DEGRADED", "{degraded}");
    assert!(degraded["app"]["health"]["lastError"].as_str().unwrap().contains("HTTP 503"), "{degraded}");
    let hooks = webhooks_of_type(&app, "app.degraded", 1).await;
    assert_eq!(hooks.len(), 1, "one webhook for the app, not one per connection: {hooks:?}");
    assert_eq!(hooks[0]["app"]["key"], "openai");
    assert_eq!(hooks[0]["team_id"], member.team_id);
    let event = watcher.next_data(Duration::from_secs(5)).await.expect("an app health event");
    assert_eq!(event["data"]["appHealthEvents"]["health"]["status"], "DEGRADED", "{event}");
    let statuses = app
        .ok(
            &member.token,
            "query($t: ID!) { team(id: $t) { connections { edges { node { status } } } } }",
            json!({ "t": member.team_id }),
        )
        .await;
    assert!(
        statuses.to_string().contains("ACTIVE") && !statuses.to_string().contains("INVALID"),
        "{statuses}"
    );

    // While degraded, a sweep checks only a few probes and leaves the rest for later.
    provider_answers(&app, 503).await;
    make_all_due(&app).await;
    let report = run_due_checks(&app.state).await.unwrap();
    assert_eq!(requests_to(&app, "/v1/models").await.len(), DEGRADED_PROBES as usize);
    assert_eq!(report.deferred, (total - DEGRADED_PROBES as usize) as u64);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(requests_to(&app, "/hooks").await.is_empty(), "no second announcement");

    // The provider answers again: the probes recover the app, announced once.
    provider_answers(&app, 200).await;
    make_all_due(&app).await;
    run_due_checks(&app.state).await.unwrap();
    let recovered = app.ok(&member.token, HEALTH, json!({})).await;
    assert_eq!(recovered["app"]["health"]["status"], "HEALTHY", "{recovered}");
    assert!(recovered["app"]["health"]["since"].is_string(), "{recovered}");
    assert_eq!(webhooks_of_type(&app, "app.recovered", 1).await.len(), 1);
    let event = watcher.next_data(Duration::from_secs(5)).await.expect("an app health event");
    assert_eq!(event["data"]["appHealthEvents"]["health"]["status"], "HEALTHY", "{event}");

    // Another team without openai connections heard nothing, and may not listen to this team.
    let mut stranger =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &outsider.token)
            .await
            .unwrap();
    stranger
        .subscribe(
            "b",
            "subscription($t: ID!) { appHealthEvents(teamId: $t) { app } }",
            json!({ "t": member.team_id }),
        )
        .await;
    let refused = stranger.next_message().await.expect("an answer");
    assert!(refused.to_string().contains("NOT_FOUND"), "{refused}");
}

#[tokio::test]
async fn many_transient_failures_degrade_the_app_until_it_recovers_sqlite() {
    many_transient_failures_degrade_the_app_until_it_recovers(Backend::Sqlite).await;
}

#[tokio::test]
async fn many_transient_failures_degrade_the_app_until_it_recovers_postgres() {
    many_transient_failures_degrade_the_app_until_it_recovers(Backend::Postgres).await;
}

async fn a_few_failures_are_no_incident(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    for n in 0..3 {
        app.create_api_key_connection(&member, &format!("OpenAI {n}"), &format!("sk-{n}")).await;
    }
    provider_answers(&app, 503).await;
    make_all_due(&app).await;
    run_due_checks(&app.state).await.unwrap();
    let health = app.ok(&member.token, HEALTH, json!({})).await;
    assert_eq!(health["app"]["health"]["status"], "HEALTHY", "{health}");
}

#[tokio::test]
async fn a_few_failures_are_no_incident_sqlite() {
    a_few_failures_are_no_incident(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_few_failures_are_no_incident_postgres() {
    a_few_failures_are_no_incident(Backend::Postgres).await;
}
