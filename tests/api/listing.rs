use plugboard::domain::TeamRole;
use serde_json::json;

use crate::helpers::{TestApp, error_code};
use crate::on_every_database;

on_every_database!(
    connections_page_with_cursors_and_total_count,
    connections_filter_by_app_status_and_search,
    bad_page_arguments_are_bad_input
);

const LIST: &str = r#"
query($team: ID!, $first: Int, $after: String, $app: String, $status: ConnectionStatus, $search: String) {
  team(id: $team) {
    connections(first: $first, after: $after, app: $app, status: $status, search: $search) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { name app { key } } }
    }
  }
}"#;

fn names(data: &serde_json::Value) -> Vec<String> {
    data["team"]["connections"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn connections_page_with_cursors_and_total_count(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let other = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    for i in 1..=5 {
        app.create_api_key_connection(&member, &format!("Key {i}"), "sk-abc").await;
    }
    app.create_api_key_connection(&other, "Not ours", "sk-abc").await;

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page =
            app.ok(&member.token, LIST, json!({ "team": member.team_id, "first": 2, "after": after })).await;
        let list = &page["team"]["connections"];
        assert_eq!(list["totalCount"], 5);
        seen.extend(names(&page));
        if !list["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = Some(list["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["Key 1", "Key 2", "Key 3", "Key 4", "Key 5"]);
    // Past the last connection the page is empty; the count still counts them all.
    let last_cursor = after_of_last(&app, &member).await;
    let beyond_last =
        app.ok(&member.token, LIST, json!({ "team": member.team_id, "after": last_cursor })).await;
    assert_eq!(beyond_last["team"]["connections"]["edges"], json!([]));
    assert_eq!(beyond_last["team"]["connections"]["totalCount"], 5);
    assert_eq!(beyond_last["team"]["connections"]["pageInfo"]["hasNextPage"], false);
}

/// The cursor of the team's last connection.
async fn after_of_last(app: &TestApp, member: &crate::helpers::Member) -> String {
    let all = app.ok(&member.token, LIST, json!({ "team": member.team_id, "first": 50 })).await;
    all["team"]["connections"]["pageInfo"]["endCursor"].as_str().unwrap().to_owned()
}

async fn connections_filter_by_app_status_and_search(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    app.create_api_key_connection(&member, "Marketing OpenAI", "sk-abc").await;
    app.create_api_key_connection(&member, "Sales OpenAI", "sk-abc").await;
    app.create_basic_login_connection(&member, "Sales intranet").await;

    let by_app = app.ok(&member.token, LIST, json!({ "team": member.team_id, "app": "http-basic" })).await;
    assert_eq!(names(&by_app), ["Sales intranet"]);
    let by_search = app.ok(&member.token, LIST, json!({ "team": member.team_id, "search": "sALEs" })).await;
    assert_eq!(names(&by_search), ["Sales OpenAI", "Sales intranet"]);
    assert_eq!(by_search["team"]["connections"]["totalCount"], 2);
    // The second page of a search: the cursor's bound value and the search's, in the page and in
    // its count, each where it belongs.
    let first_of_search =
        app.ok(&member.token, LIST, json!({ "team": member.team_id, "search": "sales", "first": 1 })).await;
    let cursor = first_of_search["team"]["connections"]["pageInfo"]["endCursor"].clone();
    let second_of_search = app
        .ok(
            &member.token,
            LIST,
            json!({ "team": member.team_id, "search": "sales", "first": 1, "after": cursor }),
        )
        .await;
    assert_eq!(names(&second_of_search), ["Sales intranet"]);
    assert_eq!(second_of_search["team"]["connections"]["totalCount"], 2);
    assert_eq!(second_of_search["team"]["connections"]["pageInfo"]["hasNextPage"], false);
    let both = app
        .ok(&member.token, LIST, json!({ "team": member.team_id, "search": "sales", "app": "openai" }))
        .await;
    assert_eq!(names(&both), ["Sales OpenAI"]);
    let wildcard = app.ok(&member.token, LIST, json!({ "team": member.team_id, "search": "%" })).await;
    assert_eq!(names(&wildcard), Vec::<String>::new(), "LIKE wildcards are matched literally");
    assert_eq!(wildcard["team"]["connections"]["totalCount"], 0);
    // The provider knows the OpenAI keys but has nothing at `/` for the intranet.
    let active = app.ok(&member.token, LIST, json!({ "team": member.team_id, "status": "ACTIVE" })).await;
    assert_eq!(names(&active), ["Marketing OpenAI", "Sales OpenAI"]);
    let invalid = app.ok(&member.token, LIST, json!({ "team": member.team_id, "status": "INVALID" })).await;
    assert_eq!(names(&invalid), ["Sales intranet"]);
    let unverified =
        app.ok(&member.token, LIST, json!({ "team": member.team_id, "status": "UNVERIFIED" })).await;
    assert_eq!(unverified["team"]["connections"]["totalCount"], 0);
}

async fn bad_page_arguments_are_bad_input(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    for (variables, field) in [
        (json!({ "team": member.team_id, "first": 0 }), "first"),
        (json!({ "team": member.team_id, "first": 1000 }), "first"),
        (json!({ "team": member.team_id, "after": "not-a-cursor" }), "after"),
    ] {
        let body = app.graphql(Some(&member.token), LIST, variables).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    let bad_status =
        app.graphql(Some(&member.token), LIST, json!({ "team": member.team_id, "status": "BROKEN" })).await;
    assert_eq!(error_code(&bad_status), "BAD_USER_INPUT");
}
