//! A page of connections answers its nodes in place rather than through the executor (see
//! `graphql/types/listed.rs`): it must answer what `connection(id)` answers, whatever the
//! shape of the query.

use plugboard::domain::TeamRole;
use plugboard::graphql::ids::encode_cursor;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{Member, TestApp};
use crate::on_every_database;

on_every_database!(
    listed_connections_answer_every_field_as_the_connection_does,
    listed_connections_follow_aliases_fragments_and_directives,
    plain_pages_answer_the_bytes_the_connection_answers,
    a_page_that_shows_one_field_answers_it_as_the_whole_row_does,
    a_failing_field_on_a_page_is_reported_at_its_edge
);

const EVERY_FIELD: &str = r#"
fragment Every on Connection {
  __typename id name app { key name } appKey authType status fields secretFields scopes expiresAt
  grantExpiresAt grantStatus grantDetails accountLabel
  lastVerification { __typename outcome message accountLabel startedAt finishedAt }
  nextCheckAt consecutiveFailures lastSuccessAt lastFailureAt version createdAt updatedAt
  verifications(first: 2) { outcome } usedBy { moduleKey } missingScopes { moduleKey }
}
query($team: ID!, $id: ID!) {
  connection(id: $id) { ...Every }
  team(id: $team) { connections(first: 10) { edges { node { ...Every } } } }
}"#;

/// An OpenAI key the provider accepts (`ACTIVE`) and a basic login it refuses (`INVALID`).
async fn two_connections(app: &TestApp, member: &Member) {
    app.create_api_key_connection(member, "Marketing OpenAI", "sk-abc").await;
    app.create_basic_login_connection(member, "Sales intranet").await;
}

async fn listed_connections_answer_every_field_as_the_connection_does(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    two_connections(&app, &member).await;
    let ids = app.ok(&member.token, IDS, json!({ "team": member.team_id })).await;
    let ids: Vec<Value> = ids["team"]["connections"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].clone())
        .collect();
    assert_eq!(ids.len(), 2);
    for (i, id) in ids.iter().enumerate() {
        let both = app.ok(&member.token, EVERY_FIELD, json!({ "team": member.team_id, "id": id })).await;
        let listed = &both["team"]["connections"]["edges"][i]["node"];
        assert_eq!(&listed["id"], id);
        assert_eq!(&both["connection"], listed);
        let expected = if i == 0 { "ACTIVE" } else { "INVALID" };
        assert_eq!(listed["status"], expected);
        assert_ne!(listed["lastVerification"], Value::Null);
    }
}

const IDS: &str = "query($team: ID!) { team(id: $team) { connections { edges { cursor node { id } } } } }";

const SHAPED: &str = r#"
query($team: ID!, $withCursor: Boolean!, $skipName: Boolean!) {
  team(id: $team) {
    connections(first: 2) {
      edges {
        __typename
        at: cursor @include(if: $withCursor)
        node {
          __typename
          key: id
          label: name
          name @skip(if: $skipName)
          ...Kind
          ... on Connection { appKey lastVerification { outcome } }
          ... { lastVerification { message when: finishedAt } }
          app { key }
          usedBy { moduleKey }
        }
        node { version label: name }
      }
    }
  }
}
fragment Kind on Connection { status kind: authType }
"#;

const ONE: &str = r#"
query($id: ID!) { connection(id: $id) { id name status authType version lastVerification { outcome message finishedAt } } }
"#;

async fn listed_connections_follow_aliases_fragments_and_directives(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    two_connections(&app, &member).await;
    let cursors = app.ok(&member.token, IDS, json!({ "team": member.team_id })).await;
    let mut expected_edges = Vec::new();
    for edge in cursors["team"]["connections"]["edges"].as_array().unwrap() {
        let one = &app.ok(&member.token, ONE, json!({ "id": edge["node"]["id"] })).await["connection"];
        let check = &one["lastVerification"];
        expected_edges.push((
            edge["cursor"].clone(),
            json!({
                "__typename": "Connection",
                "key": one["id"],
                "label": one["name"],
                "status": one["status"],
                "kind": one["authType"],
                "appKey": if one["authType"] == "BASIC" { "http-basic" } else { "openai" },
                "lastVerification": { "outcome": check["outcome"], "message": check["message"], "when": check["finishedAt"] },
                "app": { "key": if one["authType"] == "BASIC" { "http-basic" } else { "openai" } },
                "usedBy": [],
                "version": one["version"],
            }),
        ));
    }

    let bare = app
        .ok(&member.token, SHAPED, json!({ "team": member.team_id, "withCursor": false, "skipName": true }))
        .await;
    let expected: Vec<Value> = expected_edges
        .iter()
        .map(|(_, node)| json!({ "__typename": "ConnectionEdge", "node": node }))
        .collect();
    assert_eq!(bare["team"]["connections"]["edges"], json!(expected));

    let full = app
        .ok(&member.token, SHAPED, json!({ "team": member.team_id, "withCursor": true, "skipName": false }))
        .await;
    let expected: Vec<Value> = expected_edges
        .iter()
        .map(|(cursor, node)| {
            let mut node = node.clone();
            node["name"] = node["label"].clone();
            json!({ "__typename": "ConnectionEdge", "at": cursor, "node": node })
        })
        .collect();
    assert_eq!(full["team"]["connections"]["edges"], json!(expected));
}

/// Every field a page answers in one loop (see `graphql/types/listed_page.rs`).
const PLAIN: &str = r#"
  __typename id name appKey authType status fields secretFields scopes expiresAt grantExpiresAt
  grantStatus grantDetails accountLabel
  lastVerification { __typename outcome message accountLabel startedAt finishedAt }
  nextCheckAt consecutiveFailures lastSuccessAt lastFailureAt version createdAt updatedAt
"#;

/// PLAIN's fields but `lastVerification`.
const CONNECTION_SCALARS: [&str; 21] = [
    "__typename",
    "id",
    "name",
    "appKey",
    "authType",
    "status",
    "fields",
    "secretFields",
    "scopes",
    "expiresAt",
    "grantExpiresAt",
    "grantStatus",
    "grantDetails",
    "accountLabel",
    "nextCheckAt",
    "consecutiveFailures",
    "lastSuccessAt",
    "lastFailureAt",
    "version",
    "createdAt",
    "updatedAt",
];

/// Posts a query and answers the body as the app wrote it.
async fn raw(app: &TestApp, token: &str, query: &str, variables: Value) -> String {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the app answers");
    response.text().await.expect("a body")
}

/// Three connections whose every plain field holds something: times of every precision the
/// scalar writes (none, milli, micro) and an odd year, facts only an OAuth grant would
/// otherwise bring, fields, scopes, and the account beside a passing check.
async fn varied_connections(app: &TestApp, member: &Member) {
    two_connections(app, member).await;
    app.create_api_key_connection(member, "Support OpenAI", "sk-def").await;
    for update in [
        "UPDATE connections SET expires_at = '2027-01-02T03:04:05+00:00', \
         grant_expires_at = '2027-06-30T23:59:59.5+00:00', \
         last_success_at = '0999-12-31T00:00:00.000001+00:00', \
         last_failure_at = '2026-02-28T12:00:00.120+00:00', \
         token_details = '{\"instance_url\":\"https://acme.test\",\"a\":\"\\u00e9\"}' \
         WHERE name = 'Support OpenAI'",
        "UPDATE connections SET account_label = 'ana@acme.test', scopes = '[\"models.read\"]', \
         public_fields = '{\"region\":\"eu\"}', consecutive_failures = 2, \
         next_check_at = '2027-03-04T05:06:07+00:00' WHERE name = 'Marketing OpenAI'",
    ] {
        app.state.db.execute_unprepared(update).await.unwrap();
    }
}

async fn plain_pages_answer_the_bytes_the_connection_answers(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    varied_connections(&app, &member).await;

    let page_query = format!(
        "query($team: ID!) {{ team(id: $team) {{ connections {{ edges {{ __typename cursor node {{ {PLAIN} }} }} }} }} }}"
    );
    let page = raw(&app, &member.token, &page_query, json!({ "team": member.team_id })).await;
    let ids: Vec<String> =
        serde_json::from_str::<Value>(&page).unwrap()["data"]["team"]["connections"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(ids.len(), 3);

    let one_query = format!("query($id: ID!) {{ connection(id: $id) {{ {PLAIN} }} }}");
    let mut edges = Vec::new();
    for id in &ids {
        let one = raw(&app, &member.token, &one_query, json!({ "id": id })).await;
        let node = one
            .strip_prefix(r#"{"data":{"connection":"#)
            .and_then(|rest| rest.strip_suffix("}}"))
            .unwrap_or_else(|| panic!("one connection's answer: {one}"));
        let cursor = encode_cursor("connection", id);
        edges.push(format!(r#"{{"__typename":"ConnectionEdge","cursor":"{cursor}","node":{node}}}"#));
    }
    let expected = format!(r#"{{"data":{{"team":{{"connections":{{"edges":[{}]}}}}}}}}"#, edges.join(","));
    assert_eq!(page, expected);
    for text in
        ["2027-01-02T03:04:05+00:00", "2027-06-30T23:59:59.500+00:00", "0999-12-31T00:00:00.000001+00:00"]
    {
        assert!(page.contains(text), "{text} in {page}");
    }

    // Keys selected twice are merged as the executor merges them: with `app`, the same
    // selection goes edge by edge, through the executor's merging.
    let repeated = |extra: &str| {
        format!(
            "query($team: ID!) {{ team(id: $team) {{ connections {{ edges {{ cursor c: cursor \
             node {{ id name lastVerification {{ outcome }} {extra} }} \
             node {{ version label: name lastVerification {{ when: finishedAt outcome message }} }} \
             t: __typename }} }} }} }}"
        )
    };
    let variables = json!({ "team": member.team_id });
    let in_one_loop = app.ok(&member.token, &repeated(""), variables.clone()).await;
    let mut edge_by_edge = app.ok(&member.token, &repeated("app { key }"), variables).await;
    for edge in edge_by_edge["team"]["connections"]["edges"].as_array_mut().unwrap() {
        edge["node"].as_object_mut().unwrap().remove("app").expect("the app was answered");
    }
    assert_eq!(in_one_loop, edge_by_edge);
    let first = &in_one_loop["team"]["connections"]["edges"][0];
    assert_eq!(first["node"]["label"], first["node"]["name"]);
    assert_eq!(first["node"]["lastVerification"]["outcome"], "OK", "{first:#}");
}

/// A page whose edges show only some fields reads only their columns (`ConnectionParts`):
/// each plain field, asked alone, must answer what the page answers with every field.
async fn a_page_that_shows_one_field_answers_it_as_the_whole_row_does(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    varied_connections(&app, &member).await;
    let variables = json!({ "team": member.team_id });
    let page = |node: &str| {
        format!(
            "query($team: ID!) {{ team(id: $team) {{ connections {{ edges {{ cursor node {{ {node} }} }} }} }} }}"
        )
    };
    let whole = app.ok(&member.token, &page(PLAIN), variables.clone()).await;
    let whole = whole["team"]["connections"]["edges"].as_array().unwrap().clone();
    assert_eq!(whole.len(), 3);
    let label = whole.iter().find(|edge| edge["node"]["name"] == "Marketing OpenAI").unwrap();
    assert_eq!(label["node"]["lastVerification"]["accountLabel"], "ana@acme.test", "{label:#}");
    assert_eq!(label["node"]["scopes"], json!(["models.read"]));

    for field in CONNECTION_SCALARS {
        assert!(PLAIN.split_whitespace().any(|word| word == field), "{field} is among PLAIN's fields");
        let alone = app.ok(&member.token, &page(field), variables.clone()).await;
        let edges = alone["team"]["connections"]["edges"].as_array().unwrap();
        for (edge, full) in edges.iter().zip(&whole) {
            assert_eq!(edge["cursor"], full["cursor"]);
            assert_eq!(edge["node"], json!({ field: full["node"][field] }), "{field} alone");
        }
    }
    for field in ["__typename", "outcome", "message", "accountLabel", "startedAt", "finishedAt"] {
        let alone =
            app.ok(&member.token, &page(&format!("lastVerification {{ {field} }}")), variables.clone()).await;
        let edges = alone["team"]["connections"]["edges"].as_array().unwrap();
        for (edge, full) in edges.iter().zip(&whole) {
            let expected = match &full["node"]["lastVerification"] {
                Value::Null => Value::Null,
                verification => json!({ field: verification[field] }),
            };
            assert_eq!(edge["node"]["lastVerification"], expected, "lastVerification {{ {field} }} alone");
        }
    }
}

async fn a_failing_field_on_a_page_is_reported_at_its_edge(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    two_connections(&app, &member).await;
    let query = r#"
      query($team: ID!) {
        team(id: $team) { connections { edges { cursor node { id name verifications(first: 0) { outcome } } } } }
      }"#;
    let body = app.graphql(Some(&member.token), query, json!({ "team": member.team_id })).await;
    let paths: Vec<&Value> = body["errors"].as_array().expect("errors").iter().map(|e| &e["path"]).collect();
    assert_eq!(
        paths,
        [
            &json!(["team", "connections", "edges", 0, "node", "verifications"]),
            &json!(["team", "connections", "edges", 1, "node", "verifications"]),
        ],
        "{body:#}"
    );
    let edges = body["data"]["team"]["connections"]["edges"].as_array().expect("the page answers");
    assert_eq!(edges.len(), 2);
    for edge in edges {
        assert!(
            edge["cursor"].is_string() && edge["node"]["id"].is_string() && edge["node"]["name"].is_string()
        );
    }
}
