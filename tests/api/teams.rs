//! Teams, members and API tokens over GraphQL: only ADMINs manage members and service tokens, a
//! team keeps an ADMIN, tokens expire and revoke at once, and the CLI goes through the same code.

use std::time::Duration;

use plugboard::domain::TeamRole;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};
use crate::on_every_database;

on_every_database!(
    creating_a_team_makes_the_caller_its_admin,
    admins_manage_members_and_others_cannot,
    a_team_always_keeps_an_admin,
    two_admins_demoting_each_other_leave_one_admin,
    tokens_are_shown_once_listed_and_revoked_at_once,
    service_tokens_are_managed_by_admins_only,
    tokens_expire,
    member_and_token_changes_are_audited,
    a_new_person_added_to_two_teams_at_once_is_one_user,
);

const CREATE_TEAM: &str = "mutation($n: String!) { createTeam(name: $n) { id name role } }";
const ADD: &str = "mutation($t: ID!, $e: String!, $r: TeamRole!) {
  addTeamMember(teamId: $t, email: $e, role: $r) { userId email role since } }";
const UPDATE: &str = "mutation($t: ID!, $u: ID!, $r: TeamRole!) {
  updateTeamMember(teamId: $t, userId: $u, role: $r) { userId email role } }";
const REMOVE: &str =
    "mutation($t: ID!, $u: ID!) { removeTeamMember(teamId: $t, userId: $u) { teamId removedUserId } }";
const MEMBERS: &str = "query($t: ID!) { team(id: $t) { members { userId email role } } }";
const CREATE_TOKEN: &str = "mutation($i: CreateApiTokenInput!) {
  createApiToken(input: $i) { token apiToken { id name kind prefix teamId createdAt lastUsedAt expiresAt } } }";
const REVOKE: &str = "mutation($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }";
const VIEWER: &str = "{ viewer { kind email apiTokens { id name kind prefix expiresAt } } }";

fn field(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["field"].as_str()
}

/// Adds `email` to the team as `role` through the API and answers the new member's token.
async fn add_with_token(app: &TestApp, admin: &str, team: &str, email: &str, role: &str) -> (String, String) {
    let data = app.ok(admin, ADD, json!({ "t": team, "e": email, "r": role })).await;
    let user_id = data["addTeamMember"]["userId"].as_str().unwrap().to_owned();
    let token = app.member_token_for(email).await;
    (user_id, token)
}

async fn creating_a_team_makes_the_caller_its_admin(app: TestApp) {
    let ana = app.member("Acme", "ana@acme.test", TeamRole::Monitoring).await;
    let data = app.ok(&ana.token, CREATE_TEAM, json!({ "n": "  Platform  " })).await;
    assert_eq!(data["createTeam"]["name"], "Platform");
    assert_eq!(data["createTeam"]["role"], "ADMIN");
    let teams = app.ok(&ana.token, "{ viewer { teams { name role } } }", json!({})).await;
    assert_eq!(
        teams["viewer"]["teams"],
        json!([{ "name": "Acme", "role": "MONITORING" }, { "name": "Platform", "role": "ADMIN" }])
    );

    for name in ["Platform", "acme ", "", &"x".repeat(101)] {
        let body = app.graphql(Some(&ana.token), CREATE_TEAM, json!({ "n": name })).await;
        if name.trim() == "acme" {
            // Names are unique as spelled; a different case is another team.
            assert!(body.get("errors").is_none(), "{body}");
            continue;
        }
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name:?}: {body}");
        assert_eq!(field(&body), Some("name"));
    }
    let service = app.service_token("Acme").await;
    let body = app.graphql(Some(&service), CREATE_TEAM, json!({ "n": "By a runner" })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app.graphql(None, CREATE_TEAM, json!({ "n": "Anonymous" })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

async fn admins_manage_members_and_others_cannot(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let other = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    let team = admin.team_id.as_str();

    let added = app.ok(&admin.token, ADD, json!({ "t": team, "e": "Bob@Acme.test", "r": "MEMBER" })).await;
    assert_eq!(added["addTeamMember"]["email"], "bob@acme.test");
    assert_eq!(added["addTeamMember"]["role"], "MEMBER");
    let bob_id = added["addTeamMember"]["userId"].as_str().unwrap().to_owned();
    // An existing user (Globex's admin) joins a second team.
    let hank =
        app.ok(&admin.token, ADD, json!({ "t": team, "e": "hank@globex.test", "r": "MONITORING" })).await;
    let hank_id = hank["addTeamMember"]["userId"].as_str().unwrap().to_owned();
    let hank_teams = app.ok(&other.token, "{ viewer { teams { name role } } }", json!({})).await;
    assert_eq!(hank_teams["viewer"]["teams"][0], json!({ "name": "Acme", "role": "MONITORING" }));

    let members = app.ok(&admin.token, MEMBERS, json!({ "t": team })).await;
    let emails: Vec<&str> =
        members["team"]["members"].as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["ana@acme.test", "bob@acme.test", "hank@globex.test"]);

    let updated = app.ok(&admin.token, UPDATE, json!({ "t": team, "u": bob_id, "r": "ADMIN" })).await;
    assert_eq!(updated["updateTeamMember"]["role"], "ADMIN");

    // Bad input changes nothing.
    for (query, vars, code, field_name) in [
        (ADD, json!({ "t": team, "e": "not-an-email", "r": "MEMBER" }), "BAD_USER_INPUT", Some("email")),
        (ADD, json!({ "t": team, "e": "bob@acme.test", "r": "MEMBER" }), "BAD_USER_INPUT", Some("email")),
        (ADD, json!({ "t": team, "e": "zed@acme.test", "r": "SERVICE" }), "BAD_USER_INPUT", Some("role")),
        (
            ADD,
            json!({ "t": "not-a-uuid", "e": "zed@acme.test", "r": "MEMBER" }),
            "BAD_USER_INPUT",
            Some("teamId"),
        ),
        (
            UPDATE,
            json!({ "t": team, "u": uuid::Uuid::new_v4().to_string(), "r": "MEMBER" }),
            "NOT_FOUND",
            None,
        ),
        (REMOVE, json!({ "t": team, "u": uuid::Uuid::new_v4().to_string() }), "NOT_FOUND", None),
        // Another team's id answers like a missing one.
        (ADD, json!({ "t": other.team_id, "e": "spy@acme.test", "r": "ADMIN" }), "NOT_FOUND", None),
    ] {
        let body = app.graphql(Some(&admin.token), query, vars.clone()).await;
        assert_eq!(error_code(&body), code, "{vars}: {body}");
        if let Some(name) = field_name {
            assert_eq!(field(&body), Some(name), "{body}");
        }
    }
    // Hank is a MONITORING member of Acme: he may read members, not change them.
    let body = app.graphql(Some(&other.token), MEMBERS, json!({ "t": team })).await;
    assert_eq!(body["data"]["team"]["members"].as_array().unwrap().len(), 3);
    for (query, vars) in [
        (ADD, json!({ "t": team, "e": "eve@acme.test", "r": "ADMIN" })),
        (UPDATE, json!({ "t": team, "u": hank_id, "r": "ADMIN" })),
        (REMOVE, json!({ "t": team, "u": bob_id })),
    ] {
        let body = app.graphql(Some(&other.token), query, vars).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    let service = app.service_token("Acme").await;
    let body =
        app.graphql(Some(&service), ADD, json!({ "t": team, "e": "eve@acme.test", "r": "ADMIN" })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");

    let removed = app.ok(&admin.token, REMOVE, json!({ "t": team, "u": hank_id })).await;
    assert_eq!(removed["removeTeamMember"]["removedUserId"], hank_id.as_str());
    let body = app.graphql(Some(&other.token), MEMBERS, json!({ "t": team })).await;
    assert!(body["data"]["team"].is_null(), "a removed member no longer sees the team: {body}");
    let members = app.ok(&admin.token, MEMBERS, json!({ "t": team })).await;
    assert_eq!(members["team"]["members"].as_array().unwrap().len(), 2);
}

async fn a_team_always_keeps_an_admin(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let team = admin.team_id.as_str();
    let me = app.ok(&admin.token, "{ viewer { userId } }", json!({})).await["viewer"]["userId"].clone();
    app.ok(&admin.token, ADD, json!({ "t": team, "e": "bob@acme.test", "r": "MEMBER" })).await;

    let body = app.graphql(Some(&admin.token), UPDATE, json!({ "t": team, "u": me, "r": "MEMBER" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = app.graphql(Some(&admin.token), REMOVE, json!({ "t": team, "u": me })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let members = app.ok(&admin.token, MEMBERS, json!({ "t": team })).await;
    assert_eq!(
        members["team"]["members"][0],
        json!({ "userId": me, "email": "ana@acme.test", "role": "ADMIN" })
    );
}

async fn two_admins_demoting_each_other_leave_one_admin(app: TestApp) {
    let ana = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let bob = app.member("Acme", "bob@acme.test", TeamRole::Admin).await;
    let team = ana.team_id.as_str();
    let id_of = async |token: &str| {
        app.ok(token, "{ viewer { userId } }", json!({})).await["viewer"]["userId"].clone()
    };
    let (ana_id, bob_id) = (id_of(&ana.token).await, id_of(&bob.token).await);
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            app.graphql(Some(&ana.token), UPDATE, json!({ "t": team, "u": bob_id, "r": "MEMBER" })),
            app.graphql(Some(&bob.token), UPDATE, json!({ "t": team, "u": ana_id, "r": "MEMBER" })),
        );
        let succeeded = [&a, &b].iter().filter(|body| body.get("errors").is_none()).count();
        assert_eq!(succeeded, 1, "exactly one demotion goes through: {a} {b}");
        // Refused as the last ADMIN, or as no longer an ADMIN once the other went first.
        let refused = if a.get("errors").is_some() { &a } else { &b };
        assert!(["BAD_USER_INPUT", "FORBIDDEN"].contains(&error_code(refused).as_str()), "{refused}");
        let members = app.ok(&ana.token, MEMBERS, json!({ "t": team })).await;
        let admins =
            members["team"]["members"].as_array().unwrap().iter().filter(|m| m["role"] == "ADMIN").count();
        assert_eq!(admins, 1, "{members}");
        // Make both admins again for the next round, as whoever is admin.
        for token in [&ana.token, &bob.token] {
            for id in [&ana_id, &bob_id] {
                app.graphql(Some(token), UPDATE, json!({ "t": team, "u": id, "r": "ADMIN" })).await;
            }
        }
    }
}

async fn tokens_are_shown_once_listed_and_revoked_at_once(app: TestApp) {
    let ana = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    let created =
        app.ok(&ana.token, CREATE_TOKEN, json!({ "i": { "name": "laptop", "kind": "USER" } })).await;
    let new_token = created["createApiToken"]["token"].as_str().unwrap().to_owned();
    let listed = &created["createApiToken"]["apiToken"];
    assert_eq!(listed["kind"], "USER");
    assert!(listed["teamId"].is_null());
    assert!(new_token.starts_with(listed["prefix"].as_str().unwrap()));

    let viewer = app.ok(&new_token, VIEWER, json!({})).await;
    assert_eq!(viewer["viewer"]["email"], "ana@acme.test");
    let tokens = viewer["viewer"]["apiTokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "the bootstrap token and the new one: {tokens:?}");
    assert!(!viewer.to_string().contains(&new_token), "the value is never listed");

    // Another person cannot revoke Ana's token: it answers like a missing one.
    let bob = app.member("Globex", "bob@globex.test", TeamRole::Admin).await;
    let id = listed["id"].as_str().unwrap();
    let body = app.graphql(Some(&bob.token), REVOKE, json!({ "id": id })).await;
    assert_eq!(error_code(&body), "NOT_FOUND");

    let revoked = app.ok(&ana.token, REVOKE, json!({ "id": id })).await;
    assert!(revoked["revokeApiToken"]["revokedAt"].is_string());
    let body = app.graphql(Some(&new_token), VIEWER, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "refused at once: {body}");
    let sibling = app.spawn_sibling().await;
    let body: Value = app
        .client
        .post(format!("{}/graphql", sibling.address))
        .bearer_auth(&new_token)
        .json(&json!({ "query": VIEWER }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "and on every instance: {body}");
    let viewer = app.ok(&ana.token, VIEWER, json!({})).await;
    assert_eq!(viewer["viewer"]["apiTokens"].as_array().unwrap().len(), 1);

    for (input, field_name) in [
        (json!({ "name": " ", "kind": "USER" }), "name"),
        (json!({ "name": "x", "kind": "USER", "teamId": ana.team_id }), "teamId"),
        (json!({ "name": "x", "kind": "SERVICE" }), "teamId"),
        (json!({ "name": "x", "kind": "USER", "expiresAt": "2020-01-01T00:00:00Z" }), "expiresAt"),
    ] {
        let body = app.graphql(Some(&ana.token), CREATE_TOKEN, json!({ "i": input })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(field(&body), Some(field_name), "{body}");
    }
}

async fn service_tokens_are_managed_by_admins_only(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let (_, member) = add_with_token(&app, &admin.token, &admin.team_id, "bob@acme.test", "MEMBER").await;
    let other = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    let input = json!({ "i": { "name": "runner", "kind": "SERVICE", "teamId": admin.team_id } });

    let body = app.graphql(Some(&member), CREATE_TOKEN, input.clone()).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = app.graphql(Some(&other.token), CREATE_TOKEN, input.clone()).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    let created = app.ok(&admin.token, CREATE_TOKEN, input).await;
    let runner = created["createApiToken"]["token"].as_str().unwrap().to_owned();
    assert!(runner.starts_with("pbs_"));
    assert_eq!(created["createApiToken"]["apiToken"]["teamId"], admin.team_id.as_str());
    let viewer = app.ok(&runner, "{ viewer { kind teams { name role } apiTokens { id } } }", json!({})).await;
    assert_eq!(viewer["viewer"]["kind"], "SERVICE");
    assert_eq!(viewer["viewer"]["teams"], json!([{ "name": "Acme", "role": "SERVICE" }]));

    let list = "query($t: ID!) { team(id: $t) { serviceTokens { id name prefix } } }";
    let listed = app.ok(&admin.token, list, json!({ "t": admin.team_id })).await;
    assert_eq!(listed["team"]["serviceTokens"].as_array().unwrap().len(), 1);
    let body = app.graphql(Some(&member), list, json!({ "t": admin.team_id })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");

    let id = listed["team"]["serviceTokens"][0]["id"].clone();
    let body = app.graphql(Some(&member), REVOKE, json!({ "id": id })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app.graphql(Some(&other.token), REVOKE, json!({ "id": id })).await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    app.ok(&admin.token, REVOKE, json!({ "id": id })).await;
    let body = app.graphql(Some(&runner), "{ viewer { kind } }", json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

async fn tokens_expire(app: TestApp) {
    let ana = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let created = app
        .ok(&ana.token, CREATE_TOKEN, json!({ "i": { "name": "short", "kind": "USER", "expiresAt": soon } }))
        .await;
    let token = created["createApiToken"]["token"].as_str().unwrap().to_owned();
    assert!(created["createApiToken"]["apiToken"]["expiresAt"].is_string());
    app.ok(&token, "{ viewer { email } }", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let body = app.graphql(Some(&token), "{ viewer { email } }", json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

async fn member_and_token_changes_are_audited(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let team = admin.team_id.as_str();
    let bob = app.ok(&admin.token, ADD, json!({ "t": team, "e": "bob@acme.test", "r": "MEMBER" })).await;
    let bob_id = bob["addTeamMember"]["userId"].clone();
    app.ok(&admin.token, UPDATE, json!({ "t": team, "u": bob_id, "r": "MONITORING" })).await;
    app.ok(&admin.token, REMOVE, json!({ "t": team, "u": bob_id })).await;
    let created = app
        .ok(
            &admin.token,
            CREATE_TOKEN,
            json!({ "i": { "name": "runner", "kind": "SERVICE", "teamId": team } }),
        )
        .await;
    let secret = created["createApiToken"]["token"].as_str().unwrap().to_owned();
    app.ok(&admin.token, REVOKE, json!({ "id": created["createApiToken"]["apiToken"]["id"] })).await;
    // The command line goes through the same code.
    app.service_token("Acme").await;

    let trail = app
        .ok(
            &admin.token,
            "query($t: ID!) { team(id: $t) { auditEvents(first: 20) { edges { node { action actor { kind label } detail } } } } }",
            json!({ "t": team }),
        )
        .await;
    let actions: Vec<(String, String)> = trail["team"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["action"].as_str().unwrap().to_owned(),
                e["node"]["actor"]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("SERVICE_TOKEN_CREATED", "SYSTEM"),
        ("SERVICE_TOKEN_REVOKED", "USER"),
        ("SERVICE_TOKEN_CREATED", "USER"),
        ("MEMBER_REMOVED", "USER"),
        ("MEMBER_ROLE_CHANGED", "USER"),
        ("MEMBER_ADDED", "USER"),
        ("MEMBER_ADDED", "SYSTEM"),
    ]
    .iter()
    .map(|(a, k)| (a.to_string(), k.to_string()))
    .collect();
    assert_eq!(actions, expected);
    assert!(!trail.to_string().contains(&secret), "never a token's value");
    let changed = &trail["team"]["auditEvents"]["edges"][4]["node"]["detail"];
    assert_eq!(
        (changed["previous_role"].as_str(), changed["role"].as_str()),
        (Some("MEMBER"), Some("MONITORING"))
    );
}

async fn a_new_person_added_to_two_teams_at_once_is_one_user(app: TestApp) {
    let acme = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let globex = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    let (a, b) = tokio::join!(
        app.graphql(
            Some(&acme.token),
            ADD,
            json!({ "t": acme.team_id, "e": "new@example.com", "r": "MEMBER" })
        ),
        app.graphql(
            Some(&globex.token),
            ADD,
            json!({ "t": globex.team_id, "e": "new@example.com", "r": "ADMIN" })
        ),
    );
    assert!(a.get("errors").is_none() && b.get("errors").is_none(), "{a} {b}");
    assert_eq!(a["data"]["addTeamMember"]["userId"], b["data"]["addTeamMember"]["userId"]);
    let token = app.member_token_for("new@example.com").await;
    let teams = app.ok(&token, "{ viewer { teams { name role } } }", json!({})).await;
    assert_eq!(
        teams["viewer"]["teams"],
        json!([{ "name": "Acme", "role": "MEMBER" }, { "name": "Globex", "role": "ADMIN" }])
    );
}
