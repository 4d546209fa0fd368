//! What Plugboard must never give a provider it does not trust, nor keep of what a provider
//! echoes, nor misread: the operator's OAuth client stays on the app's own host, every encoding
//! of a sent secret is redacted from what is stored and shown, a user-supplied URL the egress
//! policy refuses is refused before anything is stored, and a missing scope is not mistaken for
//! a dead token.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::fake_oauth::FakeOAuth;
use crate::helpers::{Backend, CREATE_CONNECTION, TestApp, error_code};
use plugboard::domain::TeamRole;

const OPERATOR_ID: &str = "operator-client";
const OPERATOR_SECRET: &str = "operator secret/+&=\"é";

/// Every encoding in which a secret could come back.
fn encodings(secret: &str) -> Vec<String> {
    plugboard::outbound::redact::encodings(secret)
}

fn assert_nothing_of(secret: &str, text: &str, what: &str) {
    for encoded in encodings(secret) {
        assert!(!text.contains(&encoded), "{what} holds {encoded:?}: {text}");
    }
}

/// A self-hosted OAuth app whose default host is `default_host`, with its operator client.
async fn spawn_with_self_hosted_app(
    backend: Backend,
    default_host: &str,
) -> Option<(TestApp, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        r#"
key = "selfhosted"
name = "Self-hosted forge"
description = "A forge on its vendor's host or on a company's own server."
docs_url = "https://example.com/docs"
auth_type = "OAUTH2"
api_base_url = "http://{{host}}/oauth-api"
default_scopes = ["profile"]

[oauth]
authorize_url = "http://{{host}}/oauth/authorize"
token_url = "http://{{host}}/oauth/token"
client_auth = "post"
host_fields = ["host"]

[[fields]]
key = "host"
label = "Host"
required = true
default = "{default_host}"
pattern = "^[A-Za-z0-9.:-]+$"

[[fields]]
key = "client_id"
label = "Client ID (own application, optional)"

[[fields]]
key = "client_secret"
label = "Client secret (own application, optional)"
secret = true

[credentials]
headers = [{{ name = "Authorization", value = "Bearer {{access_token}}" }}]

[verify]
path = "/me"
account_pointer = "/email"
"#
    );
    std::fs::write(dir.path().join("selfhosted.toml"), file).unwrap();
    let providers = dir.path().display().to_string();
    let env = [
        ("PLUGBOARD_PROVIDERS_DIR", providers.as_str()),
        ("PLUGBOARD_APP_SELFHOSTED_CLIENT_ID", OPERATOR_ID),
        ("PLUGBOARD_APP_SELFHOSTED_CLIENT_SECRET", OPERATOR_SECRET),
    ];
    Some((TestApp::spawn_with(backend, &env).await?, dir))
}

fn host_of(server: &MockServer) -> String {
    server.address().to_string()
}

/// Plays the browser through consent: the provider's redirect, then the callback page.
async fn consent(app: &TestApp, authorization_url: &str) -> (u16, String) {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let at_provider = browser.get(authorization_url).send().await.unwrap();
    assert_eq!(at_provider.status(), 302, "the provider redirects back");
    let callback = at_provider.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{}/oauth/callback?", app.address)), "{callback}");
    let page = browser.get(&callback).send().await.unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

fn client_id_of(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    url.query_pairs().find(|(k, _)| k == "client_id").map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// Everything a server was sent, as text: URLs, headers and bodies.
async fn everything_received(server: &MockServer) -> String {
    let mut text = String::new();
    for request in server.received_requests().await.unwrap_or_default() {
        text.push_str(request.url.as_str());
        for (name, value) in &request.headers {
            text.push_str(&format!("\n{name}: {}", value.to_str().unwrap_or_default()));
        }
        text.push('\n');
        text.push_str(&String::from_utf8_lossy(&request.body));
        text.push('\n');
    }
    text
}

async fn the_operators_client_never_reaches_a_custom_host(backend: Backend) {
    let vendor = MockServer::start().await;
    let company = MockServer::start().await;
    let vendor_fake = FakeOAuth::mount(&vendor).await;
    let company_fake = FakeOAuth::mount(&company).await;
    let Some((app, _dir)) = spawn_with_self_hosted_app(backend, &host_of(&vendor)).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let create = |fields: Value| json!({ "input": { "teamId": member.team_id, "app": "selfhosted", "name": "Forge", "fields": fields } });

    // A company's own server without its own client: refused, nothing stored, nothing sent.
    let refused = app
        .graphql(Some(&member.token), CREATE_CONNECTION, create(json!({ "host": host_of(&company) })))
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "fields.client_id", "{refused}");
    assert_nothing_of(OPERATOR_SECRET, &refused.to_string(), "the refusal");
    let count = app
        .ok(
            &member.token,
            "query($t: ID!) { team(id: $t) { connections { totalCount } } }",
            json!({ "t": member.team_id }),
        )
        .await;
    assert_eq!(count["team"]["connections"]["totalCount"], 0, "nothing was stored");

    // With its own client, consent and the token exchange go to the company's server with it.
    let own = create(
        json!({ "host": host_of(&company), "client_id": "company-client", "client_secret": "company-secret" }),
    );
    let created = app.ok(&member.token, CREATE_CONNECTION, own).await;
    let url = created["createConnection"]["authorizationUrl"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&company.uri()), "{url}");
    assert_eq!(client_id_of(&url), "company-client");
    let (status, page) = consent(&app, &url).await;
    assert_eq!(status, 200, "{page}");
    let forms = company_fake.token_forms();
    assert_eq!(forms.len(), 1);
    assert_eq!(forms[0]["client_id"], "company-client");
    assert_eq!(forms[0]["client_secret"], "company-secret");

    // The vendor's own host gets the operator's client, as before.
    let created = app.ok(&member.token, CREATE_CONNECTION, create(json!({}))).await;
    let url = created["createConnection"]["authorizationUrl"].as_str().unwrap().to_owned();
    assert_eq!(client_id_of(&url), OPERATOR_ID);
    let (status, page) = consent(&app, &url).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(vendor_fake.token_forms()[0]["client_secret"], OPERATOR_SECRET);

    // An edit that moves a vendor connection to the company's server without a client is refused.
    let id = created["createConnection"]["connection"]["id"].as_str().unwrap();
    let edit = app
        .graphql(
            Some(&member.token),
            "mutation($id: ID!, $input: EditConnectionInput!) { editConnection(id: $id, input: $input) { authorizationUrl } }",
            json!({ "id": id, "input": { "fields": { "host": host_of(&company) } } }),
        )
        .await;
    assert_eq!(edit["errors"][0]["extensions"]["field"], "fields.client_id", "{edit}");

    let company_saw = everything_received(&company).await;
    assert_nothing_of(OPERATOR_SECRET, &company_saw, "the company's server");
    assert!(!company_saw.contains(OPERATOR_ID), "the operator's client id reached the company's server");
}

#[tokio::test]
async fn the_operators_client_never_reaches_a_custom_host_sqlite() {
    the_operators_client_never_reaches_a_custom_host(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_operators_client_never_reaches_a_custom_host_postgres() {
    the_operators_client_never_reaches_a_custom_host(Backend::Postgres).await;
}

/// Answers with everything it was sent, in every form a careless provider might: the headers
/// as they came, the body, and the Basic credentials decoded.
struct Echo {
    status: u16,
    /// Where in a JSON object the echo goes, e.g. `error_description` or `user.email`.
    field: &'static str,
}

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        // What matters first: a provider's text is cut short before it is kept.
        let mut echoed = String::new();
        if let Some(value) = request.headers.get("authorization").and_then(|v| v.to_str().ok()) {
            echoed.push_str(&format!("authorization: {value} "));
            if let Some(basic) = value.strip_prefix("Basic ") {
                let decoded = STANDARD.decode(basic).unwrap_or_default();
                echoed.push_str(&format!("decoded: {} ", String::from_utf8_lossy(&decoded)));
            }
        }
        echoed.push_str(&format!("body: {} url: {} ", String::from_utf8_lossy(&request.body), request.url));
        for (name, value) in request.headers.iter().filter(|(name, _)| name.as_str() != "authorization") {
            echoed.push_str(&format!("{name}: {} ", value.to_str().unwrap_or_default()));
        }
        let body = match self.field {
            "user.email" => json!({ "user": { "email": echoed } }),
            field => json!({ "error": "invalid_client", field: echoed }),
        };
        ResponseTemplate::new(self.status).set_body_json(body)
    }
}

/// Everything a member can read about a connection: the connection with its checks, and the
/// team's audit trail.
async fn everything_shown(app: &TestApp, token: &str, team_id: &str, id: &str) -> String {
    let connection = app
        .ok(
            token,
            "query($id: ID!) { connection(id: $id) { status accountLabel fields lastVerification { outcome message accountLabel } verifications { outcome message accountLabel } } }",
            json!({ "id": id }),
        )
        .await;
    let audit = app
        .ok(
            token,
            "query($t: ID!) { team(id: $t) { auditEvents { edges { node { action detail } } } } }",
            json!({ "t": team_id }),
        )
        .await;
    format!("{connection}\n{audit}")
}

async fn secrets_echoed_by_a_token_endpoint_are_redacted(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    Mock::given(method("POST"))
        .and(path("/echo/token"))
        .respond_with(Echo { status: 401, field: "error_description" })
        .mount(&app.provider)
        .await;
    let secret = "m@chine secret/+&=\"é";
    let input = json!({ "input": { "teamId": member.team_id, "app": "http-oauth2-client-credentials", "name": "Machine",
        "fields": { "token_url": format!("{}/echo/token", app.provider.uri()), "api_base_url": app.provider.uri(),
                    "verify_path": "/me", "client_id": "machine id", "client_secret": secret } } });
    let created = app.ok(&member.token, CREATE_CONNECTION, input).await;
    let id = created["createConnection"]["connection"]["id"].as_str().unwrap();
    let message = created["createConnection"]["verification"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("***"), "the provider's echo was kept, redacted: {message}");
    let basic_pair = format!(
        "{}:{}",
        url::form_urlencoded::byte_serialize(b"machine id").collect::<String>(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
    );
    let shown = format!("{created}\n{}", everything_shown(&app, &member.token, &member.team_id, id).await);
    assert_nothing_of(secret, &shown, "what members see");
    assert_nothing_of(&basic_pair, &shown, "what members see");
}

#[tokio::test]
async fn secrets_echoed_by_a_token_endpoint_are_redacted_sqlite() {
    secrets_echoed_by_a_token_endpoint_are_redacted(Backend::Sqlite).await;
}

#[tokio::test]
async fn secrets_echoed_by_a_token_endpoint_are_redacted_postgres() {
    secrets_echoed_by_a_token_endpoint_are_redacted(Backend::Postgres).await;
}

async fn secrets_echoed_into_the_account_label_are_redacted(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    Mock::given(method("GET"))
        .and(path("/crm/me"))
        .respond_with(Echo { status: 200, field: "user.email" })
        .mount(&app.provider)
        .await;
    // Header values are ASCII; the form and Basic tests above cover the rest.
    let key = "crm key/+&=\"x";
    let input = json!({ "input": { "teamId": member.team_id, "app": "test-crm", "name": "CRM", "fields": { "api_key": key } } });
    let created = app.ok(&member.token, CREATE_CONNECTION, input).await;
    let id = created["createConnection"]["connection"]["id"].as_str().unwrap();
    assert_eq!(created["createConnection"]["verification"]["outcome"], "OK", "{created}");
    let shown = format!("{created}\n{}", everything_shown(&app, &member.token, &member.team_id, id).await);
    assert!(shown.contains("***"), "the echoed label was kept, redacted: {shown}");
    assert_nothing_of(key, &shown, "what members see");
}

#[tokio::test]
async fn secrets_echoed_into_the_account_label_are_redacted_sqlite() {
    secrets_echoed_into_the_account_label_are_redacted(Backend::Sqlite).await;
}

#[tokio::test]
async fn secrets_echoed_into_the_account_label_are_redacted_postgres() {
    secrets_echoed_into_the_account_label_are_redacted(Backend::Postgres).await;
}

async fn urls_the_egress_policy_refuses_are_refused_at_create_and_edit(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("PLUGBOARD_EGRESS_ALLOW_PRIVATE", "false")]).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let count = || async {
        app.ok(
            &member.token,
            "query($t: ID!) { team(id: $t) { connections { totalCount } } }",
            json!({ "t": member.team_id }),
        )
        .await["team"]["connections"]["totalCount"]
            .clone()
    };
    // OAuth: nothing is fetched at create, so the token URL is judged before the consent starts.
    for (field, fields) in [
        (
            "fields.token_url",
            json!({ "authorize_url": "https://93.184.216.34/authorize", "token_url": "http://169.254.169.254/token",
                    "api_base_url": "https://93.184.216.34", "verify_path": "/me", "client_id": "c", "client_secret": "s-egress" }),
        ),
        (
            "fields.api_base_url",
            json!({ "authorize_url": "https://93.184.216.34/authorize", "token_url": "https://93.184.216.34/token",
                    "api_base_url": "http://localhost:9", "verify_path": "/me", "client_id": "c", "client_secret": "s-egress" }),
        ),
    ] {
        let input = json!({ "input": { "teamId": member.team_id, "app": "http-oauth2", "name": "Generic", "fields": fields } });
        let body = app.graphql(Some(&member.token), CREATE_CONNECTION, input).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("internal address"), "{body}");
        assert!(!body.to_string().contains("s-egress"));
    }
    assert_eq!(count().await, 0, "nothing was stored");

    // An edit to an internal host is refused the same way and changes nothing.
    let input = json!({ "input": { "teamId": member.team_id, "app": "http-oauth2", "name": "Generic", "fields": {
        "authorize_url": "https://93.184.216.34/authorize", "token_url": "https://93.184.216.34/token",
        "api_base_url": "https://93.184.216.34", "verify_path": "/me", "client_id": "c", "client_secret": "s" } } });
    let created = app.ok(&member.token, CREATE_CONNECTION, input).await;
    let id = created["createConnection"]["connection"]["id"].as_str().unwrap();
    let version = created["createConnection"]["connection"]["version"].clone();
    let edit = app
        .graphql(
            Some(&member.token),
            "mutation($id: ID!, $input: EditConnectionInput!) { editConnection(id: $id, input: $input) { authorizationUrl } }",
            json!({ "id": id, "input": { "fields": { "authorize_url": "https://93.184.216.34/authorize",
                "token_url": "http://10.0.0.7/token", "api_base_url": "https://93.184.216.34", "verify_path": "/me",
                "client_id": "c", "client_secret": "s" } } }),
        )
        .await;
    assert_eq!(error_code(&edit), "BAD_USER_INPUT", "{edit}");
    assert_eq!(edit["errors"][0]["extensions"]["field"], "fields.token_url", "{edit}");
    let after = app
        .ok(&member.token, "query($id: ID!) { connection(id: $id) { version fields } }", json!({ "id": id }))
        .await;
    assert_eq!(after["connection"]["version"], version);
    assert_eq!(after["connection"]["fields"]["token_url"], "https://93.184.216.34/token");
}

#[tokio::test]
async fn urls_the_egress_policy_refuses_are_refused_at_create_and_edit_sqlite() {
    urls_the_egress_policy_refuses_are_refused_at_create_and_edit(Backend::Sqlite).await;
}

#[tokio::test]
async fn urls_the_egress_policy_refuses_are_refused_at_create_and_edit_postgres() {
    urls_the_egress_policy_refuses_are_refused_at_create_and_edit(Backend::Postgres).await;
}

async fn a_401_naming_a_missing_scope_is_not_a_dead_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let fake = FakeOAuth::mount(&app.provider).await;
    let input = json!({ "input": { "teamId": member.team_id, "app": "test-oauth", "name": "Records", "fields": {} } });
    let created = app.ok(&member.token, CREATE_CONNECTION, input).await;
    let id = created["createConnection"]["connection"]["id"].as_str().unwrap().to_owned();
    let url = created["createConnection"]["authorizationUrl"].as_str().unwrap().to_owned();
    let (status, page) = consent(&app, &url).await;
    assert_eq!(status, 200, "{page}");
    let token_requests = fake.token_requests();

    // RFC 6750: the token is fine, it lacks a scope (Dropbox does the same with a 401).
    let challenge = r#"Bearer realm="test", error="insufficient_scope", scope="records.write""#;
    Mock::given(method("GET"))
        .and(path("/oauth-api/me"))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge))
        .with_priority(1)
        .mount(&app.provider)
        .await;
    let checked = app
        .ok(
            &member.token,
            "mutation($id: ID!) { verifyConnection(id: $id) { outcome message } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(checked["verifyConnection"]["outcome"], "INSUFFICIENT_SCOPES", "{checked}");
    assert!(checked["verifyConnection"]["message"].as_str().unwrap().contains("records.write"), "{checked}");
    assert_eq!(fake.token_requests(), token_requests, "no pointless forced refresh");
    let after = app
        .ok(
            &member.token,
            "query($id: ID!) { connection(id: $id) { lastVerification { outcome } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(after["connection"]["lastVerification"]["outcome"], "INSUFFICIENT_SCOPES", "{after}");
}

#[tokio::test]
async fn a_401_naming_a_missing_scope_is_not_a_dead_token_sqlite() {
    a_401_naming_a_missing_scope_is_not_a_dead_token(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_401_naming_a_missing_scope_is_not_a_dead_token_postgres() {
    a_401_naming_a_missing_scope_is_not_a_dead_token(Backend::Postgres).await;
}

/// A URL's user and password would be stored in a shown field, and logged with the URL.
#[tokio::test]
async fn credentials_in_a_url_are_refused_and_never_echoed() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let fields =
        json!({ "base_url": "https://ana:pw-in-url@api.example.com", "api_key": "k", "verify_path": "/me" });
    let input = json!({ "input": { "teamId": member.team_id, "app": "http-api-key", "name": "Generic", "fields": fields } });
    let body = app.graphql(Some(&member.token), CREATE_CONNECTION, input).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "fields.base_url", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("user name or password"), "{body}");
    assert!(!body.to_string().contains("pw-in-url"), "{body}");
    assert_eq!(app.connection_count(&member).await, 0, "nothing was stored");

    let hook = "mutation($t: ID!, $url: String!) { createWebhook(teamId: $t, url: $url, secret: \"0123456789abcdef0123\") { id } }";
    let body = app
        .graphql(
            Some(&member.token),
            hook,
            json!({ "t": member.team_id, "url": "https://hook:pw-in-url@hooks.example.com/in" }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "url", "{body}");
    assert!(!body.to_string().contains("pw-in-url"), "{body}");
}
