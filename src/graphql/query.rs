//! Read-only entry points.

use async_graphql::{Context, ID, Object};

use super::ids::parse_id;
use super::types::app::AppObject;
use super::types::connection::ConnectionObject;
use super::types::team::TeamObject;
use super::types::viewer::{Viewer, visible_teams};
use super::{caller, state};
use crate::connections;
use crate::domain::{ConnectionId, TeamId};
use crate::error::{AppError, AppResult};
use crate::{access, store};

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The caller: a user (with teams) or a service token.
    async fn viewer(&self, ctx: &Context<'_>) -> AppResult<Viewer> {
        Ok(Viewer(caller(ctx)?.clone()))
    }

    /// The teams the caller can see.
    async fn teams(&self, ctx: &Context<'_>) -> AppResult<Vec<TeamObject>> {
        visible_teams(ctx, caller(ctx)?).await
    }

    /// A team the caller belongs to; null when it does not exist or is not the caller's.
    async fn team(&self, ctx: &Context<'_>, id: ID) -> AppResult<Option<TeamObject>> {
        let principal = caller(ctx)?;
        let team_id: TeamId = parse_id(&id, "id")?;
        let db = &state(ctx)?.db;
        let access = match access::team_access(db, principal, team_id).await {
            Ok(access) => access,
            Err(AppError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other),
        };
        Ok(store::teams::find(db, team_id).await?.map(|team| TeamObject { team, access }))
    }

    /// The app catalog, optionally searched by name, key or description.
    async fn apps(&self, ctx: &Context<'_>, search: Option<String>) -> AppResult<Vec<AppObject>> {
        caller(ctx)?;
        let catalog = &state(ctx)?.catalog;
        Ok(catalog.search(search.as_deref().unwrap_or("")).into_iter().map(AppObject::from).collect())
    }

    async fn app(&self, ctx: &Context<'_>, key: String) -> AppResult<Option<AppObject>> {
        caller(ctx)?;
        Ok(state(ctx)?.catalog.get(&key).map(AppObject::from))
    }

    /// A connection of one of the caller's teams; null otherwise.
    async fn connection(&self, ctx: &Context<'_>, id: ID) -> AppResult<Option<ConnectionObject>> {
        let principal = caller(ctx)?;
        let id: ConnectionId = parse_id(&id, "id")?;
        match connections::get(state(ctx)?, principal, id).await {
            Ok(connection) => Ok(Some(ConnectionObject(connection))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }
}
