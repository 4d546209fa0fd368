//! The GraphQL API: schema, entry points, the caller's identity and error codes.
//! Resolvers parse arguments, call the services and wrap domain values; rules live in the
//! services, not here.

mod errors;
mod flow_mutation;
pub mod ids;
pub mod limits;
pub mod loaders;
mod mutation;
mod query;
mod rechecks;
mod runtime;
pub mod shared;
mod subscription;
mod team_mutation;
pub mod types;

use std::sync::{Arc, OnceLock};

use async_graphql::{BatchRequest, BatchResponse, Context, Data, Request, Response, Schema};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::domain::{ConnectionId, Principal};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use async_graphql::MergedObject;
pub use errors::{refused_connection, retry_after_seconds};
use flow_mutation::FlowMutation;
use ids::{decode_cursor, encode_cursor, page_size};
use limits::{AdmittedDocuments, CallerBuckets, RequestCalls, RequestLimits};
use mutation::ConnectionMutation;
use query::QueryRoot;
use rechecks::Rechecks;
use shared::SharedSubscriptions;
use subscription::SubscriptionRoot;
use team_mutation::TeamMutation;
use types::PageInfo;
use types::audit::{AuditEvent, AuditEventEdge, AuditEventList};

/// Every mutation: connections, flows with dynamic connections, and teams with their members
/// and tokens.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(ConnectionMutation, FlowMutation, TeamMutation);

type InnerSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema as clients reach it, over HTTP and WebSocket: it bounds each request (see
/// `limits`), executes it on the GraphQL runtime behind a panic guard (see `runtime`), then
/// gives every error its `extensions.code` (see `errors`).
///
/// This wraps the schema rather than being a schema extension: async-graphql sends every field
/// of every answer through the extension chain once a schema has any extension, which made a
/// page of 50 connections cost several times what it does without.
/// The connection page's edges are also answered without the executor (`types/selection.rs`),
/// which relies on the schema having no extension.
#[derive(Clone)]
pub struct AppSchema(Arc<Schemas>);

/// async-graphql fixes the complexity limit when a schema is built, so a batch of `n`
/// operations runs on a schema whose limit is `1/n` of the budget: together they never exceed
/// it. Those schemas are built the first time a batch of that size arrives.
struct Schemas {
    state: AppState,
    limits: RequestLimits,
    admitted: AdmittedDocuments,
    callers: Arc<CallerBuckets>,
    rechecks: Arc<Rechecks>,
    subscriptions: SharedSubscriptions,
    by_batch_size: Vec<OnceLock<InnerSchema>>,
}

impl Schemas {
    fn for_batch_of(&self, size: usize) -> &InnerSchema {
        let size = size.clamp(1, self.by_batch_size.len());
        self.by_batch_size[size - 1].get_or_init(|| {
            Schema::build(QueryRoot, MutationRoot::default(), SubscriptionRoot)
                .data(self.state.clone())
                .data(self.callers.clone())
                .data(self.rechecks.clone())
                .limit_complexity((self.limits.max_complexity / size).max(1))
                .limit_directives(MAX_DIRECTIVES_PER_FIELD)
                .finish()
        })
    }
}

/// `@include` and `@skip` are all this schema has; repeating them only costs.
const MAX_DIRECTIVES_PER_FIELD: usize = 4;

impl AppSchema {
    pub fn limits(&self) -> &RequestLimits {
        &self.0.limits
    }

    /// Executes what one HTTP request carries. The operations of a batch run one after the
    /// other and share the complexity budget and the provider calls of one request; the caller
    /// checks the batch size first (`limits().max_batch`).
    pub async fn execute_http(&self, batch: BatchRequest, caller: Caller) -> BatchResponse {
        let calls = RequestCalls::default();
        match batch {
            BatchRequest::Single(request) => {
                BatchResponse::Single(self.run(request.data(caller), 1, calls).await)
            }
            BatchRequest::Batch(requests) => {
                let size = requests.len();
                let mut responses = Vec::with_capacity(size);
                for request in requests {
                    responses.push(self.run(request.data(caller.clone()), size, calls.clone()).await);
                }
                BatchResponse::Batch(responses)
            }
        }
    }

    async fn run(&self, request: Request, batch_size: usize, calls: RequestCalls) -> Response {
        let schemas = self.0.clone();
        let outcome = runtime::run(async move {
            match limits::admit(request, &schemas.limits, &schemas.admitted) {
                Ok(request) => {
                    let request = request.data(calls).data(loaders::Loaders::default());
                    schemas.for_batch_of(batch_size).execute(request).await
                }
                Err(refusal) => Response::from_errors(vec![refusal]),
            }
        })
        .await;
        errors::with_codes(outcome.unwrap_or_else(|runtime::Panicked| errors::internal_response()))
    }
}

impl AppSchema {
    /// An operation sent over WebSocket, its answers encoded as JSON. It runs on the GraphQL
    /// runtime, as over HTTP; identical subscriptions share one execution (see `shared`).
    pub fn execute_socket(&self, request: Request, session: Arc<Data>) -> BoxStream<'static, Bytes> {
        let mut request = match limits::admit(request, &self.0.limits, &self.0.admitted) {
            Ok(request) => request.data(RequestCalls::default()).data(loaders::Loaders::default()),
            Err(refusal) => {
                let refused = shared::encode(&errors::with_codes(Response::from_errors(vec![refusal])));
                return futures_util::stream::once(std::future::ready(refused)).boxed();
            }
        };
        if only_subscriptions(&mut request) {
            let schemas = self.0.clone();
            return self.0.subscriptions.subscribe(request, session, move |request, session| {
                schemas.for_batch_of(1).execute_stream_with_session_data(request, session)
            });
        }
        let stream = self.0.for_batch_of(1).execute_stream_with_session_data(request, session);
        runtime::forward(stream, errors::internal_response)
            .map(|answer| shared::encode(&errors::with_codes(answer)))
            .boxed()
    }
}

/// Whether every operation of the admitted document is a subscription, so whichever one the
/// request names is. `limits::admit` has parsed the document already, so this does not parse.
fn only_subscriptions(request: &mut Request) -> bool {
    use async_graphql::parser::types::OperationType;
    request.parsed_query().is_ok_and(|document| {
        document.operations.iter().all(|(_, operation)| operation.node.ty == OperationType::Subscription)
    })
}

/// Who is calling, as established from the request's bearer token before execution.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    Authenticated(Principal),
}

pub fn build_schema(state: AppState, limits: RequestLimits) -> AppSchema {
    runtime::start();
    let callers = Arc::new(CallerBuckets::new(limits.provider_calls));
    let rechecks = Arc::new(Rechecks::new(state.events.clone(), state.db.clone()));
    let by_batch_size = (0..limits.max_batch.max(1)).map(|_| OnceLock::new()).collect();
    let subscriptions = SharedSubscriptions::new(state.events.subscriber_tally());
    let schemas = Schemas {
        state,
        limits,
        admitted: AdmittedDocuments::default(),
        callers,
        rechecks,
        subscriptions,
        by_batch_size,
    };
    schemas.for_batch_of(1);
    AppSchema(Arc::new(schemas))
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot::default(), SubscriptionRoot).finish().sdl()
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> AppResult<&'a AppState> {
    ctx.data::<AppState>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("the schema was built without its state")))
}

/// Admits one call to a provider for this request and its token, or `RATE_LIMITED`. Every
/// mutation that reaches a provider or a host the caller chose asks first.
pub(crate) fn admit_provider_call(ctx: &Context<'_>) -> AppResult<()> {
    let principal = caller(ctx)?;
    let buckets = ctx
        .data::<Arc<CallerBuckets>>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("the schema was built without its rate limits")))?;
    let calls = ctx
        .data::<RequestCalls>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("a request ran without its provider-call count")))?;
    let token = match (principal.token_id(), principal.user_id()) {
        (Some(token_id), _) => token_id.to_string(),
        // A JWT of the identity provider carries no token of ours: one bucket per user.
        (None, Some(user_id)) => format!("user:{user_id}"),
        (None, None) => return Err(AppError::Unauthenticated),
    };
    buckets.admit(&token, calls)
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
    scope: &crate::access::TeamScope,
    connection_id: Option<ConnectionId>,
    first: Option<i32>,
    before: Option<String>,
) -> AppResult<AuditEventList> {
    let first = page_size(first, ids::MAX_PAGE_SIZE)?;
    let before = before.map(|c| decode_cursor(AUDIT_CURSOR, &c, "before")).transpose()?;
    let mut events = crate::teams::audit_trail(state(ctx)?, scope, connection_id, before, first + 1).await?;
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
