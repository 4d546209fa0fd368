use plugboard::domain::TeamRole;
use serde_json::json;

use crate::helpers::{CREATE_CONNECTION, EDIT_CONNECTION, TestApp, error_code};
use crate::on_every_database;

on_every_database!(
    requests_without_a_valid_token_are_unauthenticated,
    monitoring_members_read_but_cannot_change,
    another_teams_objects_are_indistinguishable_from_missing_ones,
    service_tokens_read_their_team_only_and_cannot_change_connections,
    viewer_lists_the_users_teams_and_roles,
);

async fn requests_without_a_valid_token_are_unauthenticated(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let fake = format!("pbu_{}", "A".repeat(43));
    for token in [None, Some("garbage"), Some(fake.as_str())] {
        let body = app.graphql(token, "{ viewer { email } }", json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "token {token:?}");
    }
    let body = app
        .graphql(
            None,
            CREATE_CONNECTION,
            json!({ "input": {
            "teamId": member.team_id, "app": "openai", "name": "x", "fields": { "api_key": "sk-abc" } } }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let count = app
        .ok(
            &member.token,
            "query($t: ID!) { team(id: $t) { connections { totalCount } } }",
            json!({ "t": member.team_id }),
        )
        .await;
    assert_eq!(count["team"]["connections"]["totalCount"], 0, "nothing was created");
}

async fn monitoring_members_read_but_cannot_change(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let watcher = app.member("Acme", "mo@acme.test", TeamRole::Monitoring).await;
    let id = app.create_api_key_connection(&admin, "OpenAI", "sk-admin-key").await;

    let read =
        app.ok(&watcher.token, "query($id: ID!) { connection(id: $id) { name } }", json!({ "id": id })).await;
    assert_eq!(read["connection"]["name"], "OpenAI");

    let create = app
        .graphql(
            Some(&watcher.token),
            CREATE_CONNECTION,
            json!({ "input": {
            "teamId": watcher.team_id, "app": "openai", "name": "Mine", "fields": { "api_key": "sk-x" } } }),
        )
        .await;
    assert_eq!(error_code(&create), "FORBIDDEN");
    let edit = app
        .graphql(
            Some(&watcher.token),
            EDIT_CONNECTION,
            json!({ "id": id, "input": { "fields": { "api_key": "sk-y" } } }),
        )
        .await;
    assert_eq!(error_code(&edit), "FORBIDDEN");
    let delete = app
        .graphql(
            Some(&watcher.token),
            "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&delete), "FORBIDDEN");
    let after = app
        .ok(&admin.token, "query($id: ID!) { connection(id: $id) { version } }", json!({ "id": id }))
        .await;
    assert_eq!(after["connection"]["version"], 1, "nothing changed");
}

async fn another_teams_objects_are_indistinguishable_from_missing_ones(app: TestApp) {
    let ours = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let theirs = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    let their_connection = app.create_api_key_connection(&theirs, "Theirs", "sk-globex-secret").await;
    let missing = uuid::Uuid::now_v7().to_string();

    let team = app
        .ok(&ours.token, "query($id: ID!) { team(id: $id) { name } }", json!({ "id": theirs.team_id }))
        .await;
    assert!(team["team"].is_null());
    let missing_team =
        app.ok(&ours.token, "query($id: ID!) { team(id: $id) { id } }", json!({ "id": missing })).await;
    assert!(missing_team["team"].is_null());
    // `team(id)` reads only the caller's access; the team's own row still answers `name`.
    let own = app
        .ok(&ours.token, "query($id: ID!) { team(id: $id) { id name role } }", json!({ "id": ours.team_id }))
        .await;
    assert_eq!(own["team"], json!({ "id": ours.team_id, "name": "Acme", "role": "ADMIN" }));
    for id in [&their_connection, &missing] {
        let read = app
            .ok(&ours.token, "query($id: ID!) { connection(id: $id) { name } }", json!({ "id": id }))
            .await;
        assert!(read["connection"].is_null());
        let edit = app
            .graphql(
                Some(&ours.token),
                EDIT_CONNECTION,
                json!({ "id": id, "input": { "fields": { "api_key": "sk-z" } } }),
            )
            .await;
        assert_eq!(error_code(&edit), "NOT_FOUND");
        assert_eq!(edit["errors"][0]["message"], "connection not found");
        let delete = app
            .graphql(
                Some(&ours.token),
                "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_code(&delete), "NOT_FOUND");
        assert_eq!(delete["errors"][0]["message"], "connection not found");
    }
    let create = app
        .graphql(
            Some(&ours.token),
            CREATE_CONNECTION,
            json!({ "input": {
            "teamId": theirs.team_id, "app": "openai", "name": "Sneaky", "fields": { "api_key": "sk-x" } } }),
        )
        .await;
    assert_eq!(error_code(&create), "NOT_FOUND");
    let still = app
        .ok(
            &theirs.token,
            "query($id: ID!) { connection(id: $id) { name version } }",
            json!({ "id": their_connection }),
        )
        .await;
    assert_eq!(still["connection"]["version"], 1);
}

async fn service_tokens_read_their_team_only_and_cannot_change_connections(app: TestApp) {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let other = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    let id = app.create_api_key_connection(&admin, "OpenAI", "sk-admin-key").await;
    let service = app.service_token("Acme").await;

    let viewer = app.ok(&service, "{ viewer { kind email teams { name role } } }", json!({})).await;
    assert_eq!(viewer["viewer"]["kind"], "SERVICE");
    assert!(viewer["viewer"]["email"].is_null());
    assert_eq!(viewer["viewer"]["teams"], json!([{ "name": "Acme", "role": "SERVICE" }]));
    let read =
        app.ok(&service, "query($id: ID!) { connection(id: $id) { name } }", json!({ "id": id })).await;
    assert_eq!(read["connection"]["name"], "OpenAI");
    let foreign =
        app.ok(&service, "query($id: ID!) { team(id: $id) { name } }", json!({ "id": other.team_id })).await;
    assert!(foreign["team"].is_null());
    let own = app
        .ok(&service, "query($id: ID!) { team(id: $id) { name role } }", json!({ "id": admin.team_id }))
        .await;
    assert_eq!(own["team"], json!({ "name": "Acme", "role": "SERVICE" }));
    let delete = app
        .graphql(
            Some(&service),
            "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&delete), "FORBIDDEN");
}

async fn viewer_lists_the_users_teams_and_roles(app: TestApp) {
    let acme = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let globex = app.member("Globex", "ana@acme.test", TeamRole::Monitoring).await;
    let viewer = app.ok(&globex.token, "{ viewer { kind email teams { id name role } } }", json!({})).await;
    assert_eq!(viewer["viewer"]["kind"], "USER");
    assert_eq!(viewer["viewer"]["email"], "ana@acme.test");
    assert_eq!(
        viewer["viewer"]["teams"],
        json!([
            { "id": acme.team_id, "name": "Acme", "role": "ADMIN" },
            { "id": globex.team_id, "name": "Globex", "role": "MONITORING" },
        ])
    );
    // Both tokens of the same user work.
    app.ok(&acme.token, "{ viewer { email } }", json!({})).await;
}
