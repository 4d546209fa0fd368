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
    a_token_refused_right_after_its_refresh_is_renewed_again,
);

pub(crate) const VERIFY: &str = "mutation($id: ID!) { verifyConnection(id: $id) { outcome message } }";
const READ: &str = "query($flow: ID!, $module: String!) { moduleCredentials(flowId: $flow, moduleKey: $module) { accessToken } }";

/// A running flow whose module `read` uses connection `id`; answers the flow's id.
pub(crate) async fn flow_using(s: &Setup, id: &str) -> String {
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

pub(crate) async fn make_all_due(s: &Setup) {
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
pub(crate) async fn graphql_at(
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

/// A runner's read of a module's credentials, tried again as a runner would when the answer is
/// `UNAVAILABLE` (a thousand reads at once on one SQLite file can find it busy past its
/// timeouts): after `retryAfter` seconds, a few times. Any other answer is returned as it came.
async fn read_as_a_runner(client: &reqwest::Client, address: &str, token: &str, variables: Value) -> Value {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let answer = graphql_at(client, address, token, READ, variables.clone()).await;
        let retry_after = answer["errors"][0]["extensions"]
            .as_object()
            .filter(|extensions| extensions["code"] == "UNAVAILABLE")
            .and_then(|extensions| extensions["retryAfter"].as_u64());
        match retry_after {
            Some(seconds) if attempts < 4 => tokio::time::sleep(Duration::from_secs(seconds.min(5))).await,
            _ => return answer,
        }
    }
}

/// The stored tokens of `id` work at the provider: the access token is live, and so is the
/// refresh token (the rotated one was kept).
pub(crate) async fn assert_working_tokens(s: &Setup, id: &str) {
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
            read_as_a_runner(client, address, &runner, json!({ "flow": flow, "module": "read" }))
        }));
        let ((sweep_a, sweep_b), checks, reads) = tokio::join!(sweeps, checks, reads);
        let (sweep_a, sweep_b) = (sweep_a.unwrap(), sweep_b.unwrap());
        assert_eq!(sweep_a.skipped + sweep_b.skipped, 0, "round {round}: {sweep_a:?} {sweep_b:?}");
        for read in &reads {
            let token = read["data"]["moduleCredentials"]["accessToken"].as_str();
            assert!(token.is_some_and(|t| t.starts_with("access-token-secret-")), "round {round}: {read:#}");
        }
        for check in &checks {
            // A check may lose the race to record against another (CONFLICT), or, in this burst
            // on one SQLite file, be told to retry when the database stays busy past its
            // timeouts (UNAVAILABLE, with `retryAfter`); it never fails otherwise.
            if check.get("errors").is_none() {
                assert_eq!(check["data"]["verifyConnection"]["outcome"], "OK", "round {round}: {check:#}");
            } else {
                let code = crate::helpers::error_code(check);
                assert!(["CONFLICT", "UNAVAILABLE"].contains(&code.as_str()), "round {round}: {check:#}");
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
    assert_no_leases(&s).await;
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
    let (code, page) = crate::oauth::reauthorize(&s, &id).await;
    assert_eq!(code, 200, "{page}");
    let reauthorized = stored_tokens(&s, &id).await;
    let problem = refreshing.await.unwrap().unwrap_err();
    assert!(!matches!(problem, plugboard::oauth::TokenProblem::NeedsReauthorization(_)), "{problem:?}");
    let after = status(&s, &id).await;
    assert_eq!(after["status"], "ACTIVE", "the late failure did not land: {after:#}");
    assert_eq!(stored_tokens(&s, &id).await, reauthorized, "the reauthorization's tokens stay");
    s.provider.fail_refreshes(false);
    assert_working_tokens(&s, &id).await;

    // A late success on the old grant does not replace the new one either, and lets go of the
    // connection at once.
    expire_token(&s, &id).await;
    let stale = load(&s, &id).await;
    let state = s.app.state.clone();
    let refreshing = tokio::spawn(async move { fresh_access_token(&state, &stale, false).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    crate::oauth::reauthorize(&s, &id).await;
    let reauthorized = stored_tokens(&s, &id).await;
    refreshing.await.unwrap().expect("the late refresh still answers a working token");
    assert_eq!(stored_tokens(&s, &id).await, reauthorized, "the newer grant's tokens stay");
    assert_no_leases(&s).await;
    s.provider.set_refresh_delay(Duration::from_millis(150));
}

async fn assert_no_leases(s: &Setup) {
    let leases = connection::Entity::find()
        .filter(connection::Column::RefreshLeaseBy.is_not_null())
        .all(&s.app.state.db)
        .await
        .unwrap();
    assert!(leases.is_empty(), "every refresh lease was given back");
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
