//! The scheduler's sweep, called directly as the cron tick would call it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use plugboard::domain::{ConnectionId, TeamRole};
use plugboard::scheduler::{run_due_checks, run_due_checks_until};
use plugboard::store::checks::BatchClaim;
use plugboard::store::entities::{check_lease, connection};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::matchers::{header_regex, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{Backend, CREATE_CONNECTION, Member, TestApp};
use crate::on_every_database;
use crate::ws::{Protocol, Subscriber};

on_every_database!(
    a_scheduled_check_streams_started_and_finished,
    an_outage_keeps_the_status_and_retries_within_minutes,
    claims_of_a_stopped_instance_are_taken_after_they_lapse,
    a_batch_of_results_reads_back_as_the_sweep_announced_it,
    a_claimed_batch_reads_back_only_what_the_claim_still_holds,
    connections_without_a_due_time_before_the_leases_are_checked_unless_waiting_for_consent,
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

/// A subscriber to the team's checks, subscribed by the time this returns, that hears only
/// what happens from now on.
async fn watch_verifications(app: &TestApp, member: &Member) -> Subscriber {
    // Settled before subscribing: what earlier changes staged must not reach this subscriber.
    crate::helpers::events_settled(&app.state).await;
    let before = app.state.events.subscribers();
    let mut subscriber =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &member.token).await.unwrap();
    subscriber
        .subscribe("v", "subscription($t: ID!) { verificationEvents(teamId: $t) { connectionId phase verification { outcome } } }", json!({ "t": member.team_id }))
        .await;
    crate::helpers::wait_for_subscriber(&app.state, before).await;
    subscriber
}

async fn a_scheduled_check_streams_started_and_finished(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let id = app.create_api_key_connection(&member, "OpenAI", "sk-scheduled").await;
    let report = run_due_checks(&app.state).await.unwrap();
    assert_eq!(report.claimed, 0, "a connection checked at create is not due for a day");

    let mut subscriber = watch_verifications(&app, &member).await;
    make_all_due(&app).await;
    let report = run_due_checks(&app.state).await.unwrap();
    assert_eq!((report.claimed, report.recorded), (1, 1));

    // The create's own check may still be on its way (events leave after the commit).
    let started = loop {
        let event = subscriber.next_data(Duration::from_secs(5)).await.unwrap();
        if event["data"]["verificationEvents"]["phase"] == "STARTED" {
            break event;
        }
    };
    assert_eq!(started["data"]["verificationEvents"]["connectionId"], id.as_str());
    let finished = subscriber.next_data(Duration::from_secs(5)).await.unwrap();
    assert_eq!(finished["data"]["verificationEvents"]["phase"], "FINISHED");
    assert_eq!(finished["data"]["verificationEvents"]["verification"]["outcome"], "OK");

    let health = app.ok(&member.token, HEALTH, json!({ "id": id })).await;
    let next: chrono::DateTime<Utc> = health["connection"]["nextCheckAt"].as_str().unwrap().parse().unwrap();
    assert!(next > Utc::now() + chrono::Duration::hours(20), "the next check is about a day away: {next}");
    let history = app
        .ok(
            &member.token,
            "query($id: ID!) { connection(id: $id) { verifications { outcome } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(history["connection"]["verifications"], json!([{ "outcome": "OK" }, { "outcome": "OK" }]));
    let audit = app
        .ok(&member.token, "query($t: ID!) { team(id: $t) { auditEvents(first: 10) { edges { node { action actor { kind } } } } } }", json!({ "t": member.team_id }))
        .await;
    let by_system = audit["team"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["actor"]["kind"] == "SYSTEM" && e["node"]["action"] == "CONNECTION_VERIFIED")
        .count();
    assert_eq!(by_system, 0, "a check that changes nothing is history, not audit trail");
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
        BatchClaim {
            sweep: "dead-instance",
            lease: uuid::Uuid::now_v7(),
            now,
            expires_at: now + chrono::Duration::seconds(1),
            limit: 10,
        },
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
    assert!(row.next_check_at.is_some_and(|at| at > Utc::now()), "the check was recorded");
    assert_no_leases(&app).await;
}

/// Nothing stays leased: a sweep gives its leases back when it ends, and lapsed ones are forgotten.
async fn assert_no_leases(app: &TestApp) {
    let leases = check_lease::Entity::find().all(&app.state.db).await.unwrap();
    assert!(leases.is_empty(), "leases left behind: {leases:?}");
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

    // The creates' own checks must not be counted as the sweep's.
    crate::helpers::events_settled(&a.state).await;
    crate::helpers::events_settled(&b.state).await;
    let before = b.state.events.subscribers();
    let mut on_b =
        Subscriber::connect(&b.address, "/graphql/ws", Protocol::TransportWs, &member.token).await.unwrap();
    on_b.subscribe(
        "v",
        "subscription($t: ID!) { verificationEvents(teamId: $t) { connectionId phase } }",
        json!({ "t": member.team_id }),
    )
    .await;
    crate::helpers::wait_for_subscriber(&b.state, before).await;

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

/// A sweep in several claims and record batches: mixed outcomes, a connection a running flow
/// uses without the scope it needs (directly, and through a dynamic connection), history kept
/// to its limit. What is stored, and what watchers were told, must agree for every connection.
async fn a_sweep_in_batches_records_every_result_as_watchers_are_told(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("PLUGBOARD_CHECK_BATCH", "4"),
            ("PLUGBOARD_APP_RATE_LIMIT", "10000"),
            ("PLUGBOARD_VERIFICATION_HISTORY", "2"),
        ],
    )
    .await
    else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for i in 0..9 {
        good.push(crm_connection(&app, &member, &format!("good-{i}")).await);
    }
    for i in 0..5 {
        bad.push(crm_connection(&app, &member, &format!("bad-{i}")).await);
    }
    // good[0] is used directly; good[1] and good[2] (the default) through the dynamic connection.
    let (direct, grouped) = (&good[0], &good[1]);
    let flagged = &good[..3];
    let dynamic = app
        .ok(
            &member.token,
            "mutation($input: CreateDynamicConnectionInput!) { createDynamicConnection(input: $input) { id } }",
            json!({ "input": { "teamId": member.team_id, "name": "Per department", "app": "test-crm",
                "members": [{ "connectionId": good[2], "label": "sales" }, { "connectionId": grouped, "label": "support" }],
                "defaultConnectionId": good[2] } }),
        )
        .await["createDynamicConnection"]["id"]
        .clone();
    // A running flow whose modules need `contacts.read`, which no connection was granted.
    app.ok(
        &member.token,
        "mutation($input: CreateFlowInput!) { createFlow(input: $input) { flow { id } } }",
        json!({ "input": { "teamId": member.team_id, "name": "Sync", "status": "ACTIVE", "modules": [
            { "key": "direct", "app": "test-crm", "module": "list-contacts", "connectionId": direct },
            { "key": "by-department", "app": "test-crm", "module": "list-contacts", "dynamicConnectionId": dynamic },
        ] } }),
    )
    .await;
    // From now on the provider refuses the bad keys.
    app.provider.reset().await;
    Mock::given(header_regex("authorization", "^Bearer bad-"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(1)
        .mount(&app.provider)
        .await;
    crm_ok(&app).await;

    let mut subscriber = watch_verifications(&app, &member).await;
    for _ in 0..2 {
        make_all_due(&app).await;
        let report = run_due_checks(&app.state).await.unwrap();
        assert_eq!((report.claimed, report.recorded, report.dropped, report.skipped), (14, 14, 0, 0));
    }

    let expected = |id: &String| match id {
        id if bad.contains(id) => ("INVALID_CREDENTIALS", "INVALID"),
        id if flagged.contains(id) => ("INSUFFICIENT_SCOPES", "INVALID"),
        _ => ("OK", "ACTIVE"),
    };
    let mut told: HashMap<String, Vec<String>> = Default::default();
    while told.values().map(Vec::len).sum::<usize>() < 28 {
        let Some(event) = subscriber.next_data(Duration::from_secs(10)).await else { break };
        let event = &event["data"]["verificationEvents"];
        if event["phase"] == "FINISHED" {
            let outcome = event["verification"]["outcome"].as_str().unwrap().to_owned();
            told.entry(event["connectionId"].as_str().unwrap().to_owned()).or_default().push(outcome);
        }
    }
    let query = "query($id: ID!) { connection(id: $id) { status accountLabel lastVerification { outcome message } verifications { outcome } } }";
    for id in good.iter().chain(&bad) {
        let (outcome, status) = expected(id);
        assert_eq!(told[id], [outcome, outcome], "watchers were told of both sweeps' checks of {id}");
        let stored = &app.ok(&member.token, query, json!({ "id": id })).await["connection"];
        assert_eq!(stored["status"], status, "{id}: {stored}");
        assert_eq!(stored["lastVerification"]["outcome"], outcome, "{id}: {stored}");
        assert_eq!(
            stored["verifications"],
            json!([{ "outcome": outcome }, { "outcome": outcome }]),
            "history kept to 2"
        );
        assert_eq!(stored["accountLabel"], "crm@acme.test", "a failed check keeps the account known");
        if outcome == "INSUFFICIENT_SCOPES" {
            let message = stored["lastVerification"]["message"].as_str().unwrap();
            assert!(message.contains("contacts.read"), "{message}");
        }
    }
    assert_no_leases(&app).await;
    let audit = app
        .ok(&member.token, "query($t: ID!) { team(id: $t) { auditEvents(first: 100) { edges { node { action connectionId detail actor { label } } } } } }", json!({ "t": member.team_id }))
        .await;
    let mut changed: Vec<(String, Value)> = audit["team"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["actor"]["label"] == "scheduler")
        .map(|n| {
            assert_eq!(n["action"], "CONNECTION_VERIFIED");
            (n["connectionId"].as_str().unwrap().to_owned(), n["detail"].clone())
        })
        .collect();
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected_changes: Vec<(String, Value)> = flagged
        .iter()
        .chain(&bad)
        .map(|id| {
            let (outcome, status) = expected(id);
            // Credentials that work name their account, even when a module misses a scope.
            let account = if flagged.contains(id) { json!("crm@acme.test") } else { Value::Null };
            (id.clone(), json!({ "outcome": outcome, "account_label": account, "previous_status": "ACTIVE", "status": status }))
        })
        .collect();
    expected_changes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(changed, expected_changes, "the trail has each change of status once, and no unchanged check");
}

#[tokio::test]
async fn a_sweep_in_batches_records_every_result_on_sqlite() {
    a_sweep_in_batches_records_every_result_as_watchers_are_told(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_sweep_in_batches_records_every_result_on_postgres() {
    a_sweep_in_batches_records_every_result_as_watchers_are_told(Backend::Postgres).await;
}

/// Shutdown mid-sweep: the checks under way are recorded, and what was claimed ahead but not
/// checked goes back still due, so the next sweep (here or on another instance) checks it.
#[tokio::test]
async fn a_stopped_sweep_gives_back_what_it_claimed_ahead_still_due() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("PLUGBOARD_CHECK_BATCH", "5"),
            ("PLUGBOARD_CHECK_CONCURRENCY", "2"),
            ("PLUGBOARD_APP_RATE_LIMIT", "10000"),
        ],
    )
    .await
    .unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    for i in 0..12 {
        crm_connection(&app, &member, &format!("key-{i}")).await;
    }
    // Shutdown begins the moment the first check reaches the provider: both checks the sweep
    // may run at once are under way by then, and nothing after them is.
    let stop = Arc::new(AtomicBool::new(false));
    app.provider.reset().await;
    Mock::given(path("/crm/me")).respond_with(StopOnRequest(stop.clone())).mount(&app.provider).await;
    make_all_due(&app).await;

    let report = run_due_checks_until(&app.state, &stop).await.unwrap();
    assert_eq!(report.recorded, 2, "the two checks under way were recorded: {report:?}");
    assert!(report.claimed > report.recorded, "the sweep had claimed ahead: {report:?}");

    assert_no_leases(&app).await;
    let rows = connection::Entity::find().all(&app.state.db).await.unwrap();
    let still_due = rows.iter().filter(|row| row.next_check_at.is_some_and(|at| at <= Utc::now())).count();
    assert_eq!(still_due, 10, "what was not checked is still due, not postponed");
    let report = run_due_checks(&app.state).await.unwrap();
    assert_eq!(report.recorded, 10, "the next sweep checks the rest");
}

/// While a batch is being checked, one connection is deleted through the API and a refresh
/// flags another: the batch is written otherwise than planned before its transaction. The
/// deleted one is dropped (no history, no event), the flagged one is recorded and audited from
/// the status it was flagged to, and the untouched one as usual.
async fn changes_made_during_the_checks_shape_what_the_batch_records(backend: Backend) {
    use plugboard::domain::ConnectionStatus;

    // The provider answers late, well within the time a check may take.
    let Some(app) = TestApp::spawn_with(backend, &[("PLUGBOARD_HTTP_TIMEOUT_SECS", "10")]).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    let deleted = crm_connection(&app, &member, "key-deleted").await;
    let flagged = crm_connection(&app, &member, "key-flagged").await;
    let untouched = crm_connection(&app, &member, "key-untouched").await;
    let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    app.provider.reset().await;
    Mock::given(path("/crm/me"))
        .respond_with(CountThenAnswerLate(arrived.clone()))
        .mount(&app.provider)
        .await;
    let mut subscriber = watch_verifications(&app, &member).await;
    make_all_due(&app).await;

    let sweep = tokio::spawn({
        let state = app.state.clone();
        async move { run_due_checks(&state).await }
    });
    while arrived.load(Ordering::Relaxed) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.ok(
        &member.token,
        "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }",
        json!({ "id": deleted }),
    )
    .await;
    connection::Entity::update_many()
        .col_expr(connection::Column::Status, Expr::value(ConnectionStatus::NeedsReauthorization))
        .filter(connection::Column::Id.eq(flagged.parse::<uuid::Uuid>().unwrap()))
        .exec(&app.state.db)
        .await
        .unwrap();
    let report = sweep.await.unwrap().unwrap();
    assert_eq!((report.claimed, report.recorded, report.dropped), (3, 2, 1), "{report:?}");

    crate::helpers::events_settled(&app.state).await;
    let mut finished = Vec::new();
    while let Some(event) = subscriber.next_data(Duration::from_millis(500)).await {
        let event = &event["data"]["verificationEvents"];
        if event["phase"] == "FINISHED" {
            finished.push(event["connectionId"].as_str().unwrap().to_owned());
        }
    }
    finished.sort();
    let mut expected = vec![flagged.clone(), untouched.clone()];
    expected.sort();
    assert_eq!(finished, expected, "watchers hear of the two recorded checks, not of the deleted one");

    let query = "query($id: ID!) { connection(id: $id) { status verifications { outcome } } }";
    for id in [&flagged, &untouched] {
        let stored = &app.ok(&member.token, query, json!({ "id": id })).await["connection"];
        assert_eq!(stored["status"], "ACTIVE", "{id}: {stored}");
        assert_eq!(stored["verifications"], json!([{ "outcome": "OK" }, { "outcome": "OK" }]), "{id}");
    }
    let history = plugboard::store::entities::verification::Entity::find()
        .filter(
            plugboard::store::entities::verification::Column::ConnectionId
                .eq(deleted.parse::<uuid::Uuid>().unwrap()),
        )
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(history.is_empty(), "a deleted connection gains no history: {history:?}");
    let audit = app
        .ok(&member.token, "query($t: ID!) { team(id: $t) { auditEvents(first: 100) { edges { node { action connectionId detail actor { label } } } } } }", json!({ "t": member.team_id }))
        .await;
    let by_scheduler: Vec<(Value, Value)> = audit["team"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["actor"]["label"] == "scheduler")
        .map(|n| (n["connectionId"].clone(), n["detail"].clone()))
        .collect();
    assert_eq!(
        by_scheduler,
        [(
            json!(flagged),
            json!({ "outcome": "OK", "account_label": "crm@acme.test", "previous_status": "NEEDS_REAUTHORIZATION", "status": "ACTIVE" })
        )],
        "only the flagged connection changed status, from what the refresh set"
    );
}

#[tokio::test]
async fn changes_made_during_the_checks_shape_what_the_batch_records_on_sqlite() {
    changes_made_during_the_checks_shape_what_the_batch_records(Backend::Sqlite).await;
}

#[tokio::test]
async fn changes_made_during_the_checks_shape_what_the_batch_records_on_postgres() {
    changes_made_during_the_checks_shape_what_the_batch_records(Backend::Postgres).await;
}

/// A refresh finds the grant dead while a check is waiting on a provider that then answers 503:
/// the outage's result keeps the status the refresh set, for a scheduled check and a manual
/// one alike (it used to put back the status read before the check, `ACTIVE`, and tell
/// receivers the connection recovered).
async fn an_outage_found_during_a_check_keeps_a_status_set_meanwhile(backend: Backend) {
    use plugboard::domain::ConnectionStatus;

    let Some(app) = TestApp::spawn_with(backend, &[("PLUGBOARD_HTTP_TIMEOUT_SECS", "10")]).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    let scheduled = crm_connection(&app, &member, "key-scheduled").await;
    let manual = crm_connection(&app, &member, "key-manual").await;
    let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    app.provider.reset().await;
    Mock::given(path("/crm/me"))
        .respond_with(CountThenUnavailable(arrived.clone()))
        .mount(&app.provider)
        .await;
    let flag = |id: &str| {
        connection::Entity::update_many()
            .col_expr(connection::Column::Status, Expr::value(ConnectionStatus::NeedsReauthorization))
            .filter(connection::Column::Id.eq(id.parse::<uuid::Uuid>().unwrap()))
            .exec(&app.state.db)
    };
    let arrivals = |n: usize| {
        let arrived = arrived.clone();
        async move {
            while arrived.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    // Scheduled: only the one connection is due.
    connection::Entity::update_many()
        .col_expr(connection::Column::NextCheckAt, Expr::value(Utc::now() - chrono::Duration::minutes(1)))
        .filter(connection::Column::Id.eq(scheduled.parse::<uuid::Uuid>().unwrap()))
        .exec(&app.state.db)
        .await
        .unwrap();
    let sweep = tokio::spawn({
        let state = app.state.clone();
        async move { run_due_checks(&state).await }
    });
    arrivals(1).await;
    flag(&scheduled).await.unwrap();
    let report = sweep.await.unwrap().unwrap();
    assert_eq!((report.claimed, report.recorded), (1, 1), "{report:?}");

    // Manual.
    let check = tokio::spawn({
        let (client, address, token, id) =
            (app.client.clone(), app.address.clone(), member.token.clone(), manual.clone());
        async move {
            let body = json!({ "query": "mutation($id: ID!) { verifyConnection(id: $id) { outcome } }", "variables": { "id": id } });
            client
                .post(format!("{address}/graphql"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    arrivals(2).await;
    flag(&manual).await.unwrap();
    let answer = check.await.unwrap();
    assert_eq!(answer["data"]["verifyConnection"]["outcome"], "PROVIDER_UNAVAILABLE", "{answer}");

    let query = "query($id: ID!) { connection(id: $id) { status lastVerification { outcome } } }";
    for id in [&scheduled, &manual] {
        let stored = &app.ok(&member.token, query, json!({ "id": id })).await["connection"];
        assert_eq!(stored["status"], "NEEDS_REAUTHORIZATION", "{id}: {stored}");
        assert_eq!(stored["lastVerification"]["outcome"], "PROVIDER_UNAVAILABLE", "{id}: {stored}");
    }
}

#[tokio::test]
async fn an_outage_found_during_a_check_keeps_a_status_set_meanwhile_on_sqlite() {
    an_outage_found_during_a_check_keeps_a_status_set_meanwhile(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_outage_found_during_a_check_keeps_a_status_set_meanwhile_on_postgres() {
    an_outage_found_during_a_check_keeps_a_status_set_meanwhile(Backend::Postgres).await;
}

/// A provider that counts the requests it was sent and answers each 503 after 2 s.
struct CountThenUnavailable(Arc<std::sync::atomic::AtomicUsize>);

impl wiremock::Respond for CountThenUnavailable {
    fn respond(&self, _request: &wiremock::Request) -> ResponseTemplate {
        self.0.fetch_add(1, Ordering::Relaxed);
        ResponseTemplate::new(503).set_delay(Duration::from_secs(2))
    }
}

/// A provider that counts the requests it was sent and answers each after 3 s: time for a
/// test to change what is being checked.
struct CountThenAnswerLate(Arc<std::sync::atomic::AtomicUsize>);

impl wiremock::Respond for CountThenAnswerLate {
    fn respond(&self, _request: &wiremock::Request) -> ResponseTemplate {
        self.0.fetch_add(1, Ordering::Relaxed);
        ResponseTemplate::new(200)
            .set_body_json(json!({ "user": { "email": "crm@acme.test" } }))
            .set_delay(Duration::from_secs(3))
    }
}

/// A provider that answers after 100 ms and sets `stop` as soon as it is asked.
struct StopOnRequest(Arc<AtomicBool>);

impl wiremock::Respond for StopOnRequest {
    fn respond(&self, _request: &wiremock::Request) -> ResponseTemplate {
        self.0.store(true, Ordering::Relaxed);
        ResponseTemplate::new(200)
            .set_body_json(json!({ "user": { "email": "crm@acme.test" } }))
            .set_delay(Duration::from_millis(100))
    }
}

/// The sweep tells watchers what it wrote without reading it back: `Connection::after_check`
/// must be exactly what the batched statement stores, for a check that names an account and one
/// that does not; and a result under a lease that lapsed and was taken over, or of credentials
/// edited since they were claimed, must not land.
async fn a_batch_of_results_reads_back_as_the_sweep_announced_it(app: TestApp) {
    use plugboard::domain::{ConnectionStatus, Health, Verification, VerificationOutcome};
    use plugboard::store::checks::{CheckRecord, ClaimedCheck, claim_due, read_claimed, record_claimed};

    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    for key in ["key-a", "key-b", "key-c", "key-d"] {
        crm_connection(&app, &member, key).await;
    }
    make_all_due(&app).await;
    let db = &app.state.db;
    // Whole microseconds: what both databases keep of a timestamp.
    let now = chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    let batch = |sweep, lease, limit| BatchClaim {
        sweep,
        lease,
        now,
        expires_at: now + chrono::Duration::minutes(5),
        limit,
    };
    // The first two under one lease, the third (d) under the next, and the last (c) under a
    // third, which lapses: no live lease lies past it, so another sweep takes it over.
    let (lease, lapsing, lease_d) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let mut ids = claim_due(db, batch("sweep-test", lease, 2)).await.unwrap();
    ids.extend(claim_due(db, batch("sweep-test", lease_d, 1)).await.unwrap());
    let c_ids = claim_due(db, batch("sweep-test", lapsing, 1)).await.unwrap();
    assert_eq!((ids.len(), c_ids.len()), (3, 1));
    let claimed = read_claimed(db, &ids).await.unwrap();
    let c = read_claimed(db, &c_ids).await.unwrap().remove(0).0;
    let (a, b, d) = (&claimed[0].0, &claimed[1].0, &claimed[2].0);
    let c = &c;
    check_lease::Entity::update_many()
        .col_expr(check_lease::Column::ExpiresAt, Expr::value(now - chrono::Duration::seconds(1)))
        .filter(check_lease::Column::Id.eq(lapsing))
        .exec(db)
        .await
        .unwrap();
    let later = BatchClaim {
        now: now + chrono::Duration::seconds(1),
        ..batch("another-sweep", uuid::Uuid::now_v7(), 10)
    };
    assert_eq!(
        claim_due(db, later).await.unwrap(),
        [c.id],
        "only the lapsed lease's connection is claimed again"
    );
    // An edit replaced d's credentials during its check.
    connection::Entity::update_many()
        .col_expr(connection::Column::Version, Expr::value(d.version + 1))
        .filter(connection::Column::Id.eq(d.id))
        .exec(db)
        .await
        .unwrap();
    let passed = Verification {
        outcome: VerificationOutcome::Ok,
        message: None,
        account_label: Some("renamed@acme.test".into()),
        started_at: now,
        finished_at: now + chrono::Duration::milliseconds(20),
    };
    let failed = Verification {
        outcome: VerificationOutcome::InvalidCredentials,
        message: Some("the provider refused the API key".into()),
        account_label: None,
        ..passed.clone()
    };
    let healthy = Health {
        next_check_at: Some(now + chrono::Duration::days(1)),
        consecutive_failures: 0,
        last_success_at: Some(now),
        last_failure_at: None,
    };
    let failing = Health {
        next_check_at: Some(now + chrono::Duration::minutes(1)),
        consecutive_failures: 1,
        last_success_at: a.health.last_success_at,
        last_failure_at: Some(now),
    };
    // A refresh found a's grant dead during its check.
    connection::Entity::update_many()
        .col_expr(connection::Column::Status, Expr::value(ConnectionStatus::NeedsReauthorization))
        .filter(connection::Column::Id.eq(a.id))
        .exec(db)
        .await
        .unwrap();
    let records = [
        ClaimedCheck {
            id: a.id,
            lease,
            claimed_version: a.version,
            claimed_status: a.status,
            record: CheckRecord { verification: &passed, status: ConnectionStatus::Active, health: &healthy },
        },
        ClaimedCheck {
            id: b.id,
            lease,
            claimed_version: b.version,
            claimed_status: b.status,
            record: CheckRecord {
                verification: &failed,
                status: ConnectionStatus::Invalid,
                health: &failing,
            },
        },
        ClaimedCheck {
            id: c.id,
            lease: lapsing,
            claimed_version: c.version,
            claimed_status: c.status,
            record: CheckRecord { verification: &passed, status: ConnectionStatus::Active, health: &healthy },
        },
        ClaimedCheck {
            id: d.id,
            lease: lease_d,
            claimed_version: d.version,
            claimed_status: d.status,
            record: CheckRecord { verification: &passed, status: ConnectionStatus::Active, health: &healthy },
        },
    ];
    let written = record_claimed(db, &records).await.unwrap();
    assert_eq!(
        written,
        HashMap::from([(a.id, ConnectionStatus::NeedsReauthorization), (b.id, b.status)]),
        "each written with the status it had just before; c's and d's results were stale and dropped"
    );

    for (before, check, status, health) in
        [(a, &passed, ConnectionStatus::Active, &healthy), (b, &failed, ConnectionStatus::Invalid, &failing)]
    {
        let announced = before.clone().after_check(check, status, health.clone());
        let stored =
            plugboard::store::connections::find(db, before.team_id, before.id).await.unwrap().unwrap();
        assert_eq!(format!("{stored:?}"), format!("{announced:?}"));
    }
    let c_now = plugboard::store::connections::find(db, c.team_id, c.id).await.unwrap().unwrap();
    assert_eq!(format!("{c_now:?}"), format!("{c:?}"), "a result under a lapsed lease changes nothing");
    let d_now = plugboard::store::connections::find(db, d.team_id, d.id).await.unwrap().unwrap();
    assert_eq!(
        d_now.last_verification, d.last_verification,
        "a result for edited credentials changes nothing"
    );
}

/// Another process holds SQLite's write lock past the busy timeout while a sweep starts (on
/// one file, a second instance or a burst of writes can): the sweep waits and tries again
/// instead of failing, and records every check once the lock is free.
#[tokio::test]
async fn a_sweep_waits_out_a_database_busy_past_its_timeout() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else { return };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    let ids = [crm_connection(&app, &member, "key-1").await, crm_connection(&app, &member, "key-2").await];
    make_all_due(&app).await;

    // One connection of its own, so BEGIN and COMMIT run on the same one.
    let mut options = sea_orm::ConnectOptions::new(app.database_url.clone());
    options.max_connections(1).sqlx_logging(false);
    let other = sea_orm::Database::connect(options).await.unwrap();
    use sea_orm::ConnectionTrait;
    other.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
    let holder = tokio::spawn(async move {
        // Past SQLite's busy timeout of 5 s, so the sweep's first claim fails as busy.
        tokio::time::sleep(Duration::from_secs(6)).await;
        other.execute_unprepared("COMMIT").await.unwrap();
    });

    let report = run_due_checks(&app.state).await.expect("the sweep waits out the lock");
    holder.await.unwrap();
    assert_eq!((report.claimed, report.recorded, report.skipped), (2, 2, 0), "{report:?}");
    for id in &ids {
        let health = app.ok(&member.token, HEALTH, json!({ "id": id })).await;
        assert_eq!(health["connection"]["lastVerification"]["outcome"], "OK", "{id}: {health:#}");
    }
}

/// The sweep claims ids under the write lock and reads the rows after it: a claim takes the most
/// overdue connections that no lease holds, and what is read is what still exists (not a
/// connection deleted meanwhile), most overdue first, with secrets that open.
async fn a_claimed_batch_reads_back_only_what_the_claim_still_holds(app: TestApp) {
    use plugboard::store::checks::{claim_due, read_claimed};

    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    let mut ids = Vec::new();
    for key in ["key-a", "key-b", "key-c", "key-d"] {
        ids.push(crm_connection(&app, &member, key).await.parse::<ConnectionId>().unwrap());
    }
    // Due in the order d, c, b, a: the most overdue comes first whatever the ids say.
    for (minutes, id) in ids.iter().rev().enumerate() {
        connection::Entity::update_many()
            .col_expr(
                connection::Column::NextCheckAt,
                Expr::value(Utc::now() - chrono::Duration::minutes(10 - minutes as i64)),
            )
            .filter(connection::Column::Id.eq(*id))
            .exec(&app.state.db)
            .await
            .unwrap();
    }
    let db = &app.state.db;
    let now = Utc::now();
    let batch = |sweep| BatchClaim {
        sweep,
        lease: uuid::Uuid::now_v7(),
        now,
        expires_at: now + chrono::Duration::minutes(5),
        limit: 3,
    };
    let mine = claim_due(db, batch("sweep-mine")).await.unwrap();
    assert_eq!(mine, vec![ids[3], ids[2], ids[1]], "the three most overdue, most overdue first");
    let theirs = claim_due(db, batch("sweep-theirs")).await.unwrap();
    assert_eq!(theirs, vec![ids[0]], "what is claimed is not claimed twice");

    app.ok(
        &member.token,
        "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }",
        json!({ "id": ids[2].to_string() }),
    )
    .await;
    let read = read_claimed(db, &mine).await.unwrap();
    let read_ids: Vec<ConnectionId> = read.iter().map(|(connection, _)| connection.id).collect();
    assert_eq!(read_ids, vec![ids[3], ids[1]], "most overdue first; not the deleted one");
    for (connection, sealed) in &read {
        assert_eq!(connection.app_key, "test-crm");
        let sealed = sealed.as_deref().expect("the claimed row carries its sealed secrets");
        let secrets = plugboard::connections::open_secrets(
            &app.state.sealer,
            connection.team_id,
            connection.id,
            sealed,
        )
        .unwrap();
        assert!(secrets.contains_key("api_key"), "the secrets open under the connection's binding");
    }
}

/// Before batches were leased, a connection without `next_check_at` was due as soon as possible;
/// now one without is never due. The migration that brought the leases gives every such
/// connection not waiting for consent its creation time, so the next sweep checks it, and
/// leaves those waiting for consent alone.
async fn connections_without_a_due_time_before_the_leases_are_checked_unless_waiting_for_consent(
    app: TestApp,
) {
    use plugboard::domain::ConnectionStatus;
    use plugboard_migrations::{Migrator, MigratorTrait};

    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_ok(&app).await;
    let unscheduled = crm_connection(&app, &member, "key-unscheduled").await.parse::<ConnectionId>().unwrap();
    let waiting = crm_connection(&app, &member, "key-waiting").await.parse::<ConnectionId>().unwrap();
    let db = &app.state.db;
    let migrations: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    let leases = migrations
        .iter()
        .position(|name| name == "m20261201_000004_check_leases")
        .expect("the migration that brought the leases");
    let steps = u32::try_from(migrations.len() - leases).unwrap();
    Migrator::down(db, Some(steps)).await.expect("the migrations undo");
    connection::Entity::update_many()
        .col_expr(connection::Column::NextCheckAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
        .exec(db)
        .await
        .unwrap();
    connection::Entity::update_many()
        .col_expr(connection::Column::Status, Expr::value(ConnectionStatus::PendingAuthorization))
        .filter(connection::Column::Id.eq(waiting))
        .exec(db)
        .await
        .unwrap();
    Migrator::up(db, None).await.expect("the migrations run again");

    let report = run_due_checks(&app.state).await.unwrap();
    assert_eq!((report.claimed, report.recorded), (1, 1), "{report:?}");
    let row = |id| async move { connection::Entity::find_by_id(id).one(db).await.unwrap().unwrap() };
    assert!(row(unscheduled).await.next_check_at.is_some_and(|at| at > Utc::now()), "checked, and scheduled");
    assert_eq!(row(waiting).await.next_check_at, None, "a connection waiting for consent is never due");
    assert_no_leases(&app).await;
}
