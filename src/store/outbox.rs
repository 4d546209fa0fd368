//! The outbox of live events. A change writes its events here in its own transaction, so an
//! event exists exactly when its change does; the dispatcher claims them with a lease (several
//! instances share one PostgreSQL), publishes, and deletes them. Payloads are opaque JSON text
//! here: what an event means is the `events` module's business.
//!
//! A row holds every event one `stage` call wrote, one payload a line, in order: a sweep's
//! batch of 500 checks is one row to insert, claim and delete instead of 500. JSON escapes the
//! line breaks inside its strings, so a payload never holds one of its own, and a row from
//! before rows held several is a row of one.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, Statement,
};

use super::entities::event_outbox::{self, Column};
use super::json_rows;

/// What separates the payloads of one row.
const SEPARATOR: &str = "\n";

/// The PostgreSQL channel that wakes every instance's dispatcher when events were committed.
pub const WAKE_CHANNEL: &str = "plugboard_outbox";

/// Writes `payloads` (encoded events, in order) inside the caller's transaction, as one row. On
/// PostgreSQL the same transaction notifies the dispatchers, which PostgreSQL delivers only if
/// it commits.
pub async fn stage(db: &impl ConnectionTrait, payloads: Vec<String>) -> Result<(), DbErr> {
    if payloads.is_empty() {
        return Ok(());
    }
    let row = event_outbox::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        payload: Set(row_of(&payloads)?),
        created_at: Set(Utc::now()),
        claimed_by: Set(None),
        claim_expires_at: Set(None),
    };
    event_outbox::Entity::insert(row).exec_without_returning(db).await?;
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

/// The row that holds `payloads`, which `payloads` reads back.
fn row_of(payloads: &[String]) -> Result<String, DbErr> {
    if payloads.iter().any(|payload| payload.contains(SEPARATOR)) {
        return Err(DbErr::Custom(
            "an event payload holds a line break; its row could not be read back".into(),
        ));
    }
    Ok(payloads.join(SEPARATOR))
}

/// The payloads a claimed row holds, in the order they were staged.
pub fn payloads(row: &str) -> impl Iterator<Item = &str> {
    row.split(SEPARATOR)
}

/// How many rows of events wait to be published (claimed or not); none when every staged event
/// was.
pub async fn backlog(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    event_outbox::Entity::find().count(db).await
}

/// Whether any event waits to be claimed: a read, so an idle dispatcher's polling never takes
/// SQLite's write lock.
pub async fn any_claimable(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<bool, DbErr> {
    // The id only: a row may hold a whole batch's events.
    let found: Option<uuid::Uuid> = event_outbox::Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Condition::any().add(Column::ClaimExpiresAt.is_null()).add(Column::ClaimExpiresAt.lt(now)))
        .into_tuple()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// Claims up to `limit` unclaimed (or lapsed) rows of events for `claim`, oldest first, and
/// answers them as `(id, row)`; `payloads` reads a row's events.
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

/// Deletes rows of published events, as long as `claim` still holds them.
pub async fn remove(db: &impl ConnectionTrait, claim: &str, ids: &[uuid::Uuid]) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    event_outbox::Entity::delete_many()
        .filter(Column::ClaimedBy.eq(claim))
        .filter(json_rows::is_in(db.get_database_backend(), Column::Id, ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

/// Reads the oldest `limit` rows of events, claimed or not, as `(id, row)`. For a dispatcher
/// alone on its database (SQLite: one process owns the file and runs one dispatcher), which
/// needs no claim: it publishes them, then deletes them with `delete`.
pub async fn oldest(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<(uuid::Uuid, String)>, DbErr> {
    let rows = event_outbox::Entity::find().order_by_asc(Column::Id).limit(limit).all(db).await?;
    Ok(rows.into_iter().map(|row| (row.id, row.payload)).collect())
}

/// Deletes rows of published events, whoever claimed them; see `oldest`.
pub async fn delete(db: &impl ConnectionTrait, ids: &[uuid::Uuid]) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    event_outbox::Entity::delete_many()
        .filter(json_rows::is_in(db.get_database_backend(), Column::Id, ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_back_its_payloads_in_order() {
        // What a provider says may span lines; its JSON does not.
        let said =
            serde_json::to_string(&serde_json::json!({ "message": "line one\nline two\r\n" })).unwrap();
        let staged = vec![said, "{\"n\":2}".to_owned(), "{\"n\":3}".to_owned()];
        let row = row_of(&staged).unwrap();
        assert_eq!(payloads(&row).collect::<Vec<_>>(), staged);
        // A row staged when a row held one event.
        assert_eq!(payloads("{\"n\":1}").collect::<Vec<_>>(), ["{\"n\":1}"]);
    }

    #[test]
    fn a_payload_that_would_split_its_row_is_refused() {
        assert!(row_of(&["{}\n{}".to_owned()]).is_err());
    }
}
