//! API tokens, stored as SHA-256 hashes.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
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
    };
    api_token::Entity::insert(model).exec_without_returning(db).await?;
    Ok(id)
}

/// The unrevoked token with this hash, if any.
pub async fn find_active_by_hash(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<StoredToken>, DbErr> {
    api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(token_hash))
        .filter(api_token::Column::RevokedAt.is_null())
        .one(db)
        .await
}

/// Records a use. Writes at most once a minute per token so that busy runners do not turn
/// every read into a write.
pub async fn touch(db: &impl ConnectionTrait, id: TokenId, now: DateTime<Utc>) -> Result<(), DbErr> {
    let stale_before = now - chrono::Duration::minutes(1);
    api_token::Entity::update_many()
        .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
        .filter(api_token::Column::Id.eq(id))
        .filter(api_token::Column::LastUsedAt.is_null().or(api_token::Column::LastUsedAt.lt(stale_before)))
        .exec(db)
        .await?;
    Ok(())
}
