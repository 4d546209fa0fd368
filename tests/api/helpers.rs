//! `TestApp`: the real service on port 0 with a fresh database, and a client that talks to it
//! over HTTP. Logs are printed only with `TEST_LOG=1`.

use std::collections::HashMap;
use std::path::PathBuf;

use plugboard::config::Config;
use plugboard::domain::{ConnectionId, Email, TeamId, TeamName, TeamRole};
use plugboard::events::{Event, VerificationEvent};
use plugboard::startup::Application;
use plugboard::state::AppState;
use plugboard::{bootstrap, telemetry};
use sea_orm::ConnectionTrait;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// The operator's OAuth client for `test-oauth`.
pub const OAUTH_CLIENT_ID: &str = "plugboard-client";
pub const OAUTH_CLIENT_SECRET: &str = "client-secret-never-shown";

/// The master key every test app seals with (32 bytes of 0x07, base64).
pub const TEST_MASTER_KEYS: &str = "k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    /// A local stand-in for providers: `openai` and `test-crm` point here.
    pub provider: wiremock::MockServer,
    pub state: AppState,
    pub client: reqwest::Client,
    pub database_url: String,
    /// The SQLite file, for tests that inspect what is stored on disk.
    pub sqlite_file: Option<PathBuf>,
    /// The environment the app was built from, so a sibling instance can share its database.
    env: HashMap<String, String>,
    /// Keeps the data directory alive as long as the app.
    _data_dir: tempfile::TempDir,
}

/// A team member's view of a test team.
#[derive(Debug, Clone)]
pub struct Member {
    pub team_id: String,
    pub token: String,
}

impl TestApp {
    /// Spawns the app on `backend`; `None` when that backend is not configured for this run
    /// (PostgreSQL needs `PLUGBOARD_TEST_DATABASE_URL`).
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, extra_env: &[(&str, &str)]) -> Option<TestApp> {
        if std::env::var_os("TEST_LOG").is_some() {
            telemetry::init(plugboard::config::LogFormat::Text);
        }
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let provider = wiremock::MockServer::start().await;
        let providers_dir = data_dir.path().join("providers");
        write_test_catalog(&providers_dir, &provider.uri());
        // What `openai` answers unless a test says otherwise.
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path("/v1/models"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({ "data": [] })))
            .with_priority(10)
            .mount(&provider)
            .await;
        let (database_url, sqlite_file) = match backend {
            Backend::Sqlite => {
                let file = data_dir.path().join("plugboard.db");
                (format!("sqlite://{}?mode=rwc", file.display()), Some(file))
            }
            Backend::Postgres => (fresh_postgres_database().await?, None),
        };
        let mut env: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), database_url.clone()),
            ("PLUGBOARD_LISTEN".into(), "127.0.0.1:0".into()),
            ("PLUGBOARD_DATA_DIR".into(), data_dir.path().display().to_string()),
            ("PLUGBOARD_MASTER_KEYS".into(), TEST_MASTER_KEYS.into()),
            ("PLUGBOARD_PROVIDERS_DIR".into(), providers_dir.display().to_string()),
            // Generic apps in tests point at the local provider on loopback.
            ("PLUGBOARD_EGRESS_ALLOW_PRIVATE".into(), "true".into()),
            ("PLUGBOARD_HTTP_TIMEOUT_SECS".into(), "2".into()),
            // Tests create connections by the hundred; `hostile` tests the rate limit itself.
            ("PLUGBOARD_PROVIDER_CALLS_PER_MINUTE".into(), "100000".into()),
            ("PLUGBOARD_APP_TEST_OAUTH_CLIENT_ID".into(), OAUTH_CLIENT_ID.into()),
            ("PLUGBOARD_APP_TEST_OAUTH_CLIENT_SECRET".into(), OAUTH_CLIENT_SECRET.into()),
            ("PLUGBOARD_APP_TEST_INSTANCE_CLIENT_ID".into(), OAUTH_CLIENT_ID.into()),
            ("PLUGBOARD_APP_TEST_CHAT_CLIENT_ID".into(), OAUTH_CLIENT_ID.into()),
            ("PLUGBOARD_APP_TEST_CHAT_CLIENT_SECRET".into(), OAUTH_CLIENT_SECRET.into()),
            ("PLUGBOARD_APP_TEST_INSTANCE_CLIENT_SECRET".into(), OAUTH_CLIENT_SECRET.into()),
        ]);
        for (k, v) in extra_env {
            env.insert((*k).into(), (*v).into());
        }
        let (address, state) = start(&env).await;
        Some(TestApp {
            address,
            provider,
            state,
            // Idle connections are dropped before the service's keep-alive (5 s) would close
            // them: a request sent on a connection the server is closing fails to send.
            client: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
            database_url,
            sqlite_file,
            env,
            _data_dir: data_dir,
        })
    }

    /// A second instance of the service on the same database and provider, as when several
    /// instances share one PostgreSQL.
    pub async fn spawn_sibling(&self) -> Sibling {
        let (address, state) = start(&self.env).await;
        Sibling { address, state }
    }

    /// Posts a GraphQL request and answers the JSON body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the app answers");
        response.json().await.expect("a JSON answer")
    }

    /// Like `graphql`, but fails the test on any error and answers `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.graphql(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// A new team with one member in `role`, through the same code as `plugboard bootstrap`.
    pub async fn member(&self, team: &str, email: &str, role: TeamRole) -> Member {
        let done = bootstrap::team_member(
            &self.state.db,
            &TeamName::parse(team).unwrap(),
            &Email::parse(email).unwrap(),
            role,
        )
        .await
        .expect("bootstrap works");
        Member { team_id: done.team.id.to_string(), token: done.token.token.expose_secret().to_owned() }
    }

    /// A new user token for an existing user, as `createApiToken` would give them.
    pub async fn member_token_for(&self, email: &str) -> String {
        let user = plugboard::store::teams::find_user_by_email(&self.state.db, &Email::parse(email).unwrap())
            .await
            .unwrap()
            .expect("the user exists");
        let token = plugboard::access::issue_user_token(&self.state.db, user.id, "test", None).await.unwrap();
        token.token.expose_secret().to_owned()
    }

    pub async fn service_token(&self, team: &str) -> String {
        let token = bootstrap::service_token(&self.state.db, &TeamName::parse(team).unwrap())
            .await
            .expect("service token");
        token.token.expose_secret().to_owned()
    }

    /// Creates an OpenAI connection (an API-key app) and answers its id.
    /// How many connections `member`'s team has.
    pub async fn connection_count(&self, member: &Member) -> Value {
        let query = "query($t: ID!) { team(id: $t) { connections { totalCount } } }";
        self.ok(&member.token, query, json!({ "t": member.team_id })).await["team"]["connections"]["totalCount"].clone()
    }

    pub async fn create_api_key_connection(&self, member: &Member, name: &str, api_key: &str) -> String {
        self.create_connection(member, "openai", name, json!({ "api_key": api_key })).await
    }

    /// A username-and-password login to an intranet at the test provider, checked with a GET of
    /// its root: whatever the provider answers there decides its status.
    pub async fn create_basic_login_connection(&self, member: &Member, name: &str) -> String {
        let fields =
            json!({ "base_url": self.provider.uri(), "username": "u", "password": "p", "verify_path": "/" });
        self.create_connection(member, "http-basic", name, fields).await
    }

    /// Creates a connection to `app` in `member`'s team and answers its id.
    async fn create_connection(&self, member: &Member, app: &str, name: &str, fields: Value) -> String {
        let input =
            json!({ "input": { "teamId": member.team_id, "app": app, "name": name, "fields": fields } });
        let data = self.ok(&member.token, CREATE_CONNECTION, input).await;
        data["createConnection"]["connection"]["id"].as_str().unwrap().to_owned()
    }
}

/// Another instance of the same service, sharing the first one's database.
pub struct Sibling {
    pub address: String,
    pub state: AppState,
}

async fn start(env: &HashMap<String, String>) -> (String, AppState) {
    let mut config = Config::from_vars(env.clone()).expect("a valid test configuration");
    config.seed_demo = false;
    let app = Application::build(config).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    (address, state)
}

pub const CREATE_CONNECTION: &str = r#"
mutation Create($input: CreateConnectionInput!) {
  createConnection(input: $input) {
    authorizationUrl
    verification { outcome message accountLabel }
    connection { id name status authType fields secretFields scopes version app { key } }
  }
}"#;

pub const EDIT_CONNECTION: &str = r#"
mutation Edit($id: ID!, $input: EditConnectionInput!) {
  editConnection(id: $id, input: $input) {
    connection { id name status fields secretFields scopes version }
  }
}"#;

/// The `extensions.code` of the first error, panicking with the body if there is none.
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code: {body:#}"))
        .to_owned()
}

/// The test catalog: the real `openai` entry pointed at the local provider, and `test-crm`, an
/// app that exists only here, with an account label and an app-specific scope signal.
pub fn write_test_catalog(dir: &std::path::Path, provider: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let openai = include_str!("../../providers/openai.toml")
        .replace("https://api.openai.com/v1", &format!("{provider}/v1"));
    assert!(openai.contains(provider), "the openai entry was redirected");
    std::fs::write(dir.join("openai.toml"), openai).unwrap();
    let crm = format!(
        r#"
key = "test-crm"
name = "Test CRM"
description = "A CRM that exists only in the tests."
docs_url = "https://example.com/docs"
auth_type = "API_KEY"
api_base_url = "{provider}/crm"

[[fields]]
key = "api_key"
label = "API key"
secret = true
required = true

[credentials]
headers = [{{ name = "Authorization", value = "Bearer {{api_key}}" }}]

[verify]
path = "/me"
account_pointer = "/user/email"
insufficient_scope_body = "missing_scope"

[[modules]]
key = "list-contacts"
name = "List contacts"
scopes = ["contacts.read"]
"#
    );
    std::fs::write(dir.join("test-crm.toml"), crm).unwrap();
    let oauth = format!(
        r#"
key = "test-oauth"
name = "Test OAuth"
description = "An OAuth 2.0 provider that exists only in the tests."
docs_url = "https://example.com/docs"
auth_type = "OAUTH2"
api_base_url = "{provider}/oauth-api"
default_scopes = ["profile"]

# As Shopify's write scopes include their read scopes.
[implied_scopes]
"records.write" = ["records.read"]

[oauth]
authorize_url = "{provider}/oauth/authorize"
token_url = "{provider}/oauth/token"
client_auth = "basic"
extra_authorize_params = {{ audience = "plugboard-tests" }}

[[fields]]
key = "client_id"
label = "Client ID (advanced)"

[[fields]]
key = "client_secret"
label = "Client secret (advanced)"
secret = true

[credentials]
headers = [{{ name = "Authorization", value = "Bearer {{access_token}}" }}]

[verify]
path = "/me"
account_pointer = "/email"
# As Dropbox's 401 `missing_scope`.
insufficient_scope_body = "missing_scope"

[[modules]]
key = "read-records"
name = "Read records"
scopes = ["profile", "records.read"]
"#
    );
    std::fs::write(dir.join("test-oauth.toml"), oauth).unwrap();
    // As Slack: OAuth, and failures answered with HTTP 200 and `{"ok": false, "error": ...}`.
    let chat = format!(
        r#"
key = "test-chat"
name = "Test Chat"
description = "An OAuth app that answers failures with HTTP 200, only in the tests."
docs_url = "https://example.com/docs"
auth_type = "OAUTH2"
api_base_url = "{provider}/chat-api"
default_scopes = ["chat:read"]

[oauth]
authorize_url = "{provider}/oauth/authorize"
token_url = "{provider}/oauth/token"

[credentials]
headers = [{{ name = "Authorization", value = "Bearer {{access_token}}" }}]

[verify]
method = "POST"
path = "/auth.test"
account_pointer = "/user"
ok_body = [{{ pointer = "/ok", equals = true }}]

[[verify.failures]]
outcome = "INSUFFICIENT_SCOPES"
pointer = "/error"
equals = "missing_scope"
scope_pointer = "/needed"

[[verify.failures]]
outcome = "INVALID_CREDENTIALS"
pointer = "/error"
equals = ["invalid_auth", "token_revoked", "token_expired"]
"#
    );
    std::fs::write(dir.join("test-chat.toml"), chat).unwrap();
    let machine = format!(
        r#"
key = "test-machine"
name = "Test Machine API"
description = "A client-credentials API that exists only in the tests."
docs_url = "https://example.com/docs"
auth_type = "OAUTH2_CLIENT_CREDENTIALS"
api_base_url = "{provider}/oauth-api"

[oauth]
token_url = "{provider}/oauth/token"
client_auth = "post"

[[fields]]
key = "client_id"
label = "Client ID"
required = true

[[fields]]
key = "client_secret"
label = "Client secret"
secret = true
required = true

[credentials]
headers = [{{ name = "Authorization", value = "Bearer {{access_token}}" }}]

[verify]
path = "/me"
account_pointer = "/email"
"#
    );
    std::fs::write(dir.join("test-machine.toml"), machine).unwrap();
    // Like Salesforce: the API host is the `instance_url` the token endpoint names.
    let instance = format!(
        r#"
key = "test-instance"
name = "Test Instance"
description = "An OAuth 2.0 provider whose API host comes with the token, only in the tests."
docs_url = "https://example.com/docs"
auth_type = "OAUTH2"
api_base_url = "{{instance_url}}/oauth-api"

[oauth]
authorize_url = "{provider}/oauth/authorize"
token_url = "{provider}/oauth/token"
client_auth = "basic"
token_fields = ["instance_url"]

[credentials]
headers = [{{ name = "Authorization", value = "Bearer {{access_token}}" }}]

[verify]
path = "/me"
account_pointer = "/email"
"#
    );
    std::fs::write(dir.join("test-instance.toml"), instance).unwrap();

    write_proxy_apps(dir, provider);
}

/// Apps for the proxy's tests: modules that declare their requests, and published rate limits.
fn write_proxy_apps(dir: &std::path::Path, provider: &str) {
    for (key, limits) in [
        ("test-proxy", ""),
        ("test-limited", "[rate_limits]\nper_connection = { requests = 2, per_secs = 60 }\n"),
        ("test-paced", "[rate_limits]\nper_app = { requests = 2, per_secs = 1 }\n"),
    ] {
        let app = format!(
            r#"
key = "{key}"
name = "Proxy {key}"
description = "An API-key app for the proxy's tests."
docs_url = "https://example.com/docs"
auth_type = "API_KEY"
api_base_url = "{provider}/{key}-api/v2"

[[fields]]
key = "api_key"
label = "API key"
secret = true
required = true

[credentials]
headers = [{{ name = "X-Api-Key", value = "{{api_key}}" }}]
query = [{{ name = "key", value = "{{api_key}}" }}]

[verify]
path = "/me"
insufficient_scope_body = "missing_scope"

# As Asana's and Todoist's: at the verification request, where nothing else can be refused, a
# 403 is a scope; on a proxied call it is not taken to be one.
[[verify.failures]]
outcome = "INSUFFICIENT_SCOPES"
statuses = [403]

[[modules]]
key = "read-items"
name = "Read items"
requests = [{{ method = "GET", path = "/items" }}, {{ method = "GET", path = "/items/*" }}]

[[modules]]
key = "upload"
name = "Upload files"
requests = [{{ method = "POST", path = "/files/**" }}]

{limits}"#
        );
        std::fs::write(dir.join(format!("{key}.toml")), app).unwrap();
    }
}

/// A database of its own on the PostgreSQL server named by `PLUGBOARD_TEST_DATABASE_URL`.
async fn fresh_postgres_database() -> Option<String> {
    let admin_url = std::env::var("PLUGBOARD_TEST_DATABASE_URL").ok()?;
    let name = format!("plugboard_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(&admin_url).await.expect("PLUGBOARD_TEST_DATABASE_URL answers");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("can create a test database");
    admin.close().await.ok();
    let mut url = url::Url::parse(&admin_url).expect("PLUGBOARD_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    Some(url.to_string())
}

/// Runs each listed `async fn(TestApp)` as two tests: `name::sqlite` always, and
/// `name::postgres` when `PLUGBOARD_TEST_DATABASE_URL` is set.
#[macro_export]
macro_rules! on_every_database {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await.unwrap();
                super::$name(app).await;
            }

            #[tokio::test]
            async fn postgres() {
                match $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await {
                    Some(app) => super::$name(app).await,
                    None => eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL"),
                }
            }
        }
    )+};
}

/// Waits until every event staged so far has reached this instance's subscribers: events
/// leave after the change commits, so a subscriber that starts now sees only what happens next.
///
/// An empty outbox is not enough on PostgreSQL: its events were sent with `NOTIFY`, and come
/// back through `LISTEN` a moment later. So a marker follows them through the same queue, and
/// PostgreSQL delivers notifications in the order they were committed: once the marker is
/// heard, everything before it was.
pub async fn events_settled(state: &AppState) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while plugboard::store::outbox::backlog(&state.db).await.expect("the outbox is readable") > 0 {
        assert!(std::time::Instant::now() < deadline, "staged events were never published");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (mut heard, _) = state.events.subscribe();
    let marker = ConnectionId::new();
    // A check starting on a team nobody belongs to: no subscriber is told of it.
    state.events.publish(VerificationEvent::started(TeamId::new(), marker)).await;
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(remaining, heard.recv()).await {
            Ok(Ok(event)) => match &*event {
                Event::Verification(check) if check.connection_id == marker => return,
                _ => continue,
            },
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(closed)) => panic!("the event bus closed: {closed}"),
            Err(_) => panic!("published events never came back to this instance"),
        }
    }
}

/// Waits until `state` holds more than `before` subscriptions: a subscription starts
/// asynchronously after its `subscribe` message, and events published before miss it.
pub async fn wait_for_subscriber(state: &AppState, before: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while state.events.subscribers() <= before {
        assert!(std::time::Instant::now() < deadline, "the subscription never started");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
