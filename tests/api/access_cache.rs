//! Callers are recognised from memory, and losing access still takes effect at once: a revoked
//! token is refused on the next request, and with two instances on one PostgreSQL, a change on
//! one is obeyed by the other within a second. Uses are still recorded, in batches.

use std::time::{Duration, Instant};

use plugboard::domain::TeamRole;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, error_code};
use crate::on_every_database;
use crate::token_lifecycle::graphql_at;

on_every_database!(
    a_revoked_token_is_refused_on_the_next_request,
    a_removed_member_is_refused_on_the_next_request,
    token_uses_are_still_recorded,
);

/// How long another instance may take to hear of a change (it takes milliseconds); the margin
/// is for loaded machines. Nothing here asserts a duration.
const ELSEWHERE: Duration = Duration::from_secs(2);
const CREATE_TOKEN: &str =
    "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token apiToken { id } } }";
const REVOKE: &str = "mutation($id: ID!) { revokeApiToken(id: $id) { id } }";
const ADD: &str = "mutation($t: ID!, $e: String!, $r: TeamRole!) { addTeamMember(teamId: $t, email: $e, role: $r) { userId } }";
const UPDATE: &str = "mutation($t: ID!, $u: ID!, $r: TeamRole!) { updateTeamMember(teamId: $t, userId: $u, role: $r) { role } }";
const REMOVE: &str =
    "mutation($t: ID!, $u: ID!) { removeTeamMember(teamId: $t, userId: $u) { removedUserId } }";
const TEAM: &str = "query($t: ID!) { team(id: $t) { id connections { totalCount } } }";
const VIEWER: &str = "{ viewer { kind } }";

/// A new service token of the admin's team: its secret and its id.
async fn service_token(app: &TestApp, admin: &crate::helpers::Member) -> (String, Value) {
    let created = app
        .ok(
            &admin.token,
            CREATE_TOKEN,
            json!({ "i": { "name": "runner", "kind": "SERVICE", "teamId": admin.team_id } }),
        )
        .await;
    let token = created["createApiToken"]["token"].as_str().unwrap().to_owned();
    (token, created["createApiToken"]["apiToken"]["id"].clone())
}

/// A proxied call through `connection` with `token`; answers its status.
async fn proxied(address: &str, token: &str, connection: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{address}/proxy/models"))
        .bearer_auth(token)
        .header("Plugboard-Connection", connection)
        .send()
        .await
        .expect("the app answers")
        .status()
        .as_u16()
}

/// Polls `check` until it holds, for up to `ELSEWHERE`; answers whether it did.
async fn within_a_moment<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + ELSEWHERE;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_revoked_token_is_refused_on_the_next_request(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let connection = app.create_api_key_connection(&admin, "OpenAI", "sk-live").await;
    let (runner, id) = service_token(&app, &admin).await;
    // Used often enough to be recognised from memory, through GraphQL and the proxy.
    for _ in 0..3 {
        app.ok(&runner, VIEWER, json!({})).await;
        assert_eq!(proxied(&app.address, &runner, &connection).await, 200);
    }
    app.ok(&admin.token, REVOKE, json!({ "id": id })).await;
    let body = app.graphql(Some(&runner), VIEWER, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(proxied(&app.address, &runner, &connection).await, 401);
    // The admin's own token, cached as well, goes on working.
    app.ok(&admin.token, VIEWER, json!({})).await;
}

async fn a_removed_member_is_refused_on_the_next_request(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let bob =
        app.ok(&admin.token, ADD, json!({ "t": admin.team_id, "e": "bob@acme.test", "r": "MEMBER" })).await;
    let bob_id = bob["addTeamMember"]["userId"].clone();
    let bob_token = app.member_token_for("bob@acme.test").await;
    let connection = app.create_api_key_connection(&admin, "OpenAI", "sk-live").await;
    let team = json!({ "t": admin.team_id });
    for _ in 0..3 {
        assert_eq!(app.ok(&bob_token, TEAM, team.clone()).await["team"]["id"], admin.team_id.as_str());
        assert_eq!(proxied(&app.address, &bob_token, &connection).await, 200);
    }
    app.ok(&admin.token, UPDATE, json!({ "t": admin.team_id, "u": bob_id, "r": "MONITORING" })).await;
    assert_eq!(proxied(&app.address, &bob_token, &connection).await, 403, "a reader may not call apps");
    assert_eq!(app.ok(&bob_token, TEAM, team.clone()).await["team"]["id"], admin.team_id.as_str());

    app.ok(&admin.token, REMOVE, json!({ "t": admin.team_id, "u": bob_id })).await;
    assert_eq!(app.ok(&bob_token, TEAM, team).await["team"], Value::Null);
    assert_eq!(proxied(&app.address, &bob_token, &connection).await, 404);
}

async fn token_uses_are_still_recorded(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let (runner, id) = service_token(&app, &admin).await;
    let tokens = "query($t: ID!) { team(id: $t) { serviceTokens { id lastUsedAt } } }";
    let last_used = || async {
        let data = app.ok(&admin.token, tokens, json!({ "t": admin.team_id })).await;
        let listed = data["team"]["serviceTokens"].as_array().unwrap().clone();
        listed.into_iter().find(|t| t["id"] == id).expect("the token is listed")["lastUsedAt"].clone()
    };
    assert_eq!(last_used().await, Value::Null, "never used yet");
    app.ok(&runner, VIEWER, json!({})).await;
    // Written by a background flush, about a second later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while last_used().await.is_null() {
        assert!(Instant::now() < deadline, "the use was never recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recorded: chrono::DateTime<chrono::Utc> = last_used().await.as_str().unwrap().parse().unwrap();
    assert!(chrono::Utc::now() - recorded < chrono::Duration::minutes(1), "{recorded}");
}

/// Two instances on one PostgreSQL (SQLite serves one instance: its events stay in process).
async fn two_instances() -> Option<(TestApp, crate::helpers::Sibling)> {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
        return None;
    };
    let sibling = app.spawn_sibling().await;
    Some((app, sibling))
}

#[tokio::test]
async fn a_token_revoked_on_one_instance_is_refused_by_the_other() {
    let Some((app, sibling)) = two_instances().await else { return };
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let connection = app.create_api_key_connection(&admin, "OpenAI", "sk-live").await;
    let (runner, id) = service_token(&app, &admin).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let body = graphql_at(&client, &sibling.address, &runner, VIEWER, json!({})).await;
        assert_eq!(body["data"]["viewer"]["kind"], "SERVICE", "{body}");
        assert_eq!(proxied(&sibling.address, &runner, &connection).await, 200);
    }
    app.ok(&admin.token, REVOKE, json!({ "id": id })).await;
    let refused = within_a_moment(|| async {
        let body = graphql_at(&client, &sibling.address, &runner, VIEWER, json!({})).await;
        body.get("errors").is_some() && error_code(&body) == "UNAUTHENTICATED"
    })
    .await;
    assert!(refused, "the other instance still accepts the revoked token");
    assert_eq!(proxied(&sibling.address, &runner, &connection).await, 401);
}

#[tokio::test]
async fn a_member_demoted_or_removed_on_one_instance_loses_access_on_the_other() {
    let Some((app, sibling)) = two_instances().await else { return };
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let bob =
        app.ok(&admin.token, ADD, json!({ "t": admin.team_id, "e": "bob@acme.test", "r": "MEMBER" })).await;
    let bob_id = bob["addTeamMember"]["userId"].clone();
    let bob_token = app.member_token_for("bob@acme.test").await;
    let connection = app.create_api_key_connection(&admin, "OpenAI", "sk-live").await;
    let client = reqwest::Client::new();
    let team = json!({ "t": admin.team_id });
    for _ in 0..3 {
        let body = graphql_at(&client, &sibling.address, &bob_token, TEAM, team.clone()).await;
        assert_eq!(body["data"]["team"]["id"], admin.team_id.as_str(), "{body}");
        assert_eq!(proxied(&sibling.address, &bob_token, &connection).await, 200);
    }

    app.ok(&admin.token, UPDATE, json!({ "t": admin.team_id, "u": bob_id, "r": "MONITORING" })).await;
    let demoted =
        within_a_moment(|| async { proxied(&sibling.address, &bob_token, &connection).await == 403 }).await;
    assert!(demoted, "the other instance still lets a reader call apps");

    app.ok(&admin.token, REMOVE, json!({ "t": admin.team_id, "u": bob_id })).await;
    let removed = within_a_moment(|| async {
        let body = graphql_at(&client, &sibling.address, &bob_token, TEAM, team.clone()).await;
        body["data"]["team"].is_null()
    })
    .await;
    assert!(removed, "the other instance still shows the team to a removed member");
    assert_eq!(proxied(&sibling.address, &bob_token, &connection).await, 404);
}
