//! Flows that use connections: safe delete, scope checks, dynamic connections, credentials for
//! runners.

use plugboard::domain::TeamRole;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{CREATE_CONNECTION, EDIT_CONNECTION, Member, TestApp, error_code};
use crate::on_every_database;

on_every_database!(
    deleting_a_connection_used_by_running_flows_needs_confirmation,
    the_default_of_a_used_dynamic_connection_is_protected_too,
    modules_lacking_scopes_are_warned_listed_and_failed_at_checks,
    runners_read_credentials_with_service_tokens_only,
    dynamic_connections_resolve_the_default_or_the_selected_member,
    edits_reach_runners_at_once,
    a_page_of_connections_lists_each_ones_modules,
);

const CREATE_FLOW: &str = r#"
mutation($input: CreateFlowInput!) {
  createFlow(input: $input) {
    flow { id name status modules { key app module needsConnection connection { id } dynamicConnection { id } } }
    warnings { moduleKey missingScopes message }
  }
}"#;
const DELETE: &str =
    "mutation($id: ID!, $confirm: Boolean) { deleteConnection(id: $id, confirm: $confirm) { deletedId } }";
const CREDENTIALS: &str = r#"
query($flow: ID!, $module: String!, $select: String) {
  moduleCredentials(flowId: $flow, moduleKey: $module, select: $select) { connectionId authType fields accessToken expiresAt }
}"#;

async fn crm_accepts_everything(app: &TestApp) {
    Mock::given(method("GET"))
        .and(path("/crm/me"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "user": { "email": "crm@acme.test" } })),
        )
        .mount(&app.provider)
        .await;
}

async fn crm(app: &TestApp, member: &Member, name: &str, key: &str, scopes: &[&str]) -> String {
    let data = app
        .ok(
            &member.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": member.team_id, "app": "test-crm", "name": name, "fields": { "api_key": key }, "scopes": scopes } }),
        )
        .await;
    data["createConnection"]["connection"]["id"].as_str().unwrap().to_owned()
}

async fn flow(app: &TestApp, member: &Member, name: &str, status: &str, modules: Value) -> Value {
    let data = app
        .ok(&member.token, CREATE_FLOW, json!({ "input": { "teamId": member.team_id, "name": name, "status": status, "modules": modules } }))
        .await;
    data["createFlow"].clone()
}

fn crm_module(key: &str, connection: &str) -> Value {
    json!({ "key": key, "app": "test-crm", "module": "list-contacts", "connectionId": connection })
}

async fn deleting_a_connection_used_by_running_flows_needs_confirmation(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_accepts_everything(&app).await;
    let id = crm(&app, &member, "CRM", "k1", &["contacts.read"]).await;
    let active = flow(&app, &member, "Nightly sync", "ACTIVE", json!([crm_module("contacts", &id)])).await;
    flow(&app, &member, "Old import", "INACTIVE", json!([crm_module("contacts", &id)])).await;

    let used = app
        .ok(
            &member.token,
            "query($id: ID!) { connection(id: $id) { usedBy { moduleKey flow { name status } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(used["connection"]["usedBy"].as_array().unwrap().len(), 2);

    let refused = app.graphql(Some(&member.token), DELETE, json!({ "id": id })).await;
    assert_eq!(error_code(&refused), "CONNECTION_IN_USE");
    assert_eq!(
        refused["errors"][0]["extensions"]["flows"],
        json!([{ "id": active["flow"]["id"], "name": "Nightly sync", "status": "ACTIVE" }]),
        "only running flows count"
    );
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("Nightly sync"));
    assert!(app.ok(&member.token, "query($id: ID!) { connection(id: $id) { id } }", json!({ "id": id })).await["connection"].is_object());

    app.ok(&member.token, DELETE, json!({ "id": id, "confirm": true })).await;
    let after = app
        .ok(
            &member.token,
            "query($id: ID!) { flow(id: $id) { modules { needsConnection connection { id } } } }",
            json!({ "id": active["flow"]["id"] }),
        )
        .await;
    assert_eq!(after["flow"]["modules"], json!([{ "needsConnection": true, "connection": null }]));
    let audit = app
        .ok(
            &member.token,
            "query($t: ID!) { team(id: $t) { auditEvents(first: 1) { edges { node { action detail } } } } }",
            json!({ "t": member.team_id }),
        )
        .await;
    let node = &audit["team"]["auditEvents"]["edges"][0]["node"];
    assert_eq!(node["action"], "CONNECTION_DELETED");
    assert_eq!(node["detail"]["broken_flows"][0]["name"], "Nightly sync");
}

async fn the_default_of_a_used_dynamic_connection_is_protected_too(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_accepts_everything(&app).await;
    let sales = crm(&app, &member, "Sales CRM", "k-sales", &["contacts.read"]).await;
    let support = crm(&app, &member, "Support CRM", "k-support", &["contacts.read"]).await;
    let dynamic = create_dynamic(&app, &member, &sales, &support).await;
    flow(&app, &member, "Per department", "SCHEDULED", json!([{ "key": "contacts", "app": "test-crm", "module": "list-contacts", "dynamicConnectionId": dynamic }])).await;
    // The default and a mere member are both used through the dynamic connection.
    for id in [&sales, &support] {
        let used = app
            .ok(
                &member.token,
                "query($id: ID!) { connection(id: $id) { usedBy { moduleKey flow { name } } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            used["connection"]["usedBy"],
            json!([{ "moduleKey": "contacts", "flow": { "name": "Per department" } }])
        );
    }
    let refused = app.graphql(Some(&member.token), DELETE, json!({ "id": sales })).await;
    assert_eq!(error_code(&refused), "CONNECTION_IN_USE");
    // A member that is not the default can go: the flows keep running on the default.
    app.ok(&member.token, DELETE, json!({ "id": support })).await;
}

async fn create_dynamic(app: &TestApp, member: &Member, sales: &str, support: &str) -> String {
    let data = app
        .ok(
            &member.token,
            "mutation($input: CreateDynamicConnectionInput!) { createDynamicConnection(input: $input) { id defaultConnection { id } members { label } } }",
            json!({ "input": { "teamId": member.team_id, "name": "CRM per department", "app": "test-crm",
                "members": [{ "connectionId": sales, "label": "sales" }, { "connectionId": support, "label": "support" }],
                "defaultConnectionId": sales } }),
        )
        .await;
    assert_eq!(data["createDynamicConnection"]["defaultConnection"]["id"], sales);
    data["createDynamicConnection"]["id"].as_str().unwrap().to_owned()
}

async fn modules_lacking_scopes_are_warned_listed_and_failed_at_checks(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_accepts_everything(&app).await;
    let id = crm(&app, &member, "CRM", "k1", &[]).await;
    let created = flow(&app, &member, "Sync", "ACTIVE", json!([crm_module("contacts", &id)])).await;
    assert_eq!(created["warnings"][0]["moduleKey"], "contacts");
    assert_eq!(created["warnings"][0]["missingScopes"], json!(["contacts.read"]));

    let missing = app
        .ok(&member.token, "query($id: ID!) { connection(id: $id) { missingScopes { moduleKey missingScopes flow { name } } } }", json!({ "id": id }))
        .await;
    assert_eq!(missing["connection"]["missingScopes"][0]["missingScopes"], json!(["contacts.read"]));

    let check = app
        .ok(
            &member.token,
            "mutation($id: ID!) { verifyConnection(id: $id) { outcome message } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(check["verifyConnection"]["outcome"], "INSUFFICIENT_SCOPES");
    assert!(check["verifyConnection"]["message"].as_str().unwrap().contains("contacts.read"), "{check}");

    let edit = "mutation($id: ID!, $input: EditConnectionInput!) { editConnection(id: $id, input: $input) { connection { status } warnings { moduleKey missingScopes } } }";
    let fixed = app
        .ok(
            &member.token,
            edit,
            json!({ "id": id, "input": { "fields": { "api_key": "k1" }, "scopes": ["contacts.read"] } }),
        )
        .await;
    assert_eq!(fixed["editConnection"]["warnings"], json!([]));
    assert_eq!(fixed["editConnection"]["connection"]["status"], "ACTIVE");
    let lost = app
        .ok(
            &member.token,
            edit,
            json!({ "id": id, "input": { "fields": { "api_key": "k1" }, "scopes": [] } }),
        )
        .await;
    assert_eq!(
        lost["editConnection"]["warnings"],
        json!([{ "moduleKey": "contacts", "missingScopes": ["contacts.read"] }])
    );
}

async fn runners_read_credentials_with_service_tokens_only(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let other = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    crm_accepts_everything(&app).await;
    let id = crm(&app, &member, "CRM", "crm-key-secret", &["contacts.read"]).await;
    let narrow = crm(&app, &member, "Narrow CRM", "narrow-key", &[]).await;
    let created = flow(
        &app,
        &member,
        "Sync",
        "ACTIVE",
        json!([crm_module("contacts", &id), crm_module("narrow", &narrow)]),
    )
    .await;
    let flow_id = created["flow"]["id"].as_str().unwrap();
    let runner = app.service_token("Acme").await;

    let creds = app.ok(&runner, CREDENTIALS, json!({ "flow": flow_id, "module": "contacts" })).await;
    let creds = &creds["moduleCredentials"];
    assert_eq!(creds["connectionId"], id.as_str());
    assert_eq!(creds["authType"], "API_KEY");
    assert_eq!(creds["fields"], json!({ "api_key": "crm-key-secret" }));
    assert!(creds["accessToken"].is_null());

    let scopes =
        app.graphql(Some(&runner), CREDENTIALS, json!({ "flow": flow_id, "module": "narrow" })).await;
    assert_eq!(error_code(&scopes), "ACCOUNT_VALIDATION_ERROR");
    assert_eq!(scopes["errors"][0]["extensions"]["missingScopes"], json!(["contacts.read"]));
    assert!(!scopes.to_string().contains("narrow-key"));

    let as_user =
        app.graphql(Some(&member.token), CREDENTIALS, json!({ "flow": flow_id, "module": "contacts" })).await;
    assert_eq!(error_code(&as_user), "FORBIDDEN");
    let unknown = app.graphql(Some(&runner), CREDENTIALS, json!({ "flow": flow_id, "module": "nope" })).await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    let foreign_runner = app.service_token("Globex").await;
    let foreign = app
        .graphql(Some(&foreign_runner), CREDENTIALS, json!({ "flow": flow_id, "module": "contacts" }))
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    assert!(!foreign.to_string().contains("crm-key-secret"));
    let their_flows = app
        .ok(&foreign_runner, "query($t: ID!) { team(id: $t) { name } }", json!({ "t": member.team_id }))
        .await;
    assert!(their_flows["team"].is_null());
    let _ = other;

    let audit = app
        .ok(&member.token, "query($t: ID!) { team(id: $t) { auditEvents(first: 10) { edges { node { action actor { kind label } connectionId } } } } }", json!({ "t": member.team_id }))
        .await;
    let reads: Vec<&Value> = audit["team"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["action"] == "CREDENTIALS_READ")
        .collect();
    assert_eq!(reads.len(), 1, "one successful read");
    assert_eq!(reads[0]["node"]["actor"]["kind"], "SERVICE");
    assert!(reads[0]["node"]["actor"]["label"].as_str().unwrap().starts_with("service token pbs_"));
}

async fn dynamic_connections_resolve_the_default_or_the_selected_member(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_accepts_everything(&app).await;
    let sales = crm(&app, &member, "Sales CRM", "k-sales", &["contacts.read"]).await;
    let support = crm(&app, &member, "Support CRM", "k-support", &["contacts.read"]).await;
    let dynamic = create_dynamic(&app, &member, &sales, &support).await;
    let created = flow(
        &app,
        &member,
        "Per department",
        "ACTIVE",
        json!([
            { "key": "a", "app": "test-crm", "module": "list-contacts", "dynamicConnectionId": dynamic },
            { "key": "b", "app": "test-crm", "module": "list-contacts", "dynamicConnectionId": dynamic },
        ]),
    )
    .await;
    let flow_id = created["flow"]["id"].as_str().unwrap();
    let runner = app.service_token("Acme").await;
    let key = |module: &'static str, select: Option<&'static str>| {
        let (app, runner) = (&app, runner.clone());
        async move {
            let data = app
                .ok(&runner, CREDENTIALS, json!({ "flow": flow_id, "module": module, "select": select }))
                .await;
            data["moduleCredentials"]["fields"]["api_key"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(key("a", None).await, "k-sales");
    assert_eq!(key("a", Some("support")).await, "k-support");
    app.ok(
        &member.token,
        "mutation($id: ID!, $c: ID!) { setDynamicConnectionDefault(id: $id, connectionId: $c) { defaultConnection { id } } }",
        json!({ "id": dynamic, "c": support }),
    )
    .await;
    assert_eq!(key("a", None).await, "k-support", "switching the default moves every module at once");
    assert_eq!(key("b", None).await, "k-support");
    let missing = app
        .graphql(Some(&runner), CREDENTIALS, json!({ "flow": flow_id, "module": "a", "select": "marketing" }))
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
}

async fn edits_reach_runners_at_once(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    crm_accepts_everything(&app).await;
    let id = crm(&app, &member, "CRM", "old-key", &["contacts.read"]).await;
    let created = flow(&app, &member, "Sync", "ACTIVE", json!([crm_module("contacts", &id)])).await;
    let runner = app.service_token("Acme").await;
    let read = json!({ "flow": created["flow"]["id"], "module": "contacts" });
    assert_eq!(
        app.ok(&runner, CREDENTIALS, read.clone()).await["moduleCredentials"]["fields"]["api_key"],
        "old-key"
    );
    app.ok(
        &member.token,
        EDIT_CONNECTION,
        json!({ "id": id, "input": { "fields": { "api_key": "new-key" } } }),
    )
    .await;
    assert_eq!(app.ok(&runner, CREDENTIALS, read).await["moduleCredentials"]["fields"]["api_key"], "new-key");
}

/// The page's usages are looked up together; each connection must still get only its own.
async fn a_page_of_connections_lists_each_ones_modules(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let other = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    crm_accepts_everything(&app).await;
    let sales = crm(&app, &member, "Sales CRM", "k-sales", &["contacts.read"]).await;
    let support = crm(&app, &member, "Support CRM", "k-support", &[]).await;
    let unused = crm(&app, &member, "Unused CRM", "k-unused", &[]).await;
    let foreign = crm(&app, &other, "Globex CRM", "k-globex", &[]).await;
    let dynamic = create_dynamic(&app, &member, &sales, &support).await;
    flow(&app, &member, "Direct", "ACTIVE", json!([crm_module("direct", &support)])).await;
    flow(&app, &member, "Per department", "INACTIVE", json!([{ "key": "dept", "app": "test-crm", "module": "list-contacts", "dynamicConnectionId": dynamic }])).await;
    flow(&app, &other, "Theirs", "ACTIVE", json!([crm_module("theirs", &foreign)])).await;

    let page = app
        .ok(
            &member.token,
            r#"query($team: ID!) { team(id: $team) { connections(first: 10) { edges { node {
                id usedBy { moduleKey flow { name } } missingScopes { moduleKey missingScopes } } } } } }"#,
            json!({ "team": member.team_id }),
        )
        .await;
    let uses = |id: &str| -> (Vec<String>, Vec<String>) {
        let edges = page["team"]["connections"]["edges"].as_array().unwrap();
        let node = &edges.iter().find(|e| e["node"]["id"] == id).unwrap()["node"];
        let mut used: Vec<String> = node["usedBy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| format!("{}/{}", u["flow"]["name"].as_str().unwrap(), u["moduleKey"].as_str().unwrap()))
            .collect();
        used.sort();
        let missing = node["missingScopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["moduleKey"].as_str().unwrap().to_owned())
            .collect();
        (used, missing)
    };
    assert_eq!(uses(&sales), (vec!["Per department/dept".to_owned()], vec![]));
    assert_eq!(
        uses(&support),
        (
            vec!["Direct/direct".to_owned(), "Per department/dept".to_owned()],
            vec!["direct".to_owned(), "dept".to_owned()]
        )
    );
    assert_eq!(uses(&unused), (vec![], vec![]));
    assert_eq!(page["team"]["connections"]["edges"].as_array().unwrap().len(), 3);

    // A flow module's connection comes through the same kind of loader, scoped to the team.
    let flows = app
        .ok(&member.token, "query($team: ID!) { team(id: $team) { flows { name modules { connection { name } dynamicConnection { defaultConnection { name } } } } } }", json!({ "team": member.team_id }))
        .await;
    assert_eq!(
        flows["team"]["flows"],
        json!([
            { "name": "Direct", "modules": [{ "connection": { "name": "Support CRM" }, "dynamicConnection": null }] },
            { "name": "Per department", "modules": [{ "connection": null, "dynamicConnection": { "defaultConnection": { "name": "Sales CRM" } } }] },
        ])
    );
}
