//! The token lifecycle under concurrency, against a provider that rotates refresh tokens and
//! revokes every grant when a spent one is presented again: no refresh token is ever lost,
//! a late failure never overwrites a newer state, tokens without expiry are not flagged for it,
//! and one team's slow token endpoint does not starve another team.

use std::time::Duration;

use chrono::Utc;
use futures_util::future::join_all;
use plugboard::connections::fresh_access_token;
use plugboard::domain::TeamRole;
use plugboard::scheduler::run_due_checks;
use plugboard::store::entities::connection;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::oauth::{Setup, connected, expire_token, load, setup, status, stored_tokens};
use crate::on_every_database;

on_every_database!(
    no_refresh_token_is_lost_to_sweeps_checks_and_reads_on_two_instances,
    a_stale_refresh_failure_does_not_overwrite_a_fresh_reauthorization,
    tokens_without_expiry_are_never_flagged_for_it,
    idle_connections_are_not_refreshed_on_a_clock,
    consent_and_reauthorization_send_authorized_and_recovered_webhooks,
    a_grant_ending_soon_is_shown_and_warned_a_week_and_a_day_before,
    token_response_fields_the_app_keeps_fill_its_templates,
    a_consent_completes_only_while_its_starter_may_manage_the_team,
    a_token_refused_right_after_its_refresh_is_renewed_again,
);

const VERIFY: &str = "mutation($id: ID!) { verifyConnection(id: $id) { outcome message } }";
const READ: &str = "query($flow: ID!, $module: String!) { moduleCredentials(flowId: $flow, moduleKey: $module) { accessToken } }";

/// A running flow whose module `read` uses connection `id`; answers the flow's id.
async fn flow_using(s: &Setup, id: &str) -> String {
    let created = s
        .app
        .ok(
            &s.member.token,
            "mutation($input: CreateFlowInput!) { createFlow(input: $input) { flow { id } } }",
            json!({ "input": { "teamId": s.member.team_id, "name": format!("Sync {id}"), "status": "ACTIVE",
                "modules": [{ "key": "read", "app": "test-oauth", "module": "read-records", "connectionId": id }] } }),
        )
        .await;
    created["createFlow"]["flow"]["id"].as_str().unwrap().to_owned()
}

async fn make_all_due(s: &Setup) {
    connection::Entity::update_many()
        .col_expr(connection::Column::NextCheckAt, Expr::value(Utc::now() - chrono::Duration::minutes(1)))
        .filter(connection::Column::Id.is_not_null())
        .exec(&s.app.state.db)
        .await
        .unwrap();
}

/// Posts a GraphQL request to the instance at `address`. A request the HTTP server dropped
/// before answering (a thousand at once on a small test machine can outrun its accept queue)
/// is sent again: every request here may be repeated, and what is asserted is the answers.
async fn graphql_at(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let body = json!({ "query": query, "variables": variables });
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client.post(format!("{address}/graphql")).bearer_auth(token).json(&body).send().await {
            Ok(response) => return response.json().await.expect("a JSON answer"),
            Err(err) if attempts < 5 && (err.is_request() || err.is_connect()) => {
                tokio::time::sleep(Duration::from_millis(100 * attempts)).await;
            }
            Err(err) => panic!("the app answers: {err:?}"),
        }
    }
}

/// The stored tokens of `id` work at the provider: the access token is live, and so is the
/// refresh token (the rotated one was kept).
async fn assert_working_tokens(s: &Setup, id: &str) {
    let (access, refresh) = stored_tokens(s, id).await;
    assert!(s.provider.is_live_access(&access), "{id}: the stored access token is live");
    let refresh = refresh.expect("a refresh token is stored");
    assert!(s.provider.is_live_refresh(&refresh), "{id}: the stored refresh token is the live one");
}

async fn no_refresh_token_is_lost_to_sweeps_checks_and_reads_on_two_instances(app: TestApp) {
    const CONNECTIONS: usize = 6;
    // The first round has a thousand runner reads at once; the others fewer, to stay quick.
    const READS: [usize; 3] = [1000, 200, 200];
    let s = setup(app).await;
    let sibling = s.app.spawn_sibling().await;
    let mut ids = Vec::new();
    let mut flows = Vec::new();
    for _ in 0..CONNECTIONS {
        let id = connected(&s).await;
        flows.push(flow_using(&s, &id).await);
        ids.push(id);
    }
    let runner = s.app.service_token("Acme").await;
    let addresses = [s.app.address.clone(), sibling.address.clone()];
    let client = reqwest::Client::new();

    for (round, reads) in READS.into_iter().enumerate() {
        for id in &ids {
            expire_token(&s, id).await;
        }
        make_all_due(&s).await;
        let before = s.provider.token_requests();
        let sweeps = async { tokio::join!(run_due_checks(&s.app.state), run_due_checks(&sibling.state)) };
        let (client, member) = (&client, s.member.token.as_str());
        let checks = join_all(ids.iter().flat_map(|id| {
            addresses
                .iter()
                .map(move |address| graphql_at(client, address, member, VERIFY, json!({ "id": id })))
        }));
        let reads = join_all((0..reads).map(|i| {
            let flow = &flows[i % CONNECTIONS];
            let address = &addresses[i % 2];
            graphql_at(client, address, &runner, READ, json!({ "flow": flow, "module": "read" }))
        }));
        let ((sweep_a, sweep_b), checks, reads) = tokio::join!(sweeps, checks, reads);
        let (sweep_a, sweep_b) = (sweep_a.unwrap(), sweep_b.unwrap());
        assert_eq!(sweep_a.skipped + sweep_b.skipped, 0, "round {round}: {sweep_a:?} {sweep_b:?}");
        for read in &reads {
            let token = read["data"]["moduleCredentials"]["accessToken"].as_str();
            assert!(token.is_some_and(|t| t.starts_with("access-token-secret-")), "round {round}: {read:#}");
        }
        for check in &checks {
            // A check may lose the race to record against another (CONFLICT); it never fails.
            if check.get("errors").is_none() {
                assert_eq!(check["data"]["verifyConnection"]["outcome"], "OK", "round {round}: {check:#}");
            } else {
                assert_eq!(crate::helpers::error_code(check), "CONFLICT", "round {round}: {check:#}");
            }
        }
        let requests = s.provider.token_requests() - before;
        assert_eq!(requests, CONNECTIONS, "round {round}: one refresh per connection, across both instances");
        for id in &ids {
            assert_eq!(status(&s, id).await["status"], "ACTIVE", "round {round}");
            assert_working_tokens(&s, id).await;
        }
    }
    // The refresh tokens kept are the ones the provider will honour next.
    for id in &ids {
        fresh_access_token(&s.app.state, &load(&s, id).await, true).await.unwrap();
        assert_working_tokens(&s, id).await;
    }
    let leases = connection::Entity::find()
        .filter(connection::Column::RefreshLeaseBy.is_not_null())
        .all(&s.app.state.db)
        .await
        .unwrap();
    assert!(leases.is_empty(), "every refresh lease was given back");
}

async fn a_stale_refresh_failure_does_not_overwrite_a_fresh_reauthorization(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    expire_token(&s, &id).await;
    // The grant dies at the provider, but the refresh's answer comes late...
    s.provider.fail_refreshes(true);
    s.provider.set_refresh_delay(Duration::from_millis(1500));
    let stale = load(&s, &id).await;
    let state = s.app.state.clone();
    let refreshing = tokio::spawn(async move { fresh_access_token(&state, &stale, false).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...after a person has reauthorized the connection.
    let started = s
        .app
        .ok(
            &s.member.token,
            "mutation($id: ID!) { reauthorizeConnection(id: $id) { authorizationUrl } }",
            json!({ "id": id }),
        )
        .await;
    let (code, page) =
        crate::oauth::consent(&s, started["reauthorizeConnection"]["authorizationUrl"].as_str().unwrap())
            .await;
    assert_eq!(code, 200, "{page}");
    let reauthorized = stored_tokens(&s, &id).await;
    let problem = refreshing.await.unwrap().unwrap_err();
    assert!(!matches!(problem, plugboard::connections::TokenProblem::NeedsReauthorization(_)), "{problem:?}");
    let after = status(&s, &id).await;
    assert_eq!(after["status"], "ACTIVE", "the late failure did not land: {after:#}");
    assert_eq!(stored_tokens(&s, &id).await, reauthorized, "the reauthorization's tokens stay");
    s.provider.fail_refreshes(false);
    s.provider.set_refresh_delay(Duration::from_millis(150));
    assert_working_tokens(&s, &id).await;
}

async fn tokens_without_expiry_are_never_flagged_for_it(app: TestApp) {
    let s = setup(app).await;
    s.provider.set_expires_in(None);
    s.provider.issue_refresh_tokens(false);
    let id = connected(&s).await;
    assert_eq!(load(&s, &id).await.expires_at, None, "no expiry is stored as none");
    assert_eq!(stored_tokens(&s, &id).await.1, None, "the provider gave no refresh token");
    let before = s.provider.token_requests();
    for _ in 0..2 {
        make_all_due(&s).await;
        let report = run_due_checks(&s.app.state).await.unwrap();
        assert_eq!(report.recorded, 1);
        let check = s.app.ok(&s.member.token, VERIFY, json!({ "id": id })).await;
        assert_eq!(check["verifyConnection"]["outcome"], "OK", "{check}");
    }
    // A connection stored before expiries were modelled so carries a past one: still fine.
    expire_token(&s, &id).await;
    make_all_due(&s).await;
    run_due_checks(&s.app.state).await.unwrap();
    assert_eq!(status(&s, &id).await["status"], "ACTIVE");
    assert_eq!(s.provider.token_requests(), before, "nothing tried to renew a token that cannot be renewed");

    // Only the provider refusing the token says the grant is dead.
    s.provider.revoke_all();
    let check = s.app.ok(&s.member.token, VERIFY, json!({ "id": id })).await;
    assert_eq!(check["verifyConnection"]["outcome"], "NEEDS_REAUTHORIZATION", "{check}");
}

async fn idle_connections_are_not_refreshed_on_a_clock(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    let connection = load(&s, &id).await;
    let expires = connection.expires_at.expect("the provider said an hour");
    let next = connection.health.next_check_at.expect("a next check");
    assert!(expires < Utc::now() + chrono::Duration::hours(2));
    assert!(
        next > Utc::now() + chrono::Duration::hours(20),
        "checked daily, not when the token lapses: {next}"
    );
    make_all_due(&s).await;
    run_due_checks(&s.app.state).await.unwrap();
    let next = load(&s, &id).await.health.next_check_at.unwrap();
    assert!(next > Utc::now() + chrono::Duration::hours(20), "still daily after a check: {next}");
}

/// 24 refreshes wait on team A's token endpoint that takes 12 s; team B's query answers, and
/// team A has no more token requests in flight than its limit.
async fn a_slow_token_endpoint_of_one_team_does_not_starve_another(backend: Backend) {
    const LIMIT: usize = 8;
    let Some(app) = TestApp::spawn_with(
        backend,
        &[("PLUGBOARD_HTTP_TIMEOUT_SECS", "20"), ("PLUGBOARD_TEAM_PROVIDER_CONCURRENCY", "8")],
    )
    .await
    else {
        return eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
    };
    let s = setup(app).await;
    let mut ids = Vec::new();
    for _ in 0..24 {
        let id = connected(&s).await;
        expire_token(&s, &id).await;
        ids.push(id);
    }
    let other = s.app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    s.provider.set_refresh_delay(Duration::from_secs(12));
    let before = s.provider.token_requests();
    let waiting: Vec<_> = ids
        .iter()
        .map(|id| {
            let (client, address, token) =
                (s.app.client.clone(), s.app.address.clone(), s.member.token.clone());
            let id = id.clone();
            tokio::spawn(
                async move { graphql_at(&client, &address, &token, VERIFY, json!({ "id": id })).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        s.app.graphql(Some(&other.token), "{ viewer { teams { id } } }", json!({})),
    )
    .await
    .expect("another team's query answers while team A waits on its provider");
    assert_eq!(answer["data"]["viewer"]["teams"][0]["id"], other.team_id.as_str(), "{answer}");
    assert_eq!(s.provider.token_requests() - before, LIMIT, "team A has at most its limit in flight");
    for task in waiting {
        task.abort();
    }
}

#[tokio::test]
async fn a_slow_token_endpoint_of_one_team_does_not_starve_another_on_sqlite() {
    a_slow_token_endpoint_of_one_team_does_not_starve_another(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_slow_token_endpoint_of_one_team_does_not_starve_another_on_postgres() {
    a_slow_token_endpoint_of_one_team_does_not_starve_another(Backend::Postgres).await;
}

#[tokio::test]
async fn refresh_answers_with_absurd_lifetimes_keep_the_rotated_token() {
    let s = setup(TestApp::spawn(Backend::Sqlite).await.unwrap()).await;
    // The consent's own answer may be absurd too: it completes, clamped.
    s.provider.set_extra_fields(json!({ "expires_in": u64::MAX, "refresh_token_expires_in": -5 }));
    let id = connected(&s).await;
    assert_eq!(status(&s, &id).await["status"], "ACTIVE");
    assert_working_tokens(&s, &id).await;
    for absurd in [json!(u64::MAX), json!(1e300), json!(-3600), json!("forever"), json!(99_999_999_999_u64)] {
        s.provider.set_extra_fields(json!({ "expires_in": absurd, "refresh_token_expires_in": absurd }));
        let token = fresh_access_token(&s.app.state, &load(&s, &id).await, true).await;
        assert!(token.is_ok(), "{absurd}: {token:?}");
        assert_working_tokens(&s, &id).await;
        let stored = load(&s, &id).await;
        let year = Utc::now() + chrono::Duration::days(401);
        assert!(stored.expires_at.is_none_or(|e| e < year), "{absurd}: clamped: {:?}", stored.expires_at);
        assert!(stored.grant_expires_at.is_none_or(|e| e < year), "{absurd}: clamped");
    }
}

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
    let started = s
        .app
        .ok(
            &s.member.token,
            "mutation($id: ID!) { reauthorizeConnection(id: $id) { authorizationUrl } }",
            json!({ "id": id }),
        )
        .await;
    let (code, page) =
        crate::oauth::consent(&s, started["reauthorizeConnection"]["authorizationUrl"].as_str().unwrap())
            .await;
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
}

async fn a_consent_completes_only_while_its_starter_may_manage_the_team(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    let before = stored_tokens(&s, &id).await;
    let started = s
        .app
        .ok(
            &s.member.token,
            "mutation($id: ID!) { reauthorizeConnection(id: $id) { authorizationUrl } }",
            json!({ "id": id }),
        )
        .await;
    // The starter is demoted to read-only before the consent comes back.
    let team: plugboard::domain::TeamId = s.member.team_id.parse().unwrap();
    let email = plugboard::domain::Email::parse("ana@acme.test").unwrap();
    let user = plugboard::store::teams::find_user_by_email(&s.app.state.db, &email).await.unwrap().unwrap();
    plugboard::store::teams::set_membership(&s.app.state.db, team, user.id, TeamRole::Monitoring)
        .await
        .unwrap();
    let (_, page) =
        crate::oauth::consent(&s, started["reauthorizeConnection"]["authorizationUrl"].as_str().unwrap())
            .await;
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

async fn a_token_refused_right_after_its_refresh_is_renewed_again(app: TestApp) {
    let s = setup(app).await;
    let id = connected(&s).await;
    expire_token(&s, &id).await;
    // The refresh during the check yields a token the provider refuses at once.
    s.provider.issue_dead_access_tokens(1);
    let check = s.app.ok(&s.member.token, VERIFY, json!({ "id": id })).await;
    assert_eq!(check["verifyConnection"]["outcome"], "OK", "the refused token was replaced: {check}");
    assert_working_tokens(&s, &id).await;
}
