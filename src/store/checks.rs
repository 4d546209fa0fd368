//! Recording checks, and the scheduler's claims on due connections.
//!
//! A sweep claims due connections by writing its claim token and an expiry in one statement
//! (on PostgreSQL with `FOR UPDATE SKIP LOCKED`), so several instances never check the same
//! connection at once, and a dead instance's claims lapse. Results are written only where the
//! claim (or, for a manual check, the version) still holds.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, Statement,
};

use super::by_index::Row;
use super::connection_rows::{SHOWN, decode};
use super::connections::{scoped, to_connection};
use super::entities::connection::{Column, Entity};
use super::json_rows;
use crate::domain::{Connection, ConnectionId, ConnectionStatus, Health, TeamId, Verification};

/// What a finished check changes on its connection.
#[derive(Clone, Copy)]
pub struct CheckRecord<'a> {
    pub verification: &'a Verification,
    pub status: ConnectionStatus,
    pub health: &'a Health,
}

/// Records a manual check of the credentials at `version`. Answers `None` when the connection
/// was edited or deleted meanwhile, so a stale result never lands.
pub async fn record(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
    version: i32,
    record: CheckRecord<'_>,
) -> Result<Option<Connection>, DbErr> {
    let check = record.verification;
    let mut update = super::connections::noting(record.status, check)
        .col_expr(Column::NextCheckAt, Expr::value(record.health.next_check_at))
        .col_expr(Column::ConsecutiveFailures, Expr::value(record.health.consecutive_failures))
        .col_expr(Column::LastSuccessAt, Expr::value(record.health.last_success_at))
        .col_expr(Column::LastFailureAt, Expr::value(record.health.last_failure_at));
    if let Some(label) = &check.account_label {
        update = update.col_expr(Column::AccountLabel, Expr::value(label.clone()));
    }
    let update = update
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(version));
    if update.exec(db).await?.rows_affected == 0 {
        return Ok(None);
    }
    scoped(team_id).filter(Column::Id.eq(id)).one(db).await?.map(to_connection).transpose()
}

/// A scheduled check's result, to be written under the sweep's claim.
#[derive(Clone, Copy)]
pub struct ClaimedCheck<'a> {
    pub id: ConnectionId,
    /// The status the connection had when it was claimed, which `record.status` was decided from.
    pub claimed_status: ConnectionStatus,
    pub record: CheckRecord<'a>,
}

/// Records scheduled checks, each only where `claim` still holds and no newer check was
/// recorded meanwhile, and releases their claims. Answers the connections written, each with
/// the status it had just before (what the audit trail and the events compare with); the
/// others were deleted, their claim lapsed and was taken over, or a check that finished later
/// was recorded first: their results are dropped (and their claims lapse or are given back at
/// the end of the sweep).
///
/// Nearly always nothing changed a connection's status during its check, so one statement
/// writes those where the status is still the claimed one, and that is their previous status:
/// no read before the write. The rest (a refresh found a grant dead meanwhile, or the result is
/// stale) are looked up and written in a second round.
pub async fn record_claimed(
    db: &impl ConnectionTrait,
    claim: &str,
    checks: &[ClaimedCheck<'_>],
) -> Result<HashMap<ConnectionId, ConnectionStatus>, DbErr> {
    if checks.is_empty() {
        return Ok(HashMap::new());
    }
    let claimed: HashMap<ConnectionId, ConnectionStatus> =
        checks.iter().map(|check| (check.id, check.claimed_status)).collect();
    let mut written = HashMap::with_capacity(checks.len());
    for id in write_claimed(db, claim, checks, StatusGuard::AsClaimed).await? {
        if let Some(status) = claimed.get(&id) {
            written.insert(id, *status);
        }
    }
    if written.len() == checks.len() {
        return Ok(written);
    }
    let rest: Vec<ConnectionId> =
        checks.iter().map(|check| check.id).filter(|id| !written.contains_key(id)).collect();
    let now = statuses(db, claim, &rest).await?;
    let changed: Vec<ClaimedCheck<'_>> =
        checks.iter().filter(|check| now.contains_key(&check.id)).copied().collect();
    if changed.is_empty() {
        return Ok(written);
    }
    for id in write_claimed(db, claim, &changed, StatusGuard::Any).await? {
        if let Some(status) = now.get(&id) {
            written.insert(id, *status);
        }
    }
    Ok(written)
}

/// The statuses of the connections `ids` that `claim` still holds, as they stand.
async fn statuses(
    db: &impl ConnectionTrait,
    claim: &str,
    ids: &[ConnectionId],
) -> Result<HashMap<ConnectionId, ConnectionStatus>, DbErr> {
    use sea_orm::QuerySelect;
    let rows: Vec<(ConnectionId, ConnectionStatus)> = Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::Status)
        .filter(Column::ClaimedBy.eq(claim))
        .filter(claimed_ids(db, ids))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Which stored status `write_claimed` writes over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StatusGuard {
    /// Only the status the connection was claimed with.
    AsClaimed,
    Any,
}

/// `WITH results AS (<the batch>) UPDATE connections ... FROM results ... RETURNING id`, the
/// batch bound as one JSON parameter (`json_rows`): the same text whatever its size, so each
/// pooled connection prepares it once.
async fn write_claimed(
    db: &impl ConnectionTrait,
    claim: &str,
    checks: &[ClaimedCheck<'_>],
    guard: StatusGuard,
) -> Result<Vec<ConnectionId>, DbErr> {
    let backend = db.get_database_backend();
    let mut rows = json_rows::Rows::new(backend);
    for ClaimedCheck { id, claimed_status, record } in checks {
        let check = record.verification;
        let health = record.health;
        rows.row()
            .uuid(id.as_uuid())
            .text(Some(claimed_status.as_str()))
            .text(Some(record.status.as_str()))
            .text(Some(check.outcome.as_str()))
            .text(check.message.as_deref())
            .time(Some(check.started_at))
            .time(Some(check.finished_at))
            .text(check.account_label.as_deref())
            .time(health.next_check_at)
            .integer(health.consecutive_failures.into())
            .time(health.last_success_at)
            .time(health.last_failure_at);
    }
    let statement = Statement::from_sql_and_values(
        backend,
        write_claimed_sql(backend, guard),
        [rows.finish().into(), claim.into()],
    );
    let written = db.query_all_raw(statement).await?;
    written.iter().map(|row| row.try_get_by_index::<ConnectionId>(0)).collect()
}

/// `write_claimed`'s statement: parameter 1 is the batch, parameter 2 the claim.
fn write_claimed_sql(backend: DatabaseBackend, guard: StatusGuard) -> String {
    use json_rows::Kind::{Integer, Text, Time, Uuid};
    let (batch, claim) = json_rows::placeholders(backend);
    let results = json_rows::select(
        backend,
        batch,
        &[
            ("connection_id", Uuid),
            ("claimed_status", Text),
            ("status", Text),
            ("outcome", Text),
            ("message", Text),
            ("started_at", Time),
            ("finished_at", Time),
            ("account_label", Text),
            ("next_check_at", Time),
            ("consecutive_failures", Integer),
            ("last_success_at", Time),
            ("last_failure_at", Time),
        ],
    );
    let as_claimed = match guard {
        StatusGuard::AsClaimed => " AND connections.status = results.claimed_status",
        StatusGuard::Any => "",
    };
    format!(
        "WITH results AS ({results}) \
         UPDATE connections SET status = results.status, \
         last_verification_outcome = results.outcome, \
         last_verification_message = results.message, \
         last_verification_started_at = results.started_at, \
         last_verification_finished_at = results.finished_at, \
         account_label = COALESCE(results.account_label, connections.account_label), \
         next_check_at = results.next_check_at, \
         consecutive_failures = results.consecutive_failures, \
         last_success_at = results.last_success_at, \
         last_failure_at = results.last_failure_at, \
         claimed_by = NULL, claim_expires_at = NULL \
         FROM results \
         WHERE connections.id = results.connection_id AND connections.claimed_by = {claim} \
         AND (connections.last_verification_finished_at IS NULL \
         OR connections.last_verification_finished_at <= results.finished_at){as_claimed} \
         RETURNING connections.id"
    )
}

/// Claims up to `limit` due connections for `claim` until `expires_at`, and answers their ids:
/// the most overdue, and only those this call claimed, so one sweep can claim again under the
/// same token while it still holds earlier claims. Connections waiting for consent are never
/// due. Read what was claimed with `read_claimed`.
///
/// Only the ids come back: on SQLite a statement holds the one write lock until its last row is
/// read, and copying every column of 500 connections out of it took as long as claiming them.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    claim: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<ConnectionId>, DbErr> {
    let mut statement = claiming(db, claim, now, expires_at, limit);
    statement.returning_col(Column::Id);
    let rows = db.query_all(&statement).await?;
    rows.iter().map(|row| row.try_get_by_index::<ConnectionId>(0)).collect()
}

/// As `claim_due` then `read_claimed`, in one statement: the claimed connections come back from
/// the claim itself, most overdue first. For PostgreSQL, where the claim holds no lock that
/// others wait on while its rows are copied out (on SQLite it would hold the one write lock).
pub async fn claim_and_read_due(
    db: &impl ConnectionTrait,
    claim: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(Connection, Option<Vec<u8>>)>, DbErr> {
    let mut statement = claiming(db, claim, now, expires_at, limit);
    statement.returning(Query::returning().columns(SHOWN.into_iter().chain([Column::SealedSecrets])));
    let rows = db.query_all(&statement).await?;
    let mut claimed = rows.iter().map(decode_claimed).collect::<Result<Vec<_>, DbErr>>()?;
    // As PostgreSQL orders `next_check_at` ascending: never-checked connections last.
    claimed.sort_by_key(|(connection, _)| {
        let due = connection.health.next_check_at;
        (due.is_none(), due)
    });
    Ok(claimed)
}

/// The `UPDATE` that claims up to `limit` due connections for `claim` until `expires_at`, the
/// most overdue first, without its `RETURNING`.
fn claiming(
    db: &impl ConnectionTrait,
    claim: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    limit: u64,
) -> sea_orm::sea_query::UpdateStatement {
    let mut due = Query::select();
    due.column(Column::Id)
        .from(Entity)
        .cond_where(
            Condition::all()
                .add(Condition::any().add(Column::NextCheckAt.is_null()).add(Column::NextCheckAt.lte(now)))
                .add(
                    Condition::any()
                        .add(Column::ClaimExpiresAt.is_null())
                        .add(Column::ClaimExpiresAt.lt(now)),
                )
                .add(Column::Status.ne(ConnectionStatus::PendingAuthorization)),
        )
        .order_by(Column::NextCheckAt, sea_orm::Order::Asc)
        .limit(limit);
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // Two instances claiming at once each skip what the other is taking.
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let mut statement = Query::update();
    statement
        .table(Entity)
        .values([(Column::ClaimedBy, Expr::value(claim)), (Column::ClaimExpiresAt, Expr::value(expires_at))])
        .and_where(Column::Id.in_subquery(due));
    statement
}

/// Those of `ids` that `claim` still holds, with their sealed secrets, most overdue first. A
/// connection deleted since it was claimed is not among them.
pub async fn read_claimed(
    db: &impl ConnectionTrait,
    claim: &str,
    ids: &[ConnectionId],
) -> Result<Vec<(Connection, Option<Vec<u8>>)>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The connection's shown columns and its secrets, read by position: decoding a whole row
    // by name cost more than the rest of claiming it.
    let mut statement = Query::select();
    statement
        .columns(SHOWN.into_iter().chain([Column::SealedSecrets]))
        .from(Entity)
        .and_where(Column::ClaimedBy.eq(claim))
        .and_where(claimed_ids(db, ids))
        .order_by(Column::NextCheckAt, sea_orm::Order::Asc);
    let rows = db.query_all(&statement).await?;
    rows.iter().map(decode_claimed).collect()
}

/// A claimed connection read as `SHOWN` then `sealed_secrets`.
fn decode_claimed(result: &sea_orm::QueryResult) -> Result<(Connection, Option<Vec<u8>>), DbErr> {
    let row = Row::of(result)?;
    let sealed: Option<Vec<u8>> = row.get(SHOWN.len())?;
    Ok((decode(&row)?, sealed))
}

/// Postpones the connections `ids` that `claim` still holds to `next_check_at` and gives them
/// back: connections a sweep could not check at all.
pub async fn postpone(
    db: &impl ConnectionTrait,
    claim: &str,
    ids: &[ConnectionId],
    next_check_at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::NextCheckAt, Expr::value(next_check_at))
        .col_expr(Column::ClaimedBy, Expr::value(Option::<String>::None))
        .col_expr(Column::ClaimExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(Column::ClaimedBy.eq(claim))
        .filter(claimed_ids(db, ids))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// `id IN <ids>`, bound as one value: a sweep's batches are hundreds of ids.
fn claimed_ids(db: &impl ConnectionTrait, ids: &[ConnectionId]) -> sea_orm::sea_query::Expr {
    json_rows::is_in(db.get_database_backend(), Column::Id, ids.iter().map(|id| id.as_uuid()))
}

/// Gives back, unchanged, whatever `claim` still holds: connections claimed but not checked.
pub async fn release_claimed(db: &impl ConnectionTrait, claim: &str) -> Result<u64, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::ClaimedBy, Expr::value(Option::<String>::None))
        .col_expr(Column::ClaimExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(Column::ClaimedBy.eq(claim))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// When the most overdue check was due; for the scheduler-lag gauge.
pub async fn oldest_due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let oldest: Option<Option<DateTime<Utc>>> = Entity::find()
        .select_only()
        .column(Column::NextCheckAt)
        .filter(Column::NextCheckAt.lte(now))
        .filter(Column::Status.ne(ConnectionStatus::PendingAuthorization))
        .order_by_asc(Column::NextCheckAt)
        .into_tuple()
        .one(db)
        .await?;
    Ok(oldest.flatten())
}
