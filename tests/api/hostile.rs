//! What an attacker sends: nested, huge, repeated and batched requests, through the real
//! endpoint. Each answers a coded refusal and the service keeps answering afterwards.

use std::time::Duration;

use plugboard::domain::TeamRole;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, error_code};
use crate::on_every_database;
use crate::ws::{Protocol, Subscriber};

on_every_database!(
    deeply_nested_documents_are_refused_before_parsing,
    deeply_nested_variables_are_refused,
    documents_with_too_many_tokens_are_refused,
    standard_introspection_is_answered_and_matches_the_committed_schema,
    list_sizes_count_in_complexity,
    made_up_methods_add_no_metric_series,
    a_corpus_of_nasty_bodies_never_takes_the_service_down,
    deep_documents_over_websocket_are_refused_and_the_socket_goes_on,
    long_searches_are_refused_naming_the_field
);

const INTROSPECTION: &str = include_str!("introspection.graphql");

async fn post_raw(app: &TestApp, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = app.client.post(format!("{}/graphql", app.address)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the service answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

/// The service still answers an ordinary query.
async fn assert_alive(app: &TestApp) {
    let body = app.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

fn message(body: &Value) -> String {
    body["errors"][0]["message"].as_str().unwrap_or_default().to_lowercase()
}

fn backends() -> [Backend; 2] {
    [Backend::Sqlite, Backend::Postgres]
}

async fn deeply_nested_documents_are_refused_before_parsing(app: TestApp) {
    let deep = 3000;
    let documents = [
        format!("{{ viewer(x: {}1{}) {{ email }} }}", "[".repeat(deep), "]".repeat(deep)),
        format!("{{ viewer(x: {}1{}) {{ email }} }}", "{a:".repeat(deep), "}".repeat(deep)),
        format!("query($x: [Int] = {}1{}) {{ viewer {{ email }} }}", "[".repeat(deep), "]".repeat(deep)),
        format!("query($x: {}Int{}) {{ viewer {{ email }} }}", "[".repeat(deep), "]".repeat(deep)),
        format!("{}viewer{}", "{ a ".repeat(deep), " }".repeat(deep)),
    ];
    for document in &documents {
        let body = app.graphql(None, document, json!({})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(message(&body).contains("nests brackets deeper than 32"), "{body}");
        assert_alive(&app).await;
    }
}

async fn deeply_nested_variables_are_refused(app: TestApp) {
    let query = "query($x: JSON) { __typename }";
    for levels in [40, 3000] {
        let mut value = json!(1);
        for _ in 0..levels.min(120) {
            value = json!([value]);
        }
        let body = if levels > 120 {
            // Deeper than any JSON reader should follow: sent as text.
            let text = format!(
                r#"{{"query": "{query}", "variables": {{"x": {}1{}}}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            );
            let response = app
                .client
                .post(format!("{}/graphql", app.address))
                .header("content-type", "application/json")
                .body(text)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400);
            response.json::<Value>().await.unwrap()
        } else {
            app.graphql(None, query, json!({ "x": value })).await
        };
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_alive(&app).await;
    }
}

async fn documents_with_too_many_tokens_are_refused(app: TestApp) {
    let repeated = format!("{{ {} }}", "__typename ".repeat(20_000));
    let body = app.graphql(None, &repeated, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(message(&body).contains("more than 10000 tokens"), "{body}");
    // Within the limits, a couple of thousand repeated fields (which field-merging validation
    // compares pairwise) are still answered.
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let many = format!("{{ viewer {{ {} }} }}", "email ".repeat(1990));
    let body = app.graphql(Some(&member.token), &many, json!({})).await;
    assert_eq!(body["data"]["viewer"]["email"], "ana@acme.test", "{body}");
}

async fn standard_introspection_is_answered_and_matches_the_committed_schema(app: TestApp) {
    let body = app.graphql(None, INTROSPECTION, json!({})).await;
    assert!(body["errors"].is_null(), "introspection was refused: {body}");
    let types = body["data"]["__schema"]["types"].as_array().expect("types");
    let names: Vec<&str> = types.iter().filter_map(|t| t["name"].as_str()).collect();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    for line in committed.lines() {
        let declared = ["type ", "input ", "enum ", "scalar ", "interface ", "union "]
            .iter()
            .find_map(|keyword| line.strip_prefix(keyword))
            .and_then(|rest| rest.split([' ', '{']).next());
        if let Some(name) = declared {
            assert!(names.contains(&name), "{name} is in schema.graphql but not in introspection");
        }
    }
    // Introspection nested past its own limit is still refused.
    let mut too_deep = String::from("name");
    for _ in 0..25 {
        too_deep = format!("ofType {{ {too_deep} }}");
    }
    let body = app.graphql(None, &format!("{{ __type(name: \"Query\") {{ {too_deep} }} }}"), json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(message(&body).contains("introspection"), "{body}");
}

#[tokio::test]
async fn batches_are_bounded_and_share_one_complexity_budget() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_MAX_QUERY_COMPLEXITY", "100")]).await.unwrap();
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let one = json!({ "query": "{ viewer { email } }" });
    let (status, body) = post_raw(&app, Some(&member.token), &json!(vec![one.clone(); 11])).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(message(&body).contains("1 to 10 operations"), "{body}");
    let (status, body) = post_raw(&app, Some(&member.token), &json!([])).await;
    assert_eq!((status, error_code(&body)), (400, "BAD_USER_INPUT".to_owned()), "an empty batch is refused");
    assert!(message(&body).contains("1 to 10 operations"), "{body}");
    // An array is a batch, never one request's fields in order.
    let (_, body) = post_raw(&app, Some(&member.token), &json!(["{ viewer { email } }"])).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(message(&body).contains("not a graphql request"), "{body}");

    // 40 aliases cost about 80: alone it passes, two of them in one batch do not.
    let wide = format!(
        "{{ {} }}",
        (0..40).map(|i| format!("a{i}: viewer {{ email }}")).collect::<Vec<_>>().join(" ")
    );
    let body = app.graphql(Some(&member.token), &wide, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    let (_, body) = post_raw(&app, Some(&member.token), &json!([{ "query": wide }, { "query": wide }])).await;
    for answer in body.as_array().expect("a batch answer") {
        assert_eq!(error_code(answer), "BAD_USER_INPUT");
        assert!(message(answer).contains("complex"), "{answer}");
    }
    assert_alive(&app).await;
}

async fn list_sizes_count_in_complexity(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let nested = "query($team: ID!) { team(id: $team) { connections(first: 100) { edges { node {
        auditEvents(first: 100) { edges { node { action } } } } } } } }";
    let body = app.graphql(Some(&member.token), nested, json!({ "team": member.team_id })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(message(&body).contains("complex"), "{body}");
    // The page the example frontend asks for still fits.
    let page = "query($team: ID!) { team(id: $team) { connections(first: 50) { totalCount edges { cursor node {
        id name status authType scopes version expiresAt fields secretFields app { key name }
        lastVerification { outcome message startedAt finishedAt } } } pageInfo { hasNextPage endCursor } } } }";
    let body = app.graphql(Some(&member.token), page, json!({ "team": member.team_id })).await;
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn aliased_and_batched_provider_calls_are_rate_limited() {
    for backend in backends() {
        let Some(app) = TestApp::spawn_with(backend, &[("PLUGBOARD_PROVIDER_CALLS_PER_MINUTE", "12")]).await
        else {
            continue;
        };
        let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
        let id = app.create_api_key_connection(&member, "OpenAI", "sk-hostile").await;
        let calls_before = app.provider.received_requests().await.unwrap_or_default().len();

        let aliased = format!(
            "mutation {{ {} }}",
            (0..20)
                .map(|i| format!("v{i}: verifyConnection(id: \"{id}\") {{ outcome }}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let batch = json!(vec![json!({ "query": aliased }); 10]);
        let (_, body) = post_raw(&app, Some(&member.token), &batch).await;
        let answers = body.as_array().expect("a batch answer");
        let verified: usize = answers
            .iter()
            .map(|a| a["data"].as_object().map_or(0, |d| d.values().filter(|v| !v.is_null()).count()))
            .sum();
        assert_eq!(verified, 5, "one request causes at most 5 provider calls");
        let refusal = answers[0]["errors"][0].clone();
        assert_eq!(refusal["extensions"]["code"], "RATE_LIMITED", "{body}");
        let calls = app.provider.received_requests().await.unwrap_or_default().len() - calls_before;
        assert_eq!(calls, 5, "the provider saw only the admitted calls");

        // Over requests, the token's minute runs out (1 create + 5 above + 6 more = 12).
        let verify = "mutation($id: ID!) { verifyConnection(id: $id) { outcome } }";
        for _ in 0..6 {
            let body = app.graphql(Some(&member.token), verify, json!({ "id": id })).await;
            assert!(body["errors"].is_null(), "{body}");
        }
        let body = app.graphql(Some(&member.token), verify, json!({ "id": id })).await;
        assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
        let retry_after = body["errors"][0]["extensions"]["retryAfter"].as_u64().expect("retryAfter");
        assert!((1..=60).contains(&retry_after), "{body}");
        // Another member's token has its own budget.
        let other = app.member("Acme", "bo@acme.test", TeamRole::Member).await;
        let body = app.graphql(Some(&other.token), verify, json!({ "id": id })).await;
        assert!(body["errors"].is_null(), "{body}");
    }
}

async fn made_up_methods_add_no_metric_series(app: TestApp) {
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("HOSTILE{i}").as_bytes()).unwrap();
        let _ = app.client.request(method, format!("{}/graphql?x={i}", app.address)).send().await;
        let _ = app.client.get(format!("{}/made-up-{i}", app.address)).send().await;
    }
    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("HOSTILE"), "a caller's method became a label");
    assert!(!text.contains("made-up"), "a caller's path became a label");
    assert!(text.contains(r#"method="other""#), "{text}");
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_METRICS_TOKEN", "scrape-secret-123")])
        .await
        .unwrap();
    let url = format!("{}/metrics", app.address);
    let anonymous = app.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = app.client.get(&url).bearer_auth("scrape-secret-124").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let scraper = app.client.get(&url).bearer_auth("scrape-secret-123").send().await.unwrap();
    assert_eq!(scraper.status(), 200);
    assert!(scraper.text().await.unwrap().contains("plugboard_open_subscriptions"));
}

async fn a_corpus_of_nasty_bodies_never_takes_the_service_down(app: TestApp) {
    let nasty: Vec<String> = vec![
        String::new(),
        "null".into(),
        "[]".into(),
        "[[[[]]]]".into(),
        r#"{"query": null}"#.into(),
        r#"{"query": 5}"#.into(),
        r#"{"query": "{", "variables": "x"}"#.into(),
        r#"{"query": "\"\"\"", "variables": {}}"#.into(),
        r#"{"query": "{ viewer { ...A } } fragment A on Viewer { ...A }"}"#.into(),
        r#"{"query": "query($a: Int = $a) { __typename }"}"#.into(),
        r#"{"query": "{ __typename @include(if: true) @include(if: true) @skip(if: false) @skip(if: false) @include(if: true) }"}"#.into(),
        format!(r#"{{"query": "{{ a{} }}"}}"#, "(b: 1)".repeat(500)),
        format!(r#"{{"query": "{}"}}"#, "\\u0000".repeat(1000)),
        format!(r#"{{"query": "{{ __typename }}", "operationName": "{}"}}"#, "x".repeat(10_000)),
        format!("{}", "[".repeat(100_000)),
        format!(r#"{{"query": "{}"}}"#, "#".repeat(100_000)),
    ];
    for body in nasty {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("content-type", "application/json")
            .body(body.clone())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("the service answers");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status == 200 || status == 400 || status == 413,
            "{status} for {}",
            &body[..body.len().min(80)]
        );
        if let Some(errors) = answer["errors"].as_array() {
            assert!(errors.iter().all(|e| e["extensions"]["code"].is_string()), "{answer}");
        }
        assert_alive(&app).await;
    }
}

async fn deep_documents_over_websocket_are_refused_and_the_socket_goes_on(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let mut socket = Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &member.token)
        .await
        .expect("the socket opens");
    let deep = format!(
        "subscription {{ verificationEvents(teamId: {}1{}) {{ phase }} }}",
        "[".repeat(3000),
        "]".repeat(3000)
    );
    socket.subscribe("deep", &deep, json!({})).await;
    let answer = socket.next_message().await.expect("an answer");
    // async-graphql answers a refused operation as a result carrying only errors.
    assert_eq!(answer["id"], "deep", "{answer}");
    assert_eq!(answer["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
    assert!(answer["payload"]["data"].is_null(), "{answer}");
    let complete = socket.next_message().await.expect("the refused operation completes");
    assert_eq!((&complete["id"], &complete["type"]), (&json!("deep"), &json!("complete")), "{complete}");
    socket.subscribe("plain", "{ viewer { email } }", json!({})).await;
    let answer = socket.next_message().await.expect("an answer");
    assert_eq!(answer["payload"]["data"]["viewer"]["email"], "ana@acme.test", "{answer}");
    assert_alive(&app).await;
}

/// `query { ...F0 } fragment F0 on Query { ...F1 ...F1 } ... fragment Fn on Query { __typename }`:
/// a few hundred bytes that expand to 2^n selections.
fn doubling_fragments(levels: usize) -> String {
    let mut query = String::from("query { ...F0 }");
    for level in 0..levels {
        query.push_str(&format!(" fragment F{level} on Query {{ ...F{next} ...F{next} }}", next = level + 1));
    }
    query.push_str(&format!(" fragment F{levels} on Query {{ __typename }}"));
    query
}

#[tokio::test]
async fn fragments_that_expand_exponentially_are_refused_before_they_run() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let small = app.graphql(None, &doubling_fragments(8), json!({})).await;
    assert_eq!(small["data"]["__typename"], "Query", "{small}");
    // Forty levels would be 2^40 selections: without the bound no answer would come for hours.
    let bomb = json!({ "query": doubling_fragments(40) });
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&bomb)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer in time");
    let body: Value = response.json().await.expect("a JSON answer");
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(message(&body).contains("expands to more than 10000 selections"), "{body}");
    assert_alive(&app).await;
}

#[tokio::test]
async fn introspection_and_the_catalog_weigh_what_they_answer() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    // Two hundred aliased copies of the schema would answer 12 MB to anyone.
    let schemas = (0..200)
        .map(|i| format!("s{i}: __schema {{ types {{ name fields {{ name }} }} }}"))
        .collect::<Vec<_>>();
    let body = app.graphql(None, &format!("{{ {} }}", schemas.join(" ")), json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(message(&body).contains("introspection"), "{body}");
    let body = app.graphql(None, &format!("{{ {} }}", schemas[..2].join(" ")), json!({})).await;
    assert!(body["errors"].is_null(), "a couple of schemas are answered: {body}");

    // `apps` answers the whole catalog: three hundred copies of it were 8.7 MB.
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let catalog =
        "apps { key name authType defaultScopes fields { key label secret required } modules { key name } }";
    let copies = (0..300).map(|i| format!("a{i}: {catalog}")).collect::<Vec<_>>();
    let body = app.graphql(Some(&member.token), &format!("{{ {} }}", copies.join(" ")), json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(message(&body).contains("complex"), "{body}");
    let body = app.graphql(Some(&member.token), &format!("{{ {catalog} }}"), json!({})).await;
    assert!(
        body["data"]["apps"].as_array().is_some_and(|apps| apps.len() > 40),
        "the catalog page still fits: {body}"
    );
}

#[tokio::test]
async fn compressed_bodies_are_refused_with_what_to_send() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for encoding in ["gzip", "br"] {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(vec![0x1f, 0x8b, 0x08, 0x00, 0x00])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 415, "{encoding}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(message(&body).contains(&format!("{encoding}-encoded")), "{body}");
    }
    assert_alive(&app).await;
}

async fn long_searches_are_refused_naming_the_field(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    app.create_api_key_connection(&member, "Acme key", "sk-a").await;
    let search =
        "query($t: ID!, $s: String) { team(id: $t) { connections(first: 5, search: $s) { totalCount } } }";
    // SQLite refuses a LIKE pattern of 50,000 bytes as a database error.
    for length in [101, 50_000] {
        let body = app
            .graphql(Some(&member.token), search, json!({ "t": member.team_id, "s": "a".repeat(length) }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{length}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "search", "{body}");
    }
    let body = app.ok(&member.token, search, json!({ "t": member.team_id, "s": "acme KEY" })).await;
    assert_eq!(body["team"]["connections"]["totalCount"], 1, "{body}");
}
