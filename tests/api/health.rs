use crate::helpers::TestApp;
use crate::on_every_database;

on_every_database!(health_and_readiness_answer_ok);

async fn health_and_readiness_answer_ok(app: TestApp) {
    let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn graphiql_is_served_on_get() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap();
    let page = app.client.get(format!("{}/graphql", app.address)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
}

/// PostgreSQL ends every session the service holds (a restart, a failover, a proxy's idle
/// timeout). The pool pings a connection that sat idle before handing it out, so the requests
/// that come after a pause are answered on fresh connections instead of failing on dead ones.
#[tokio::test]
async fn requests_after_postgresql_dropped_every_connection_are_answered() {
    use sea_orm::{ConnectionTrait, Statement};
    let Some((app, member)) = postgres_app_with_pooled_connections().await else {
        return;
    };
    let variables = serde_json::json!({ "team": member.team_id });

    let database = url::Url::parse(&app.database_url).unwrap().path().trim_start_matches('/').to_owned();
    let admin_url = std::env::var("PLUGBOARD_TEST_DATABASE_URL").unwrap();
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    let sessions = |sql: &str| {
        Statement::from_sql_and_values(admin.get_database_backend(), sql, [database.clone().into()])
    };
    let ended = admin
        .query_all_raw(sessions(
            // In the select list, so only the sessions the filter keeps are ended.
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
        ))
        .await
        .unwrap();
    assert!(!ended.is_empty(), "the service held connections to end");
    let ended: Vec<i32> = ended.iter().map(|row| row.try_get("", "pid").unwrap()).collect();
    // Ending a session is asynchronous: wait until none of them is listed any more.
    for _ in 0..100 {
        let listed = admin
            .query_all_raw(sessions("SELECT pid FROM pg_stat_activity WHERE datname = $1"))
            .await
            .unwrap();
        let listed: Vec<i32> = listed.iter().map(|row| row.try_get("", "pid").unwrap()).collect();
        if !listed.iter().any(|pid| ended.contains(pid)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(plugboard::store::PING_WHEN_IDLE_FOR + std::time::Duration::from_millis(200)).await;

    let answers = futures_util::future::join_all(
        (0..8).map(|_| app.graphql(Some(&member.token), LIST, variables.clone())),
    );
    for answer in answers.await {
        assert_eq!(answer["data"]["team"]["connections"]["totalCount"], 1, "{answer}");
    }
    let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// sqlx 0.9.0 opens its sockets with Nagle's algorithm on, which holds the second piece of a
/// statement written in pieces (over TLS, any with more than 16 KiB of parameters) until
/// PostgreSQL acknowledges the first, up to 40 ms later. Every socket the service's pool opens to
/// PostgreSQL must send without that delay.
#[tokio::test]
async fn postgresql_sockets_send_without_delay() {
    use sea_orm::sqlx;
    use std::os::fd::BorrowedFd;
    let Some((app, _member)) = postgres_app_with_pooled_connections().await else {
        return;
    };
    let pool = app.state.db.get_postgres_connection_pool();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.acquire().await.expect("a pooled connection"));
    }
    for connection in &mut held {
        let (local, remote): (i32, i32) = sqlx::query_as("SELECT inet_client_port(), inet_server_port()")
            .fetch_one(&mut **connection)
            .await
            .expect("a TCP connection has ports");
        let ports = (u16::try_from(local).unwrap(), u16::try_from(remote).unwrap());
        let descriptors = plugboard::store::postgres_sockets::descriptors(ports.0, ports.1).unwrap();
        assert_eq!(descriptors.len(), 1, "one socket of this process has the ports {ports:?}");
        // SAFETY: the descriptor holds the socket of `connection`, which this test holds open.
        let socket = unsafe { BorrowedFd::borrow_raw(descriptors[0]) };
        assert!(socket2::SockRef::from(&socket).tcp_nodelay().unwrap(), "the socket {ports:?} waits to send");
    }
}

const LIST: &str = "query($team: ID!) { team(id: $team) { connections(first: 10) { totalCount } } }";

/// The service on PostgreSQL (`None`, said, without PLUGBOARD_TEST_DATABASE_URL), with a team
/// of one connection listed by several requests at once, so that its pool holds several
/// connections.
async fn postgres_app_with_pooled_connections() -> Option<(TestApp, crate::helpers::Member)> {
    let Some(app) = TestApp::spawn(crate::helpers::Backend::Postgres).await else {
        eprintln!("skipped: set PLUGBOARD_TEST_DATABASE_URL to run on PostgreSQL");
        return None;
    };
    let member = app.member("Acme", "ana@acme.test", plugboard::domain::TeamRole::Admin).await;
    app.create_api_key_connection(&member, "Before the outage", "sk-before-the-outage").await;
    let variables = serde_json::json!({ "team": member.team_id });
    futures_util::future::join_all((0..8).map(|_| app.ok(&member.token, LIST, variables.clone()))).await;
    Some((app, member))
}
