//! Losing access ends what is already open: a removed member's, a revoked token's and an expired
//! token's subscriptions end with an error within a second, on every instance.

use std::time::Duration;

use plugboard::domain::TeamRole;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::on_every_database;
use crate::ws::{Protocol, Subscriber};

on_every_database!(
    a_removed_members_subscriptions_end,
    a_revoked_tokens_subscriptions_end,
    an_expiring_tokens_subscriptions_end_when_it_expires,
    a_demoted_member_keeps_reading,
);

/// The change is pushed to subscriptions (milliseconds in practice); the margin is for loaded
/// CI machines.
const PROMPTLY: Duration = Duration::from_secs(2);
const CONNECTIONS: &str = "subscription($t: ID!) { connectionEvents(teamId: $t) { connectionId kind } }";
const ADD: &str = "mutation($t: ID!, $e: String!, $r: TeamRole!) { addTeamMember(teamId: $t, email: $e, role: $r) { userId } }";
const REMOVE: &str =
    "mutation($t: ID!, $u: ID!) { removeTeamMember(teamId: $t, userId: $u) { removedUserId } }";
const CREATE_TOKEN: &str =
    "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token apiToken { id } } }";

async fn subscribed(address: &str, token: &str, team: &str) -> Subscriber {
    let mut subscriber =
        Subscriber::connect(address, "/graphql/ws", Protocol::TransportWs, token).await.expect("connected");
    subscriber.subscribe("s", CONNECTIONS, json!({ "t": team })).await;
    // The subscription is registered once the server has read the message.
    tokio::time::sleep(Duration::from_millis(200)).await;
    subscriber
}

/// The subscription's last words: an error with `code`, then `complete`.
async fn assert_ended(subscriber: &mut Subscriber, code: &str) {
    let message: Value = subscriber.next_data(PROMPTLY).await.expect("the subscription ends within a second");
    assert_eq!(message["errors"][0]["extensions"]["code"], code, "{message}");
    let complete = subscriber.next_data(PROMPTLY).await.expect("then completes");
    assert_eq!(complete["type"], "complete", "{complete}");
}

async fn a_removed_members_subscriptions_end(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let bob =
        app.ok(&admin.token, ADD, json!({ "t": admin.team_id, "e": "bob@acme.test", "r": "MEMBER" })).await;
    let bob_id = bob["addTeamMember"]["userId"].clone();
    let bob_token = app.member_token_for("bob@acme.test").await;
    // Bob also belongs to another team, whose subscription must go on.
    let other = app.member("Globex", "bob@acme.test", TeamRole::Member).await;
    let mut acme = subscribed(&app.address, &bob_token, &admin.team_id).await;
    let mut globex = subscribed(&app.address, &bob_token, &other.team_id).await;

    app.ok(&admin.token, REMOVE, json!({ "t": admin.team_id, "u": bob_id })).await;
    assert_ended(&mut acme, "FORBIDDEN").await;

    let id = app.create_api_key_connection(&other, "Globex key", "sk-g").await;
    let event = globex.next_data(Duration::from_secs(5)).await.expect("the other team's events still arrive");
    assert_eq!(event["data"]["connectionEvents"]["connectionId"], id.as_str(), "{event}");
}

async fn a_revoked_tokens_subscriptions_end(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let created = app
        .ok(
            &admin.token,
            CREATE_TOKEN,
            json!({ "i": { "name": "dashboard", "kind": "SERVICE", "teamId": admin.team_id } }),
        )
        .await;
    let token = created["createApiToken"]["token"].as_str().unwrap().to_owned();
    let id = created["createApiToken"]["apiToken"]["id"].clone();
    let mut revoked = subscribed(&app.address, &token, &admin.team_id).await;
    // The admin's own subscription, with another token, goes on.
    let mut kept = subscribed(&app.address, &admin.token, &admin.team_id).await;

    app.ok(&admin.token, "mutation($id: ID!) { revokeApiToken(id: $id) { id } }", json!({ "id": id })).await;
    assert_ended(&mut revoked, "FORBIDDEN").await;
    app.create_api_key_connection(&admin, "Acme key", "sk-a").await;
    let event = kept.next_data(Duration::from_secs(5)).await.expect("an event");
    assert_eq!(event["data"]["connectionEvents"]["kind"], "CREATED", "{event}");
}

async fn an_expiring_tokens_subscriptions_end_when_it_expires(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1200);
    let created = app
        .ok(
            &admin.token,
            CREATE_TOKEN,
            json!({ "i": { "name": "short", "kind": "USER", "expiresAt": at.to_rfc3339() } }),
        )
        .await;
    let token = created["createApiToken"]["token"].as_str().unwrap().to_owned();
    let mut subscriber = subscribed(&app.address, &token, &admin.team_id).await;
    let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left).await;
    let message = subscriber.next_data(PROMPTLY).await.expect("ends within a second of expiry");
    assert_eq!(message["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{message}");
}

async fn a_demoted_member_keeps_reading(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let bob =
        app.ok(&admin.token, ADD, json!({ "t": admin.team_id, "e": "bob@acme.test", "r": "MEMBER" })).await;
    let bob_token = app.member_token_for("bob@acme.test").await;
    let mut subscriber = subscribed(&app.address, &bob_token, &admin.team_id).await;
    app.ok(
        &admin.token,
        "mutation($t: ID!, $u: ID!) { updateTeamMember(teamId: $t, userId: $u, role: MONITORING) { role } }",
        json!({ "t": admin.team_id, "u": bob["addTeamMember"]["userId"] }),
    )
    .await;
    app.create_api_key_connection(&admin, "Acme key", "sk-a").await;
    let event = subscriber.next_data(Duration::from_secs(5)).await.expect("an event");
    assert_eq!(event["data"]["connectionEvents"]["kind"], "CREATED", "MONITORING still reads: {event}");
}

/// Two instances on one PostgreSQL: removal on one ends the subscription held by the other.
#[tokio::test]
async fn removal_on_one_instance_ends_subscriptions_on_another() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
        return;
    };
    let sibling = app.spawn_sibling().await;
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let bob =
        app.ok(&admin.token, ADD, json!({ "t": admin.team_id, "e": "bob@acme.test", "r": "MEMBER" })).await;
    let bob_token = app.member_token_for("bob@acme.test").await;
    let mut subscriber = subscribed(&sibling.address, &bob_token, &admin.team_id).await;
    app.ok(&admin.token, REMOVE, json!({ "t": admin.team_id, "u": bob["addTeamMember"]["userId"] })).await;
    assert_ended(&mut subscriber, "FORBIDDEN").await;
}
