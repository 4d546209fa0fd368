//! Members and API tokens as the API shows them: never a token's value, except once in the
//! answer that creates it.

use async_graphql::{Enum, ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::enums::TeamRole;
use crate::domain::{self, Member};
use crate::teams::{ApiToken, tokens::TokenKind};

#[derive(SimpleObject)]
#[graphql(name = "TeamMember")]
pub struct TeamMemberObject {
    user_id: ID,
    email: String,
    role: TeamRole,
    /// When the user joined the team.
    since: DateTime<Utc>,
}

impl From<Member> for TeamMemberObject {
    fn from(member: Member) -> Self {
        TeamMemberObject {
            user_id: ID(member.user.id.to_string()),
            email: member.user.email.as_str().to_owned(),
            role: domain::TeamAccess::Member(member.role).into(),
            since: member.since,
        }
    }
}

/// `USER` tokens act as their user in all the user's teams; `SERVICE` tokens are bound to one
/// team and are what flow runners use.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ApiTokenKind {
    User,
    Service,
}

impl From<ApiTokenKind> for TokenKind {
    fn from(kind: ApiTokenKind) -> Self {
        match kind {
            ApiTokenKind::User => TokenKind::User,
            ApiTokenKind::Service => TokenKind::Service,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "ApiToken")]
pub struct ApiTokenObject {
    id: ID,
    name: String,
    kind: ApiTokenKind,
    /// The token's first characters, to tell tokens apart.
    prefix: String,
    /// The team of a `SERVICE` token.
    team_id: Option<ID>,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    /// After this the token is refused; null when it does not expire.
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for ApiTokenObject {
    fn from(token: ApiToken) -> Self {
        ApiTokenObject {
            id: ID(token.id.to_string()),
            name: token.name,
            kind: match token.kind {
                TokenKind::User => ApiTokenKind::User,
                TokenKind::Service => ApiTokenKind::Service,
            },
            prefix: token.prefix,
            team_id: token.team_id.map(|id| ID(id.to_string())),
            created_at: token.created_at,
            last_used_at: token.last_used_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// A new token. `token` is its value, shown only here: store it now.
#[derive(SimpleObject)]
pub struct CreateApiTokenPayload {
    pub token: String,
    pub api_token: ApiTokenObject,
}

#[derive(SimpleObject)]
pub struct RemoveTeamMemberPayload {
    pub team_id: ID,
    pub removed_user_id: ID,
}
