//! The last checks of each connection, newest first.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use super::entities::verification::{Column, Entity};
use super::json_rows;
use super::prepared::PreparedWrites;
use crate::domain::{ConnectionId, TeamId, Verification};

/// Records a check and forgets all but the newest `keep` of the connection.
pub async fn record(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: ConnectionId,
    check: &Verification,
    keep: u64,
) -> Result<(), DbErr> {
    record_many(db, &[(team_id, connection_id, check)], keep).await
}

/// Records checks of several connections (two statements, however many), and forgets all but
/// the newest `keep` of each.
pub async fn record_many(
    db: &impl ConnectionTrait,
    checks: &[(TeamId, ConnectionId, &Verification)],
    keep: u64,
) -> Result<(), DbErr> {
    let mut writes = PreparedWrites::default();
    writes.extend(record_many_statements(db.get_database_backend(), checks, keep));
    writes.run(db).await
}

/// The statements `record_many` runs, to build ahead of a transaction: the history's rows,
/// then the deletion of what falls beyond `keep`. Each binds its batch as one JSON parameter
/// (`json_rows`), so its text is the same whatever the batch's size. None when there is
/// nothing to record.
pub fn record_many_statements(
    backend: DatabaseBackend,
    checks: &[(TeamId, ConnectionId, &Verification)],
    keep: u64,
) -> Vec<Statement> {
    use super::json_rows::Kind::{Text, Time, Uuid};
    if checks.is_empty() {
        return Vec::new();
    }
    let mut rows = json_rows::Rows::new(backend);
    for (team_id, connection_id, check) in checks {
        rows.row()
            .uuid(uuid::Uuid::now_v7())
            .uuid(team_id.as_uuid())
            .uuid(connection_id.as_uuid())
            .text(Some(check.outcome.as_str()))
            .text(check.message.as_deref())
            .text(check.account_label.as_deref())
            .time(Some(check.started_at))
            .time(Some(check.finished_at));
    }
    let (first, second) = json_rows::placeholders(backend);
    let checks_table = json_rows::select(
        backend,
        first,
        &[
            ("id", Uuid),
            ("team_id", Uuid),
            ("connection_id", Uuid),
            ("outcome", Text),
            ("message", Text),
            ("account_label", Text),
            ("started_at", Time),
            ("finished_at", Time),
        ],
    );
    let insert = format!(
        "INSERT INTO verifications (id, team_id, connection_id, outcome, message, account_label, started_at, \
         finished_at) {checks_table}"
    );
    let prune = prune_sql(backend, &json_rows::select_ids(backend, first), second);
    let ids = json_rows::ids(checks.iter().map(|(_, id, _)| id.as_uuid()));
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    vec![
        Statement::from_sql_and_values(backend, insert, [rows.finish().into()]),
        Statement::from_sql_and_values(backend, prune, [ids.into(), keep.into()]),
    ]
}

/// Deletes each listed connection's history beyond its `keep` newest checks (`connections` is a
/// `SELECT` of their ids, `keep` a placeholder).
///
/// On PostgreSQL, per connection: the newest check past the limit is found by walking the
/// `(connection_id, id)` index backwards, and the checks at or before it are deleted by their
/// row address. Ranking the whole history instead (`row_number()`, below) was planned, once the
/// statement was prepared, as a scan of the entire table: PostgreSQL cannot tell how many ids a
/// JSON parameter holds, and guessed a third of the table. In the sweep bench that scan was
/// half of PostgreSQL's time, growing with every batch. `OFFSET 0` keeps the second look-up a
/// per-connection index scan rather than a join over the table. SQLite runs every join as such
/// loops already.
fn prune_sql(backend: DatabaseBackend, connections: &str, keep: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => format!(
            "DELETE FROM verifications WHERE ctid = ANY(ARRAY(SELECT old.ctid FROM ({connections}) AS pruned \
             CROSS JOIN LATERAL (SELECT kept.id FROM verifications AS kept WHERE kept.connection_id = pruned.id \
             ORDER BY kept.id DESC LIMIT 1 OFFSET {keep}) AS cut \
             CROSS JOIN LATERAL (SELECT old.ctid FROM verifications AS old \
             WHERE old.connection_id = pruned.id AND old.id <= cut.id OFFSET 0) AS old))"
        ),
        _ => format!(
            "DELETE FROM verifications WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER \
             (PARTITION BY connection_id ORDER BY id DESC) AS newer FROM verifications \
             WHERE connection_id IN ({connections})) AS ranked WHERE newer > {keep})"
        ),
    }
}

pub async fn list(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    connection_id: ConnectionId,
    limit: u64,
) -> Result<Vec<Verification>, DbErr> {
    let rows = Entity::find()
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::ConnectionId.eq(connection_id))
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| Verification {
            outcome: m.outcome,
            message: m.message,
            account_label: m.account_label,
            started_at: m.started_at,
            finished_at: m.finished_at,
        })
        .collect())
}
