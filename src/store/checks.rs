//! Recording checks, and the scheduler's claims on due connections.
//!
//! Sweeps claim due connections in one order (most overdue first, ids breaking ties), a batch
//! at a time, each batch under a lease: one row in `check_leases` naming the last connection it
//! covers, and an expiry. Claims take turns, and each takes the due connections past the last
//! one any live lease covers, so several instances never check the same connection at once,
//! while the connections' own rows are written only when a check is recorded. A dead
//! instance's leases lapse. Results are written only where their lease still holds and the
//! credentials were not edited (for a manual check, where the version still holds).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, Statement,
};

use super::by_index::Row;
use super::connection_rows::{SHOWN, decode};
use super::entities::check_lease;
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

/// Records a manual check of the credentials at `version`, over the status `found` (the one
/// `record.status` was decided from and the audit trail compares with). Answers `None` when
/// the connection was edited or deleted meanwhile, so a stale result never lands, or when its
/// status moved during the check: then the caller reads it and records again.
pub async fn record(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
    version: i32,
    found: ConnectionStatus,
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
        .filter(Column::Version.eq(version))
        .filter(Column::Status.eq(found));
    super::connections::update_one(db, update).await
}

/// A scheduled check's result, to be written under the lease it was claimed under.
#[derive(Clone, Copy)]
pub struct ClaimedCheck<'a> {
    pub id: ConnectionId,
    pub lease: uuid::Uuid,
    /// The connection's version when it was claimed: an edit since then makes the result stale.
    pub claimed_version: i32,
    /// The status the connection had when it was claimed, which `record.status` was decided from.
    pub claimed_status: ConnectionStatus,
    pub record: CheckRecord<'a>,
}

/// Records scheduled checks, each only where its lease still holds, the credentials were not
/// edited, and no newer check was recorded meanwhile. Answers the connections written, each
/// with the status it had just before (what the audit trail and the events compare with); the
/// others were deleted or edited, their lease lapsed and was taken over, or a check that
/// finished later was recorded first: their results are dropped.
///
/// Nearly always nothing changed a connection's status during its check, so one statement
/// writes those where the status is still the claimed one, and that is their previous status:
/// no read before the write. The rest (a refresh found a grant dead meanwhile, or the result is
/// stale) are looked up and written in a second round, their status worked out from the one
/// they have then.
pub async fn record_claimed(
    db: &impl ConnectionTrait,
    checks: &[ClaimedCheck<'_>],
) -> Result<HashMap<ConnectionId, ConnectionStatus>, DbErr> {
    if checks.is_empty() {
        return Ok(HashMap::new());
    }
    let claimed: HashMap<ConnectionId, ConnectionStatus> =
        checks.iter().map(|check| (check.id, check.claimed_status)).collect();
    let mut written = HashMap::with_capacity(checks.len());
    for id in write_claimed(db, checks, StatusGuard::AsClaimed).await? {
        if let Some(status) = claimed.get(&id) {
            written.insert(id, *status);
        }
    }
    if written.len() == checks.len() {
        return Ok(written);
    }
    let rest: Vec<ConnectionId> =
        checks.iter().map(|check| check.id).filter(|id| !written.contains_key(id)).collect();
    let now = statuses(db, &rest).await?;
    // Their status worked out again from the one they have now: a refresh during the check
    // flagged the grant dead, and an outage's result must not put the status it had back.
    let changed: Vec<ClaimedCheck<'_>> = checks
        .iter()
        .filter_map(|check| {
            let status = now.get(&check.id)?;
            let mut check = *check;
            check.record.status = check.record.verification.outcome.next_status(*status);
            Some(check)
        })
        .collect();
    if changed.is_empty() {
        return Ok(written);
    }
    for id in write_claimed(db, &changed, StatusGuard::Any).await? {
        if let Some(status) = now.get(&id) {
            written.insert(id, *status);
        }
    }
    Ok(written)
}

/// The statuses of the connections `ids`, as they stand.
async fn statuses(
    db: &impl ConnectionTrait,
    ids: &[ConnectionId],
) -> Result<HashMap<ConnectionId, ConnectionStatus>, DbErr> {
    use sea_orm::QuerySelect;
    let rows: Vec<(ConnectionId, ConnectionStatus)> = Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::Status)
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
    checks: &[ClaimedCheck<'_>],
    guard: StatusGuard,
) -> Result<Vec<ConnectionId>, DbErr> {
    let backend = db.get_database_backend();
    let mut rows = json_rows::Rows::new(backend);
    for ClaimedCheck { id, lease, claimed_version, claimed_status, record } in checks {
        let check = record.verification;
        let health = record.health;
        rows.row()
            .uuid(id.as_uuid())
            .uuid(*lease)
            .integer((*claimed_version).into())
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
    let statement =
        Statement::from_sql_and_values(backend, write_claimed_sql(backend, guard), [rows.finish().into()]);
    let written = db.query_all_raw(statement).await?;
    written.iter().map(|row| row.try_get_by_index::<ConnectionId>(0)).collect()
}

/// `write_claimed`'s statement: its one parameter is the batch.
fn write_claimed_sql(backend: DatabaseBackend, guard: StatusGuard) -> String {
    use json_rows::Kind::{Integer, Text, Time, Uuid};
    let results = json_rows::select(
        backend,
        json_rows::placeholders(backend).0,
        &[
            ("connection_id", Uuid),
            ("lease_id", Uuid),
            ("claimed_version", Integer),
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
         last_failure_at = results.last_failure_at \
         FROM results \
         WHERE connections.id = results.connection_id \
         AND connections.version = results.claimed_version \
         AND EXISTS (SELECT 1 FROM check_leases WHERE check_leases.id = results.lease_id) \
         AND (connections.last_verification_finished_at IS NULL \
         OR connections.last_verification_finished_at <= results.finished_at){as_claimed} \
         RETURNING connections.id"
    )
}

/// What a sweep asks for when it claims its next batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchClaim<'a> {
    /// The sweep's token: its leases are given back together when it ends.
    pub sweep: &'a str,
    /// The new batch's lease, named by the sweep so its results can say what they were checked under.
    pub lease: uuid::Uuid,
    pub now: DateTime<Utc>,
    /// Until when the lease holds; after that another sweep may check the batch again.
    pub expires_at: DateTime<Utc>,
    pub limit: u64,
}

/// Claims up to `limit` due connections under a new lease, and answers their ids, most overdue
/// first. Read them with `read_claimed`.
///
/// Only the ids come back: on SQLite the claim holds the one write lock, and copying every
/// column of 500 connections out under it took as long as claiming them.
pub async fn claim_due(db: &DatabaseConnection, batch: BatchClaim<'_>) -> Result<Vec<ConnectionId>, DbErr> {
    let txn = super::begin(db).await?;
    let mut due = due_past_the_leases(&txn, batch).await?;
    due.columns([Column::Id, Column::NextCheckAt]);
    let keys = txn
        .query_all(&due)
        .await?
        .iter()
        .map(|row| Ok((row.try_get_by_index::<ConnectionId>(0)?, row.try_get_by_index::<DateTime<Utc>>(1)?)))
        .collect::<Result<Vec<_>, DbErr>>()?;
    if let Some(&(id, due)) = keys.last() {
        lease(&txn, batch, id, due).await?;
    }
    txn.commit().await?;
    Ok(keys.into_iter().map(|(id, _)| id).collect())
}

/// As `claim_due` then `read_claimed`, in one read: the claimed connections come back with
/// their sealed secrets, most overdue first. For PostgreSQL, where claiming holds no lock that
/// anything but another claim waits on.
pub async fn claim_and_read_due(
    db: &DatabaseConnection,
    batch: BatchClaim<'_>,
) -> Result<Vec<(Connection, Option<Vec<u8>>)>, DbErr> {
    let txn = super::begin(db).await?;
    let mut due = due_past_the_leases(&txn, batch).await?;
    due.columns(SHOWN.into_iter().chain([Column::SealedSecrets]));
    let claimed = txn.query_all(&due).await?.iter().map(decode_claimed).collect::<Result<Vec<_>, DbErr>>()?;
    if let Some((last, _)) = claimed.last() {
        let due = last
            .health
            .next_check_at
            .ok_or_else(|| DbErr::Custom("a claimed connection has no due time".into()))?;
        lease(&txn, batch, last.id, due).await?;
    }
    txn.commit().await?;
    Ok(claimed)
}

/// Key of the PostgreSQL advisory lock that claims take in turn ("plugchks").
const CLAIMS_LOCK: i64 = 0x706c_7567_6368_6b73;

/// Within a claim's transaction: waits for other claims to finish (on SQLite the transaction's
/// write lock does that), forgets the leases that lapsed, and answers the query for the next
/// `limit` due connections past the last one a live lease covers, without its columns.
///
/// Every claim takes the connections that follow the ones already leased, so two sweeps never
/// hold one connection; those of a lease that lapsed are due again once no live lease lies
/// past them, that is once every sweep under way has ended.
async fn due_past_the_leases(
    txn: &DatabaseTransaction,
    batch: BatchClaim<'_>,
) -> Result<sea_orm::sea_query::SelectStatement, DbErr> {
    use sea_orm::sea_query::{ExprTrait, QueryStatementBuilder};
    use sea_orm::{QueryOrder, QuerySelect};
    let backend = txn.get_database_backend();
    if backend == DatabaseBackend::Postgres {
        let wait =
            Statement::from_sql_and_values(backend, "SELECT pg_advisory_xact_lock($1)", [CLAIMS_LOCK.into()]);
        txn.execute_raw(wait).await?;
    }
    check_lease::Entity::delete_many().filter(check_lease::Column::ExpiresAt.lt(batch.now)).exec(txn).await?;
    let furthest: Option<uuid::Uuid> = check_lease::Entity::find()
        .select_only()
        .column(check_lease::Column::Id)
        .order_by_desc(check_lease::Column::LastDue)
        .order_by_desc(check_lease::Column::LastId)
        .into_tuple()
        .one(txn)
        .await?;
    let mut due = Query::select();
    due.from(Entity)
        .and_where(Column::NextCheckAt.lte(batch.now))
        .and_where(Column::Status.ne(ConnectionStatus::PendingAuthorization))
        .order_by(Column::NextCheckAt, sea_orm::Order::Asc)
        .order_by(Column::Id, sea_orm::Order::Asc)
        .limit(batch.limit);
    if let Some(furthest) = furthest {
        // Compared with the stored values themselves, never with values read and bound back,
        // which SQLite (timestamps as text) might spell differently.
        let mut last = Query::select();
        last.columns([check_lease::Column::LastDue, check_lease::Column::LastId])
            .from(check_lease::Entity)
            .and_where(check_lease::Column::Id.eq(furthest));
        due.and_where(
            Expr::tuple([Expr::col((Entity, Column::NextCheckAt)), Expr::col((Entity, Column::Id))])
                .gt(Expr::SubQuery(None, Box::new(last.into_sub_query_statement()))),
        );
    }
    Ok(due)
}

/// Within a claim's transaction: leases to `batch`'s sweep every due connection up to the last
/// one the claim read, `last` (due at `due`).
async fn lease(
    txn: &DatabaseTransaction,
    batch: BatchClaim<'_>,
    last: ConnectionId,
    due: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut insert = Query::insert();
    insert.into_table(check_lease::Entity).columns([
        check_lease::Column::Id,
        check_lease::Column::Sweep,
        check_lease::Column::ExpiresAt,
        check_lease::Column::LastDue,
        check_lease::Column::LastId,
    ]);
    let lease = [Expr::value(batch.lease), Expr::value(batch.sweep), Expr::value(batch.expires_at)];
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        // As read: PostgreSQL keeps a timestamp exactly as bound, and another transaction may
        // move the row between two statements of this one.
        insert
            .values(lease.into_iter().chain([Expr::value(due), Expr::value(last)]))
            .map_err(|err| DbErr::Custom(err.to_string()))?;
    } else {
        // Copied from the row, for the reason given in `due_past_the_leases`; the transaction's
        // write lock keeps the row as the claim read it.
        let mut bound = Query::select();
        bound
            .exprs(lease)
            .columns([Column::NextCheckAt, Column::Id])
            .from(Entity)
            .and_where(Column::Id.eq(last));
        insert.select_from(bound).map_err(|err| DbErr::Custom(err.to_string()))?;
    }
    txn.execute(&insert).await?;
    Ok(())
}

/// Those of `ids` that still exist, with their sealed secrets, most overdue first.
pub async fn read_claimed(
    db: &impl ConnectionTrait,
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
        .and_where(claimed_ids(db, ids))
        .order_by(Column::NextCheckAt, sea_orm::Order::Asc)
        .order_by(Column::Id, sea_orm::Order::Asc);
    let rows = db.query_all(&statement).await?;
    rows.iter().map(decode_claimed).collect()
}

/// A claimed connection read as `SHOWN` then `sealed_secrets`.
fn decode_claimed(result: &sea_orm::QueryResult) -> Result<(Connection, Option<Vec<u8>>), DbErr> {
    let row = Row::of(result)?;
    let sealed: Option<Vec<u8>> = row.get(SHOWN.len())?;
    Ok((decode(&row)?, sealed))
}

/// Postpones to `next_check_at` those of the connections `ids` that are still due (another
/// sweep may have checked one since its lease lapsed): connections a sweep could not check.
pub async fn postpone(
    db: &impl ConnectionTrait,
    ids: &[ConnectionId],
    now: DateTime<Utc>,
    next_check_at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::NextCheckAt, Expr::value(next_check_at))
        .filter(Column::NextCheckAt.lte(now))
        .filter(claimed_ids(db, ids))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// `id IN <ids>`, bound as one value: a sweep's batches are hundreds of ids.
fn claimed_ids(db: &impl ConnectionTrait, ids: &[ConnectionId]) -> sea_orm::sea_query::Expr {
    json_rows::is_in(db.get_database_backend(), Column::Id, ids.iter().map(|id| id.as_uuid()))
}

/// Gives back the leases of the sweep `sweep`: what they cover and was not checked is due again.
pub async fn release_leases(db: &impl ConnectionTrait, sweep: &str) -> Result<u64, DbErr> {
    let result =
        check_lease::Entity::delete_many().filter(check_lease::Column::Sweep.eq(sweep)).exec(db).await?;
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
