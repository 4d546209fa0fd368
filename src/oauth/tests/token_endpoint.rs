//! The token endpoint against a provider played by wiremock over real HTTP: the exact request
//! each grant sends, and how each kind of answer is classified.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::apps::{app, client_credentials_app, oauth_app_at};
use crate::catalog::{App, FormValues};
use crate::oauth::{
    ClientCredentials, OAuthError, TokenError, TokenSet, client_credentials, exchange_code, refresh,
};

const CLIENT_ID: &str = "client-id-1";
const CLIENT_SECRET: &str = "client-secret-9f8e7d";
const CODE: &str = "auth-code-1a2b3c";
const VERIFIER: &str = "pkce-verifier-0123456789-0123456789-0123456";
const ACCESS: &str = "access-token-3c4d5e";
const REFRESH: &str = "refresh-token-5e6f7a";
const ROTATED: &str = "rotated-refresh-7a8b9c";

fn http() -> reqwest::Client {
    http_with_timeout(Duration::from_secs(5))
}

fn http_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

fn client() -> ClientCredentials {
    ClientCredentials { id: CLIENT_ID.to_owned(), secret: Some(SecretString::from(CLIENT_SECRET)) }
}

fn redirect_uri() -> Url {
    Url::parse("https://plugboard.example/oauth/callback").expect("a URL")
}

/// A provider answering every POST to `/token` with `response`.
async fn provider(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/token")).respond_with(response).mount(&server).await;
    server
}

fn token_url(server: &MockServer) -> String {
    format!("{}/token", server.uri())
}

/// An OAUTH2 app on `server` with `client_auth` and `audience = "api"` as an extra token parameter.
fn app_on(server: &MockServer, client_auth: &str) -> App {
    let oauth = format!("client_auth = \"{client_auth}\"\nextra_token_params = {{ audience = \"api\" }}");
    oauth_app_at(&token_url(server), "", &oauth)
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn full_tokens() -> Value {
    json!({
        "access_token": ACCESS, "refresh_token": REFRESH, "expires_in": 3600,
        "scope": "read write", "token_type": "Bearer"
    })
}

/// The only request the provider received.
async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.expect("recording is on");
    assert_eq!(requests.len(), 1, "expected exactly one token request");
    requests.remove(0)
}

fn form(request: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body).into_owned().collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.get(name).and_then(|value| value.to_str().ok())
}

async fn exchange(app: &App) -> Result<TokenSet, TokenError> {
    let (code, verifier) = (SecretString::from(CODE), SecretString::from(VERIFIER));
    let values = FormValues::default();
    exchange_code(&http(), app, &values, &client(), &redirect_uri(), &code, Some(&verifier)).await
}

async fn refresh_at(server: &MockServer) -> Result<TokenSet, TokenError> {
    let app = app_on(server, "basic");
    refresh(&http(), &app, &FormValues::default(), &client(), &SecretString::from(REFRESH)).await
}

/// A client secret that form encoding changes, to catch a provider quoting the encoded body.
const ODD_SECRET: &str = "odd+secret/with:marks";

/// Asserts that no text an error can produce holds a secret of the request or a token.
fn assert_no_secret(error: &TokenError) {
    let odd_encoded: String = url::form_urlencoded::byte_serialize(ODD_SECRET.as_bytes()).collect();
    for text in [error.to_string(), format!("{error:?}"), format!("{error:#?}")] {
        for secret in [CLIENT_SECRET, CODE, VERIFIER, ACCESS, REFRESH, ROTATED, ODD_SECRET, &odd_encoded] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
    }
}

#[tokio::test]
async fn code_exchange_with_basic_auth_sends_the_client_in_the_header() {
    let server = provider(ok(full_tokens())).await;
    let tokens = exchange(&app_on(&server, "basic")).await.unwrap();

    let request = only_request(&server).await;
    let basic = STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(header(&request, "authorization"), Some(format!("Basic {basic}").as_str()));
    assert_eq!(header(&request, "accept"), Some("application/json"));
    assert_eq!(header(&request, "content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        form(&request),
        pairs(&[
            ("grant_type", "authorization_code"),
            ("code", CODE),
            ("redirect_uri", "https://plugboard.example/oauth/callback"),
            ("code_verifier", VERIFIER),
            ("audience", "api"),
        ])
    );
    assert_eq!(tokens.access_token.expose_secret(), ACCESS);
    assert_eq!(tokens.refresh_token.as_ref().map(|token| token.expose_secret()), Some(REFRESH));
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(3600)));
    assert_eq!(tokens.scopes.unwrap(), ["read", "write"]);
    assert_eq!(tokens.token_type.as_deref(), Some("Bearer"));
}

#[tokio::test]
async fn code_exchange_with_post_auth_sends_the_client_in_the_body() {
    let server = provider(ok(full_tokens())).await;
    let app = app_on(&server, "post");
    let code = SecretString::from(CODE);
    exchange_code(&http(), &app, &FormValues::default(), &client(), &redirect_uri(), &code, None)
        .await
        .unwrap();

    let request = only_request(&server).await;
    assert_eq!(header(&request, "authorization"), None);
    assert_eq!(
        form(&request),
        pairs(&[
            ("grant_type", "authorization_code"),
            ("code", CODE),
            ("redirect_uri", "https://plugboard.example/oauth/callback"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("audience", "api"),
        ])
    );
}

#[tokio::test]
async fn basic_auth_form_encodes_the_client_id_and_secret() {
    let server = provider(ok(full_tokens())).await;
    let app = app_on(&server, "basic");
    let odd = ClientCredentials { id: "my client".to_owned(), secret: Some(SecretString::from("a+b/c:d")) };
    refresh(&http(), &app, &FormValues::default(), &odd, &SecretString::from(REFRESH)).await.unwrap();

    let request = only_request(&server).await;
    let basic = STANDARD.encode("my+client:a%2Bb%2Fc%3Ad");
    assert_eq!(header(&request, "authorization"), Some(format!("Basic {basic}").as_str()));
}

#[tokio::test]
async fn a_public_client_names_itself_in_the_body() {
    let server = provider(ok(full_tokens())).await;
    let app = app_on(&server, "basic");
    let public = ClientCredentials { id: CLIENT_ID.to_owned(), secret: None };
    let (code, verifier) = (SecretString::from(CODE), SecretString::from(VERIFIER));
    exchange_code(&http(), &app, &FormValues::default(), &public, &redirect_uri(), &code, Some(&verifier))
        .await
        .unwrap();

    let request = only_request(&server).await;
    assert_eq!(header(&request, "authorization"), None);
    assert!(form(&request).contains(&("client_id".to_owned(), CLIENT_ID.to_owned())));
    assert!(!form(&request).iter().any(|(name, _)| name == "client_secret"));
}

#[tokio::test]
async fn refresh_returns_a_rotated_refresh_token() {
    let server =
        provider(ok(json!({"access_token": ACCESS, "refresh_token": ROTATED, "expires_in": 600}))).await;
    let tokens = refresh_at(&server).await.unwrap();

    assert_eq!(
        form(&only_request(&server).await),
        pairs(&[("grant_type", "refresh_token"), ("refresh_token", REFRESH), ("audience", "api")])
    );
    assert_eq!(tokens.refresh_token.as_ref().map(|token| token.expose_secret()), Some(ROTATED));
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(600)));
}

#[tokio::test]
async fn refresh_without_a_new_refresh_token_or_expiry_says_so() {
    let server = provider(ok(json!({"access_token": ACCESS, "token_type": "bearer"}))).await;
    let tokens = refresh_at(&server).await.unwrap();
    assert_eq!(tokens.access_token.expose_secret(), ACCESS);
    assert!(tokens.refresh_token.is_none(), "keep the refresh token held");
    assert_eq!(tokens.expires_in, None, "the assumed lifetime applies");
    assert_eq!(tokens.scopes, None, "the requested scopes apply");
}

#[tokio::test]
async fn granted_scopes_are_read_with_spaces_commas_or_not_at_all() {
    let cases =
        [(json!("a b"), Some(vec!["a", "b"])), (json!("a,b"), Some(vec!["a", "b"])), (Value::Null, None)];
    for (scope, expected) in cases {
        let mut body = json!({"access_token": ACCESS});
        if !scope.is_null() {
            body["scope"] = scope;
        }
        let server = provider(ok(body)).await;
        let tokens = refresh_at(&server).await.unwrap();
        let expected = expected.map(|scopes| scopes.into_iter().map(str::to_owned).collect::<Vec<_>>());
        assert_eq!(tokens.scopes, expected);
    }
}

#[tokio::test]
async fn client_credentials_ask_for_the_default_and_requested_scopes() {
    let server = provider(ok(json!({"access_token": ACCESS, "expires_in": 60, "scope": "read,write"}))).await;
    let app =
        client_credentials_app(&token_url(&server), "default_scopes = [\"read\"]", "scope_separator = \",\"");
    let scopes = ["write".to_owned(), "read".to_owned()];
    let tokens = client_credentials(&http(), &app, &FormValues::default(), &client(), &scopes).await.unwrap();

    let request = only_request(&server).await;
    assert!(header(&request, "authorization").is_some_and(|value| value.starts_with("Basic ")));
    assert_eq!(form(&request), pairs(&[("grant_type", "client_credentials"), ("scope", "read,write")]));
    assert_eq!(tokens.scopes.unwrap(), ["read", "write"]);
}

#[tokio::test]
async fn the_token_url_is_filled_from_the_connections_values() {
    let server = provider(ok(full_tokens())).await;
    let fields = "[[fields]]\nkey = \"site\"\nlabel = \"Site\"\nrequired = true\n";
    let oauth =
        "authorize_url = \"{site}/authorize\"\ntoken_url = \"{site}/token\"\nhost_fields = [\"site\"]";
    let app = app("OAUTH2", "", oauth, fields);
    let values = FormValues::from_parts([("site".to_owned(), server.uri())].into(), Default::default());
    let token = SecretString::from(REFRESH);
    assert!(refresh(&http(), &app, &values, &client(), &token).await.is_ok());

    let error = refresh(&http(), &app, &FormValues::default(), &client(), &token).await.unwrap_err();
    assert!(
        matches!(&error, TokenError::Setup(OAuthError::MissingValue { field, .. }) if field == "site"),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_grant_means_the_grant_is_dead() {
    let body = json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."});
    let server = provider(ResponseTemplate::new(400).set_body_json(body)).await;
    let error = refresh_at(&server).await.unwrap_err();
    assert_eq!(
        error,
        TokenError::InvalidGrant { description: Some("Token has been expired or revoked.".to_owned()) }
    );
    assert!(error.needs_reauthorization() && !error.is_transient());
    assert_no_secret(&error);
}

#[tokio::test]
async fn invalid_client_is_a_rejection_not_a_dead_grant() {
    let server = provider(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"}))).await;
    let error = refresh_at(&server).await.unwrap_err();
    assert_eq!(
        error,
        TokenError::Rejected { error: "invalid_client".to_owned(), description: None, status: 401 }
    );
    assert!(!error.needs_reauthorization() && !error.is_transient());
    assert_eq!(error.to_string(), "the token endpoint refused the request with invalid_client (HTTP 401)");
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_transient() {
    let unparseable = ResponseTemplate::new(503).set_body_string("<html>down for maintenance</html>");
    let limited = ResponseTemplate::new(429).set_body_json(json!({"error": "rate_limited"}));
    for response in [unparseable, limited] {
        let server = provider(response).await;
        let error = refresh_at(&server).await.unwrap_err();
        assert!(matches!(error, TokenError::Unavailable { .. }), "{error:?}");
        assert!(error.is_transient() && !error.needs_reauthorization());
    }
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let app = oauth_app_at(&format!("http://{address}/token"), "", "");
    let error = refresh(&http(), &app, &FormValues::default(), &client(), &SecretString::from(REFRESH)).await;
    let error = error.unwrap_err();
    assert!(
        matches!(&error, TokenError::Unavailable { reason } if reason.starts_with("cannot connect")),
        "{error:?}"
    );
    assert_no_secret(&error);
}

#[tokio::test]
async fn a_provider_slower_than_the_clients_timeout_is_transient() {
    let server = provider(ok(full_tokens()).set_delay(Duration::from_secs(3))).await;
    let app = app_on(&server, "basic");
    let http = http_with_timeout(Duration::from_millis(200));
    let error = refresh(&http, &app, &FormValues::default(), &client(), &SecretString::from(REFRESH)).await;
    assert_eq!(error.unwrap_err(), TokenError::Unavailable { reason: "no answer in time".to_owned() });
}

#[tokio::test]
async fn slack_style_ok_false_is_an_error_despite_http_200() {
    let server = provider(ok(json!({"ok": false, "error": "invalid_grant"}))).await;
    assert_eq!(refresh_at(&server).await.unwrap_err(), TokenError::InvalidGrant { description: None });

    let server = provider(ok(json!({"ok": false, "error": "bad_redirect_uri"}))).await;
    let error = refresh_at(&server).await.unwrap_err();
    assert_eq!(
        error,
        TokenError::Rejected { error: "bad_redirect_uri".to_owned(), description: None, status: 200 }
    );
}

#[tokio::test]
async fn a_success_without_an_access_token_is_a_rejection() {
    let server = provider(ok(json!({"ok": true, "refresh_token": REFRESH}))).await;
    let error = refresh_at(&server).await.unwrap_err();
    assert!(matches!(error, TokenError::Rejected { status: 200, .. }), "{error:?}");
    assert_no_secret(&error);
}

/// A provider that quotes the whole request back in its error description.
struct Echo(u16);

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let quoted = String::from_utf8_lossy(&request.body).into_owned();
        let body = json!({"error": format!("bad {quoted}"), "error_description": quoted});
        ResponseTemplate::new(self.0).set_body_json(body)
    }
}

#[tokio::test]
async fn no_error_repeats_a_secret_the_provider_quoted() {
    for status in [200, 400, 401] {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(Echo(status)).mount(&server).await;
        for client_auth in ["basic", "post"] {
            let app = app_on(&server, client_auth);
            let exchanged = exchange(&app).await.unwrap_err();
            assert!(matches!(exchanged, TokenError::Rejected { .. }), "{exchanged:?}");
            assert_no_secret(&exchanged);
            assert_no_secret(&refresh_at(&server).await.unwrap_err());
            let odd =
                ClientCredentials { id: CLIENT_ID.to_owned(), secret: Some(SecretString::from(ODD_SECRET)) };
            let scopes = ["read".to_owned()];
            let machine = client_credentials(&http(), &app, &FormValues::default(), &odd, &scopes).await;
            assert_no_secret(&machine.unwrap_err());
        }
    }
}
