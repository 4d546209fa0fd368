//! Webhooks: signed deliveries of connection events, with the flows affected, retried with
//! backoff and recorded.

use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use plugboard::domain::TeamRole;
use plugboard::store::entities::webhook_delivery;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Backend, CREATE_CONNECTION, Member, TestApp, error_code};
use crate::on_every_database;

on_every_database!(
    status_changes_are_delivered_signed_with_the_flows_affected,
    failed_deliveries_are_retried_with_backoff,
    a_slow_endpoint_gets_one_delivery_at_a_time_in_order_from_two_instances,
    a_delivery_taken_over_while_it_waited_is_not_sent_twice,
    a_slow_endpoint_holds_up_only_its_own_deliveries,
    finished_deliveries_are_forgotten_after_the_retention_and_pending_ones_kept,
    a_team_holds_a_bounded_number_of_webhooks_with_bounded_values
);

const SECRET: &str = "whsec-test-signing-secret";
const REGISTER: &str = "mutation($t: ID!, $url: String!, $secret: String!) { createWebhook(teamId: $t, url: $url, secret: $secret) { id url } }";
const DELIVERIES: &str = "query($t: ID!) { team(id: $t) { webhooks { id deliveries(first: 50) { event status attempts lastError nextAttemptAt payload } } } }";

async fn register(app: &TestApp, member: &Member, receiver: &MockServer) -> Value {
    app.ok(
        &member.token,
        REGISTER,
        json!({ "t": member.team_id, "url": format!("{}/hook", receiver.uri()), "secret": SECRET }),
    )
    .await
}

/// A webhook endpoint at `/hook` answering with `responder`.
async fn endpoint(responder: impl wiremock::Respond + 'static) -> MockServer {
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(responder).mount(&receiver).await;
    receiver
}

/// Waits until the receiver got `n` requests (deliveries run in the background).
async fn received(receiver: &MockServer, n: usize) -> Vec<wiremock::Request> {
    for _ in 0..100 {
        let requests = receiver.received_requests().await.unwrap();
        if requests.len() >= n {
            return requests;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} deliveries, got {:?}", receiver.received_requests().await.unwrap().len());
}

fn verify_signature(request: &wiremock::Request) {
    let header = request.headers["plugboard-signature"].to_str().unwrap();
    let (t, v1) = header.split_once(',').unwrap();
    let timestamp = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1.strip_prefix("v1=").unwrap(), expected, "the signature covers timestamp and body");
    let age = Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
    assert!((0..60).contains(&age));
}

fn event_types(requests: &[wiremock::Request]) -> Vec<String> {
    requests.iter().map(|r| r.body_json::<Value>().unwrap()["type"].as_str().unwrap().to_owned()).collect()
}

async fn status_changes_are_delivered_signed_with_the_flows_affected(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let receiver = endpoint(ResponseTemplate::new(204)).await;
    let hook = register(&app, &member, &receiver).await;
    assert!(!hook.to_string().contains(SECRET), "the secret is never returned");

    Mock::given(path("/crm/me"))
        .respond_with(ResponseTemplate::new(200))
        .up_to_n_times(1)
        .mount(&app.provider)
        .await;
    let created = app
        .ok(&member.token, CREATE_CONNECTION, json!({ "input": { "teamId": member.team_id, "app": "test-crm", "name": "CRM", "fields": { "api_key": "k-hook" } } }))
        .await;
    let id = created["createConnection"]["connection"]["id"].as_str().unwrap().to_owned();
    app.ok(
        &member.token,
        "mutation($input: CreateFlowInput!) { createFlow(input: $input) { flow { id } } }",
        json!({ "input": { "teamId": member.team_id, "name": "Nightly", "status": "ACTIVE",
            "modules": [{ "key": "c", "app": "test-crm", "module": "list-contacts", "connectionId": id }] } }),
    )
    .await;
    // The provider now rejects the key: the connection turns invalid.
    Mock::given(path("/crm/me")).respond_with(ResponseTemplate::new(401)).mount(&app.provider).await;
    app.ok(
        &member.token,
        "mutation($id: ID!) { verifyConnection(id: $id) { outcome } }",
        json!({ "id": id }),
    )
    .await;

    let requests = received(&receiver, 2).await;
    assert_eq!(event_types(&requests), ["connection.created", "connection.invalid"]);
    for request in &requests {
        verify_signature(request);
        assert!(!String::from_utf8_lossy(&request.body).contains("k-hook"));
    }
    let invalid: Value = requests[1].body_json().unwrap();
    assert_eq!(invalid["connection"]["id"], id.as_str());
    assert_eq!(invalid["connection"]["status"], "INVALID");
    assert_eq!(invalid["flows"][0]["name"], "Nightly");
    assert_eq!(requests[1].headers["plugboard-event"], "connection.invalid");

    let data = app.ok(&member.token, DELIVERIES, json!({ "t": member.team_id })).await;
    let deliveries = data["team"]["webhooks"][0]["deliveries"].as_array().unwrap();
    assert!(deliveries.iter().all(|d| d["status"] == "DELIVERED" && d["attempts"] == 1), "{deliveries:?}");

    app.ok(
        &member.token,
        "mutation($id: ID!, $c: Boolean) { deleteConnection(id: $id, confirm: $c) { deletedId } }",
        json!({ "id": id, "c": true }),
    )
    .await;
    let requests = received(&receiver, 3).await;
    let deleted: Value = requests[2].body_json().unwrap();
    assert_eq!(deleted["type"], "connection.deleted");
    assert_eq!(deleted["flows"][0]["name"], "Nightly", "the flows the delete broke");
}

/// When each request to an endpoint arrived, and what it carried.
type Arrivals = std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, Value)>>>;

/// Answers every request after `delay`, noting its arrival.
struct SlowEndpoint {
    delay: Duration,
    arrivals: Arrivals,
}

/// Waits until `arrivals` holds `n` requests.
async fn arrived(arrivals: &Arrivals, n: usize) {
    for _ in 0..400 {
        if arrivals.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {n} deliveries, got {}", arrivals.lock().unwrap().len());
}

impl wiremock::Respond for SlowEndpoint {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let body = request.body_json::<Value>().unwrap_or(Value::Null);
        self.arrivals.lock().unwrap().push((std::time::Instant::now(), body));
        ResponseTemplate::new(200).set_delay(self.delay)
    }
}

/// Events that happen while an endpoint is still answering an earlier delivery wait for it,
/// on whichever instance: the endpoint never has two deliveries in flight, gets each once, and
/// gets them in the order the events happened.
async fn a_slow_endpoint_gets_one_delivery_at_a_time_in_order_from_two_instances(app: TestApp) {
    const DELAY: Duration = Duration::from_millis(700);
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let arrivals = Arrivals::default();
    let receiver = endpoint(SlowEndpoint { delay: DELAY, arrivals: arrivals.clone() }).await;
    register(&app, &member, &receiver).await;
    let sibling = app.spawn_sibling().await;

    let mut created = vec![app.create_api_key_connection(&member, "First", "sk-1").await];
    arrived(&arrivals, 1).await;
    // The first delivery is in flight: these three are due at once, on both instances.
    for name in ["Second", "Third", "Fourth"] {
        created.push(app.create_api_key_connection(&member, name, "sk-n").await);
    }
    let (first, second) = tokio::join!(
        plugboard::webhooks::deliver_due(&app.state),
        plugboard::webhooks::deliver_due(&sibling.state)
    );
    let delivered = first.unwrap().delivered + second.unwrap().delivered;
    assert!(delivered <= 3, "nothing is sent twice: {delivered}");
    arrived(&arrivals, 4).await;
    tokio::time::sleep(DELAY * 2).await;

    let arrivals = arrivals.lock().unwrap().clone();
    let order: Vec<&str> =
        arrivals.iter().map(|(_, body)| body["connection"]["id"].as_str().unwrap_or_default()).collect();
    assert_eq!(order, created.iter().map(String::as_str).collect::<Vec<_>>(), "each once, in order");
    for pair in arrivals.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= DELAY, "a delivery was sent while the one before was in flight ({gap:?} apart)");
    }
    let data = app.ok(&member.token, DELIVERIES, json!({ "t": member.team_id })).await;
    let deliveries = data["team"]["webhooks"][0]["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 4);
    assert!(deliveries.iter().all(|d| d["status"] == "DELIVERED" && d["attempts"] == 1), "{deliveries:?}");
}

/// A delivery whose claim lapsed while it waited to be sent (its team's permits were all busy)
/// and was then claimed and sent by another instance is not sent again by the first.
async fn a_delivery_taken_over_while_it_waited_is_not_sent_twice(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let receiver = endpoint(ResponseTemplate::new(200)).await;
    let connection = app.create_api_key_connection(&member, "OpenAI", "sk-wait").await;
    register(&app, &member, &receiver).await;
    // Every provider permit of the team on the first instance is taken; then the connection's
    // deletion, which calls no provider, makes the one delivery.
    let team: plugboard::domain::TeamId = member.team_id.parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..app.state.config.team_provider_concurrency {
        held.push(app.state.provider_gate.enter(team).await);
    }
    app.ok(
        &member.token,
        "mutation($id: ID!) { deleteConnection(id: $id, confirm: true) { deletedId } }",
        json!({ "id": connection }),
    )
    .await;
    wait_until_claimed(&app).await;

    // Only once the first instance holds the claim does a second one start, and it takes the
    // delivery over when the claim lapses (the request timeout plus a margin).
    let _sibling = app.spawn_sibling().await;
    let sent = hooks_received(&receiver, 1, Duration::from_secs(40)).await;
    assert_eq!(sent.len(), 1, "the second instance sent it");
    drop(held);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hooks_received(&receiver, 2, Duration::ZERO).await.len(), 1, "and only it");
    let data = app.ok(&member.token, DELIVERIES, json!({ "t": member.team_id })).await;
    let delivery = &data["team"]["webhooks"][0]["deliveries"][0];
    assert_eq!((delivery["status"].as_str(), delivery["attempts"].as_i64()), (Some("DELIVERED"), Some(1)));
}

/// While one endpoint of a team takes its time to answer, the team's other endpoint gets the
/// events that happen meanwhile at once, not after the slow one answered.
async fn a_slow_endpoint_holds_up_only_its_own_deliveries(app: TestApp) {
    // Within the tests' request timeout (2 s).
    const DELAY: Duration = Duration::from_millis(1500);
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let (slow_arrivals, fast_arrivals) = (Arrivals::default(), Arrivals::default());
    let slow = endpoint(SlowEndpoint { delay: DELAY, arrivals: slow_arrivals.clone() }).await;
    let fast = endpoint(SlowEndpoint { delay: Duration::ZERO, arrivals: fast_arrivals.clone() }).await;
    register(&app, &member, &slow).await;
    register(&app, &member, &fast).await;

    app.create_api_key_connection(&member, "First", "sk-1").await;
    arrived(&slow_arrivals, 1).await;
    arrived(&fast_arrivals, 1).await;
    app.create_api_key_connection(&member, "Second", "sk-2").await;
    arrived(&fast_arrivals, 2).await;
    arrived(&slow_arrivals, 2).await;

    let slow_first = slow_arrivals.lock().unwrap()[0].0;
    let fast_second = fast_arrivals.lock().unwrap()[1].0;
    assert!(
        fast_second < slow_first + DELAY,
        "the fast endpoint's second event waited {:?} for the slow one's first answer",
        fast_second - slow_first
    );
}

/// Deliveries that finished longer ago than the retention (30 days by default) leave the log;
/// one still waiting for a retry stays, however old.
async fn finished_deliveries_are_forgotten_after_the_retention_and_pending_ones_kept(app: TestApp) {
    use sea_orm::{ColumnTrait, QueryFilter};
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let receiver = endpoint(ResponseTemplate::new(200)).await;
    let hook = register(&app, &member, &receiver).await;
    app.create_api_key_connection(&member, "Delivered", "sk-1").await;
    received(&receiver, 1).await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&receiver)
        .await;
    app.create_api_key_connection(&member, "Retrying", "sk-2").await;
    received(&receiver, 2).await;
    let statuses = async || -> Vec<String> {
        let data = app.ok(&member.token, DELIVERIES, json!({ "t": member.team_id })).await;
        let deliveries = data["team"]["webhooks"][0]["deliveries"].as_array().unwrap().clone();
        deliveries.iter().map(|d| d["status"].as_str().unwrap().to_owned()).collect()
    };
    for _ in 0..100 {
        if statuses().await.contains(&"PENDING".to_owned()) && statuses().await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        plugboard::webhooks::forget_finished_deliveries(&app.state).await.unwrap(),
        0,
        "nothing is old yet"
    );

    // Both were made 31 days ago; the delivered one finished then too.
    let long_ago = Utc::now() - chrono::Duration::days(31);
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::CreatedAt, Expr::value(long_ago))
        .exec(&app.state.db)
        .await
        .unwrap();
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(long_ago))
        .filter(webhook_delivery::Column::Status.eq("DELIVERED"))
        .exec(&app.state.db)
        .await
        .unwrap();
    // Besides, more old ones than one statement forgets: a log an upgrade finds full.
    let webhook_id: uuid::Uuid = hook["createWebhook"]["id"].as_str().unwrap().parse().unwrap();
    let team_id: plugboard::domain::TeamId = member.team_id.parse().unwrap();
    let old = (0..1_001).map(|_| webhook_delivery::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        webhook_id: Set(webhook_id),
        team_id: Set(team_id),
        event: Set("connection.created".into()),
        payload: Set(json!({})),
        status: Set("FAILED".into()),
        attempts: Set(8),
        last_error: Set(Some("the endpoint answered HTTP 503".into())),
        next_attempt_at: Set(long_ago),
        claimed_by: Set(None),
        claim_expires_at: Set(None),
        created_at: Set(long_ago),
        delivered_at: Set(None),
    });
    webhook_delivery::Entity::insert_many(old).exec_without_returning(&app.state.db).await.unwrap();
    assert_eq!(plugboard::webhooks::forget_finished_deliveries(&app.state).await.unwrap(), 1_002);
    assert_eq!(statuses().await, ["PENDING"], "the retry waiting is kept");
}

/// Waits until a dispatcher has claimed the one delivery there is.
async fn wait_until_claimed(app: &TestApp) {
    use sea_orm::{ColumnTrait, QueryFilter};
    for _ in 0..200 {
        let claimed = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::ClaimedBy.is_not_null())
            .one(&app.state.db)
            .await
            .unwrap();
        if claimed.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no dispatcher claimed the delivery");
}

async fn failed_deliveries_are_retried_with_backoff(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let receiver = MockServer::start().await;
    Mock::given(path("/hook"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&receiver)
        .await;
    Mock::given(path("/hook")).respond_with(ResponseTemplate::new(200)).mount(&receiver).await;
    register(&app, &member, &receiver).await;
    app.create_api_key_connection(&member, "OpenAI", "sk-hook").await;
    received(&receiver, 1).await;
    plugboard::webhooks::deliver_due(&app.state).await.unwrap();

    let data = app.ok(&member.token, DELIVERIES, json!({ "t": member.team_id })).await;
    let delivery = &data["team"]["webhooks"][0]["deliveries"][0];
    assert_eq!((delivery["status"].as_str(), delivery["attempts"].as_i64()), (Some("PENDING"), Some(1)));
    assert_eq!(delivery["lastError"], "the endpoint answered HTTP 500");
    let next: chrono::DateTime<Utc> = delivery["nextAttemptAt"].as_str().unwrap().parse().unwrap();
    assert!(next > Utc::now() + chrono::Duration::seconds(20), "retried later, not at once");

    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(Utc::now()))
        .exec(&app.state.db)
        .await
        .unwrap();
    let report = plugboard::webhooks::deliver_due(&app.state).await.unwrap();
    assert_eq!(report.delivered, 1);
    let data = app.ok(&member.token, DELIVERIES, json!({ "t": member.team_id })).await;
    let delivery = &data["team"]["webhooks"][0]["deliveries"][0];
    assert_eq!((delivery["status"].as_str(), delivery["attempts"].as_i64()), (Some("DELIVERED"), Some(2)));
}

#[tokio::test]
async fn webhook_urls_obey_the_egress_policy_and_need_a_real_secret() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_EGRESS_ALLOW_PRIVATE", "false")]).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    for (url, secret, field) in [
        ("http://127.0.0.1:9/hook", SECRET, "url"),
        ("http://169.254.169.254/latest", SECRET, "url"),
        ("not a url", SECRET, "url"),
        ("https://hooks.example.com/x", "short", "secret"),
    ] {
        let body = app
            .graphql(
                Some(&member.token),
                REGISTER,
                json!({ "t": member.team_id, "url": url, "secret": secret }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    let watcher = app.member("Acme", "mo@acme.test", TeamRole::Monitoring).await;
    let body = app
        .graphql(
            Some(&watcher.token),
            REGISTER,
            json!({ "t": member.team_id, "url": "https://hooks.example.com/x", "secret": SECRET }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
}

/// The change and its webhook are written in one transaction, and the dispatcher of the next
/// instance sends what a killed one left: no webhook is lost to a crash after the answer.
#[tokio::test]
async fn a_webhook_survives_a_sigkill_right_after_the_mutation_answers() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let delivered = crash_after_create(&receiver, false).await;
    assert!(!delivered.is_empty(), "the webhook arrives after the restart");
}

/// An instance killed while its endpoint is still answering leaves a claim that lapses; the
/// next instance sends the same delivery again, under the same `webhook-id`.
#[tokio::test]
async fn a_delivery_cut_short_by_a_crash_is_sent_again_with_the_same_id() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let delivered = crash_after_create(&receiver, true).await;
    assert!(delivered.len() >= 2, "sent again after the crash: {}", delivered.len());
}

/// Registers a webhook on a fresh `plugboard serve`, creates a connection, kills the process
/// with SIGKILL (at once, or once the endpoint got the delivery when `mid_delivery`), starts it
/// again on the same data, and answers the deliveries the endpoint received, all checked to be
/// the `connection.created` of that connection under one signed `webhook-id`.
async fn crash_after_create(receiver: &MockServer, mid_delivery: bool) -> Vec<wiremock::Request> {
    use crate::process::ServiceProcess;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200))
        .mount(receiver)
        .await;
    let env = [
        ("PLUGBOARD_EGRESS_ALLOW_PRIVATE", "true".to_owned()),
        // Never during the test: what delivers is the dispatcher, not the sweep.
        ("PLUGBOARD_CHECK_CRON", "0 0 0 1 1 * 2099".to_owned()),
        // A claim lapses this long after the request timeout (plus a margin).
        ("PLUGBOARD_HTTP_TIMEOUT_SECS", "1".to_owned()),
    ];
    let service = tokio::task::spawn_blocking({
        let env = env.clone();
        move || ServiceProcess::start(&env)
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let graphql = async |base: &str, token: &str, query: &str, variables: Value| -> Value {
        let response = client
            .post(format!("{base}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    };
    let viewer = graphql(&service.base_url, &service.token, "{ viewer { teams { id } } }", json!({})).await;
    let team = viewer["data"]["viewer"]["teams"][0]["id"].as_str().unwrap().to_owned();
    let hook = format!("{}/hook", receiver.uri());
    let registered = graphql(
        &service.base_url,
        &service.token,
        REGISTER,
        json!({ "t": team, "url": hook, "secret": SECRET }),
    )
    .await;
    assert!(registered["errors"].is_null(), "{registered}");

    let created = graphql(
        &service.base_url,
        &service.token,
        CREATE_CONNECTION,
        json!({ "input": { "teamId": team, "app": "http-api-key", "name": "Crash test", "fields": {
            "base_url": receiver.uri(), "api_key": "k-crash", "verify_path": "/me" } } }),
    )
    .await;
    let connection_id =
        created["data"]["createConnection"]["connection"]["id"].as_str().expect("created").to_owned();
    if mid_delivery {
        hooks_received(receiver, 1, Duration::from_secs(10)).await;
    }
    let token = service.token.clone();
    let data_dir = service.kill();

    let restarted =
        tokio::task::spawn_blocking(move || ServiceProcess::start_in(data_dir, &env)).await.unwrap();
    let delivered = hooks_received(receiver, if mid_delivery { 2 } else { 1 }, Duration::from_secs(30)).await;
    for webhook in &delivered {
        let body: Value = serde_json::from_slice(&webhook.body).unwrap();
        assert_eq!(body["type"], "connection.created");
        assert_eq!(body["connection"]["id"], connection_id.as_str());
        verify_signature(webhook);
    }
    let ids: std::collections::HashSet<_> =
        delivered.iter().map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 1, "a redelivery keeps its webhook-id");
    let answer = graphql(
        &restarted.base_url,
        &token,
        "query($id: ID!) { connection(id: $id) { status } }",
        json!({ "id": connection_id }),
    )
    .await;
    assert_eq!(answer["data"]["connection"]["status"], "ACTIVE", "{answer}");
    delivered
}

/// The webhook requests `receiver` got once there are `n` of them (or what it has at `within`).
async fn hooks_received(receiver: &MockServer, n: usize, within: Duration) -> Vec<wiremock::Request> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let hooks: Vec<_> = receiver
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path() == "/hook")
            .collect();
        if hooks.len() >= n || std::time::Instant::now() > deadline {
            return hooks;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_team_holds_a_bounded_number_of_webhooks_with_bounded_values(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let attempt = |url: String, secret: String| {
        let (app, member) = (&app, member.clone());
        async move {
            app.graphql(
                Some(&member.token),
                REGISTER,
                json!({ "t": member.team_id, "url": url, "secret": secret }),
            )
            .await
        }
    };
    let long_url = attempt(format!("https://hooks.example.com/{}", "a".repeat(2048)), SECRET.into()).await;
    assert_eq!(error_code(&long_url), "BAD_USER_INPUT", "{long_url}");
    assert_eq!(long_url["errors"][0]["extensions"]["field"], "url");
    let long_secret = attempt("https://hooks.example.com/a".into(), "s".repeat(1025)).await;
    assert_eq!(error_code(&long_secret), "BAD_USER_INPUT", "{long_secret}");
    assert_eq!(long_secret["errors"][0]["extensions"]["field"], "secret");

    // One request of aliases cannot go past the limit either: the 21st is refused.
    let aliases: Vec<String> = (0..25)
        .map(|i| format!(r#"w{i}: createWebhook(teamId: $t, url: "https://hooks.example.com/{i}", secret: $secret) {{ id }}"#))
        .collect();
    let many = format!("mutation($t: ID!, $secret: String!) {{ {} }}", aliases.join(" "));
    let body =
        app.graphql(Some(&member.token), &many, json!({ "t": member.team_id, "secret": SECRET })).await;
    let created = (0..25).filter(|i| body["data"][format!("w{i}")]["id"].is_string()).count();
    assert_eq!(created, 20, "{body}");
    let errors = body["errors"].as_array().expect("the rest are refused");
    assert_eq!(errors.len(), 5, "{body}");
    assert!(errors.iter().all(|e| e["extensions"]["code"] == "BAD_USER_INPUT"), "{body}");
    assert!(errors[0]["message"].as_str().unwrap().contains("at most 20 webhooks"), "{body}");
    let listed = app
        .ok(
            &member.token,
            "query($t: ID!) { team(id: $t) { webhooks { id } } }",
            json!({ "t": member.team_id }),
        )
        .await;
    let hooks = listed["team"]["webhooks"].as_array().unwrap().clone();
    assert_eq!(hooks.len(), 20);

    // Removing one makes room for one.
    let removed = app
        .ok(
            &member.token,
            "mutation($id: ID!) { deleteWebhook(id: $id) { deletedId } }",
            json!({ "id": hooks[0]["id"] }),
        )
        .await;
    assert!(!removed.is_null());
    let again = attempt("https://hooks.example.com/again".into(), SECRET.into()).await;
    assert!(again["errors"].is_null(), "{again}");
    let full = attempt("https://hooks.example.com/full".into(), SECRET.into()).await;
    assert_eq!(error_code(&full), "BAD_USER_INPUT", "{full}");
}
