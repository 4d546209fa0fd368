//! A team's `totalCount` without a filter comes from the count the database keeps
//! (`connection_counts`, moved by triggers on `connections`): it must stay exact under
//! concurrent creations and deletions, count what existed before it was kept, and never count a
//! connection in two teams.

use futures_util::future::join_all;
use plugboard::domain::TeamRole;
use plugboard_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{Member, TestApp};
use crate::on_every_database;

on_every_database!(
    counts_stay_exact_when_connections_come_and_go_at_once,
    connections_made_before_the_count_was_kept_are_counted,
    a_connection_cannot_move_to_another_team
);

const COUNT: &str = r#"
query($team: ID!, $search: String) {
  team(id: $team) { connections(first: 2, search: $search) { totalCount edges { node { id } } } }
}"#;

const DELETE: &str = "mutation($id: ID!) { deleteConnection(id: $id) { deletedId } }";

async fn total(app: &TestApp, member: &Member) -> u64 {
    let page = app.ok(&member.token, COUNT, json!({ "team": member.team_id })).await;
    page["team"]["connections"]["totalCount"].as_u64().expect("a count")
}

/// `totalCount` with a search that matches every connection: counted with `COUNT(*)`, not kept.
async fn counted(app: &TestApp, member: &Member) -> u64 {
    let page = app.ok(&member.token, COUNT, json!({ "team": member.team_id, "search": "key" })).await;
    page["team"]["connections"]["totalCount"].as_u64().expect("a count")
}

async fn counts_stay_exact_when_connections_come_and_go_at_once(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let other = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    assert_eq!(total(&app, &member).await, 0, "a team that never had a connection");

    let created = join_all((0..12).map(|i| {
        let (app, member) = (&app, &member);
        async move { app.create_api_key_connection(member, &format!("Key {i}"), "sk-abc").await }
    }))
    .await;
    app.create_api_key_connection(&other, "Key of Globex", "sk-abc").await;
    assert_eq!(total(&app, &member).await, 12);

    // Five deleted while three more are created, all at once.
    let deletions = created[..5].iter().map(|id| {
        let (app, member) = (&app, &member);
        async move {
            app.ok(&member.token, DELETE, json!({ "id": id })).await;
        }
    });
    let creations = (12..15).map(|i| {
        let (app, member) = (&app, &member);
        async move {
            app.create_api_key_connection(member, &format!("Key {i}"), "sk-abc").await;
        }
    });
    join_all(
        deletions.map(futures_util::FutureExt::boxed).chain(creations.map(futures_util::FutureExt::boxed)),
    )
    .await;

    assert_eq!(total(&app, &member).await, 10);
    assert_eq!(counted(&app, &member).await, 10, "the kept count is what COUNT(*) finds");
    assert_eq!(total(&app, &other).await, 1, "another team's count did not move");
}

/// The migration that keeps the counts, undone (with those after it): connections come and go
/// without a count kept, and done again, it counts them.
async fn connections_made_before_the_count_was_kept_are_counted(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    app.create_api_key_connection(&member, "Key 1", "sk-abc").await;
    let migrations: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    let counts = migrations
        .iter()
        .position(|name| name == "m20261201_000001_connection_counts")
        .expect("the migration that keeps the counts");
    let steps = u32::try_from(migrations.len() - counts).unwrap();
    Migrator::down(&app.state.db, Some(steps)).await.expect("the migrations undo");
    let second = app.create_api_key_connection(&member, "Key 2", "sk-abc").await;
    app.create_api_key_connection(&member, "Key 3", "sk-abc").await;
    app.ok(&member.token, DELETE, json!({ "id": second })).await;
    Migrator::up(&app.state.db, None).await.expect("the migration runs again");

    assert_eq!(total(&app, &member).await, 2);
    app.create_api_key_connection(&member, "Key 4", "sk-abc").await;
    assert_eq!(total(&app, &member).await, 3);
    assert_eq!(counted(&app, &member).await, 3);
}

async fn a_connection_cannot_move_to_another_team(app: TestApp) {
    let member = app.member("Acme", "ana@acme.test", TeamRole::Admin).await;
    let other = app.member("Globex", "hank@globex.test", TeamRole::Admin).await;
    let id = app.create_api_key_connection(&member, "Key 1", "sk-abc").await;
    let db = &app.state.db;
    let backend = db.get_database_backend();
    // The ids as the table stores them, whatever the database.
    let moved = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DatabaseBackend::Postgres => "UPDATE connections SET team_id = $1 WHERE id = $2",
                _ => "UPDATE connections SET team_id = ? WHERE id = ?",
            },
            [other.team_id.parse::<uuid::Uuid>().unwrap().into(), id.parse::<uuid::Uuid>().unwrap().into()],
        ))
        .await;
    let err = moved.expect_err("the database refuses the move");
    assert!(err.to_string().contains("a connection stays in its team"), "{err}");
    assert_eq!(total(&app, &member).await, 1);
    assert_eq!(total(&app, &other).await, 0);
}
