//! The right to refresh a connection's tokens, as a short lease on its row, and the guarded
//! writes of what a refresh found.
//!
//! A refresh claims the lease in one statement, releases the database, calls the provider,
//! and then writes only where the token generation it read is still stored: tokens replaced
//! meanwhile (a reauthorization, an edit) are never overwritten by a late result. The same
//! statements run on SQLite and PostgreSQL; no transaction is held across the provider call.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::connections::{SealedSecrets, find_with_secrets, to_connection};
use super::entities::connection::{Column, Entity};
use crate::domain::{Connection, ConnectionId, ConnectionStatus, TeamId, Verification};

/// What a claim of the refresh lease found.
pub enum LeaseClaim {
    /// The lease is ours until it expires: the row as it stood when claimed, with its secrets.
    Held(Connection, Option<Vec<u8>>),
    /// Someone else holds the lease: the row as it stands, with its secrets.
    Busy(Connection, Option<Vec<u8>>),
    Gone,
}

/// Takes the refresh lease of a connection for `lease` until `until`, unless a live one is
/// held by someone else.
pub async fn claim(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
    lease: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<LeaseClaim, DbErr> {
    let claimed = Entity::update_many()
        .col_expr(Column::RefreshLeaseBy, Expr::value(lease))
        .col_expr(Column::RefreshLeaseExpiresAt, Expr::value(until))
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(Column::RefreshLeaseExpiresAt.is_null())
                .add(Column::RefreshLeaseExpiresAt.lt(now)),
        )
        .exec_with_returning(db)
        .await?;
    if let Some(mut model) = claimed.into_iter().next() {
        let sealed = model.sealed_secrets.take();
        return Ok(LeaseClaim::Held(to_connection(model)?, sealed));
    }
    Ok(match find_with_secrets(db, team_id, id).await? {
        Some((connection, sealed)) => LeaseClaim::Busy(connection, sealed),
        None => LeaseClaim::Gone,
    })
}

/// Gives the lease back, if `lease` still holds it.
pub async fn release(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
    lease: &str,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::RefreshLeaseBy, Expr::value(Option::<String>::None))
        .col_expr(Column::RefreshLeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.eq(id))
        .filter(Column::RefreshLeaseBy.eq(lease))
        .exec(db)
        .await?;
    Ok(())
}

/// What a successful refresh stores.
pub struct RefreshedTokens {
    pub sealed: SealedSecrets,
    pub expires_at: Option<DateTime<Utc>>,
    /// Only when the provider said something about the grant's end.
    pub grant_expires_at: Option<DateTime<Utc>>,
    pub scopes: Option<Vec<String>>,
    /// Only when the provider named any.
    pub details: Option<BTreeMap<String, String>>,
}

/// Stores refreshed tokens (the rotated refresh token with the new access token, in one
/// write), if the tokens of `generation` are still the stored ones, and gives the lease back.
/// Answers whether it wrote: `false` means newer credentials were stored meanwhile.
pub async fn store_refreshed(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
    generation: i32,
    tokens: &RefreshedTokens,
) -> Result<bool, DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::SealedSecrets, Expr::value(tokens.sealed.blob.clone()))
        .col_expr(Column::SecretsKeyId, Expr::value(tokens.sealed.key_id.clone()))
        .col_expr(Column::ExpiresAt, Expr::value(tokens.expires_at))
        .col_expr(Column::TokenGeneration, Expr::col(Column::TokenGeneration).add(1))
        .col_expr(Column::RefreshLeaseBy, Expr::value(Option::<String>::None))
        .col_expr(Column::RefreshLeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None));
    if let Some(scopes) = &tokens.scopes {
        update = update.col_expr(Column::Scopes, Expr::value(serde_json::json!(scopes)));
    }
    if let Some(grant_expires_at) = tokens.grant_expires_at {
        update = update
            .col_expr(Column::GrantExpiresAt, Expr::value(grant_expires_at))
            .col_expr(Column::GrantWarnedDays, Expr::value(Option::<i32>::None));
    }
    if let Some(details) = &tokens.details {
        update = update.col_expr(Column::TokenDetails, Expr::value(serde_json::json!(details)));
    }
    let result = update
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.eq(id))
        .filter(Column::TokenGeneration.eq(generation))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records that the grant of `generation` is dead (the provider refused its refresh token),
/// if those tokens are still the stored ones, and gives the lease back. Answers the updated
/// connection, or `None` when newer credentials were stored meanwhile: a late failure never
/// overwrites a fresh reauthorization.
pub async fn flag_dead_grant(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
    generation: i32,
    status: ConnectionStatus,
    note: &Verification,
) -> Result<Option<Connection>, DbErr> {
    let update = super::connections::noting(status, note)
        .col_expr(Column::RefreshLeaseBy, Expr::value(Option::<String>::None))
        .col_expr(Column::RefreshLeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.eq(id))
        .filter(Column::TokenGeneration.eq(generation));
    super::connections::update_one(db, update).await
}
