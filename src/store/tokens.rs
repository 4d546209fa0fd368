//! API tokens, stored as SHA-256 hashes.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::{CaseStatement, Expr},
};

use super::entities::api_token;
pub use super::entities::api_token::{Model as StoredToken, TokenKind};
use crate::domain::{TeamId, TokenId, UserId};

pub struct NewToken {
    pub kind: TokenKind,
    pub user_id: Option<UserId>,
    pub team_id: Option<TeamId>,
    pub name: String,
    pub prefix: String,
    pub token_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert(db: &impl ConnectionTrait, new: NewToken) -> Result<TokenId, DbErr> {
    let id = TokenId::new();
    let model = api_token::ActiveModel {
        id: Set(id),
        kind: Set(new.kind),
        user_id: Set(new.user_id),
        team_id: Set(new.team_id),
        name: Set(new.name),
        prefix: Set(new.prefix),
        token_hash: Set(new.token_hash),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
        expires_at: Set(new.expires_at),
    };
    api_token::Entity::insert(model).exec_without_returning(db).await?;
    Ok(id)
}

/// The unrevoked, unexpired token with this hash, if any.
pub async fn find_active_by_hash(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<StoredToken>, DbErr> {
    api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(token_hash))
        .filter(active(Utc::now()))
        .one(db)
        .await
}

/// Not revoked and not expired at `now`.
fn active(now: DateTime<Utc>) -> Condition {
    Condition::all().add(api_token::Column::RevokedAt.is_null()).add(
        Condition::any()
            .add(api_token::Column::ExpiresAt.is_null())
            .add(api_token::Column::ExpiresAt.gt(now)),
    )
}

/// Whether the token `id` is still usable now.
pub async fn is_active(db: &impl ConnectionTrait, id: TokenId) -> Result<bool, DbErr> {
    let found = api_token::Entity::find_by_id(id).filter(active(Utc::now())).count(db).await?;
    Ok(found > 0)
}

pub async fn find(db: &impl ConnectionTrait, id: TokenId) -> Result<Option<StoredToken>, DbErr> {
    api_token::Entity::find_by_id(id).one(db).await
}

/// A user's own tokens that are not revoked (expired ones included, so they can be seen).
pub async fn of_user(db: &impl ConnectionTrait, user_id: UserId) -> Result<Vec<StoredToken>, DbErr> {
    api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(user_id))
        .filter(api_token::Column::Kind.eq(TokenKind::User))
        .filter(api_token::Column::RevokedAt.is_null())
        .order_by_asc(api_token::Column::CreatedAt)
        .all(db)
        .await
}

/// A team's service tokens that are not revoked.
pub async fn service_tokens_of_team(
    db: &impl ConnectionTrait,
    team_id: TeamId,
) -> Result<Vec<StoredToken>, DbErr> {
    api_token::Entity::find()
        .filter(api_token::Column::TeamId.eq(team_id))
        .filter(api_token::Column::Kind.eq(TokenKind::Service))
        .filter(api_token::Column::RevokedAt.is_null())
        .order_by_asc(api_token::Column::CreatedAt)
        .all(db)
        .await
}

/// Revokes the token; answers whether this call did (false when it already was).
pub async fn revoke(db: &impl ConnectionTrait, id: TokenId, now: DateTime<Utc>) -> Result<bool, DbErr> {
    let done = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(now))
        .filter(api_token::Column::Id.eq(id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Records when each token was last used, in one statement for the whole batch (the access
/// cache collects uses and writes them about once a second).
pub async fn record_uses(db: &impl ConnectionTrait, uses: &[(TokenId, DateTime<Utc>)]) -> Result<(), DbErr> {
    if uses.is_empty() {
        return Ok(());
    }
    let mut used_at = CaseStatement::new();
    for (id, at) in uses {
        used_at = used_at.case(api_token::Column::Id.eq(*id), Expr::value(*at));
    }
    api_token::Entity::update_many()
        .col_expr(api_token::Column::LastUsedAt, used_at.into())
        .filter(api_token::Column::Id.is_in(uses.iter().map(|(id, _)| *id)))
        .exec(db)
        .await?;
    Ok(())
}
