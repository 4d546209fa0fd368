//! A team as its members see it.

use async_graphql::{Context, ID, Object};

use super::PageInfo;
use super::audit::AuditEventList;
use super::connection::{ConnectionEdge, ConnectionObject};
use super::enums::{ConnectionStatus, GrantStatus, TeamRole};
use super::flow::{DynamicConnectionObject, FlowObject};
use super::listed::ListedEdge;
use super::listed_page::{self, ConnectionList, ListedEdges};
use crate::access::TeamScope;
use crate::connections;
use crate::domain::{self, ConnectionFilter, ConnectionId};
use crate::error::AppResult;
use crate::graphql::ids::{MAX_PAGE_SIZE, decode_cursor, encode_uuid_cursor, page_size};
use crate::graphql::{audit_page, state};

const CONNECTION_CURSOR: &str = "connection";

pub struct TeamObject {
    /// The team's row, when it was read anyway. `team(id)` checks only the caller's access (a
    /// team is never deleted, so access proves it exists) and leaves the row to `name`.
    team: Option<domain::Team>,
    /// The caller's checked access, which every list below reads through.
    scope: TeamScope,
}

impl TeamObject {
    pub fn new(team: domain::Team, scope: TeamScope) -> Self {
        TeamObject { team: Some(team), scope }
    }

    /// A team the caller may see, its row not read yet.
    pub fn unread(scope: TeamScope) -> Self {
        TeamObject { team: None, scope }
    }
}

#[Object(name = "Team")]
impl TeamObject {
    async fn id(&self) -> ID {
        ID(self.scope.team().to_string())
    }

    async fn name(&self, ctx: &Context<'_>) -> AppResult<String> {
        let name = match &self.team {
            Some(team) => team.name.clone(),
            None => crate::teams::row(state(ctx)?, &self.scope).await?.name,
        };
        Ok(name.as_str().to_owned())
    }

    /// The caller's role here: `ADMIN` and `MEMBER` manage connections, `MONITORING` reads.
    async fn role(&self) -> TeamRole {
        self.scope.access().into()
    }

    /// The team's connections in creation order, filtered and paginated.
    #[graphql(complexity = "crate::graphql::limits::list_complexity(first, 50, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn connections(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: Option<i32>,
        after: Option<String>,
        app: Option<String>,
        status: Option<ConnectionStatus>,
        search: Option<String>,
        #[graphql(desc = "Only connections whose grant stands so (`EXPIRING`: ends within a week).")]
        grant_status: Option<GrantStatus>,
    ) -> AppResult<ConnectionList> {
        let first = page_size(first, MAX_PAGE_SIZE)?;
        let after: Option<ConnectionId> =
            after.map(|c| decode_cursor(CONNECTION_CURSOR, &c, "after")).transpose()?;
        let filter = ConnectionFilter {
            app,
            status: status.map(Into::into),
            search,
            grant: grant_status.map(Into::into),
        };
        // Counting every match costs more than the page itself; only when the client asks.
        let count = ctx.look_ahead().field("totalCount").exists();
        // A page whose edges show only what the row holds reads only those columns.
        let parts = listed_page::parts_shown(ctx);
        let request = connections::PageRequest { filter: &filter, after, first, count, parts };
        let page = connections::list(state(ctx)?, &self.scope, request).await?;
        let edges: Vec<ListedEdge> = page
            .connections
            .into_iter()
            .map(|c| {
                ListedEdge(ConnectionEdge {
                    cursor: encode_uuid_cursor(CONNECTION_CURSOR, c.id.as_uuid()),
                    node: ConnectionObject(c),
                })
            })
            .collect();
        Ok(ConnectionList {
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                end_cursor: edges.last().map(|e| e.0.cursor.clone()),
            },
            edges: ListedEdges { edges, parts },
            // Resolved only when asked for, and then counted.
            total_count: page.total_count.unwrap_or_default(),
        })
    }

    /// The team's flows, by name.
    async fn flows(&self, ctx: &Context<'_>) -> AppResult<Vec<FlowObject>> {
        let flows = crate::flows::list(state(ctx)?, &self.scope).await?;
        Ok(flows.into_iter().map(FlowObject).collect())
    }

    async fn dynamic_connections(&self, ctx: &Context<'_>) -> AppResult<Vec<DynamicConnectionObject>> {
        let dynamics = crate::flows::list_dynamic(state(ctx)?, &self.scope).await?;
        Ok(dynamics.into_iter().map(DynamicConnectionObject).collect())
    }

    /// The team's webhook endpoints.
    async fn webhooks(&self, ctx: &Context<'_>) -> AppResult<Vec<super::webhook::WebhookObject>> {
        let hooks = crate::webhooks::list(state(ctx)?, &self.scope).await?;
        Ok(hooks.into_iter().map(super::webhook::WebhookObject).collect())
    }

    /// The team's members, by e-mail.
    async fn members(&self, ctx: &Context<'_>) -> AppResult<Vec<super::access::TeamMemberObject>> {
        let members = crate::teams::members(state(ctx)?, &self.scope).await?;
        Ok(members.into_iter().map(Into::into).collect())
    }

    /// The team's service tokens that are not revoked; for its `ADMIN`s.
    async fn service_tokens(&self, ctx: &Context<'_>) -> AppResult<Vec<super::access::ApiTokenObject>> {
        let tokens = crate::teams::service_tokens(state(ctx)?, &self.scope).await?;
        Ok(tokens.into_iter().map(Into::into).collect())
    }

    /// Who did what to the team's connections, newest first.
    #[graphql(complexity = "crate::graphql::limits::list_complexity(first, 50, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: Option<i32>,
        before: Option<String>,
        connection_id: Option<ID>,
    ) -> AppResult<AuditEventList> {
        let connection_id: Option<ConnectionId> =
            connection_id.map(|id| crate::graphql::ids::parse_id(&id, "connectionId")).transpose()?;
        audit_page(ctx, &self.scope, connection_id, first, before).await
    }
}
