//! Read-only entry points.

use async_graphql::{Context, ID, Object};

use super::ids::parse_id;
use super::types::app::AppObject;
use super::types::connection::ConnectionObject;
use super::types::flow::{FlowObject, ModuleCredentialsObject};
use super::types::team::TeamObject;
use super::types::viewer::{Viewer, visible_teams};
use super::{caller, state};
use crate::connections;
use crate::domain::{ConnectionId, FlowId, TeamId};
use crate::error::{AppError, AppResult};
use crate::flows;

pub struct QueryRoot;

#[Object(name = "Query")]
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
        let team_id: TeamId = parse_id(&id, "id")?;
        let scope = crate::teams::scope_of(state(ctx)?, caller(ctx)?, team_id).await?;
        Ok(scope.map(TeamObject::unread))
    }

    /// The app catalog, optionally searched by name, key or description.
    #[graphql(complexity = "crate::graphql::limits::catalog_complexity(child_complexity)")]
    async fn apps(&self, ctx: &Context<'_>, search: Option<String>) -> AppResult<Vec<AppObject>> {
        caller(ctx)?;
        let catalog = &state(ctx)?.catalog;
        Ok(catalog.search(search.as_deref().unwrap_or("")).into_iter().map(AppObject::from).collect())
    }

    async fn app(&self, ctx: &Context<'_>, key: String) -> AppResult<Option<AppObject>> {
        caller(ctx)?;
        Ok(state(ctx)?.catalog.get(&key).map(AppObject::from))
    }

    /// A flow of one of the caller's teams; null otherwise.
    async fn flow(&self, ctx: &Context<'_>, id: ID) -> AppResult<Option<FlowObject>> {
        let id: FlowId = parse_id(&id, "id")?;
        match flows::get(state(ctx)?, caller(ctx)?, id).await {
            Ok(flow) => Ok(Some(FlowObject(flow))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// For flow runners (service tokens): the credentials of a module, with a fresh access
    /// token. `select` picks a dynamic connection's member by label or connection id. Errors:
    /// `ACCOUNT_VALIDATION_ERROR` (missing scopes in `extensions.missingScopes`, or rejected
    /// credentials), `NEEDS_REAUTHORIZATION`, `PROVIDER_UNAVAILABLE`, `NOT_FOUND`, and
    /// `FORBIDDEN` for user tokens. Every read is audited.
    async fn module_credentials(
        &self,
        ctx: &Context<'_>,
        flow_id: ID,
        module_key: String,
        select: Option<String>,
    ) -> AppResult<ModuleCredentialsObject> {
        let flow_id: FlowId = parse_id(&flow_id, "flowId")?;
        let credentials = crate::connections::module_credentials(
            state(ctx)?,
            caller(ctx)?,
            flow_id,
            &module_key,
            select.as_deref(),
        )
        .await?;
        Ok(ModuleCredentialsObject(credentials))
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
