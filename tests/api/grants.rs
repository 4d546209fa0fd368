//! What the provider says about a grant, and who completes a consent: grant expiry and its
//! warnings, token response fields an app keeps, the webhooks consent completion causes, and
//! consent bound to the person who started it.

use std::time::Duration;

use chrono::Utc;
use plugboard::domain::TeamRole;
use plugboard::scheduler::run_due_checks;
use plugboard::store::entities::connection;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::oauth::{Setup, connected, expire_token, setup, stored_tokens};
use crate::on_every_database;
use crate::token_lifecycle::{VERIFY, assert_working_tokens, flow_using, make_all_due};

on_every_database!(
    consent_and_reauthorization_send_authorized_and_recovered_webhooks,
    a_grant_ending_soon_is_shown_and_warned_a_week_and_a_day_before,
    token_response_fields_the_app_keeps_fill_its_templates,
    a_consent_completes_only_while_its_starter_may_manage_the_team,
);

/// The event types a receiver got, waiting until it got `n` (deliveries run in the background).
async fn received_events(receiver: &wiremock::MockServer, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let requests = receiver.received_requests().await.unwrap();
        if requests.len() >= n {
            return requests.iter().map(|r| r.body_json::<Value>().unwrap()).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} deliveries, got {}", receiver.received_requests().await.unwrap().len());
}

async fn consent_and_reauthorization_send_authorized_and_recovered_webhooks(app: TestApp) {
    let s = setup(app).await;
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    s.app
        .ok(
            &s.member.token,
            "mutation($t: ID!, $url: String!) { createWebhook(teamId: $t, url: $url, secret: \"whsec-test-signing-secret\") { id } }",
            json!({ "t": s.member.team_id, "url": format!("{}/hook", receiver.uri()) }),
        )
        .await;
    let id = connected(&s).await;
    let events = received_events(&receiver, 2).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(types.contains(&"connection.created") && types.contains(&"connection.authorized"), "{types:?}");
    let authorized = events.iter().find(|e| e["type"] == "connection.authorized").unwrap();
    assert_eq!(authorized["account"], "owner@provider.test");
    assert_eq!(authorized["connection"]["status"], "ACTIVE");
    assert_eq!(authorized["connection"]["id"], id.as_str());

    s.provider.revoke_all();
    s.provider.set_mode(crate::fake_oauth::TokenMode::InvalidGrant);
    let check = s.app.ok(&s.member.token, VERIFY, json!({ "id": id })).await;
    assert_eq!(check["verifyConnection"]["outcome"], "NEEDS_REAUTHORIZATION");
    received_events(&receiver, 3).await;
    s.provider.set_mode(crate::fake_oauth::TokenMode::Normal);
    let (code, page) = crate::oauth::reauthorize(&s, &id).await;
    assert_eq!(code, 200, "{page}");
    let events = received_events(&receiver, 5).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.iter().filter(|t| **t == "connection.authorized").count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == "connection.recovered").count(), 1, "{types:?}");
    assert!(types.contains(&"connection.needs_reauthorization"), "{types:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = received_events(&receiver, 5).await;
    let all: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(all.len(), 5, "nothing was sent twice: {all:?}");
}

async fn set_grant_end(s: &Setup, id: &str, ends: chrono::DateTime<Utc>) {
    connection::Entity::update_many()
        .col_expr(connection::Column::GrantExpiresAt, Expr::value(ends))
        .filter(connection::Column::Id.eq(id.parse::<plugboard::domain::ConnectionId>().unwrap()))
        .exec(&s.app.state.db)
        .await
        .unwrap();
}

async fn a_grant_ending_soon_is_shown_and_warned_a_week_and_a_day_before(app: TestApp) {
    let s = setup(app).await;
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    s.provider.set_extra_fields(json!({ "refresh_token_expires_in": 30 * 86400 }));
    let id = connected(&s).await;
    let flow = flow_using(&s, &id).await;
    s.app
        .ok(
            &s.member.token,
            "mutation($t: ID!, $url: String!) { createWebhook(teamId: $t, url: $url, secret: \"whsec-test-signing-secret\") { id } }",
            json!({ "t": s.member.team_id, "url": format!("{}/hook", receiver.uri()) }),
        )
        .await;
    let grant = "query($id: ID!) { connection(id: $id) { grantExpiresAt grantStatus } }";
    let expiring = "query($t: ID!) { team(id: $t) { connections(grantStatus: EXPIRING) { totalCount edges { node { id } } } } }";
    let shown = s.app.ok(&s.member.token, grant, json!({ "id": id })).await;
    let ends: chrono::DateTime<Utc> =
        shown["connection"]["grantExpiresAt"].as_str().unwrap().parse().unwrap();
    assert!((ends - Utc::now() - chrono::Duration::days(30)).num_minutes().abs() < 5, "{shown}");
    assert_eq!(shown["connection"]["grantStatus"], "OK");
    let listed = s.app.ok(&s.member.token, expiring, json!({ "t": s.member.team_id })).await;
    assert_eq!(listed["team"]["connections"]["totalCount"], 0);
    assert_eq!(plugboard::connections::warn_expiring_grants(&s.app.state).await.unwrap(), 0);

    set_grant_end(&s, &id, Utc::now() + chrono::Duration::days(6)).await;
    let shown = s.app.ok(&s.member.token, grant, json!({ "id": id })).await;
    assert_eq!(shown["connection"]["grantStatus"], "EXPIRING");
    let listed = s.app.ok(&s.member.token, expiring, json!({ "t": s.member.team_id })).await;
    assert_eq!(listed["team"]["connections"]["edges"][0]["node"]["id"], id.as_str());
    let other = s.app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    let theirs = s.app.ok(&other.token, expiring, json!({ "t": other.team_id })).await;
    assert_eq!(theirs["team"]["connections"]["totalCount"], 0, "another team sees none of it");

    let (sibling, state) = (s.app.spawn_sibling().await, s.app.state.clone());
    let (a, b) = tokio::join!(
        plugboard::connections::warn_expiring_grants(&state),
        plugboard::connections::warn_expiring_grants(&sibling.state)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "the week's warning goes out once across instances");
    let events = received_events(&receiver, 1).await;
    let warning =
        events.iter().find(|e| e["type"] == "connection.expiring").expect("a connection.expiring webhook");
    assert_eq!(warning["connection"]["id"], id.as_str());
    assert_eq!(warning["flows"][0]["id"], flow.as_str(), "it names the flows that will break: {warning}");
    assert_eq!(warning["days_left"], 5);

    set_grant_end(&s, &id, Utc::now() + chrono::Duration::hours(20)).await;
    assert_eq!(
        plugboard::connections::warn_expiring_grants(&s.app.state).await.unwrap(),
        1,
        "the day's warning"
    );
    assert_eq!(plugboard::connections::warn_expiring_grants(&s.app.state).await.unwrap(), 0);
    received_events(&receiver, 2).await;

    // The check at the warning exercises the refresh token; a provider that extends the grant
    // on use moves its end, and the connection is no longer expiring.
    let before = s.provider.token_requests();
    make_all_due(&s).await;
    run_due_checks(&s.app.state).await.unwrap();
    assert_eq!(s.provider.token_requests(), before + 1, "the access token was fresh, the grant was not");
    let shown = s.app.ok(&s.member.token, grant, json!({ "id": id })).await;
    assert_eq!(shown["connection"]["grantStatus"], "OK", "{shown}");
    assert_working_tokens(&s, &id).await;
}

async fn token_response_fields_the_app_keeps_fill_its_templates(app: TestApp) {
    let s = setup(app).await;
    s.provider.set_extra_fields(json!({ "instance_url": s.app.provider.uri(), "signature": "sig-secret" }));
    let created = s
        .app
        .ok(
            &s.member.token,
            crate::helpers::CREATE_CONNECTION,
            json!({ "input": { "teamId": s.member.team_id, "app": "test-instance", "name": "Instance", "fields": {} } }),
        )
        .await;
    let id = created["createConnection"]["connection"]["id"].as_str().unwrap().to_owned();
    let url = created["createConnection"]["authorizationUrl"].as_str().unwrap();
    let (code, page) = crate::oauth::consent(&s, url).await;
    assert_eq!(code, 200, "{page}");
    let shown = s
        .app
        .ok(
            &s.member.token,
            "query($id: ID!) { connection(id: $id) { status accountLabel fields grantDetails } }",
            json!({ "id": id }),
        )
        .await;
    let connection = &shown["connection"];
    assert_eq!(connection["status"], "ACTIVE", "the check reached {{instance_url}}/oauth-api/me: {shown}");
    assert_eq!(connection["accountLabel"], "owner@provider.test");
    assert_eq!(connection["grantDetails"], json!({ "instance_url": s.app.provider.uri() }));
    assert_eq!(connection["fields"], json!({}), "details are not form fields");
    assert!(!shown.to_string().contains("sig-secret"), "only the fields the app names are kept");

    // The scheduler's checks and refreshes use it too, and a refresh keeps what it named.
    expire_token(&s, &id).await;
    let check = s.app.ok(&s.member.token, VERIFY, json!({ "id": id })).await;
    assert_eq!(check["verifyConnection"]["outcome"], "OK", "{check}");
    let after = s
        .app
        .ok(&s.member.token, "query($id: ID!) { connection(id: $id) { grantDetails } }", json!({ "id": id }))
        .await;
    assert_eq!(after["connection"]["grantDetails"]["instance_url"], s.app.provider.uri());

    // So does the proxy: its calls go to the API base the details fill.
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/oauth-api/records"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({ "records": [] })))
        .mount(&s.app.provider)
        .await;
    let proxied = s
        .app
        .client
        .get(format!("{}/proxy/records", s.app.address))
        .bearer_auth(&s.member.token)
        .header("Plugboard-Connection", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert_eq!(proxied.json::<serde_json::Value>().await.unwrap(), json!({ "records": [] }));
}

async fn a_consent_completes_only_while_its_starter_may_manage_the_team(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    let before = stored_tokens(&s, &id).await;
    let url = crate::oauth::start_reauthorization(&s, &id).await;
    // The starter is demoted to read-only before the consent comes back.
    let team: plugboard::domain::TeamId = s.member.team_id.parse().unwrap();
    let email = plugboard::domain::Email::parse("ana@acme.test").unwrap();
    let user = plugboard::store::teams::find_user_by_email(&s.app.state.db, &email).await.unwrap().unwrap();
    plugboard::store::teams::set_membership(&s.app.state.db, team, user.id, TeamRole::Monitoring)
        .await
        .unwrap();
    let (_, page) = crate::oauth::consent(&s, &url).await;
    assert!(page.contains("can no longer change") && page.contains("\"outcome\":\"error\""), "{page}");
    assert_eq!(stored_tokens(&s, &id).await, before, "nothing was replaced");
    let audit = s
        .app
        .ok(
            &s.member.token,
            "query($t: ID!) { team(id: $t) { auditEvents(first: 20) { edges { node { action detail } } } } }",
            json!({ "t": s.member.team_id }),
        )
        .await;
    let authorized = audit["team"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["action"] == "CONNECTION_AUTHORIZED")
        .expect("the first consent is in the trail")
        .clone();
    assert_eq!(authorized["node"]["detail"]["consented_as"], "owner@provider.test", "{authorized}");
}
