//! The proxy for runners (`/proxy/{path}`) over real HTTP: credentials attached and the caller's
//! secrets, cookies and hop-by-hop headers left behind, who may call, module request rules,
//! refresh-and-retry on 401, scope refusals, rate limits, streaming both ways with limits, the
//! audit of each call, metrics, and `moduleCredentials`' ready-made headers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::SizedStream;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use plugboard::domain::TeamRole;
use plugboard::store::entities::api_call;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::fake_oauth::{FakeOAuth, TokenMode};
use crate::helpers::{Backend, CREATE_CONNECTION, Member, TestApp};
use crate::on_every_database;

on_every_database!(
    calls_carry_the_credentials_and_only_the_callers_safe_headers,
    who_may_call_and_foreign_ids_answer_like_missing_ones,
    modules_keep_to_the_requests_they_declare,
    a_401_renews_the_token_once_and_repeats_the_call,
    concurrent_401s_renew_the_token_once,
    a_second_401_records_invalid_credentials,
    a_dead_grant_answers_needs_reauthorization,
    failures_answered_with_200_are_read_as_the_app_says,
    a_rejected_api_key_is_recorded_and_scope_refusals_name_the_scopes,
    published_rate_limits_refuse_and_provider_429s_pass_through,
    an_app_limit_queues_calls_briefly_across_its_connections,
    calls_are_audited_paginated_counted_and_forgotten_after_retention,
    module_credentials_answer_ready_made_headers_and_base_url,
);

struct Setup {
    app: TestApp,
    admin: Member,
    runner: String,
}

async fn setup(app: TestApp) -> Setup {
    let admin = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let runner = app.service_token("Acme").await;
    Setup { app, admin, runner }
}

/// A connection to `app_key` (`test-proxy` or `test-limited`), checked OK by the provider.
async fn connect(s: &Setup, app_key: &str, api_key: &str) -> String {
    Mock::given(method("GET"))
        .and(path(format!("/{app_key}-api/v2/me")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
        .mount(&s.app.provider)
        .await;
    let data = s
        .app
        .ok(
            &s.admin.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": s.admin.team_id, "app": app_key, "name": format!("{app_key} {api_key}"), "fields": { "api_key": api_key } } }),
        )
        .await;
    assert_eq!(data["createConnection"]["connection"]["status"], "ACTIVE");
    data["createConnection"]["connection"]["id"].as_str().unwrap().to_owned()
}

fn call(app: &TestApp, verb: reqwest::Method, token: &str, path: &str) -> reqwest::RequestBuilder {
    app.client.request(verb, format!("{}/proxy{path}", app.address)).bearer_auth(token)
}

fn get(app: &TestApp, token: &str, connection: &str, path: &str) -> reqwest::RequestBuilder {
    call(app, reqwest::Method::GET, token, path).header("plugboard-connection", connection)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// Plugboard's own refusal: its status, its code in the header and the JSON body.
async fn refused(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(header(&response, "plugboard-error").as_deref(), Some(code));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    body
}

async fn status_of(s: &Setup, id: &str) -> String {
    let data = s
        .app
        .ok(&s.admin.token, "query($id: ID!) { connection(id: $id) { status } }", json!({ "id": id }))
        .await;
    data["connection"]["status"].as_str().unwrap().to_owned()
}

/// The connection's recorded calls, newest first, once at least `count` are written.
async fn api_calls(s: &Setup, id: &str, count: usize) -> Vec<Value> {
    let query = "query($id: ID!) { connection(id: $id) { apiCalls(first: 100) { edges { node { method path status moduleKey plugboardError durationMs caller { kind label } } } } } }";
    for _ in 0..100 {
        let data = s.app.ok(&s.admin.token, query, json!({ "id": id })).await;
        let edges = data["connection"]["apiCalls"]["edges"].as_array().unwrap().clone();
        if edges.len() >= count {
            return edges.into_iter().map(|edge| edge["node"].clone()).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} calls were recorded");
}

/// Sends a GET exactly as written (HTTP clients resolve `..` before sending) and answers the
/// status and the `Plugboard-Error` header.
async fn raw_get(app: &TestApp, token: &str, naming: &[(&str, &str)], target: &str) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n"
    );
    for (name, value) in naming {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    let code = answer
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("plugboard-error: ").map(str::to_uppercase));
    (status, code)
}

fn received_at(requests: &[Request], at: &str) -> Vec<Request> {
    requests.iter().filter(|r| r.url.path() == at).cloned().collect()
}

async fn calls_carry_the_credentials_and_only_the_callers_safe_headers(app: TestApp) {
    let s = setup(app).await;
    let id = connect(&s, "test-proxy", "key-123").await;
    Mock::given(method("GET"))
        .and(path("/test-proxy-api/v2/items"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "items": [1, 2] }))
                .insert_header("set-cookie", "provider_session=abc")
                .insert_header("x-ratelimit-remaining", "9"),
        )
        .mount(&s.app.provider)
        .await;
    let response = get(&s.app, &s.runner, &id, "/items?limit=5&key=forged")
        .header("cookie", "session=caller")
        .header("x-hop", "1")
        .header("connection", "x-hop")
        .header("proxy-authorization", "Basic eDp5")
        .header("x-custom", "kept")
        .header("plugboard-select", "ignored")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "set-cookie"), None, "the provider's cookies stay with the proxy");
    assert_eq!(header(&response, "x-ratelimit-remaining").as_deref(), Some("9"));
    assert_eq!(header(&response, "plugboard-error"), None, "a provider's answer passed on as is");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "items": [1, 2] }));

    let requests = s.app.provider.received_requests().await.unwrap();
    let sent = received_at(&requests, "/test-proxy-api/v2/items");
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(sent.headers["x-api-key"], "key-123");
    assert_eq!(sent.headers["x-custom"], "kept");
    for dropped in [
        "authorization",
        "cookie",
        "x-hop",
        "proxy-authorization",
        "plugboard-connection",
        "plugboard-select",
    ] {
        assert!(sent.headers.get(dropped).is_none(), "{dropped} was forwarded");
    }
    let query: Vec<(String, String)> =
        sent.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    assert_eq!(
        query,
        [("limit".to_owned(), "5".to_owned()), ("key".to_owned(), "key-123".to_owned())],
        "the caller cannot override a credential parameter"
    );

    // Any method, any status, the body passed on.
    Mock::given(method("POST"))
        .and(path("/test-proxy-api/v2/things"))
        .and(wiremock::matchers::body_json(json!({ "name": "thing" })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 7 })))
        .mount(&s.app.provider)
        .await;
    let created = call(&s.app, reqwest::Method::POST, &s.runner, "/things")
        .header("plugboard-connection", &id)
        .json(&json!({ "name": "thing" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap(), json!({ "id": 7 }));

    // HEAD: the headers of a GET, without its body.
    Mock::given(method("HEAD"))
        .and(path("/test-proxy-api/v2/items"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "items": [1, 2] }))
                .insert_header("x-ratelimit-remaining", "9"),
        )
        .mount(&s.app.provider)
        .await;
    let head = call(&s.app, reqwest::Method::HEAD, &s.runner, "/items")
        .header("plugboard-connection", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "x-ratelimit-remaining").as_deref(), Some("9"));
    let announced: u64 = header(&head, "content-length").expect("the length of a GET").parse().unwrap();
    assert_eq!(announced, serde_json::to_vec(&json!({ "items": [1, 2] })).unwrap().len() as u64);
    assert!(head.bytes().await.unwrap().is_empty());

    // Nothing but the API base: `..`, encoded or not, does not climb out of it.
    for escape in ["/proxy/../../oauth/token", "/proxy/%2e%2e/%2E%2e/oauth/token", "/proxy/items/../../../me"]
    {
        let naming = [("Plugboard-Connection", id.as_str())];
        assert_eq!(
            raw_get(&s.app, &s.runner, &naming, escape).await,
            (403, Some("FORBIDDEN".to_owned())),
            "{escape}"
        );
    }
}

async fn who_may_call_and_foreign_ids_answer_like_missing_ones(app: TestApp) {
    let s = setup(app).await;
    let id = connect(&s, "test-proxy", "key-123").await;
    Mock::given(method("GET"))
        .and(path("/test-proxy-api/v2/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&s.app.provider)
        .await;
    // Everyone first: on SQLite a bootstrap's transaction and the audit writer are two writers.
    let member = s.app.member("Acme", "max@acme.test", TeamRole::Member).await;
    let monitoring = s.app.member("Acme", "mona@acme.test", TeamRole::Monitoring).await;
    let other_admin = s.app.member("Globex", "gus@globex.test", TeamRole::Admin).await;
    let other_runner = s.app.service_token("Globex").await;
    for token in [&s.runner, &s.admin.token, &member.token] {
        let response = get(&s.app, token, &id, "/items").send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let body =
        refused(get(&s.app, &monitoring.token, &id, "/items").send().await.unwrap(), 403, "FORBIDDEN").await;
    assert!(body["message"].as_str().unwrap().contains("MONITORING"), "{body}");

    // Another team sees the connection exactly as a connection that does not exist.
    let missing = uuid::Uuid::new_v4().to_string();
    for token in [&other_admin.token, &other_runner] {
        let foreign = get(&s.app, token, &id, "/items").send().await.unwrap();
        let absent = get(&s.app, token, &missing, "/items").send().await.unwrap();
        assert_eq!(foreign.status(), 404);
        assert_eq!(absent.status(), 404);
        assert_eq!(header(&foreign, "plugboard-error"), header(&absent, "plugboard-error"));
        assert_eq!(foreign.text().await.unwrap(), absent.text().await.unwrap());
    }

    let anonymous =
        s.app.client.get(format!("{}/proxy/items", s.app.address)).header("plugboard-connection", &id);
    refused(anonymous.send().await.unwrap(), 401, "UNAUTHENTICATED").await;
    refused(get(&s.app, "pbs_not-a-token", &id, "/items").send().await.unwrap(), 401, "UNAUTHENTICATED")
        .await;
    refused(
        call(&s.app, reqwest::Method::GET, &s.runner, "/items").send().await.unwrap(),
        400,
        "BAD_USER_INPUT",
    )
    .await;
    refused(get(&s.app, &s.runner, "not-a-uuid", "/items").send().await.unwrap(), 400, "BAD_USER_INPUT")
        .await;
    let both = get(&s.app, &s.runner, &id, "/items")
        .header("plugboard-flow", &missing)
        .header("plugboard-module", "x");
    refused(both.send().await.unwrap(), 400, "BAD_USER_INPUT").await;
    // Flows' modules are for runners.
    let by_user = call(&s.app, reqwest::Method::GET, &s.admin.token, "/items")
        .header("plugboard-flow", &missing)
        .header("plugboard-module", "read");
    refused(by_user.send().await.unwrap(), 403, "FORBIDDEN").await;
}

const CREATE_FLOW: &str = "mutation($input: CreateFlowInput!) { createFlow(input: $input) { flow { id } } }";

async fn flow(s: &Setup, modules: Value) -> String {
    let data = s
        .app
        .ok(
            &s.admin.token,
            CREATE_FLOW,
            json!({ "input": { "teamId": s.admin.team_id, "name": "Sync", "status": "ACTIVE", "modules": modules } }),
        )
        .await;
    data["createFlow"]["flow"]["id"].as_str().unwrap().to_owned()
}

fn through(
    app: &TestApp,
    verb: reqwest::Method,
    token: &str,
    flow: &str,
    module: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    call(app, verb, token, path).header("plugboard-flow", flow).header("plugboard-module", module)
}

async fn modules_keep_to_the_requests_they_declare(app: TestApp) {
    let s = setup(app).await;
    let id = connect(&s, "test-proxy", "key-123").await;
    Mock::given(path_regex(r"^/test-proxy-api/v2/(items|files)(/.*)?$"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&s.app.provider)
        .await;
    let module = |key: &str, module: &str| json!({ "key": key, "app": "test-proxy", "module": module, "connectionId": id });
    let flow_id =
        flow(&s, json!([module("read", "read-items"), module("up", "upload"), module("any", "api-call")]))
            .await;
    s.app.member("Globex", "gus@globex.test", TeamRole::Admin).await;
    let other_runner = s.app.service_token("Globex").await;
    use reqwest::Method as M;
    for (verb, module, path, expected) in [
        (M::GET, "read", "/items", 200),
        (M::GET, "read", "/items/42", 200),
        (M::DELETE, "read", "/items/42", 403),
        (M::GET, "read", "/items/42/secrets", 403),
        (M::POST, "up", "/files/a/b.txt", 200),
        (M::GET, "up", "/items", 403),
        (M::DELETE, "any", "/items/42", 200),
    ] {
        let response = through(&s.app, verb.clone(), &s.runner, &flow_id, module, path).send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{verb} {path} through {module}");
        if expected == 403 {
            assert_eq!(header(&response, "plugboard-error").as_deref(), Some("FORBIDDEN"));
        }
    }
    // The generic module reaches the API base and nothing else of the host.
    let naming = [("Plugboard-Flow", flow_id.as_str()), ("Plugboard-Module", "any")];
    let out = raw_get(&s.app, &s.runner, &naming, "/proxy/%2e%2e/%2e%2e/test-crm-api/me").await;
    assert_eq!(out, (403, Some("FORBIDDEN".to_owned())));

    // Refusals are audited with the module that was refused.
    let calls = api_calls(&s, &id, 7).await;
    let refusal = calls
        .iter()
        .find(|c| c["method"] == "DELETE" && c["moduleKey"] == "read")
        .expect("the refused call is recorded");
    assert_eq!(refusal["status"], 403);
    assert_eq!(refusal["plugboardError"], "FORBIDDEN");
    assert_eq!(refusal["path"], "/items/42");

    // Another team's flow answers like a missing one.
    let foreign = through(&s.app, M::GET, &other_runner, &flow_id, "read", "/items").send().await.unwrap();
    let missing = uuid::Uuid::new_v4().to_string();
    let absent = through(&s.app, M::GET, &other_runner, &missing, "read", "/items").send().await.unwrap();
    assert_eq!(foreign.status(), 404);
    assert_eq!(foreign.text().await.unwrap(), absent.text().await.unwrap());
    let no_module = through(&s.app, M::GET, &s.runner, &flow_id, "nope", "/items").send().await.unwrap();
    refused(no_module, 404, "NOT_FOUND").await;
}

/// An OAuth API whose answers the test scripts: `401` for the first `reject` calls (all of
/// them when `None`), then `200` naming the token it was given.
#[derive(Clone)]
struct Api {
    reject: Arc<Mutex<Option<usize>>>,
    seen: Arc<Mutex<Vec<String>>>,
    /// Tokens refused whatever the count says.
    revoked: Arc<Mutex<Vec<String>>>,
}

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token =
            request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let mut seen = self.seen.lock().unwrap();
        seen.push(token.clone());
        let reject = *self.reject.lock().unwrap();
        let revoked = self.revoked.lock().unwrap().contains(&token);
        if revoked || reject.is_none_or(|first| seen.len() <= first) {
            return ResponseTemplate::new(401).set_body_json(json!({ "error": "invalid_token" }));
        }
        ResponseTemplate::new(200).set_body_json(json!({ "token": token }))
    }
}

struct OAuthSetup {
    s: Setup,
    provider: FakeOAuth,
    id: String,
    api: Api,
}

/// A connection to the OAuth app `app_key` granted `scopes` through consent at the fake
/// provider, checked OK.
async fn consented(s: &Setup, app_key: &str, scopes: &[&str]) -> String {
    let data = s
        .app
        .ok(
            &s.admin.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": s.admin.team_id, "app": app_key, "name": app_key, "fields": {}, "scopes": scopes } }),
        )
        .await;
    let id = data["createConnection"]["connection"]["id"].as_str().unwrap().to_owned();
    let consent = data["createConnection"]["authorizationUrl"].as_str().unwrap();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let at_provider = browser.get(consent).send().await.unwrap();
    let callback = at_provider.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(browser.get(&callback).send().await.unwrap().status(), 200);
    assert_eq!(status_of(s, &id).await, "ACTIVE");
    id
}

async fn oauth_setup(app: TestApp, reject: Option<usize>) -> OAuthSetup {
    let s = setup(app).await;
    let provider = FakeOAuth::mount(&s.app.provider).await;
    let id = consented(&s, "test-oauth", &["records.read"]).await;
    let api = Api { reject: Arc::new(Mutex::new(reject)), seen: Arc::default(), revoked: Arc::default() };
    Mock::given(path("/oauth-api/records")).respond_with(api.clone()).mount(&s.app.provider).await;
    OAuthSetup { s, provider, id, api }
}

async fn a_401_renews_the_token_once_and_repeats_the_call(app: TestApp) {
    let o = oauth_setup(app, Some(1)).await;
    // Dropbox answers a missing scope with 401 too: a new token would be refused the same.
    Mock::given(path("/oauth-api/files"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "error_summary": "missing_scope/" })))
        .mount(&o.s.app.provider)
        .await;
    let before = o.provider.token_requests();
    let scope = get(&o.s.app, &o.s.runner, &o.id, "/files").send().await.unwrap();
    assert_eq!(scope.status(), 401);
    assert_eq!(header(&scope, "plugboard-error").as_deref(), Some("ACCOUNT_VALIDATION_ERROR"));
    assert_eq!(header(&scope, "plugboard-token-refreshed"), None);
    assert_eq!(o.provider.token_requests(), before, "no renewal for a missing scope");
    assert_eq!(status_of(&o.s, &o.id).await, "ACTIVE");

    let before = o.provider.token_requests();
    let response = get(&o.s.app, &o.s.runner, &o.id, "/records").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "plugboard-token-refreshed").as_deref(), Some("true"));
    let body: Value = response.json().await.unwrap();
    let seen = o.api.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one retry");
    assert_ne!(seen[0], seen[1], "the retry carried the renewed token");
    assert_eq!(body["token"], seen[1]);
    assert_eq!(o.provider.token_requests(), before + 1, "one refresh");
    assert_eq!(status_of(&o.s, &o.id).await, "ACTIVE");

    // A streamed body cannot be sent twice: the token is renewed for the next call, and the
    // caller is told so with the provider's 401.
    *o.api.reject.lock().unwrap() = Some(3);
    let before = o.provider.token_requests();
    let large = call(&o.s.app, reqwest::Method::POST, &o.s.runner, "/records")
        .header("plugboard-connection", &o.id)
        .body(vec![b'r'; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), 401);
    assert_eq!(header(&large, "plugboard-token-refreshed").as_deref(), Some("true"));
    assert_eq!(header(&large, "plugboard-error"), None);
    assert_eq!(o.api.seen.lock().unwrap().len(), 3, "not repeated");
    assert_eq!(o.provider.token_requests(), before + 1);
    assert_eq!(status_of(&o.s, &o.id).await, "ACTIVE");
}

async fn concurrent_401s_renew_the_token_once(app: TestApp) {
    let o = oauth_setup(app, Some(0)).await;
    assert_eq!(get(&o.s.app, &o.s.runner, &o.id, "/records").send().await.unwrap().status(), 200);
    let stale = o.api.seen.lock().unwrap()[0].clone();
    o.api.revoked.lock().unwrap().push(stale.clone());
    let before = o.provider.token_requests();
    let calls = (0..10).map(|_| get(&o.s.app, &o.s.runner, &o.id, "/records").send());
    for response in futures_util::future::join_all(calls).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        assert_ne!(response.json::<Value>().await.unwrap()["token"], stale);
    }
    assert_eq!(o.provider.token_requests(), before + 1, "one renewal for ten refused calls");
}

async fn a_second_401_records_invalid_credentials(app: TestApp) {
    let o = oauth_setup(app, None).await;
    let receiver = wiremock::MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    o.s.app
        .ok(
            &o.s.admin.token,
            "mutation($t: ID!, $url: String!) { createWebhook(teamId: $t, url: $url, secret: \"whsec-proxy-tests\") { id } }",
            json!({ "t": o.s.admin.team_id, "url": format!("{}/hook", receiver.uri()) }),
        )
        .await;
    let before = o.provider.token_requests();
    let response = get(&o.s.app, &o.s.runner, &o.id, "/records").send().await.unwrap();
    assert_eq!(response.status(), 401, "the provider's answer");
    assert_eq!(header(&response, "plugboard-error").as_deref(), Some("INVALID_CREDENTIALS"));
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "error": "invalid_token" }));
    assert_eq!(o.api.seen.lock().unwrap().len(), 2, "one retry, no more");
    assert_eq!(o.provider.token_requests(), before + 1);
    assert_eq!(status_of(&o.s, &o.id).await, "INVALID");
    let calls = api_calls(&o.s, &o.id, 1).await;
    assert_eq!(calls[0]["plugboardError"], "INVALID_CREDENTIALS");
    // As for any check that flips a connection: the team's webhooks hear of it.
    let mut events = Vec::new();
    for _ in 0..100 {
        events = receiver.received_requests().await.unwrap();
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kinds: Vec<String> =
        events.iter().map(|r| r.body_json::<Value>().unwrap()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["connection.invalid"]);
    // Now Plugboard itself refuses, before reaching the provider.
    refused(
        get(&o.s.app, &o.s.runner, &o.id, "/records").send().await.unwrap(),
        403,
        "ACCOUNT_VALIDATION_ERROR",
    )
    .await;
}

async fn a_dead_grant_answers_needs_reauthorization(app: TestApp) {
    let o = oauth_setup(app, None).await;
    o.provider.set_mode(TokenMode::InvalidGrant);
    let response = get(&o.s.app, &o.s.runner, &o.id, "/records").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "plugboard-error").as_deref(), Some("NEEDS_REAUTHORIZATION"));
    assert_eq!(o.api.seen.lock().unwrap().len(), 1, "nothing to repeat the call with");
    assert_eq!(status_of(&o.s, &o.id).await, "NEEDS_REAUTHORIZATION");
    refused(
        get(&o.s.app, &o.s.runner, &o.id, "/records").send().await.unwrap(),
        409,
        "NEEDS_REAUTHORIZATION",
    )
    .await;
}

async fn a_rejected_api_key_is_recorded_and_scope_refusals_name_the_scopes(app: TestApp) {
    let s = setup(app).await;
    let id = connect(&s, "test-proxy", "key-123").await;
    Mock::given(path("/test-proxy-api/v2/admin"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header(
                    "www-authenticate",
                    r#"Bearer error="insufficient_scope", scope="admin.write admin.read""#,
                )
                .set_body_json(json!({ "error": "missing_scope" })),
        )
        .mount(&s.app.provider)
        .await;
    Mock::given(path("/test-proxy-api/v2/private"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({ "error": "not yours" })))
        .mount(&s.app.provider)
        .await;
    // GitHub lists the scopes an endpoint accepts, any one of which would do.
    Mock::given(path("/test-proxy-api/v2/repos"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-accepted-oauth-scopes", "repo, public_repo")
                .set_body_json(json!({ "message": "Must have admin rights to Repository." })),
        )
        .mount(&s.app.provider)
        .await;
    let accepted = get(&s.app, &s.runner, &id, "/repos").send().await.unwrap();
    assert_eq!(header(&accepted, "plugboard-error").as_deref(), Some("ACCOUNT_VALIDATION_ERROR"));
    assert_eq!(header(&accepted, "plugboard-missing-scopes").as_deref(), Some("public_repo repo"));
    let scope = get(&s.app, &s.runner, &id, "/admin").send().await.unwrap();
    assert_eq!(scope.status(), 403);
    assert_eq!(header(&scope, "plugboard-error").as_deref(), Some("ACCOUNT_VALIDATION_ERROR"));
    assert_eq!(header(&scope, "plugboard-missing-scopes").as_deref(), Some("admin.read admin.write"));
    assert_eq!(scope.json::<Value>().await.unwrap(), json!({ "error": "missing_scope" }));
    let other = get(&s.app, &s.runner, &id, "/private").send().await.unwrap();
    assert_eq!(other.status(), 403);
    assert_eq!(header(&other, "plugboard-error"), None, "a 403 about a resource is the provider's business");
    assert_eq!(status_of(&s, &id).await, "ACTIVE", "neither condemns the credentials");

    Mock::given(path("/test-proxy-api/v2/items"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "error": "bad key" })))
        .mount(&s.app.provider)
        .await;
    let rejected = get(&s.app, &s.runner, &id, "/items").send().await.unwrap();
    assert_eq!(rejected.status(), 401);
    assert_eq!(header(&rejected, "plugboard-error").as_deref(), Some("INVALID_CREDENTIALS"));
    assert_eq!(status_of(&s, &id).await, "INVALID");
    let checks = s
        .app
        .ok(
            &s.admin.token,
            "query($id: ID!) { connection(id: $id) { verifications(first: 1) { outcome message } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(checks["connection"]["verifications"][0]["outcome"], "INVALID_CREDENTIALS");
}

async fn published_rate_limits_refuse_and_provider_429s_pass_through(app: TestApp) {
    let s = setup(app).await;
    let limited = connect(&s, "test-limited", "key-1").await;
    let spare = connect(&s, "test-limited", "key-2").await;
    Mock::given(path("/test-limited-api/v2/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&s.app.provider)
        .await;
    // Two a minute per connection: a burst of two, then a slot every 30 s.
    for _ in 0..2 {
        assert_eq!(get(&s.app, &s.runner, &limited, "/items").send().await.unwrap().status(), 200);
    }
    let over = get(&s.app, &s.runner, &limited, "/items").send().await.unwrap();
    let retry_after: u64 = header(&over, "retry-after").expect("Retry-After").parse().unwrap();
    assert!((25..=30).contains(&retry_after), "{retry_after}");
    let body = refused(over, 429, "RATE_LIMITED").await;
    assert_eq!(body["retryAfter"], retry_after);
    assert_eq!(
        get(&s.app, &s.runner, &spare, "/items").send().await.unwrap().status(),
        200,
        "per connection"
    );
    let hits = received_at(&s.app.provider.received_requests().await.unwrap(), "/test-limited-api/v2/items");
    assert_eq!(hits.len(), 3, "the refused call never reached the provider");

    let id = connect(&s, "test-proxy", "key-3").await;
    Mock::given(path("/test-proxy-api/v2/busy"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after", "7").set_body_string("slow down"),
        )
        .mount(&s.app.provider)
        .await;
    let busy = get(&s.app, &s.runner, &id, "/busy").send().await.unwrap();
    assert_eq!(busy.status(), 429);
    assert_eq!(header(&busy, "retry-after").as_deref(), Some("7"));
    assert_eq!(header(&busy, "plugboard-error"), None);
    assert_eq!(busy.text().await.unwrap(), "slow down");
}

async fn calls_are_audited_paginated_counted_and_forgotten_after_retention(app: TestApp) {
    let s = setup(app).await;
    let id = connect(&s, "test-proxy", "key-123").await;
    Mock::given(path("/test-proxy-api/v2/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&s.app.provider)
        .await;
    for page in 0..3 {
        let response =
            get(&s.app, &s.runner, &id, &format!("/items?page={page}&secret=hush")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let calls = api_calls(&s, &id, 3).await;
    assert_eq!(calls.len(), 3);
    for recorded in &calls {
        assert_eq!(recorded["path"], "/items?page&secret", "no query values");
        assert_eq!(recorded["method"], "GET");
        assert_eq!(recorded["status"], 200);
        assert_eq!(recorded["caller"]["kind"], "SERVICE");
        assert!(recorded["durationMs"].as_i64().unwrap() >= 0);
    }
    let page = "query($id: ID!, $after: String) { connection(id: $id) { apiCalls(first: 2, after: $after) { edges { cursor node { path } } pageInfo { hasNextPage endCursor } } } }";
    let first = s.app.ok(&s.admin.token, page, json!({ "id": id })).await["connection"]["apiCalls"].clone();
    assert_eq!(first["edges"].as_array().unwrap().len(), 2);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let next = s
        .app
        .ok(&s.admin.token, page, json!({ "id": id, "after": first["pageInfo"]["endCursor"] }))
        .await["connection"]["apiCalls"]
        .clone();
    assert_eq!(next["edges"].as_array().unwrap().len(), 1);
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    let bad = s.app.graphql(Some(&s.admin.token), page, json!({ "id": id, "after": "bogus" })).await;
    assert_eq!(crate::helpers::error_code(&bad), "BAD_USER_INPUT");

    let metrics =
        s.app.client.get(format!("{}/metrics", s.app.address)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|line| line.starts_with("plugboard_proxy_calls_total")
            && line.contains(r#"app="test-proxy""#)
            && line.contains(r#"status_class="2xx""#)),
        "{metrics}"
    );
    assert!(!metrics.contains("hush"));

    // Past the retention, calls are forgotten: months of them at once, a batch at a time, all
    // of them; a recent call stays. The recorder also purges once as it starts, and may take
    // some of them first: what counts is what is left, and more than two batches are old, so
    // two purges of one batch each cannot pass.
    let long_ago = chrono::Utc::now() - chrono::Duration::days(40);
    let template = api_call::Entity::find().one(&s.app.state.db).await.unwrap().unwrap();
    api_call::Entity::update_many()
        .col_expr(api_call::Column::CreatedAt, Expr::value(long_ago))
        .filter(api_call::Column::Path.eq("/items?page&secret"))
        .exec(&s.app.state.db)
        .await
        .unwrap();
    let backlog = (0..2_001).map(|_| {
        api_call::ActiveModel::from(api_call::Model {
            id: uuid::Uuid::now_v7(),
            path: "/backlog".into(),
            created_at: long_ago,
            ..template.clone()
        })
    });
    api_call::Entity::insert_many(backlog).exec_without_returning(&s.app.state.db).await.unwrap();
    let recent = get(&s.app, &s.runner, &id, "/items?page=4").send().await.unwrap();
    assert_eq!(recent.status(), 200);
    wait_for_call(&s, "/items?page").await;
    plugboard::proxy::purge(
        &s.app.state.db,
        s.app.state.config.proxy.retention,
        &plugboard::proxy::WriteTurn::default(),
    )
    .await;
    let left: Vec<String> = api_call::Entity::find()
        .all(&s.app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|call| call.path)
        .collect();
    assert_eq!(left, ["/items?page"], "every call past the retention went, and only those");
}

/// Waits until a call to `path` is recorded (the audit is written in batches).
async fn wait_for_call(s: &Setup, path: &str) {
    for _ in 0..100 {
        let recorded = api_call::Entity::find()
            .filter(api_call::Column::Path.eq(path))
            .one(&s.app.state.db)
            .await
            .unwrap();
        if recorded.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a call to {path} was not recorded in 5 s");
}

async fn module_credentials_answer_ready_made_headers_and_base_url(app: TestApp) {
    let s = setup(app).await;
    let id = connect(&s, "test-proxy", "key-123").await;
    let flow_id =
        flow(&s, json!([{ "key": "read", "app": "test-proxy", "module": "read-items", "connectionId": id }]))
            .await;
    let data = s
        .app
        .ok(
            &s.runner,
            "query($flow: ID!) { moduleCredentials(flowId: $flow, moduleKey: \"read\") { baseUrl headers queryParams } }",
            json!({ "flow": flow_id }),
        )
        .await;
    let credentials = &data["moduleCredentials"];
    assert_eq!(credentials["baseUrl"], format!("{}/test-proxy-api/v2", s.app.provider.uri()));
    assert_eq!(credentials["headers"], json!({ "X-Api-Key": "key-123" }));
    assert_eq!(credentials["queryParams"], json!({ "key": "key-123" }));
}

/// A provider on actix-web for bodies too large for a mock: a 20 MB download that stops half
/// way until the test has received the first bytes through the proxy, and an upload sink.
struct Bulk {
    base: String,
    release: Arc<tokio::sync::Notify>,
    uploaded: Arc<AtomicU64>,
    uploads: Arc<AtomicUsize>,
}

const MB: usize = 1 << 20;

async fn bulk_provider() -> Bulk {
    let release = Arc::new(tokio::sync::Notify::new());
    let uploaded = Arc::new(AtomicU64::new(0));
    let uploads = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let (gate, sink, count) = (release.clone(), uploaded.clone(), uploads.clone());
    let server = actix_web::HttpServer::new(move || {
        let (gate, sink, count) = (gate.clone(), sink.clone(), count.clone());
        actix_web::App::new()
            .route("/v1/me", web::get().to(|| async { HttpResponse::Ok().json(json!({ "ok": true })) }))
            .route(
                "/v1/download",
                web::get().to(move || {
                    let gate = gate.clone();
                    async move {
                        let chunks = futures_util::stream::unfold(0usize, move |sent| {
                            let gate = gate.clone();
                            async move {
                                if sent == 20 {
                                    return None;
                                }
                                if sent == 10 {
                                    gate.notified().await;
                                }
                                Some((Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; MB])), sent + 1))
                            }
                        });
                        HttpResponse::Ok()
                            .content_type("application/octet-stream")
                            .body(SizedStream::new(20 * MB as u64, chunks))
                    }
                }),
            )
            .route("/v1/huge", web::get().to(|| async { HttpResponse::Ok().body(vec![b'y'; 2 * MB]) }))
            .route(
                "/v1/upload",
                web::post().to(move |mut payload: web::Payload| {
                    let (sink, count) = (sink.clone(), count.clone());
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        let mut total = 0u64;
                        while let Some(chunk) = payload.next().await {
                            match chunk {
                                Ok(chunk) => total += chunk.len() as u64,
                                Err(_) => return HttpResponse::BadRequest().finish(),
                            }
                        }
                        sink.store(total, Ordering::SeqCst);
                        HttpResponse::Ok().json(json!({ "bytes": total }))
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Bulk { base, release, uploaded, uploads }
}

async fn generic_connection(s: &Setup, base: &str) -> String {
    let data = s
        .app
        .ok(
            &s.admin.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": s.admin.team_id, "app": "http-api-key", "name": "Bulk", "fields": {
                "base_url": base, "placement": "header", "header_name": "Authorization", "value_prefix": "Bearer ",
                "api_key": "bulk-key", "verify_path": "/me" } } }),
        )
        .await;
    assert_eq!(data["createConnection"]["connection"]["status"], "ACTIVE", "{data}");
    data["createConnection"]["connection"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_app_has_the_generic_module_and_shows_what_modules_may_call() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    let data = s
        .app
        .ok(&s.admin.token, "{ apps { key modules { key name requests { method path } } } }", json!({}))
        .await;
    for app in data["apps"].as_array().unwrap() {
        let generic = app["modules"].as_array().unwrap().iter().find(|m| m["key"] == "api-call");
        let generic = generic.unwrap_or_else(|| panic!("{} has no api-call module", app["key"]));
        assert_eq!(generic["name"], "Make an API call");
        assert_eq!(generic["requests"], json!([]));
    }
    let github = data["apps"].as_array().unwrap().iter().find(|a| a["key"] == "github").unwrap();
    let issue = github["modules"].as_array().unwrap().iter().find(|m| m["key"] == "create-issue").unwrap();
    assert_eq!(issue["requests"], json!([{ "method": "POST", "path": "/repos/*/*/issues" }]));
}

#[tokio::test]
async fn a_20_mb_download_streams_through_without_being_held() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    let bulk = bulk_provider().await;
    let id = generic_connection(&s, &bulk.base).await;
    let response = get(&s.app, &s.runner, &id, "/download").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(20 * MB as u64), "the length is passed on");
    let mut body = response.bytes_stream();
    let mut received = 0usize;
    let mut released = false;
    // The provider sends the second half only once the first bytes came out of the proxy: a
    // proxy that held the answer would wait forever here.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(20), body.next())
        .await
        .expect("the first half arrives before the provider sends the rest")
    {
        let chunk = chunk.unwrap();
        assert!(chunk.iter().all(|b| *b == b'x'));
        received += chunk.len();
        if !released && received >= MB {
            released = true;
            bulk.release.notify_one();
        }
    }
    assert!(released);
    assert_eq!(received, 20 * MB);
}

#[tokio::test]
async fn a_call_keeps_its_place_in_flight_until_its_answer_has_streamed() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("PLUGBOARD_PROXY_MAX_IN_FLIGHT", "1"), ("PLUGBOARD_PROXY_QUEUE_MS", "100")],
    )
    .await
    .unwrap();
    let s = setup(app).await;
    let bulk = bulk_provider().await;
    let id = generic_connection(&s, &bulk.base).await;
    let response = get(&s.app, &s.runner, &id, "/download").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = 0usize;
    while received < MB {
        received += body.next().await.expect("the first bytes arrive").unwrap().len();
    }
    // The headers are long gone, the provider's connection still streams: the place is taken.
    refused(get(&s.app, &s.runner, &id, "/me").send().await.unwrap(), 503, "UNAVAILABLE").await;

    bulk.release.notify_one();
    while let Some(chunk) =
        tokio::time::timeout(Duration::from_secs(20), body.next()).await.expect("the rest")
    {
        received += chunk.unwrap().len();
    }
    assert_eq!(received, 20 * MB);
    let after = get(&s.app, &s.runner, &id, "/me").send().await.unwrap();
    assert_eq!(after.status(), 200, "the finished answer gave its place back");
}

#[tokio::test]
async fn a_20_mb_upload_streams_through() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    let bulk = bulk_provider().await;
    let id = generic_connection(&s, &bulk.base).await;
    let chunks =
        futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'u'; MB]))));
    let response = call(&s.app, reqwest::Method::POST, &s.runner, "/upload")
        .header("plugboard-connection", &id)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "bytes": 20 * MB }));
    assert_eq!(bulk.uploaded.load(Ordering::SeqCst), 20 * MB as u64);
}

#[tokio::test]
async fn bodies_past_the_limits_are_refused_both_ways() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("PLUGBOARD_PROXY_MAX_REQUEST_BYTES", "1048576"),
            ("PLUGBOARD_PROXY_MAX_RESPONSE_BYTES", "1048576"),
        ],
    )
    .await
    .unwrap();
    let s = setup(app).await;
    let bulk = bulk_provider().await;
    let id = generic_connection(&s, &bulk.base).await;
    let post =
        || call(&s.app, reqwest::Method::POST, &s.runner, "/upload").header("plugboard-connection", &id);
    // A declared length over the limit is refused before anything is read.
    refused(post().body(vec![b'u'; 2 * MB]).send().await.unwrap(), 413, "PAYLOAD_TOO_LARGE").await;
    // A streamed body is cut when it passes the limit.
    let chunks =
        futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'u'; MB / 4]))));
    let cut = post().body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    refused(cut, 413, "PAYLOAD_TOO_LARGE").await;
    assert_ne!(bulk.uploaded.load(Ordering::SeqCst), 2 * MB as u64, "the provider never got the whole body");
    let _ = bulk.uploads.load(Ordering::SeqCst);
    // An answer longer than the limit is not passed on.
    refused(get(&s.app, &s.runner, &id, "/huge").send().await.unwrap(), 502, "RESPONSE_TOO_LARGE").await;
    // Within the limits, all is well.
    let small = post().body(vec![b'u'; 1000]).send().await.unwrap();
    assert_eq!(small.json::<Value>().await.unwrap(), json!({ "bytes": 1000 }));
}

#[tokio::test]
async fn a_provider_slower_than_the_timeout_answers_504() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_PROXY_TIMEOUT_SECS", "1")]).await.unwrap();
    let s = setup(app).await;
    let id = connect(&s, "test-proxy", "key-slow").await;
    Mock::given(path("/test-proxy-api/v2/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&s.app.provider)
        .await;
    let body =
        refused(get(&s.app, &s.runner, &id, "/slow").send().await.unwrap(), 504, "PROVIDER_UNAVAILABLE")
            .await;
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("PLUGBOARD_PROXY_TIMEOUT_SECS"), "{message}");
    assert!(!message.contains("key-slow"), "no credential in the message: {message}");
    assert_eq!(status_of(&s, &id).await, "ACTIVE", "a slow provider condemns nothing");
}

#[tokio::test]
async fn a_module_whose_connection_lacks_scopes_is_refused_before_the_call() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    Mock::given(path("/crm/me"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "user": { "email": "crm@acme.test" } })),
        )
        .mount(&s.app.provider)
        .await;
    let data = s
        .app
        .ok(
            &s.admin.token,
            CREATE_CONNECTION,
            json!({ "input": { "teamId": s.admin.team_id, "app": "test-crm", "name": "CRM", "fields": { "api_key": "k" }, "scopes": [] } }),
        )
        .await;
    let id = data["createConnection"]["connection"]["id"].as_str().unwrap().to_owned();
    let flow_id = flow(
        &s,
        json!([{ "key": "contacts", "app": "test-crm", "module": "list-contacts", "connectionId": id }]),
    )
    .await;
    let response = through(&s.app, reqwest::Method::GET, &s.runner, &flow_id, "contacts", "/contacts")
        .send()
        .await
        .unwrap();
    let body = refused(response, 403, "ACCOUNT_VALIDATION_ERROR").await;
    assert_eq!(body["missingScopes"], json!(["contacts.read"]));
    let sent = s.app.provider.received_requests().await.unwrap();
    assert!(received_at(&sent, "/crm/contacts").is_empty(), "the provider was not called");
}

async fn an_app_limit_queues_calls_briefly_across_its_connections(app: TestApp) {
    let s = setup(app).await;
    let first = connect(&s, "test-paced", "key-a").await;
    let second = connect(&s, "test-paced", "key-b").await;
    Mock::given(path("/test-paced-api/v2/items"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&s.app.provider)
        .await;
    // Two a second for the whole app: the third call, on either connection, waits for its slot
    // (PLUGBOARD_PROXY_QUEUE_MS allows a second) instead of being refused.
    for id in [&first, &second] {
        assert_eq!(get(&s.app, &s.runner, id, "/items").send().await.unwrap().status(), 200);
    }
    let started = std::time::Instant::now();
    let queued = get(&s.app, &s.runner, &first, "/items").send().await.unwrap();
    assert_eq!(queued.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited for a slot: {:?}", started.elapsed());
}

#[tokio::test]
async fn calls_past_the_in_flight_limit_wait_briefly_then_are_answered_503() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("PLUGBOARD_PROXY_MAX_IN_FLIGHT", "1"), ("PLUGBOARD_PROXY_QUEUE_MS", "200")],
    )
    .await
    .unwrap();
    let s = setup(app).await;
    let id = connect(&s, "test-proxy", "key-busy").await;
    Mock::given(path("/test-proxy-api/v2/slow"))
        .respond_with(ResponseTemplate::new(200).set_body_string("done").set_delay(Duration::from_secs(2)))
        .mount(&s.app.provider)
        .await;
    Mock::given(path("/test-proxy-api/v2/quick"))
        .respond_with(ResponseTemplate::new(200).set_body_string("quick"))
        .mount(&s.app.provider)
        .await;

    // One call holds the only place while the provider takes its time.
    let slow = tokio::spawn(get(&s.app, &s.runner, &id, "/slow").send());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while received_at(&s.app.provider.received_requests().await.unwrap(), "/test-proxy-api/v2/slow")
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "the slow call never reached the provider");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let busy = refused(get(&s.app, &s.runner, &id, "/quick").send().await.unwrap(), 503, "UNAVAILABLE").await;
    assert_eq!(busy["retryAfter"], 1, "{busy}");
    assert!(busy["message"].as_str().unwrap().contains("PLUGBOARD_PROXY_MAX_IN_FLIGHT"), "{busy}");

    // The place is held until the answer has streamed back, then the next call has it.
    let answer = slow.await.unwrap().unwrap();
    assert_eq!(answer.text().await.unwrap(), "done");
    let quick = get(&s.app, &s.runner, &id, "/quick").send().await.unwrap();
    assert_eq!(quick.status(), 200);
    assert_eq!(quick.text().await.unwrap(), "quick");
}

/// As Slack's Web API: every answer is HTTP 200, and `{"ok": false, "error": ...}` says what
/// went wrong. Tokens in `refused` get `token_expired`; `refuse_all` refuses every token.
#[derive(Clone, Default)]
struct ChatApi {
    refused: Arc<Mutex<Vec<String>>>,
    refuse_all: Arc<std::sync::atomic::AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Respond for ChatApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token =
            request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        self.seen.lock().unwrap().push(token.clone());
        let body = if self.refuse_all.load(Ordering::SeqCst) || self.refused.lock().unwrap().contains(&token)
        {
            json!({ "ok": false, "error": "token_expired" })
        } else {
            match request.url.path() {
                "/chat-api/auth.test" => json!({ "ok": true, "user": "ana" }),
                "/chat-api/chat.postMessage" => json!({ "ok": true, "channel": "C1" }),
                "/chat-api/files.upload" => {
                    json!({ "ok": false, "error": "missing_scope", "needed": "files:write" })
                }
                _ => json!({ "ok": false, "error": "channel_not_found" }),
            }
        };
        ResponseTemplate::new(200).set_body_json(body)
    }
}

async fn failures_answered_with_200_are_read_as_the_app_says(app: TestApp) {
    let s = setup(app).await;
    let provider = FakeOAuth::mount(&s.app.provider).await;
    let api = ChatApi::default();
    Mock::given(path_regex("^/chat-api/")).respond_with(api.clone()).mount(&s.app.provider).await;
    let id = consented(&s, "test-chat", &["chat:write"]).await;
    let post = |path: &'static str| {
        call(&s.app, reqwest::Method::POST, &s.runner, path).header("plugboard-connection", &id).body("{}")
    };

    // The token expired (Slack's token rotation): renewed once and the call repeated.
    let current = api.seen.lock().unwrap().last().cloned().expect("the check used the token");
    api.refused.lock().unwrap().push(current.clone());
    let before = provider.token_requests();
    let response = post("/chat.postMessage").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "plugboard-token-refreshed").as_deref(), Some("true"));
    assert_eq!(header(&response, "plugboard-error"), None);
    assert_eq!(response.json::<Value>().await.unwrap()["ok"], true);
    assert_eq!(provider.token_requests(), before + 1, "one refresh");
    assert_ne!(api.seen.lock().unwrap().last(), Some(&current), "the repeat carried the new token");

    // An error about the call itself is passed on as it came.
    let response = post("/conversations.info").send().await.unwrap();
    assert_eq!(header(&response, "plugboard-error"), None);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "channel_not_found");
    // A missing scope the answer names is said so, and condemns nothing.
    let response = post("/files.upload").send().await.unwrap();
    assert_eq!(header(&response, "plugboard-error").as_deref(), Some("ACCOUNT_VALIDATION_ERROR"));
    assert_eq!(header(&response, "plugboard-missing-scopes").as_deref(), Some("files:write"));
    assert_eq!(status_of(&s, &id).await, "ACTIVE");

    // Refused again with a renewed token: the credentials are recorded as rejected.
    api.refuse_all.store(true, Ordering::SeqCst);
    let response = post("/chat.postMessage").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "plugboard-error").as_deref(), Some("INVALID_CREDENTIALS"));
    assert_eq!(status_of(&s, &id).await, "INVALID");
}
