//! What providers answer when a token goes wrong, read as they mean it, through a real
//! verification: a refusal with another status than 401 still gets the token renewed; a token
//! endpoint's page that is no OAuth answer, or a refusal of the operator's client, changes no
//! status; providers' own words for a dead grant ask for reauthorization.

use serde_json::{Value, json};

use crate::fake_oauth::Canned;
use crate::helpers::{TestApp, error_code};
use crate::oauth::{Setup, connected, consent, expire_token, setup, status};
use crate::on_every_database;
use crate::token_lifecycle::{VERIFY, flow_using};

const READ: &str = "query($flow: ID!, $module: String!) { moduleCredentials(flowId: $flow, moduleKey: $module) { accessToken } }";

on_every_database!(
    a_403_for_a_session_that_timed_out_renews_the_token,
    an_answer_that_is_no_oauth_answer_changes_no_status,
    a_refused_operator_client_changes_no_status_and_says_who_must_act,
    a_refused_own_client_is_the_connections_own_problem,
    providers_own_words_for_a_dead_grant_ask_for_reauthorization,
);

async fn verify(s: &Setup, id: &str) -> Value {
    s.app.ok(&s.member.token, VERIFY, json!({ "id": id })).await["verifyConnection"].clone()
}

/// Salesforce gives no `expires_in`, ends the session after the org's timeout, and its
/// userinfo endpoint then answers 403 `Bad_OAuth_Token`.
async fn a_403_for_a_session_that_timed_out_renews_the_token(app: TestApp) {
    let s = setup(app).await;
    s.provider.set_expires_in(None);
    s.provider.refuse_tokens_with(Canned::new(403, "text/plain", "Bad_OAuth_Token"));
    let id = connected(&s).await;
    assert_eq!(status(&s, &id).await["expiresAt"], Value::Null, "no expiry was stated");
    s.provider.end_sessions();
    let before = s.provider.token_requests();
    let check = verify(&s, &id).await;
    assert_eq!(check["outcome"], "OK", "the refused token was renewed: {check}");
    assert_eq!(s.provider.token_requests(), before + 1, "one refresh");
    assert_eq!(status(&s, &id).await["status"], "ACTIVE");
}

/// The connection's token is due for renewal, and the token endpoint answers `answer`.
async fn renewal_answered(s: &Setup, id: &str, answer: Canned) -> Value {
    expire_token(s, id).await;
    s.provider.answer_refreshes_with(Some(answer));
    verify(s, id).await
}

async fn an_answer_that_is_no_oauth_answer_changes_no_status(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    let pages = [
        Canned::new(403, "text/html", "<html><body>Access denied by the firewall</body></html>"),
        Canned::new(401, "application/json", r#"{"message": "Unauthorized"}"#),
        Canned::new(200, "text/html", "<html>Down for maintenance</html>"),
        Canned::new(200, "application/json", r#"{"token_type": "Bearer"}"#),
    ];
    for page in pages {
        let shown = format!("{} {}", page.status, page.body);
        let check = renewal_answered(&s, &id, page).await;
        assert_eq!(check["outcome"], "PROVIDER_UNAVAILABLE", "{shown}: {check}");
        assert!(check["message"].as_str().unwrap().contains("no OAuth answer"), "{check}");
        assert_eq!(status(&s, &id).await["status"], "ACTIVE", "{shown}");
    }
    // Once the endpoint answers as usual, the same connection renews.
    s.provider.answer_refreshes_with(None);
    assert_eq!(verify(&s, &id).await["outcome"], "OK");
}

async fn a_refused_operator_client_changes_no_status_and_says_who_must_act(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    for error in ["invalid_client", "unauthorized_client"] {
        let body = json!({ "error": error, "error_description": "AADSTS7000222: the client secret expired" });
        let check = renewal_answered(&s, &id, Canned::new(401, "application/json", body.to_string())).await;
        assert_eq!(check["outcome"], "PROVIDER_UNAVAILABLE", "{check}");
        let message = check["message"].as_str().unwrap();
        assert!(message.contains("operator's OAuth client"), "{message}");
        assert!(message.contains("PLUGBOARD_APP_TEST_OAUTH_CLIENT_SECRET"), "{message}");
        assert_eq!(status(&s, &id).await["status"], "ACTIVE");
    }
    // A runner is told the same, not that scopes are missing.
    let flow = flow_using(&s, &id).await;
    let runner = s.app.service_token("Acme").await;
    let read = s.app.graphql(Some(&runner), READ, json!({ "flow": flow, "module": "read" })).await;
    assert_eq!(error_code(&read), "PROVIDER_UNAVAILABLE", "{read}");
    assert!(read["errors"][0]["message"].as_str().unwrap().contains("operator's OAuth client"), "{read}");
}

async fn a_refused_own_client_is_the_connections_own_problem(app: TestApp) {
    let s = setup(app).await;
    let created = s
        .app
        .ok(
            &s.member.token,
            crate::helpers::CREATE_CONNECTION,
            json!({ "input": { "teamId": s.member.team_id, "app": "test-oauth", "name": "Own client",
                "fields": { "client_id": "own-client", "client_secret": "own-secret" }, "scopes": ["records.read"] } }),
        )
        .await;
    let id = created["createConnection"]["connection"]["id"].as_str().unwrap().to_owned();
    let url = created["createConnection"]["authorizationUrl"].as_str().unwrap().to_owned();
    assert_eq!(consent(&s, &url).await.0, 200);
    let body = json!({ "error": "invalid_client" }).to_string();
    let check = renewal_answered(&s, &id, Canned::new(401, "application/json", body)).await;
    assert_eq!(check["outcome"], "INVALID_CREDENTIALS", "the connection's own client id and secret: {check}");
    assert_eq!(status(&s, &id).await["status"], "INVALID");
}

async fn providers_own_words_for_a_dead_grant_ask_for_reauthorization(app: TestApp) {
    let s = setup(app).await;
    let answers = [
        // HubSpot names it in `status`, with no `error`.
        json!({ "status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token", "correlationId": "c1" }),
        // Microsoft, when only the user signing in again can renew the grant.
        json!({ "error": "interaction_required", "error_description": "AADSTS50076: multi-factor authentication" }),
        json!({ "error": "consent_required" }),
    ];
    for answer in answers {
        let id = connected(&s).await;
        let check = renewal_answered(&s, &id, Canned::new(400, "application/json", answer.to_string())).await;
        assert_eq!(check["outcome"], "NEEDS_REAUTHORIZATION", "{answer}: {check}");
        assert_eq!(status(&s, &id).await["status"], "NEEDS_REAUTHORIZATION", "{answer}");
    }
}
