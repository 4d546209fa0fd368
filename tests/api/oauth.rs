//! OAuth connections end to end: consent through the authorize redirect, the callback, refresh
//! with rotation, single flight, revocation, reauthorization and edits.

use std::collections::HashMap;

use chrono::Utc;
use plugboard::connections::{fresh_access_token, open_secrets};
use plugboard::domain::{Connection, ConnectionId, TeamId, TeamRole};
use plugboard::store::entities::connection;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::fake_oauth::{FakeOAuth, TokenMode};
use crate::helpers::{
    Backend, CREATE_CONNECTION, Member, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, TestApp, error_code,
};
use crate::on_every_database;

on_every_database!(
    consent_activates_the_connection_with_tokens_and_scopes,
    an_expired_token_is_refreshed_and_the_rotated_refresh_token_stored,
    concurrent_uses_of_an_expired_token_make_one_token_request,
    a_revoked_grant_needs_reauthorization,
    an_outage_during_refresh_changes_nothing,
    reauthorization_replaces_tokens_and_abandoning_it_changes_nothing,
    an_oauth_edit_waits_for_consent,
    reauthorizing_as_another_account_is_refused,
    a_state_works_once_and_not_after_it_expires,
);

pub(crate) const STATUS: &str = "query($id: ID!) { connection(id: $id) { name status scopes expiresAt accountLabel version fields secretFields lastVerification { outcome message } } }";

pub(crate) struct Setup {
    pub app: TestApp,
    pub member: Member,
    pub provider: FakeOAuth,
}

pub(crate) async fn setup(app: TestApp) -> Setup {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let provider = FakeOAuth::mount(&app.provider).await;
    Setup { app, member, provider }
}

/// Creates a `test-oauth` connection and answers its id and consent URL.
pub(crate) async fn create(s: &Setup, scopes: &[&str]) -> (String, String, Value) {
    let data = s
        .app
        .ok(
            &s.member.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": s.member.team_id, "app": "test-oauth", "name": "Records", "fields": {}, "scopes": scopes } }),
        )
        .await;
    let created = data["createConnection"].clone();
    let id = created["connection"]["id"].as_str().unwrap().to_owned();
    let url = created["authorizationUrl"].as_str().expect("an authorization URL").to_owned();
    (id, url, created)
}

/// Plays the browser: opens the consent URL, follows the provider's redirect to the callback,
/// and answers the callback's status and page.
/// Starts a reauthorization of connection `id` as the team's member; answers where to consent.
pub(crate) async fn start_reauthorization(s: &Setup, id: &str) -> String {
    let started = s
        .app
        .ok(
            &s.member.token,
            "mutation($id: ID!) { reauthorizeConnection(id: $id) { authorizationUrl } }",
            json!({ "id": id }),
        )
        .await;
    started["reauthorizeConnection"]["authorizationUrl"].as_str().expect("an authorization URL").to_owned()
}

/// Reauthorizes connection `id` through the provider's consent; answers the callback's status
/// and page.
pub(crate) async fn reauthorize(s: &Setup, id: &str) -> (u16, String) {
    consent(s, &start_reauthorization(s, id).await).await
}

pub(crate) async fn consent(s: &Setup, authorization_url: &str) -> (u16, String) {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let at_provider = browser.get(authorization_url).send().await.unwrap();
    assert_eq!(at_provider.status(), 302, "the provider redirects back");
    let callback = at_provider.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{}/oauth/callback?", s.app.address)), "{callback}");
    callback_page(&browser, &callback).await
}

pub(crate) async fn callback_page(browser: &reqwest::Client, url: &str) -> (u16, String) {
    let page = browser.get(url).send().await.unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

pub(crate) async fn status(s: &Setup, id: &str) -> Value {
    s.app.ok(&s.member.token, STATUS, json!({ "id": id })).await["connection"].clone()
}

pub(crate) async fn load(s: &Setup, id: &str) -> Connection {
    let team: TeamId = s.member.team_id.parse().unwrap();
    plugboard::store::connections::find(&s.app.state.db, team, id.parse().unwrap()).await.unwrap().unwrap()
}

/// The tokens sealed in the connection's blob.
pub(crate) async fn stored_tokens(s: &Setup, id: &str) -> (String, Option<String>) {
    let row = connection::Entity::find_by_id(id.parse::<ConnectionId>().unwrap())
        .one(&s.app.state.db)
        .await
        .unwrap()
        .unwrap();
    let secrets =
        open_secrets(&s.app.state.sealer, row.team_id, row.id, row.sealed_secrets.as_deref().unwrap())
            .unwrap();
    (
        secrets["access_token"].expose_secret().to_owned(),
        secrets.get("refresh_token").map(|t| t.expose_secret().to_owned()),
    )
}

pub(crate) async fn expire_token(s: &Setup, id: &str) {
    connection::Entity::update_many()
        .col_expr(connection::Column::ExpiresAt, Expr::value(Utc::now() - chrono::Duration::minutes(1)))
        .filter(connection::Column::Id.eq(id.parse::<ConnectionId>().unwrap()))
        .exec(&s.app.state.db)
        .await
        .unwrap();
}

pub(crate) async fn connected(s: &Setup) -> String {
    let (id, url, _) = create(s, &["records.read"]).await;
    let (code, page) = consent(s, &url).await;
    assert_eq!(code, 200, "{page}");
    id
}

fn assert_no_tokens(text: &str) {
    for needle in ["access-token-secret", "refresh-token-secret", OAUTH_CLIENT_SECRET, "code-"] {
        assert!(!text.contains(needle), "{needle} leaked: {text}");
    }
}

async fn consent_activates_the_connection_with_tokens_and_scopes(app: TestApp) {
    let s = setup(app).await;
    let (id, url, created) = create(&s, &["records.read"]).await;
    assert_eq!(created["connection"]["status"], "PENDING_AUTHORIZATION");
    let url = url::Url::parse(&url).unwrap();
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/oauth/authorize");
    assert_eq!(params["client_id"], OAUTH_CLIENT_ID);
    assert_eq!(params["redirect_uri"], format!("{}/oauth/callback", s.app.address));
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["scope"], "profile records.read", "the app's defaults plus those requested");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["audience"], "plugboard-tests", "the app's extra parameters");
    assert_eq!(params["state"].len(), 43, "256 random bits");

    let (code, page) = consent(&s, url.as_str()).await;
    assert_eq!(code, 200);
    assert!(
        page.contains("postMessage") && page.contains(&id) && page.contains("\"outcome\":\"success\""),
        "{page}"
    );
    assert_no_tokens(&page);

    let connection = status(&s, &id).await;
    assert_eq!(connection["status"], "ACTIVE");
    assert_eq!(connection["scopes"], json!(["profile", "records.read"]));
    assert_eq!(connection["accountLabel"], "owner@provider.test");
    assert!(connection["expiresAt"].is_string());
    assert_eq!(connection["secretFields"], json!([]), "tokens are not form fields");
    assert_no_tokens(&connection.to_string());
    let forms = s.provider.token_forms();
    assert_eq!(forms[0]["grant_type"], "authorization_code");
    assert!(forms[0].contains_key("code_verifier"), "PKCE verifier sent with the code");
    let (access, refresh) = stored_tokens(&s, &id).await;
    assert_eq!(access, "access-token-secret-2");
    assert_eq!(refresh.as_deref(), Some("refresh-token-secret-2"));
}

async fn an_expired_token_is_refreshed_and_the_rotated_refresh_token_stored(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    let before = s.provider.token_requests();
    let connection = load(&s, &id).await;
    let token = fresh_access_token(&s.app.state, &connection, false).await.unwrap();
    assert_eq!(s.provider.token_requests(), before, "a fresh token is used as it is");
    assert_eq!(token.expose_secret(), "access-token-secret-2");

    expire_token(&s, &id).await;
    let connection = load(&s, &id).await;
    let token = fresh_access_token(&s.app.state, &connection, false).await.unwrap();
    assert_eq!(s.provider.token_requests(), before + 1);
    assert_eq!(token.expose_secret(), "access-token-secret-3");
    let (access, refresh) = stored_tokens(&s, &id).await;
    assert_eq!(
        (access.as_str(), refresh.as_deref()),
        ("access-token-secret-3", Some("refresh-token-secret-3"))
    );
    assert!(!s.provider.is_live_refresh("refresh-token-secret-2"), "the old refresh token was spent");
    assert!(load(&s, &id).await.expires_at.unwrap() > Utc::now() + chrono::Duration::minutes(50));

    // A token the provider gives no expiry does not expire: it is used until refused.
    s.provider.set_expires_in(None);
    expire_token(&s, &id).await;
    fresh_access_token(&s.app.state, &load(&s, &id).await, false).await.unwrap();
    assert_eq!(load(&s, &id).await.expires_at, None, "no expiry means none");
    let before = s.provider.token_requests();
    let token = fresh_access_token(&s.app.state, &load(&s, &id).await, false).await.unwrap();
    assert_eq!(token.expose_secret(), "access-token-secret-4");
    assert_eq!(s.provider.token_requests(), before, "a token without expiry is not renewed on a clock");
}

async fn concurrent_uses_of_an_expired_token_make_one_token_request(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    expire_token(&s, &id).await;
    let connection = load(&s, &id).await;
    let before = s.provider.token_requests();
    let uses = (0..50).map(|_| fresh_access_token(&s.app.state, &connection, false));
    let tokens = futures_util::future::join_all(uses).await;
    assert_eq!(s.provider.token_requests() - before, 1, "exactly one token request");
    assert!(tokens.iter().all(|t| t.as_ref().unwrap().expose_secret() == "access-token-secret-3"));

    // Two instances on one PostgreSQL: the row lock makes the second read the first's token.
    if s.app.sqlite_file.is_some() {
        return;
    }
    let sibling = s.app.spawn_sibling().await;
    expire_token(&s, &id).await;
    let connection = load(&s, &id).await;
    let before = s.provider.token_requests();
    let on_a = (0..25).map(|_| fresh_access_token(&s.app.state, &connection, false));
    let on_b = (0..25).map(|_| fresh_access_token(&sibling.state, &connection, false));
    let (a, b) = tokio::join!(futures_util::future::join_all(on_a), futures_util::future::join_all(on_b));
    assert_eq!(s.provider.token_requests() - before, 1, "one token request across both instances");
    assert!(a.iter().chain(&b).all(|t| t.as_ref().unwrap().expose_secret() == "access-token-secret-4"));
}

async fn a_revoked_grant_needs_reauthorization(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    s.provider.revoke_all();
    s.provider.set_mode(TokenMode::InvalidGrant);
    let check = s
        .app
        .ok(
            &s.member.token,
            "mutation($id: ID!) { verifyConnection(id: $id) { outcome message } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(check["verifyConnection"]["outcome"], "NEEDS_REAUTHORIZATION", "{check}");
    assert!(check["verifyConnection"]["message"].as_str().unwrap().contains("reauthorize"));
    assert_eq!(status(&s, &id).await["status"], "NEEDS_REAUTHORIZATION");
}

async fn an_outage_during_refresh_changes_nothing(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    expire_token(&s, &id).await;
    s.provider.set_mode(TokenMode::Unavailable);
    let problem = fresh_access_token(&s.app.state, &load(&s, &id).await, false).await.unwrap_err();
    assert!(matches!(problem, plugboard::oauth::TokenProblem::Unavailable(_)), "{problem:?}");
    let check = s
        .app
        .ok(
            &s.member.token,
            "mutation($id: ID!) { verifyConnection(id: $id) { outcome } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(check["verifyConnection"]["outcome"], "PROVIDER_UNAVAILABLE");
    assert_eq!(status(&s, &id).await["status"], "ACTIVE");
    assert_eq!(
        stored_tokens(&s, &id).await.1.as_deref(),
        Some("refresh-token-secret-2"),
        "the refresh token is kept"
    );
}

async fn reauthorization_replaces_tokens_and_abandoning_it_changes_nothing(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    let reauthorize =
        "mutation($id: ID!) { reauthorizeConnection(id: $id) { authorizationUrl connection { status } } }";
    // Abandoned: the URL is never opened.
    let abandoned = s.app.ok(&s.member.token, reauthorize, json!({ "id": id })).await;
    assert!(abandoned["reauthorizeConnection"]["authorizationUrl"].is_string());
    assert_eq!(stored_tokens(&s, &id).await.0, "access-token-secret-2", "the old credentials stay in use");
    assert_eq!(status(&s, &id).await["status"], "ACTIVE");

    // The grant dies, the connection is flagged, and a completed reauthorization clears it.
    s.provider.revoke_all();
    s.provider.set_mode(TokenMode::InvalidGrant);
    expire_token(&s, &id).await;
    s.app
        .ok(
            &s.member.token,
            "mutation($id: ID!) { verifyConnection(id: $id) { outcome } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(status(&s, &id).await["status"], "NEEDS_REAUTHORIZATION");
    s.provider.set_mode(TokenMode::Normal);
    let started = s.app.ok(&s.member.token, reauthorize, json!({ "id": id })).await;
    let (code, page) =
        consent(&s, started["reauthorizeConnection"]["authorizationUrl"].as_str().unwrap()).await;
    assert_eq!(code, 200, "{page}");
    let after = status(&s, &id).await;
    assert_eq!(after["status"], "ACTIVE");
    assert_ne!(stored_tokens(&s, &id).await.0, "access-token-secret-2");
}

async fn an_oauth_edit_waits_for_consent(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    let edit = "mutation($id: ID!, $input: EditConnectionInput!) { editConnection(id: $id, input: $input) { authorizationUrl connection { name version } } }";
    let abandoned = s
        .app
        .ok(&s.member.token, edit, json!({ "id": id, "input": { "name": "Renamed", "fields": {} } }))
        .await;
    assert!(abandoned["editConnection"]["authorizationUrl"].is_string());
    assert_eq!(
        abandoned["editConnection"]["connection"]["name"], "Records",
        "nothing changes before consent"
    );
    assert_eq!(status(&s, &id).await["name"], "Records");

    let started = s
        .app
        .ok(&s.member.token, edit, json!({ "id": id, "input": { "name": "Renamed", "fields": {} } }))
        .await;
    let (code, _) = consent(&s, started["editConnection"]["authorizationUrl"].as_str().unwrap()).await;
    assert_eq!(code, 200);
    let after = status(&s, &id).await;
    assert_eq!(after["name"], "Renamed");
    assert_eq!(after["version"], 3);
    // The first (abandoned) consent can no longer complete over the newer version.
    let (code, page) = consent(&s, abandoned["editConnection"]["authorizationUrl"].as_str().unwrap()).await;
    assert_eq!(code, 200);
    assert!(page.contains("\"outcome\":\"error\""), "{page}");
    assert!(page.contains("\"code\":\"CONFLICT\""), "the opener learns why by code: {page}");
}

async fn reauthorizing_as_another_account_is_refused(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    s.provider.set_account("someone-else@provider.test");
    let (_, page) = reauthorize(&s, &id).await;
    assert!(page.contains("someone-else@provider.test") && page.contains("owner@provider.test"), "{page}");
    assert!(page.contains("\"outcome\":\"error\""));
    assert_eq!(stored_tokens(&s, &id).await.0, "access-token-secret-2", "nothing was replaced");
    assert_eq!(status(&s, &id).await["accountLabel"], "owner@provider.test");
}

async fn a_state_works_once_and_not_after_it_expires(app: TestApp) {
    let s = setup(app).await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (id, url, _) = create(&s, &[]).await;
    let callback = browser.get(&url).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(callback_page(&browser, &callback).await.0, 200);
    let (code, page) = callback_page(&browser, &callback).await;
    assert_eq!(code, 400, "a replayed state is refused");
    assert!(page.contains("expired or was already used"), "{page}");
    assert!(page.contains("\"code\":\"BAD_USER_INPUT\""), "{page}");

    let callback =
        browser.get(start_reauthorization(&s, &id).await).send().await.unwrap().headers()["location"]
            .to_str()
            .unwrap()
            .to_owned();
    plugboard::store::entities::oauth_state::Entity::update_many()
        .col_expr(plugboard::store::entities::oauth_state::Column::ExpiresAt, Expr::value(Utc::now()))
        .filter(
            plugboard::store::entities::oauth_state::Column::ConnectionId
                .eq(id.parse::<ConnectionId>().unwrap()),
        )
        .exec(&s.app.state.db)
        .await
        .unwrap();
    assert_eq!(callback_page(&browser, &callback).await.0, 400, "an expired state is refused");
    for bad in ["state=nonsense&code=x", "code=x", "state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&code=x"]
    {
        let (code, _) = callback_page(&browser, &format!("{}/oauth/callback?{bad}", s.app.address)).await;
        assert_eq!(code, 400, "{bad}");
    }
    assert_eq!(status(&s, &id).await["version"], 2, "nothing changed after the first consent");
}

#[tokio::test]
async fn a_refused_consent_leaves_connections_as_they_were() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    let id = connected(&s).await;
    s.provider.deny_consent(true);
    let (_, page) = reauthorize(&s, &id).await;
    assert!(page.contains("access_denied"), "{page}");
    assert!(page.contains("\"code\":\"CONSENT_DENIED\""), "{page}");
    assert_eq!(status(&s, &id).await["status"], "ACTIVE");

    let (pending, url, _) = create(&s, &[]).await;
    consent(&s, &url).await;
    let after = status(&s, &pending).await;
    assert_eq!(after["status"], "PENDING_AUTHORIZATION");
    assert!(after["lastVerification"]["message"].as_str().unwrap().contains("access_denied"), "{after}");
}

#[tokio::test]
async fn another_team_cannot_reauthorize_or_see_the_connection() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    let id = connected(&s).await;
    let other = s.app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    let body = s
        .app
        .graphql(
            Some(&other.token),
            "mutation($id: ID!) { reauthorizeConnection(id: $id) { authorizationUrl } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn an_app_without_a_client_names_the_variables_to_set() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let body = app
        .graphql(
            Some(&member.token),
            CREATE_CONNECTION,
            json!({ "input": { "teamId": member.team_id, "app": "github", "name": "GitHub", "fields": {} } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("PLUGBOARD_APP_GITHUB_CLIENT_ID")
            && message.contains("PLUGBOARD_APP_GITHUB_CLIENT_SECRET"),
        "{message}"
    );
    let count = app
        .ok(
            &member.token,
            "query($t: ID!) { team(id: $t) { connections { totalCount } } }",
            json!({ "t": member.team_id }),
        )
        .await;
    assert_eq!(count["team"]["connections"]["totalCount"], 0, "nothing was created");
}

#[tokio::test]
async fn client_credentials_connections_get_a_token_at_once_and_anew_on_expiry() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    let data = s
        .app
        .ok(
            &s.member.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": s.member.team_id, "app": "test-machine", "name": "Machine",
                "fields": { "client_id": "machine", "client_secret": "machine-secret" } } }),
        )
        .await;
    let created = &data["createConnection"];
    assert!(created["authorizationUrl"].is_null(), "nobody is asked for consent");
    assert_eq!(created["connection"]["status"], "ACTIVE", "{created}");
    let id = created["connection"]["id"].as_str().unwrap().to_owned();
    expire_token(&s, &id).await;
    let token = fresh_access_token(&s.app.state, &load(&s, &id).await, false).await.unwrap();
    assert_eq!(token.expose_secret(), "access-token-secret-2");
    let forms = s.provider.token_forms();
    assert!(forms.iter().all(|f| f["grant_type"] == "client_credentials"));

    let bad = s
        .app
        .ok(
            &s.member.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": s.member.team_id, "app": "test-machine", "name": "Wrong",
                "fields": { "client_id": "machine", "client_secret": "wrong-secret" } } }),
        )
        .await;
    assert_eq!(bad["createConnection"]["connection"]["status"], "INVALID");
    assert_no_tokens(&bad.to_string());
}

#[tokio::test]
async fn runners_get_a_fresh_access_token_or_needs_reauthorization() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    let id = connected(&s).await;
    let created = s
        .app
        .ok(
            &s.member.token,
            "mutation($input: CreateFlowInput!) { createFlow(input: $input) { flow { id } warnings { moduleKey } } }",
            json!({ "input": { "teamId": s.member.team_id, "name": "Records sync", "status": "ACTIVE",
                "modules": [{ "key": "read", "app": "test-oauth", "module": "read-records", "connectionId": id }] } }),
        )
        .await;
    assert_eq!(created["createFlow"]["warnings"], json!([]), "consent granted the module's scopes");
    let read = json!({ "flow": created["createFlow"]["flow"]["id"], "module": "read" });
    let query = "query($flow: ID!, $module: String!) { moduleCredentials(flowId: $flow, moduleKey: $module) { accessToken expiresAt authType } }";
    let runner = s.app.service_token("Acme").await;
    expire_token(&s, &id).await;
    let creds = s.app.ok(&runner, query, read.clone()).await;
    assert_eq!(
        creds["moduleCredentials"]["accessToken"], "access-token-secret-3",
        "refreshed before it was handed out"
    );
    assert_eq!(creds["moduleCredentials"]["authType"], "OAUTH2");

    s.provider.set_mode(TokenMode::InvalidGrant);
    expire_token(&s, &id).await;
    let refused = s.app.graphql(Some(&runner), query, read).await;
    assert_eq!(error_code(&refused), "NEEDS_REAUTHORIZATION", "{refused}");
    assert_eq!(status(&s, &id).await["status"], "NEEDS_REAUTHORIZATION");
}

/// Shopify answers a grant of `read_products` and `write_products` with `write_products` alone:
/// a module that reads is still served, and nothing is flagged as missing.
#[tokio::test]
async fn a_granted_scope_that_includes_the_required_one_serves_the_module() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    s.provider.set_extra_fields(json!({ "scope": "profile records.write" }));
    let (id, url, _) = create(&s, &["records.read", "records.write"]).await;
    assert_eq!(consent(&s, &url).await.0, 200);
    assert_eq!(
        status(&s, &id).await["scopes"],
        json!(["profile", "records.write"]),
        "as the provider answered"
    );
    let flow = "mutation($input: CreateFlowInput!) { createFlow(input: $input) { flow { id } warnings { moduleKey } } }";
    let created = s
        .app
        .ok(
            &s.member.token,
            flow,
            json!({ "input": { "teamId": s.member.team_id, "name": "Records sync", "status": "ACTIVE",
                "modules": [{ "key": "read", "app": "test-oauth", "module": "read-records", "connectionId": id }] } }),
        )
        .await;
    assert_eq!(created["createFlow"]["warnings"], json!([]), "records.write includes records.read");
    let check = s.app.ok(&s.member.token, crate::token_lifecycle::VERIFY, json!({ "id": id })).await;
    assert_eq!(check["verifyConnection"]["outcome"], "OK", "{check}");
    let runner = s.app.service_token("Acme").await;
    let read = json!({ "flow": created["createFlow"]["flow"]["id"], "module": "read" });
    let query = "query($flow: ID!, $module: String!) { moduleCredentials(flowId: $flow, moduleKey: $module) { accessToken } }";
    let creds = s.app.ok(&runner, query, read).await;
    assert!(creds["moduleCredentials"]["accessToken"].is_string(), "{creds}");
}
