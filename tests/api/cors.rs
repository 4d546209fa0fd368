//! Browsers: listed origins get CORS answers, others get none and cannot open subscriptions;
//! the OAuth callback posts its result only to listed origins and the service's own.

use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{Backend, TestApp};

const PLATFORM: &str = "https://platform.example.com";
const LOCAL_DEV: &str = "http://localhost:5173";
const STRANGER: &str = "https://evil.example.net";

async fn app() -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, &[("PLUGBOARD_CORS_ORIGINS", &format!("{PLATFORM}, {LOCAL_DEV}"))])
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, format!("{}{path}", app.address))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn listed_origins_get_preflight_and_response_headers() {
    let app = app().await;
    let response = preflight(&app, "/graphql", PLATFORM, "POST").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header(&response, "access-control-allow-origin"), Some(PLATFORM));
    assert!(header(&response, "access-control-allow-methods").unwrap().contains("POST"));
    let allowed = header(&response, "access-control-allow-headers").unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
    assert_eq!(header(&response, "access-control-allow-credentials"), None, "bearer tokens, no cookies");

    let member = app.member("Ops", "ana@example.com", plugboard::domain::TeamRole::Admin).await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", LOCAL_DEV)
        .bearer_auth(&member.token)
        .json(&json!({ "query": "{ viewer { email } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "access-control-allow-origin"), Some(LOCAL_DEV));
    assert!(header(&response, "vary").unwrap_or("").to_ascii_lowercase().contains("origin"));
    let exposed = header(&response, "access-control-expose-headers").unwrap_or("").to_ascii_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"]["viewer"]["email"], "ana@example.com");

    // The proxy's route shares the policy, whatever method it is called with.
    let response = preflight(&app, "/proxy/v1/models", PLATFORM, "DELETE").await;
    assert_eq!(header(&response, "access-control-allow-origin"), Some(PLATFORM));
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = app().await;
    for origin in [STRANGER, "https://platform.example.com.evil.example.net", "null", "http://localhost:5174"]
    {
        let response = preflight(&app, "/graphql", origin, "POST").await;
        assert!(!response.status().is_success(), "{origin}: {}", response.status());
        assert_eq!(header(&response, "access-control-allow-origin"), None, "{origin}");

        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("origin", origin)
            .json(&json!({ "query": "{ apps { key } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&response, "access-control-allow-origin"), None, "{origin}");
        assert_eq!(header(&response, "access-control-expose-headers"), None, "{origin}");
    }
}

#[tokio::test]
async fn without_configured_origins_no_browser_origin_is_allowed() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = preflight(&app, "/graphql", PLATFORM, "POST").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

async fn upgrade(app: &TestApp, path: &str, origin: Option<&str>) -> u16 {
    let url = format!("{}{path}", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected WebSocket failure: {other}"),
    }
}

#[tokio::test]
async fn websocket_upgrades_from_other_origins_are_refused() {
    let app = app().await;
    let own = app.address.clone();
    for path in ["/graphql/ws", "/graphql"] {
        assert_eq!(upgrade(&app, path, None).await, 101, "clients that are not browsers send no origin");
        assert_eq!(upgrade(&app, path, Some(PLATFORM)).await, 101);
        assert_eq!(upgrade(&app, path, Some(&own)).await, 101, "GraphiQL on the service itself");
        assert_eq!(upgrade(&app, path, Some(STRANGER)).await, 403, "{path}");
        assert_eq!(upgrade(&app, path, Some("null")).await, 403, "{path}");
    }
}

#[tokio::test]
async fn the_oauth_callback_posts_only_to_listed_origins_and_its_own() {
    let app = app().await;
    let page = app
        .client
        .get(format!("{}/oauth/callback?state=nothing&code=x", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let targets = page
        .lines()
        .find_map(|line| line.strip_prefix("const targets = "))
        .expect("the page names its targets")
        .trim_end_matches(';');
    let targets: Vec<String> = serde_json::from_str(targets).unwrap();
    assert_eq!(targets, [app.address.clone(), PLATFORM.to_owned(), LOCAL_DEV.to_owned()]);
    assert!(!page.contains("\"*\""), "never to any origin: {page}");
    assert!(page.contains("postMessage(result, target)"));
}
