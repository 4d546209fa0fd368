//! Teams, members and API tokens. Only a team's `ADMIN`s manage its members and service tokens;
//! a team always keeps one `ADMIN` (`BAD_USER_INPUT` otherwise).

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::ids::parse_id;
use super::types::access::{
    ApiTokenKind, ApiTokenObject, CreateApiTokenPayload, RemoveTeamMemberPayload, TeamMemberObject,
};
use super::types::enums::TeamRole;
use super::types::team::TeamObject;
use super::{caller, state};
use crate::domain::{self, TeamId, TokenId, UserId};
use crate::error::{AppError, AppResult};
use crate::teams::{self, NewApiToken};

#[derive(Default)]
pub struct TeamMutation;

#[derive(InputObject)]
pub struct CreateApiTokenInput {
    /// What the token is for, e.g. "nightly runner".
    name: String,
    kind: ApiTokenKind,
    /// The team of a `SERVICE` token; leave out for a `USER` token.
    team_id: Option<ID>,
    /// When the token stops working; it never does when absent.
    expires_at: Option<DateTime<Utc>>,
}

fn member_role(role: TeamRole) -> AppResult<domain::TeamRole> {
    match role {
        TeamRole::Admin => Ok(domain::TeamRole::Admin),
        TeamRole::Member => Ok(domain::TeamRole::Member),
        TeamRole::Monitoring => Ok(domain::TeamRole::Monitoring),
        TeamRole::Service => {
            Err(AppError::bad_input("role", "SERVICE is for tokens; a member is ADMIN, MEMBER or MONITORING"))
        }
    }
}

#[Object]
impl TeamMutation {
    /// A new team, with the caller as its `ADMIN`.
    async fn create_team(&self, ctx: &Context<'_>, name: String) -> AppResult<TeamObject> {
        let (team, scope) = teams::create_team(state(ctx)?, caller(ctx)?, &name).await?;
        Ok(TeamObject::new(team, scope))
    }

    /// Adds a person to the team by e-mail, creating the user when new.
    async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
        email: String,
        role: TeamRole,
    ) -> AppResult<TeamMemberObject> {
        let team_id: TeamId = parse_id(&team_id, "teamId")?;
        let role = member_role(role)?;
        Ok(teams::add_member(state(ctx)?, caller(ctx)?, team_id, &email, role).await?.into())
    }

    async fn update_team_member(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
        user_id: ID,
        role: TeamRole,
    ) -> AppResult<TeamMemberObject> {
        let team_id: TeamId = parse_id(&team_id, "teamId")?;
        let user_id: UserId = parse_id(&user_id, "userId")?;
        let role = member_role(role)?;
        Ok(teams::update_member(state(ctx)?, caller(ctx)?, team_id, user_id, role).await?.into())
    }

    /// Removes a member; their open subscriptions to the team end.
    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
        user_id: ID,
    ) -> AppResult<RemoveTeamMemberPayload> {
        let team: TeamId = parse_id(&team_id, "teamId")?;
        let user: UserId = parse_id(&user_id, "userId")?;
        teams::remove_member(state(ctx)?, caller(ctx)?, team, user).await?;
        Ok(RemoveTeamMemberPayload { team_id, removed_user_id: user_id })
    }

    /// Issues a token. Its value is in this answer only.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        input: CreateApiTokenInput,
    ) -> AppResult<CreateApiTokenPayload> {
        let team_id: Option<TeamId> = input.team_id.map(|id| parse_id(&id, "teamId")).transpose()?;
        let (issued, token) = teams::create_api_token(
            state(ctx)?,
            caller(ctx)?,
            NewApiToken { name: input.name, kind: input.kind.into(), team_id, expires_at: input.expires_at },
        )
        .await?;
        Ok(CreateApiTokenPayload { token: issued.token.expose_secret().to_owned(), api_token: token.into() })
    }

    /// Revokes a token at once, on every instance; subscriptions opened with it end.
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID) -> AppResult<ApiTokenObject> {
        let id: TokenId = parse_id(&id, "id")?;
        Ok(teams::revoke_api_token(state(ctx)?, caller(ctx)?, id).await?.into())
    }
}
