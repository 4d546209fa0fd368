//! The scheduler's sweep, called directly as the cron tick would call it.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use plugboard::domain::{ConnectionId, TeamRole};
use plugboard::scheduler::run_due_checks;
use plugboard::store::entities::connection;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{Backend, CREATE_CONNECTION, Member, TestApp};
use crate::on_every_database;
use crate::ws::{Protocol, Subscriber};

on_every_database!(
    a_scheduled_check_streams_started_and_finished,
    an_outage_keeps_the_status_and_retries_within_minutes,
    claims_of_a_stopped_instance_are_taken_after_they_lapse,
);

const HEALTH: &str = "query($id: ID!) { connection(id: $id) { status consecutiveFailures lastSuccessAt lastFailureAt nextCheckAt lastVerification { outcome } } }";

/// Makes every connection due now, as if their time had come.
async fn make_all_due(app: &TestApp) {
    connection::Entity::update_many()
        .col_expr(connection::Column::NextCheckAt, Expr::value(Utc::now() - chrono::Duration::minutes(1)))
        .filter(connection::Column::Id.is_not_null())
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn crm_connection(app: &TestApp, member: &Member, key: &str) -> String {
    let data = app
        .ok(
            &member.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": member.team_id, "app": "test-crm", "name": "CRM", "fields": { "api_key": key } } }),
        )
        .await;
    data["createConnection"]["connection"]["id"].as_str().unwrap().to_owned()
}

async fn crm_ok(app: &TestApp) {
    Mock::given(method("GET"))
        .and(path("/crm/me"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "user": { "email": "crm@acme.test" } })),
        )
        .mount(&app.provider)
        .await;
}

async fn a_scheduled_check_streams_started_and_finished(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let id = app.create_api_key_connection(&member, "OpenAI", "sk-scheduled").await;
    let report = run_due_checks(&app.state).await.unwrap();
    assert_eq!(report.claimed, 0, "a connection checked at create is not due for a day");

    let mut subscriber =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &member.token).await.unwrap();
    subscriber
        .subscribe("v", "subscription($t: ID!) { verificationEvents(teamId: $t) { connectionId phase verification { outcome } } }", json!({ "t": member.team_id }))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    make_all_due(&app).await;
    let report = run_due_checks(&app.state).await.unwrap();
    assert_eq!((report.claimed, report.recorded), (1, 1));

    let started = subscriber.next_data(Duration::from_secs(5)).await.unwrap();
    assert_eq!(started["data"]["verificationEvents"]["phase"], "STARTED");
    assert_eq!(started["data"]["verificationEvents"]["connectionId"], id.as_str());
    let finished = subscriber.next_data(Duration::from_secs(5)).await.unwrap();
    assert_eq!(finished["data"]["verificationEvents"]["phase"], "FINISHED");
    assert_eq!(finished["data"]["verificationEvents"]["verification"]["outcome"], "OK");

    let health = app.ok(&member.token, HEALTH, json!({ "id": id })).await;
    let next: chrono::DateTime<Utc> = health["connection"]["nextCheckAt"].as_str().unwrap().parse().unwrap();
    assert!(next > Utc::now() + chrono::Duration::hours(20), "the next check is about a day away: {next}");
    let audit = app
        .ok(&member.token, "query($t: ID!) { team(id: $t) { auditEvents(first: 1) { edges { node { action actor { kind label } } } } } }", json!({ "t": member.team_id }))
        .await;
    assert_eq!(
        audit["team"]["auditEvents"]["edges"][0]["node"]["actor"],
        json!({ "kind": "SYSTEM", "label": "scheduler" })
    );
}

async fn an_outage_keeps_the_status_and_retries_within_minutes(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    let id = crm_connection(&app, &member, "key-outage").await;
    app.provider.reset().await;
    Mock::given(path("/crm/me")).respond_with(ResponseTemplate::new(503)).mount(&app.provider).await;

    for round in 1..=2 {
        make_all_due(&app).await;
        let before = Utc::now();
        run_due_checks(&app.state).await.unwrap();
        let health = app.ok(&member.token, HEALTH, json!({ "id": id })).await;
        let connection = &health["connection"];
        assert_eq!(connection["status"], "ACTIVE", "an outage changes no status");
        assert_eq!(connection["lastVerification"]["outcome"], "PROVIDER_UNAVAILABLE");
        assert_eq!(connection["consecutiveFailures"], round);
        assert!(connection["lastFailureAt"].is_string() && connection["lastSuccessAt"].is_string());
        let next: chrono::DateTime<Utc> = connection["nextCheckAt"].as_str().unwrap().parse().unwrap();
        let wait = (next - before).num_seconds();
        assert!((55..=125 * round).contains(&wait), "round {round}: retry in {wait}s, minutes not a day");
    }
    app.provider.reset().await;
    crm_ok(&app).await;
    make_all_due(&app).await;
    run_due_checks(&app.state).await.unwrap();
    let health = app.ok(&member.token, HEALTH, json!({ "id": id })).await;
    assert_eq!(health["connection"]["consecutiveFailures"], 0, "a passing check resets the count");
}

async fn claims_of_a_stopped_instance_are_taken_after_they_lapse(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    let id = crm_connection(&app, &member, "key-claim").await;
    make_all_due(&app).await;
    // An instance claimed the check and died before recording it.
    let now = Utc::now();
    let held = plugboard::store::checks::claim_due(
        &app.state.db,
        "dead-instance",
        now,
        now + chrono::Duration::seconds(1),
        10,
    )
    .await
    .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(run_due_checks(&app.state).await.unwrap().claimed, 0, "a live claim is respected");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = run_due_checks(&app.state).await.unwrap();
    assert_eq!((report.claimed, report.recorded), (1, 1), "the lapsed claim was taken over");
    let row = connection::Entity::find_by_id(id.parse::<ConnectionId>().unwrap())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.claimed_by.is_none(), "recording releases the claim");
}

#[tokio::test]
async fn two_instances_on_one_postgres_check_each_connection_once_and_share_events() {
    let Some(a) = TestApp::spawn_with(
        Backend::Postgres,
        &[("PLUGBOARD_CHECK_BATCH", "25"), ("PLUGBOARD_APP_RATE_LIMIT", "10000")],
    )
    .await
    else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let b = a.spawn_sibling().await;
    let member = a.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&a).await;
    const N: usize = 500;
    for i in 0..N {
        crm_connection(&a, &member, &format!("key-{i}")).await;
    }
    a.provider.reset().await;
    crm_ok(&a).await;

    let mut on_b =
        Subscriber::connect(&b.address, "/graphql/ws", Protocol::TransportWs, &member.token).await.unwrap();
    on_b.subscribe(
        "v",
        "subscription($t: ID!) { verificationEvents(teamId: $t) { connectionId phase } }",
        json!({ "t": member.team_id }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    make_all_due(&a).await;
    let (report_a, report_b) = tokio::join!(run_due_checks(&a.state), run_due_checks(&b.state));
    let (report_a, report_b) = (report_a.unwrap(), report_b.unwrap());
    assert_eq!(report_a.recorded + report_b.recorded, N as u64, "{report_a:?} {report_b:?}");
    assert!(
        report_a.recorded > 0 && report_b.recorded > 0,
        "both instances shared the work: {report_a:?} {report_b:?}"
    );

    let requests = a.provider.received_requests().await.unwrap();
    let keys: Vec<String> = requests
        .iter()
        .filter_map(|r| r.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), N, "one request per connection");
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), N, "no connection was checked twice");

    let mut finished = 0;
    while finished < N {
        let Some(event) = on_b.next_data(Duration::from_secs(10)).await else { break };
        if event["data"]["verificationEvents"]["phase"] == "FINISHED" {
            finished += 1;
        }
    }
    assert_eq!(finished, N, "the subscriber on B saw every check, A's included");
}
