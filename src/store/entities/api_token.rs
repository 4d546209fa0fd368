use sea_orm::entity::prelude::*;

use crate::domain::{TeamId, TokenId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TokenId,
    pub kind: TokenKind,
    /// Set for user tokens.
    pub user_id: Option<UserId>,
    /// Set for service tokens, which are bound to one team.
    pub team_id: Option<TeamId>,
    pub name: String,
    /// The first characters of the token, shown so a person can tell tokens apart.
    pub prefix: String,
    /// SHA-256 of the whole token; the token itself is never stored.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    /// After this instant the token is refused; none for tokens that do not expire.
    pub expires_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    User,
    Service,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::User => "USER",
            TokenKind::Service => "SERVICE",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [TokenKind::User, TokenKind::Service].into_iter().find(|k| k.as_str() == name)
    }
}
