//! Single sign-on: an in-test OpenID Connect issuer (discovery and JWKS on a local server) with
//! rotating RSA keys. Its valid JWTs are accepted as bearer tokens; forged, expired, misdirected
//! and algorithm-confused ones are refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use plugboard::domain::TeamRole;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Backend, TestApp, error_code};
use crate::ws::{Protocol, Subscriber};

const AUDIENCE: &str = "plugboard";
const KEY_ONE: &str = include_str!("oidc_keys/one.pem");
const KEY_TWO: &str = include_str!("oidc_keys/two.pem");
const PUBLIC_ONE: &str = include_str!("oidc_keys/one.pub.pem");

struct Issuer {
    server: MockServer,
}

impl Issuer {
    async fn start(keys: &[(&str, &str)]) -> Issuer {
        let issuer = Issuer { server: MockServer::start().await };
        issuer.publish(keys).await;
        issuer
    }

    fn url(&self) -> String {
        self.server.uri()
    }

    /// Serves discovery and a JWKS of `keys` (kid, private key), replacing what was served.
    async fn publish(&self, keys: &[(&str, &str)]) {
        self.server.reset().await;
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": self.url(), "jwks_uri": format!("{}/jwks", self.url()),
                "id_token_signing_alg_values_supported": ["RS256"],
            })))
            .mount(&self.server)
            .await;
        let keys = keys
            .iter()
            .map(|(kid, pem)| {
                let mut jwk = Jwk::from_encoding_key(
                    &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
                    Algorithm::RS256,
                )
                .unwrap();
                jwk.common.key_id = Some((*kid).to_owned());
                jwk
            })
            .collect();
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(JwkSet { keys }))
            .mount(&self.server)
            .await;
    }

    fn claims(&self, sub: &str, email: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({ "iss": self.url(), "aud": AUDIENCE, "sub": sub, "email": email, "iat": now, "nbf": now - 5, "exp": now + 600 })
    }
}

fn sign(kid: &str, pem: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap()
}

/// A token signed with HMAC-SHA256 using the issuer's public key as the secret: what a forger
/// who only knows the public key can make.
fn hs256_with_public_key(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(PUBLIC_ONE.as_bytes()).unwrap()).unwrap()
}

fn unsigned(kid: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": kid }).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

async fn app_for(backend: Backend, issuer: &Issuer, extra: &[(&str, &str)]) -> Option<TestApp> {
    let url = issuer.url();
    let mut env = vec![("PLUGBOARD_OIDC_ISSUER", url.as_str()), ("PLUGBOARD_OIDC_AUDIENCE", AUDIENCE)];
    env.extend_from_slice(extra);
    TestApp::spawn_with(backend, &env).await
}

const VIEWER: &str = "{ viewer { kind email userId teams { name role } } }";

#[tokio::test]
async fn the_issuers_tokens_are_accepted_and_keys_rotate() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let issuer = Issuer::start(&[("one", KEY_ONE)]).await;
        let Some(app) = app_for(backend, &issuer, &[]).await else { continue };
        let token = sign("one", KEY_ONE, &issuer.claims("user-123", "Ana@Platform.test"));
        let first = app.ok(&token, VIEWER, json!({})).await;
        assert_eq!(first["viewer"]["kind"], "USER");
        assert_eq!(first["viewer"]["email"], "ana@platform.test");
        assert_eq!(first["viewer"]["teams"], json!([]), "membership is managed through the API");

        // An admin adds the platform user by e-mail; the same subject is the same user.
        let admin = app.member("Acme", "admin@acme.test", TeamRole::Admin).await;
        app.ok(
            &admin.token,
            "mutation($t: ID!) { addTeamMember(teamId: $t, email: \"ana@platform.test\", role: MEMBER) { userId } }",
            json!({ "t": admin.team_id }),
        )
        .await;
        let again = app.ok(&token, VIEWER, json!({})).await;
        assert_eq!(again["viewer"]["userId"], first["viewer"]["userId"]);
        assert_eq!(again["viewer"]["teams"], json!([{ "name": "Acme", "role": "MEMBER" }]));

        // The issuer rotates to a new key: a token naming it makes the service fetch the JWKS
        // again, and the retired key no longer verifies anything.
        issuer.publish(&[("two", KEY_TWO)]).await;
        let rotated = sign("two", KEY_TWO, &issuer.claims("user-123", "ana@platform.test"));
        let viewer = app.ok(&rotated, VIEWER, json!({})).await;
        assert_eq!(viewer["viewer"]["userId"], first["viewer"]["userId"]);
        let body = app.graphql(Some(&token), VIEWER, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "a retired key: {body}");

        // JWTs work for subscriptions too.
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &rotated)
            .await
            .expect("connection_init accepts the JWT");
        // And API tokens keep working beside them.
        app.ok(&admin.token, VIEWER, json!({})).await;
    }
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let issuer = Issuer::start(&[("one", KEY_ONE)]).await;
    let app = app_for(Backend::Sqlite, &issuer, &[]).await.unwrap();
    let good = issuer.claims("user-1", "ana@platform.test");
    let with = |change: Value| {
        let mut claims = good.clone();
        for (key, value) in change.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    };
    let now = chrono::Utc::now().timestamp();
    let cases = [
        ("expired", sign("one", KEY_ONE, &with(json!({ "exp": now - 3600, "nbf": now - 7200 })))),
        ("not yet valid", sign("one", KEY_ONE, &with(json!({ "nbf": now + 3600 })))),
        ("wrong audience", sign("one", KEY_ONE, &with(json!({ "aud": "another-service" })))),
        ("wrong issuer", sign("one", KEY_ONE, &with(json!({ "iss": "https://evil.example.net" })))),
        (
            "no subject",
            sign("one", KEY_ONE, &{
                let mut c = good.clone();
                c.as_object_mut().unwrap().remove("sub");
                c
            }),
        ),
        ("unknown key", sign("unknown", KEY_ONE, &good)),
        ("signed by another key", sign("one", KEY_TWO, &good)),
        ("alg none", unsigned("one", &good)),
        ("HS256 with the public key", hs256_with_public_key("one", &good)),
        ("garbage", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln".to_owned()),
    ];
    for (case, token) in cases {
        let body = app.graphql(Some(&token), VIEWER, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{case}: {body}");
    }
    // The good one still works, so the refusals above were about the tokens.
    app.ok(&sign("one", KEY_ONE, &good), VIEWER, json!({})).await;
}

#[tokio::test]
async fn memberships_can_follow_a_teams_claim() {
    let issuer = Issuer::start(&[("one", KEY_ONE)]).await;
    let app = app_for(Backend::Sqlite, &issuer, &[("PLUGBOARD_OIDC_TEAMS_CLAIM", "groups")]).await.unwrap();
    let acme = app.member("Acme", "admin@acme.test", TeamRole::Admin).await;
    app.member("Globex", "admin@globex.test", TeamRole::Admin).await;
    let mut claims = issuer.claims("user-9", "ana@platform.test");
    claims["groups"] = json!(["Acme", "Globex", "No such team"]);
    let jwt = sign("one", KEY_ONE, &claims);
    let viewer = app.ok(&jwt, VIEWER, json!({})).await;
    assert_eq!(
        viewer["viewer"]["teams"],
        json!([{ "name": "Acme", "role": "MEMBER" }, { "name": "Globex", "role": "MEMBER" }])
    );
    let mut subscriber =
        Subscriber::connect(&app.address, "/graphql/ws", Protocol::TransportWs, &jwt).await.unwrap();
    subscriber
        .subscribe(
            "s",
            "subscription($t: ID!) { connectionEvents(teamId: $t) { kind } }",
            json!({ "t": acme.team_id }),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // The platform takes the user out of Acme: the next request follows, and the subscription
    // to Acme opened earlier ends.
    claims["groups"] = json!(["Globex"]);
    let viewer = app.ok(&sign("one", KEY_ONE, &claims), VIEWER, json!({})).await;
    assert_eq!(viewer["viewer"]["teams"], json!([{ "name": "Globex", "role": "MEMBER" }]));
    let ended = subscriber.next_data(std::time::Duration::from_secs(2)).await.expect("the subscription ends");
    assert_eq!(ended["errors"][0]["extensions"]["code"], "FORBIDDEN", "{ended}");
    let trail = app
        .ok(
            &acme.token,
            "query($t: ID!) { team(id: $t) { auditEvents { edges { node { action actor { kind label } } } } } }",
            json!({ "t": acme.team_id }),
        )
        .await;
    assert_eq!(trail["team"]["auditEvents"]["edges"][0]["node"]["action"], "MEMBER_REMOVED");
    assert_eq!(trail["team"]["auditEvents"]["edges"][1]["node"]["action"], "MEMBER_ADDED");
}
