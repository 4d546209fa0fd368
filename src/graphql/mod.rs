//! The GraphQL API: schema, entry points, the caller's identity and error codes.
//! Resolvers parse arguments, call the services and wrap domain values; rules live in the
//! services, not here.

mod errors;
mod flow_mutation;
pub mod ids;
mod mutation;
mod query;
mod subscription;
mod team_mutation;
pub mod types;

use std::sync::Arc;

use async_graphql::{Context, Data, Executor, Request, Response, Schema};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::domain::{ConnectionId, Principal, TeamId};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::{access, store};
use async_graphql::MergedObject;
use flow_mutation::FlowMutation;
use ids::{decode_cursor, encode_cursor, page_size};
use mutation::ConnectionMutation;
use query::QueryRoot;
use subscription::SubscriptionRoot;
use team_mutation::TeamMutation;
use types::PageInfo;
use types::audit::{AuditEvent, AuditEventEdge, AuditEventList};

pub use errors::INTERNAL_MESSAGE;

/// Every mutation: connections, flows with dynamic connections, and teams with their members
/// and tokens.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(ConnectionMutation, FlowMutation, TeamMutation);

/// The schema as clients reach it, over HTTP and WebSocket: it executes, then gives every
/// error its `extensions.code` (see `errors`).
///
/// This wraps the schema rather than being a schema extension: async-graphql sends every field
/// of every answer through the extension chain once a schema has any extension, which made a
/// page of 50 connections cost several times what it does without.
#[derive(Clone)]
pub struct AppSchema(Schema<QueryRoot, MutationRoot, SubscriptionRoot>);

impl Executor for AppSchema {
    async fn execute(&self, request: Request) -> Response {
        errors::with_codes(self.0.execute(request).await)
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        self.0
            .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            .map(errors::with_codes)
            .boxed()
    }
}

/// Who is calling, as established from the request's bearer token before execution.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    Authenticated(Principal),
}

pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
}

pub fn build_schema(state: AppState, limits: Limits) -> AppSchema {
    AppSchema(
        Schema::build(QueryRoot, MutationRoot::default(), SubscriptionRoot)
            .data(state)
            .limit_depth(limits.depth)
            .limit_complexity(limits.complexity)
            .finish(),
    )
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot::default(), SubscriptionRoot).finish().sdl()
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> AppResult<&'a AppState> {
    ctx.data::<AppState>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("the schema was built without its state")))
}

/// The authenticated caller, or `UNAUTHENTICATED`.
pub(crate) fn caller<'a>(ctx: &Context<'a>) -> AppResult<&'a Principal> {
    match ctx.data_opt::<Caller>() {
        Some(Caller::Authenticated(principal)) => Ok(principal),
        _ => Err(AppError::Unauthenticated),
    }
}

const AUDIT_CURSOR: &str = "audit";

/// One page of a team's audit trail, newest first; shared by `Team` and `Connection`.
pub(crate) async fn audit_page(
    ctx: &Context<'_>,
    team_id: TeamId,
    connection_id: Option<ConnectionId>,
    first: Option<i32>,
    before: Option<String>,
) -> AppResult<AuditEventList> {
    let first = page_size(first, types::team::MAX_PAGE_SIZE)?;
    let before = before.map(|c| decode_cursor(AUDIT_CURSOR, &c, "before")).transpose()?;
    let db = &state(ctx)?.db;
    access::team_access(db, caller(ctx)?, team_id).await?;
    let mut events = store::audit::list(db, team_id, connection_id, before, first + 1).await?;
    let has_next_page = events.len() as u64 > first;
    events.truncate(first as usize);
    let edges: Vec<AuditEventEdge> = events
        .into_iter()
        .map(|e| AuditEventEdge { cursor: encode_cursor(AUDIT_CURSOR, e.id), node: AuditEvent::from(e) })
        .collect();
    Ok(AuditEventList {
        page_info: PageInfo { has_next_page, end_cursor: edges.last().map(|e| e.cursor.clone()) },
        edges,
    })
}
