//! The outbox of live events. A change writes its events here in its own transaction, so an
//! event exists exactly when its change does; the dispatcher claims them with a lease (several
//! instances share one PostgreSQL), publishes, and deletes them. Payloads are opaque JSON text
//! here: what an event means is the `events` module's business.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, Statement,
};

use super::entities::event_outbox::{self, Column};

/// The PostgreSQL channel that wakes every instance's dispatcher when events were committed.
pub const WAKE_CHANNEL: &str = "plugboard_outbox";

/// Writes `payloads` (encoded events) inside the caller's transaction. On PostgreSQL the same
/// transaction notifies the dispatchers, which PostgreSQL delivers only if it commits.
pub async fn stage(db: &impl ConnectionTrait, payloads: Vec<String>) -> Result<(), DbErr> {
    if payloads.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = payloads.into_iter().map(|payload| event_outbox::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        payload: Set(payload),
        created_at: Set(now),
        claimed_by: Set(None),
        claim_expires_at: Set(None),
    });
    event_outbox::Entity::insert_many(rows).exec_without_returning(db).await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, '')",
            [WAKE_CHANNEL.into()],
        ))
        .await?;
    }
    Ok(())
}

/// How many events wait to be published (claimed or not).
pub async fn backlog(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    event_outbox::Entity::find().count(db).await
}

/// Whether any event waits to be claimed: a read, so an idle dispatcher's polling never takes
/// SQLite's write lock.
pub async fn any_claimable(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<bool, DbErr> {
    let found = event_outbox::Entity::find()
        .filter(Condition::any().add(Column::ClaimExpiresAt.is_null()).add(Column::ClaimExpiresAt.lt(now)))
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// Claims up to `limit` unclaimed (or lapsed) events for `claim`, oldest first, and answers
/// them as `(id, payload)`.
pub async fn claim(
    db: &impl ConnectionTrait,
    claim: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(uuid::Uuid, String)>, DbErr> {
    let mut due = Query::select();
    due.column(Column::Id)
        .from(event_outbox::Entity)
        .cond_where(
            Condition::any().add(Column::ClaimExpiresAt.is_null()).add(Column::ClaimExpiresAt.lt(now)),
        )
        .order_by(Column::Id, sea_orm::Order::Asc)
        .limit(limit);
    if db.get_database_backend() == DatabaseBackend::Postgres {
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    event_outbox::Entity::update_many()
        .col_expr(Column::ClaimedBy, Expr::value(claim))
        .col_expr(Column::ClaimExpiresAt, Expr::value(expires_at))
        .filter(Column::Id.in_subquery(due))
        .exec(db)
        .await?;
    let claimed = event_outbox::Entity::find()
        .filter(Column::ClaimedBy.eq(claim))
        .order_by_asc(Column::Id)
        .all(db)
        .await?;
    Ok(claimed.into_iter().map(|row| (row.id, row.payload)).collect())
}

/// Deletes published events, as long as `claim` still holds them.
pub async fn remove(db: &impl ConnectionTrait, claim: &str, ids: &[uuid::Uuid]) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    event_outbox::Entity::delete_many()
        .filter(Column::ClaimedBy.eq(claim))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}
