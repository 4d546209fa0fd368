//! Webhook endpoints and their deliveries. Deliveries are claimed like checks, so several
//! instances never send the same one at once, and an endpoint has one in flight at a time.

use chrono::{DateTime, Utc};
use sea_orm::DeriveIden;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{webhook, webhook_delivery};
use crate::domain::{DeliveryStatus, TeamId, Webhook, WebhookDelivery};

const PENDING: &str = "PENDING";

fn to_webhook(model: webhook::Model) -> Webhook {
    Webhook {
        id: model.id,
        team_id: model.team_id,
        url: model.url,
        sealed_secret: model.sealed_secret,
        secret_key_id: model.secret_key_id,
        created_at: model.created_at,
    }
}

fn to_delivery(model: webhook_delivery::Model) -> Result<WebhookDelivery, DbErr> {
    let status = DeliveryStatus::parse(&model.status)
        .ok_or_else(|| DbErr::Type(format!("unknown webhook delivery status {:?}", model.status)))?;
    Ok(WebhookDelivery {
        id: model.id,
        webhook_id: model.webhook_id,
        team_id: model.team_id,
        event: model.event,
        payload: model.payload,
        status,
        attempts: model.attempts,
        last_error: model.last_error,
        next_attempt_at: model.next_attempt_at,
        created_at: model.created_at,
        delivered_at: model.delivered_at,
    })
}

pub async fn insert(db: &impl ConnectionTrait, hook: Webhook) -> Result<(), DbErr> {
    let model = webhook::ActiveModel {
        id: Set(hook.id),
        team_id: Set(hook.team_id),
        url: Set(hook.url),
        sealed_secret: Set(hook.sealed_secret),
        secret_key_id: Set(hook.secret_key_id),
        created_at: Set(hook.created_at),
    };
    webhook::Entity::insert(model).exec_without_returning(db).await?;
    Ok(())
}

/// How many webhooks team `team_id` has.
pub async fn count(db: &impl ConnectionTrait, team_id: TeamId) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    webhook::Entity::find().filter(webhook::Column::TeamId.eq(team_id)).count(db).await
}

pub async fn list(db: &impl ConnectionTrait, team_id: TeamId) -> Result<Vec<Webhook>, DbErr> {
    let found = webhook::Entity::find()
        .filter(webhook::Column::TeamId.eq(team_id))
        .order_by_asc(webhook::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(found.into_iter().map(to_webhook).collect())
}

pub async fn find(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: uuid::Uuid,
) -> Result<Option<Webhook>, DbErr> {
    let found = webhook::Entity::find()
        .filter(webhook::Column::TeamId.eq(team_id))
        .filter(webhook::Column::Id.eq(id))
        .one(db)
        .await?;
    Ok(found.map(to_webhook))
}

pub async fn owner_of(db: &impl ConnectionTrait, id: uuid::Uuid) -> Result<Option<TeamId>, DbErr> {
    Ok(webhook::Entity::find_by_id(id).one(db).await?.map(|w| w.team_id))
}

pub async fn delete(db: &impl ConnectionTrait, team_id: TeamId, id: uuid::Uuid) -> Result<bool, DbErr> {
    let result = webhook::Entity::delete_many()
        .filter(webhook::Column::TeamId.eq(team_id))
        .filter(webhook::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Queues `event` with `payload` for every endpoint of the team.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    event: &str,
    payload: &serde_json::Value,
) -> Result<usize, DbErr> {
    let hooks = list(db, team_id).await?;
    if hooks.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let rows = hooks.iter().map(|hook| {
        let id = uuid::Uuid::now_v7();
        let mut body = payload.clone();
        body["id"] = serde_json::json!(id);
        webhook_delivery::ActiveModel {
            id: Set(id),
            webhook_id: Set(hook.id),
            team_id: Set(team_id),
            event: Set(event.to_owned()),
            payload: Set(body),
            status: Set(PENDING.to_owned()),
            attempts: Set(0),
            last_error: Set(None),
            next_attempt_at: Set(now),
            claimed_by: Set(None),
            claim_expires_at: Set(None),
            created_at: Set(now),
            delivered_at: Set(None),
        }
    });
    webhook_delivery::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(hooks.len())
}

/// Claims due deliveries for `claim` until `expires_at`, with their endpoints: of up to `limit`
/// endpoints, each one's oldest due delivery, and nothing of an endpoint that has a delivery in
/// flight (claimed by any instance, the claim not lapsed). So an endpoint is sent one delivery
/// at a time, in the order its events happened, however many instances send, and a claim has
/// to outlast a single request.
///
/// A delivery waiting for a later retry does not hold back newer ones: those go first.
///
/// `held` are deliveries the caller still has waiting to be sent: never claimed again by it,
/// even when their claims lapsed meanwhile, so another instance can take them over.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    claim: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    limit: u64,
    held: &[uuid::Uuid],
) -> Result<Vec<(WebhookDelivery, Webhook)>, DbErr> {
    use webhook_delivery::Column;
    // A read first, so a dispatcher polling while nothing can be claimed (nothing due, or only
    // deliveries to endpoints busy with an earlier one) never takes SQLite's write lock.
    let backend = db.get_database_backend();
    let mut probe = claimable(backend, now, held);
    probe.limit(1);
    if db.query_one(&probe).await?.is_none() {
        return Ok(Vec::new());
    }
    let mut due = claimable(backend, now, held);
    due.limit(limit);
    if backend == DatabaseBackend::Postgres {
        // Two instances claiming at once each skip what the other is taking; the other's
        // newer deliveries stay behind it, as `older_due` still sees the one it took.
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    webhook_delivery::Entity::update_many()
        .col_expr(Column::ClaimedBy, Expr::value(claim))
        .col_expr(Column::ClaimExpiresAt, Expr::value(expires_at))
        .filter(Column::Id.in_subquery(due))
        .exec(db)
        .await?;
    let deliveries = webhook_delivery::Entity::find().filter(Column::ClaimedBy.eq(claim)).all(db).await?;
    let hook_ids: Vec<uuid::Uuid> = deliveries.iter().map(|d| d.webhook_id).collect();
    let hooks = webhook::Entity::find().filter(webhook::Column::Id.is_in(hook_ids)).all(db).await?;
    let mut claimed = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        if let Some(hook) = hooks.iter().find(|h| h.id == delivery.webhook_id) {
            claimed.push((to_delivery(delivery)?, to_webhook(hook.clone())));
        }
    }
    Ok(claimed)
}

/// The ids of the deliveries `claim_due` may take at `now`, other than `held`, the longest due
/// first.
fn claimable(
    backend: DatabaseBackend,
    now: DateTime<Utc>,
    held: &[uuid::Uuid],
) -> sea_orm::sea_query::SelectStatement {
    use webhook_delivery::Column;
    let mut claimable = Condition::all()
        .add(Expr::col((Candidate, Column::Status)).eq(PENDING))
        .add(Expr::col((Candidate, Column::NextAttemptAt)).lte(now))
        .add(unclaimed(Expr::col((Candidate, Column::ClaimExpiresAt)), now))
        .add(Expr::exists(in_flight(now)).not())
        .add(Expr::exists(older_due(now)).not());
    if !held.is_empty() {
        claimable = claimable
            .add(super::json_rows::is_in(backend, (Candidate, Column::Id), held.iter().copied()).not());
    }
    Query::select()
        .column((Candidate, Column::Id))
        .from_as(webhook_delivery::Entity, Candidate)
        .cond_where(claimable)
        .order_by((Candidate, Column::NextAttemptAt), sea_orm::Order::Asc)
        .to_owned()
}

/// The delivery `claim_due` looks at, and another of the same endpoint it compares with.
#[derive(DeriveIden, Clone, Copy)]
struct Candidate;
#[derive(DeriveIden, Clone, Copy)]
struct Other;

/// Whether a claim that expires at `expires_at` is free to take at `now`.
fn unclaimed(expires_at: Expr, now: DateTime<Utc>) -> Condition {
    Condition::any().add(expires_at.clone().is_null()).add(expires_at.lt(now))
}

/// Another pending delivery of the candidate's endpoint, claimed and the claim not lapsed.
fn in_flight(now: DateTime<Utc>) -> sea_orm::sea_query::SelectStatement {
    use webhook_delivery::Column;
    same_endpoint_pending().and_where(Expr::col((Other, Column::ClaimExpiresAt)).gte(now)).to_owned()
}

/// A due delivery of the candidate's endpoint whose event happened before the candidate's.
fn older_due(now: DateTime<Utc>) -> sea_orm::sea_query::SelectStatement {
    use webhook_delivery::Column;
    let (other, candidate) = (|c| Expr::col((Other, c)), |c| Expr::col((Candidate, c)));
    same_endpoint_pending()
        .and_where(other(Column::NextAttemptAt).lte(now))
        .cond_where(
            Condition::any().add(other(Column::CreatedAt).lt(candidate(Column::CreatedAt))).add(
                Condition::all()
                    .add(other(Column::CreatedAt).eq(candidate(Column::CreatedAt)))
                    .add(other(Column::Id).lt(candidate(Column::Id))),
            ),
        )
        .to_owned()
}

/// `SELECT 1 FROM webhook_deliveries AS other`, pending, of the candidate's endpoint.
fn same_endpoint_pending() -> sea_orm::sea_query::SelectStatement {
    use webhook_delivery::Column;
    Query::select()
        .expr(Expr::val(1))
        .from_as(webhook_delivery::Entity, Other)
        .and_where(Expr::col((Other, Column::WebhookId)).equals((Candidate, Column::WebhookId)))
        .and_where(Expr::col((Other, Column::Status)).eq(PENDING))
        .to_owned()
}

/// Extends `claim` on delivery `id` to `expires_at`, just before it is sent; `false` when the
/// claim lapsed and was taken over meanwhile (or the delivery is gone), and it must not be sent.
pub async fn renew_claim(
    db: &impl ConnectionTrait,
    id: uuid::Uuid,
    claim: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use webhook_delivery::Column;
    let renewed = webhook_delivery::Entity::update_many()
        .col_expr(Column::ClaimExpiresAt, Expr::value(expires_at))
        .filter(Column::Id.eq(id))
        .filter(Column::ClaimedBy.eq(claim))
        .filter(Column::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(renewed.rows_affected == 1)
}

/// Records an attempt and releases the claim.
pub async fn record_attempt(
    db: &impl ConnectionTrait,
    id: uuid::Uuid,
    claim: &str,
    status: DeliveryStatus,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    use webhook_delivery::Column;
    let delivered_at = (status == DeliveryStatus::Delivered).then(Utc::now);
    webhook_delivery::Entity::update_many()
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .col_expr(Column::Attempts, Expr::value(attempts))
        .col_expr(Column::LastError, Expr::value(last_error))
        .col_expr(Column::NextAttemptAt, Expr::value(next_attempt_at))
        .col_expr(Column::DeliveredAt, Expr::value(delivered_at))
        .col_expr(Column::ClaimedBy, Expr::value(Option::<String>::None))
        .col_expr(Column::ClaimExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(Column::Id.eq(id))
        .filter(Column::ClaimedBy.eq(claim))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets up to `limit` deliveries that finished (delivered, or given up) before `cutoff`, the
/// oldest first; answers how many. Pending ones stay, however old.
pub async fn purge_finished_before(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    use webhook_delivery::Column;
    // A finished delivery's `next_attempt_at` is when it finished; the due index covers both.
    let finished = [DeliveryStatus::Delivered.as_str(), DeliveryStatus::Failed.as_str()];
    let mut oldest = Query::select();
    oldest
        .column(Column::Id)
        .from(webhook_delivery::Entity)
        .and_where(Expr::col(Column::Status).is_in(finished))
        .and_where(Expr::col(Column::NextAttemptAt).lt(cutoff))
        .order_by(Column::NextAttemptAt, sea_orm::Order::Asc)
        .limit(limit);
    let result =
        webhook_delivery::Entity::delete_many().filter(Column::Id.in_subquery(oldest)).exec(db).await?;
    Ok(result.rows_affected)
}

pub async fn deliveries(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    webhook_id: uuid::Uuid,
    limit: u64,
) -> Result<Vec<WebhookDelivery>, DbErr> {
    use webhook_delivery::Column;
    let found = webhook_delivery::Entity::find()
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::WebhookId.eq(webhook_id))
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    found.into_iter().map(to_delivery).collect()
}
