//! Live events over a real WebSocket.

use std::time::Duration;

use plugboard::domain::TeamRole;
use serde_json::json;

use crate::helpers::{Backend, EDIT_CONNECTION, TestApp, events_settled, wait_for_subscriber};
use crate::on_every_database;
use crate::ws::{Protocol, Subscriber};

on_every_database!(
    a_manual_verify_streams_started_then_finished,
    connection_changes_stream_their_kind_and_status,
    every_subscription_of_a_revoked_token_ends_and_other_callers_go_on
);

const WAIT: Duration = Duration::from_secs(5);
const VERIFICATIONS: &str = "subscription($t: ID!) { verificationEvents(teamId: $t) { connectionId phase verification { outcome message } } }";
const CONNECTIONS: &str =
    "subscription($t: ID!) { connectionEvents(teamId: $t) { connectionId kind status previousStatus } }";
const VERIFY: &str = "mutation($id: ID!) { verifyConnection(id: $id) { outcome } }";
const CREATE_TOKEN: &str =
    "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token apiToken { id } } }";

async fn a_manual_verify_streams_started_then_finished(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let id = app.create_api_key_connection(&member, "OpenAI", "sk-live").await;
    events_settled(&app.state).await;
    for (protocol, path) in [(Protocol::TransportWs, "/graphql/ws"), (Protocol::Legacy, "/graphql")] {
        let mut subscriber = Subscriber::connect(&app.address, path, protocol, &member.token).await.unwrap();
        subscriber.subscribe("1", VERIFICATIONS, json!({ "t": member.team_id })).await;
        wait_for_subscriber(&app.state, 0).await;
        app.ok(&member.token, VERIFY, json!({ "id": id })).await;

        // The create's own check may still be on its way (events leave after the commit).
        let started = loop {
            let event = subscriber.next_data(WAIT).await.expect("STARTED arrives");
            if event["data"]["verificationEvents"]["phase"] == "STARTED" {
                break event;
            }
        };
        assert_eq!(started["data"]["verificationEvents"]["connectionId"], id.as_str());
        assert!(started["data"]["verificationEvents"]["verification"].is_null());
        let finished = subscriber.next_data(WAIT).await.expect("FINISHED arrives");
        assert_eq!(finished["data"]["verificationEvents"]["phase"], "FINISHED", "{protocol:?}");
        assert_eq!(finished["data"]["verificationEvents"]["verification"]["outcome"], "OK");
        drop(subscriber);
        let deadline = std::time::Instant::now() + WAIT;
        while app.state.events.subscribers() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn connection_changes_stream_their_kind_and_status(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let mut subscriber =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &member.token).await.unwrap();
    subscriber.subscribe("c", CONNECTIONS, json!({ "t": member.team_id })).await;
    wait_for_subscriber(&app.state, 0).await;

    let id = app.create_api_key_connection(&member, "OpenAI", "sk-live").await;
    let mut next =
        async || subscriber.next_data(WAIT).await.expect("an event")["data"]["connectionEvents"].clone();
    let created = next().await;
    assert_eq!(created["kind"], "CREATED");
    assert_eq!(created["connectionId"], id.as_str());
    let changed = next().await;
    assert_eq!(changed["kind"], "STATUS_CHANGED");
    assert_eq!(
        (changed["previousStatus"].as_str(), changed["status"].as_str()),
        (Some("UNVERIFIED"), Some("ACTIVE"))
    );

    app.ok(
        &member.token,
        EDIT_CONNECTION,
        json!({ "id": id, "input": { "fields": { "api_key": "sk-new" } } }),
    )
    .await;
    let updated = next().await;
    assert_eq!(updated["kind"], "UPDATED");
    assert_eq!(updated["status"], "ACTIVE");

    app.ok(
        &member.token,
        "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }",
        json!({ "id": id }),
    )
    .await;
    let deleted = next().await;
    assert_eq!(deleted["kind"], "DELETED");
    assert!(deleted["status"].is_null());
    assert_eq!(deleted["previousStatus"], "ACTIVE");
}

/// The subscriptions of one token and team re-check their access together, once: every one of
/// them must still end, on every socket, and a subscription of the same team under another
/// token must not.
async fn every_subscription_of_a_revoked_token_ends_and_other_callers_go_on(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let created = app
        .ok(
            &admin.token,
            CREATE_TOKEN,
            json!({ "i": { "name": "wall", "kind": "SERVICE", "teamId": admin.team_id } }),
        )
        .await;
    let token = created["createApiToken"]["token"].as_str().unwrap().to_owned();
    let team = json!({ "t": admin.team_id });
    let before = app.state.events.subscribers();
    let connect = async |token: &str| {
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, token).await.unwrap()
    };
    let mut both = connect(&token).await;
    both.subscribe("v", VERIFICATIONS, team.clone()).await;
    both.subscribe("c", CONNECTIONS, team.clone()).await;
    let mut one = connect(&token).await;
    one.subscribe("c", CONNECTIONS, team.clone()).await;
    let mut kept = connect(&admin.token).await;
    kept.subscribe("c", CONNECTIONS, team.clone()).await;
    wait_for_subscriber(&app.state, before + 3).await;

    let id = created["createApiToken"]["apiToken"]["id"].clone();
    app.ok(&admin.token, "mutation($id: ID!) { revokeApiToken(id: $id) { id } }", json!({ "id": id })).await;
    for (subscriber, ids) in [(&mut both, vec!["v", "c"]), (&mut one, vec!["c"])] {
        let mut open = ids.clone();
        while !open.is_empty() {
            let message = tokio::time::timeout(WAIT, subscriber.next_message())
                .await
                .expect("the subscription ends")
                .expect("the socket stays open");
            let subscription = message["id"].as_str().expect("a subscription's message").to_owned();
            match message["type"].as_str() {
                Some("next") => {
                    assert_eq!(
                        message["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
                        "{message}"
                    )
                }
                Some("complete") => open.retain(|id| *id != subscription),
                _ => panic!("unexpected {message}"),
            }
        }
    }

    let created = app.create_api_key_connection(&admin, "Acme key", "sk-a").await;
    let event = kept.next_data(WAIT).await.expect("the other token's subscription goes on");
    assert_eq!(event["data"]["connectionEvents"]["connectionId"], created.as_str(), "{event}");
}

#[tokio::test]
async fn a_subscriber_never_receives_another_teams_events() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let acme = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let globex = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    let mut subscriber =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &globex.token).await.unwrap();
    subscriber.subscribe("g", CONNECTIONS, json!({ "t": globex.team_id })).await;
    wait_for_subscriber(&app.state, 0).await;

    let acme_id = app.create_api_key_connection(&acme, "Acme key", "sk-a").await;
    app.ok(&acme.token, VERIFY, json!({ "id": acme_id })).await;
    let globex_id = app.create_api_key_connection(&globex, "Globex key", "sk-g").await;
    let first = subscriber.next_data(WAIT).await.expect("Globex's own event arrives");
    assert_eq!(first["data"]["connectionEvents"]["connectionId"], globex_id.as_str(), "{first}");

    // Asking for another team's events is refused like any foreign object.
    subscriber.subscribe("a", CONNECTIONS, json!({ "t": acme.team_id })).await;
    let refused = loop {
        let message = subscriber.next_message().await.expect("an answer");
        if message["id"] == "a" {
            break message;
        }
    };
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{refused}");
    assert!(refused["payload"]["data"].is_null());
}

#[tokio::test]
async fn an_invalid_token_in_connection_init_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let refused =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, "pbu_not-a-real-token").await;
    let message = refused.err().expect("no ack");
    assert_eq!(message["type"], "closed", "the socket closes without an ack: {message}");
}

#[tokio::test]
async fn a_refused_connection_init_says_why_with_a_code_on_the_legacy_protocol() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let refused =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::Legacy, "pbu_not-a-real-token").await;
    let message = refused.err().expect("no ack");
    assert_eq!(message["type"], "connection_error", "{message}");
    // The protocol carries only a message here, so the code leads it.
    let text = message["payload"]["message"].as_str().unwrap();
    assert!(text.starts_with("UNAUTHENTICATED: ") && text.contains("connection_init"), "{message}");
}

/// PostgreSQL refuses a notification of 8,000 bytes or more, and used to refuse with it every
/// other event of the same statement: those were deleted from the outbox all the same.
#[tokio::test]
async fn an_event_too_large_for_postgres_does_not_take_the_others_with_it() {
    use plugboard::domain::{ConnectionId, TeamId, Verification, VerificationOutcome};
    use plugboard::events::VerificationEvent;

    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let large = app.create_api_key_connection(&member, "Large", "sk-large").await;
    let small = app.create_api_key_connection(&member, "Small", "sk-small").await;
    events_settled(&app.state).await;
    let mut subscriber =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &member.token).await.unwrap();
    let before = app.state.events.subscribers();
    subscriber.subscribe("1", VERIFICATIONS, json!({ "t": member.team_id })).await;
    wait_for_subscriber(&app.state, before).await;

    let team: TeamId = member.team_id.parse().unwrap();
    let check = Verification::noted(VerificationOutcome::ProviderUnavailable, "x".repeat(9000));
    let encoded = [
        serde_json::to_string(&VerificationEvent::finished(
            team,
            large.parse::<ConnectionId>().unwrap(),
            &check,
        ))
        .unwrap(),
        serde_json::to_string(&VerificationEvent::started(team, small.parse::<ConnectionId>().unwrap()))
            .unwrap(),
    ];
    let payloads: Vec<&str> = encoded.iter().map(String::as_str).collect();
    assert!(app.state.events.publish_staged(&payloads).await, "the small event went out");

    let mut heard = Vec::new();
    while let Some(event) = subscriber.next_data(WAIT).await {
        heard.push(event["data"]["verificationEvents"]["connectionId"].as_str().unwrap().to_owned());
        if heard.len() == 2 {
            break;
        }
    }
    heard.sort();
    let mut expected = vec![large, small];
    expected.sort();
    assert_eq!(
        heard, expected,
        "the small event through PostgreSQL, the large one to this instance's subscribers"
    );
}
