use plugboard::domain::TeamRole;
use serde_json::json;

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{CREATE_CONNECTION, EDIT_CONNECTION, Member, TestApp, error_code};
use crate::on_every_database;

on_every_database!(
    create_returns_public_fields_and_names_the_secrets_without_values,
    create_validates_fields_against_the_app_form,
    edit_requires_secrets_to_be_reentered,
    edit_replaces_everything_and_bumps_the_version,
    stale_edit_answers_conflict_and_changes_nothing,
    delete_removes_the_connection,
);

fn generic_fields(app: &TestApp, api_key: &str) -> serde_json::Value {
    json!({
        "base_url": app.provider.uri(),
        "value_prefix": "Token ",
        "api_key": api_key,
        "verify_path": "/me",
    })
}

async fn create_generic(app: &TestApp, member: &Member) -> serde_json::Value {
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header("authorization", "Token key-one-secret"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&app.provider)
        .await;
    let data = app
        .ok(
            &member.token,
            CREATE_CONNECTION,
            json!({ "input": {
                "teamId": member.team_id, "app": "http-api-key", "name": "  Internal API ",
                "fields": generic_fields(app, "key-one-secret"), "scopes": ["read", "write"]
            }}),
        )
        .await;
    data["createConnection"].clone()
}

async fn create_returns_public_fields_and_names_the_secrets_without_values(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Member).await;
    let created = create_generic(&app, &member).await;
    assert!(created["authorizationUrl"].is_null());
    let connection = &created["connection"];
    assert_eq!(connection["name"], "Internal API");
    assert_eq!(connection["status"], "ACTIVE", "the key was checked with the provider at once");
    assert_eq!(created["verification"]["outcome"], "OK");
    assert_eq!(connection["authType"], "API_KEY");
    assert_eq!(connection["app"]["key"], "http-api-key");
    assert_eq!(connection["version"], 1);
    assert_eq!(connection["scopes"], json!(["read", "write"]));
    assert_eq!(
        connection["fields"],
        json!({
            "base_url": app.provider.uri(),
            "header_name": "Authorization",
            "placement": "header",
            "query_param": "api_key",
            "value_prefix": "Token ",
            "verify_path": "/me",
        }),
        "defaults are applied and secrets are left out"
    );
    assert_eq!(connection["secretFields"], json!(["api_key"]));
    assert!(!created.to_string().contains("key-one-secret"));
}

async fn create_validates_fields_against_the_app_form(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let attempt = |app_key: &'static str, name: &'static str, fields: serde_json::Value| {
        let member = member.clone();
        let app = &app;
        async move {
            app.graphql(
                Some(&member.token),
                CREATE_CONNECTION,
                json!({ "input": { "teamId": member.team_id, "app": app_key, "name": name, "fields": fields } }),
            )
            .await
        }
    };
    let unknown = attempt("openai", "x", json!({ "api_key": "sk-a", "colour": "blue" })).await;
    assert_eq!(error_code(&unknown), "BAD_USER_INPUT");
    assert_eq!(unknown["errors"][0]["extensions"]["field"], "fields.colour");

    let missing = attempt("openai", "x", json!({})).await;
    assert_eq!(error_code(&missing), "BAD_USER_INPUT");
    assert_eq!(missing["errors"][0]["extensions"]["field"], "fields.api_key");

    let pattern = attempt(
        "http-api-key",
        "x",
        json!({ "base_url": "not a url", "api_key": "k", "verify_path": "/me" }),
    )
    .await;
    assert_eq!(pattern["errors"][0]["extensions"]["field"], "fields.base_url");

    // A value past 8,192 characters is refused by name, whether shown or secret.
    let long_path = format!("/{}", "a".repeat(8192));
    let long = attempt(
        "http-api-key",
        "x",
        json!({ "base_url": "https://api.example.com", "api_key": "k", "verify_path": long_path }),
    )
    .await;
    assert_eq!(error_code(&long), "BAD_USER_INPUT");
    assert_eq!(long["errors"][0]["extensions"]["field"], "fields.verify_path", "{long}");
    let long_key = attempt("openai", "x", json!({ "api_key": "k".repeat(8193) })).await;
    assert_eq!(long_key["errors"][0]["extensions"]["field"], "fields.api_key", "{long_key}");

    let no_app = attempt("no-such-app", "x", json!({})).await;
    assert_eq!(error_code(&no_app), "BAD_USER_INPUT");
    assert_eq!(no_app["errors"][0]["extensions"]["field"], "app");

    let no_name = attempt("openai", "   ", json!({ "api_key": "sk-a" })).await;
    assert_eq!(no_name["errors"][0]["extensions"]["field"], "name");

    let not_object = attempt("openai", "x", json!("sk-a")).await;
    assert_eq!(error_code(&not_object), "BAD_USER_INPUT");

    let bad_team = app
        .graphql(
            Some(&member.token),
            CREATE_CONNECTION,
            json!({ "input": {
            "teamId": "not-a-uuid", "app": "openai", "name": "x", "fields": { "api_key": "sk-a" } } }),
        )
        .await;
    assert_eq!(bad_team["errors"][0]["extensions"]["field"], "teamId");

    for body in [&unknown, &missing, &pattern, &no_app, &no_name, &not_object] {
        assert!(!body.to_string().contains("sk-a"), "no secret echoed: {body}");
    }
    assert_eq!(app.connection_count(&member).await, 0, "nothing was created");
}

async fn edit_requires_secrets_to_be_reentered(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let created = create_generic(&app, &member).await;
    let id = created["connection"]["id"].as_str().unwrap();
    let mut fields = generic_fields(&app, "unused");
    fields.as_object_mut().unwrap().remove("api_key");

    let body = app
        .graphql(Some(&member.token), EDIT_CONNECTION, json!({ "id": id, "input": { "fields": fields } }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "fields.api_key");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("entered again"), "{body}");
    let after = app
        .ok(&member.token, "query($id: ID!) { connection(id: $id) { version } }", json!({ "id": id }))
        .await;
    assert_eq!(after["connection"]["version"], 1, "a refused edit changes nothing");
}

async fn edit_replaces_everything_and_bumps_the_version(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let created = create_generic(&app, &member).await;
    let id = created["connection"]["id"].as_str().unwrap();
    let fields = json!({
        "base_url": format!("{}/v2", app.provider.uri()),
        "placement": "query",
        "api_key": "key-two-secret",
        "verify_path": "/whoami",
    });
    let edited = app
        .ok(
            &member.token,
            EDIT_CONNECTION,
            json!({ "id": id, "input": { "name": "Renamed", "fields": fields, "version": 1 } }),
        )
        .await;
    let connection = &edited["editConnection"]["connection"];
    assert_eq!(connection["name"], "Renamed");
    assert_eq!(connection["version"], 2);
    assert_eq!(connection["status"], "INVALID", "the provider does not know the new key");
    assert_eq!(connection["scopes"], json!(["read", "write"]), "scopes are kept when not given");
    assert_eq!(
        connection["fields"],
        json!({
            "base_url": format!("{}/v2", app.provider.uri()),
            "header_name": "Authorization",
            "placement": "query",
            "query_param": "api_key",
            "verify_path": "/whoami",
        }),
        "the old value_prefix is gone: an edit replaces the whole form"
    );
    let sealed = crate::storage::sealed_blob(&app, id).await;
    let secrets = crate::storage::open_blob(&app, &member.team_id, id, &sealed);
    assert_eq!(secrets, json!({ "api_key": "key-two-secret" }), "the old secret is gone");
}

async fn stale_edit_answers_conflict_and_changes_nothing(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let created = create_generic(&app, &member).await;
    let id = created["connection"]["id"].as_str().unwrap();
    app.ok(
        &member.token,
        EDIT_CONNECTION,
        json!({ "id": id, "input": { "fields": generic_fields(&app, "second"), "version": 1 } }),
    )
    .await;
    let stale = app
        .graphql(
            Some(&member.token),
            EDIT_CONNECTION,
            json!({ "id": id, "input": { "fields": generic_fields(&app, "third"), "version": 1 } }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    let sealed = crate::storage::sealed_blob(&app, id).await;
    let secrets = crate::storage::open_blob(&app, &member.team_id, id, &sealed);
    assert_eq!(secrets, json!({ "api_key": "second" }));
}

async fn delete_removes_the_connection(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let id = app.create_api_key_connection(&member, "OpenAI", "sk-to-delete").await;
    let deleted = app
        .ok(
            &member.token,
            "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(deleted["deleteConnection"]["deletedId"], id.as_str());
    let read =
        app.ok(&member.token, "query($id: ID!) { connection(id: $id) { name } }", json!({ "id": id })).await;
    assert!(read["connection"].is_null());
    assert_eq!(crate::storage::stored_rows(&app).await, 0, "row and sealed secrets are gone");
    let again = app
        .graphql(
            Some(&member.token),
            "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&again), "NOT_FOUND");
}
