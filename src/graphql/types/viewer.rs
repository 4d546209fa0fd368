//! The caller: a user with their teams, or a service token with its one team.

use async_graphql::{Context, Enum, ID, Object};

use super::team::TeamObject;
use crate::domain::Principal;
use crate::error::AppResult;
use crate::graphql::state;

pub struct Viewer(pub Principal);

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ViewerKind {
    User,
    Service,
}

#[Object]
impl Viewer {
    async fn kind(&self) -> ViewerKind {
        match self.0 {
            Principal::User { .. } => ViewerKind::User,
            Principal::Service { .. } => ViewerKind::Service,
        }
    }

    /// The user's id; null for a service token.
    async fn user_id(&self) -> Option<ID> {
        self.0.user_id().map(|id| ID(id.to_string()))
    }

    /// The user's e-mail; null for a service token.
    async fn email(&self) -> Option<&str> {
        crate::access::principal_email(&self.0).map(|e| e.as_str())
    }

    /// The calling person's own tokens that are not revoked (expired ones included); empty for a
    /// service token.
    async fn api_tokens(&self, ctx: &Context<'_>) -> AppResult<Vec<super::access::ApiTokenObject>> {
        let tokens = crate::teams::viewer_tokens(state(ctx)?, &self.0).await?;
        Ok(tokens.into_iter().map(Into::into).collect())
    }

    /// The teams the caller can see, by name.
    async fn teams(&self, ctx: &Context<'_>) -> AppResult<Vec<TeamObject>> {
        visible_teams(ctx, &self.0).await
    }
}

pub async fn visible_teams(ctx: &Context<'_>, principal: &Principal) -> AppResult<Vec<TeamObject>> {
    let teams = crate::teams::visible(state(ctx)?, principal).await?;
    Ok(teams.into_iter().map(|(team, scope)| TeamObject::new(team, scope)).collect())
}
