//! Calls made through the proxy, as a connection's team reads them.

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::audit::AuditActor;
use crate::domain;

#[derive(SimpleObject)]
pub struct ApiCall {
    id: ID,
    /// The flow the call was made for, when it named one.
    flow_id: Option<ID>,
    /// The flow's module key, when the call named one.
    module_key: Option<String>,
    method: String,
    /// The path under the app's API base, with query parameter names but not their values.
    path: String,
    /// The HTTP status the caller got.
    status: i32,
    duration_ms: i32,
    /// The `Plugboard-Error` code of the answer: a refusal of Plugboard's, or what it concluded
    /// from the provider's answer.
    plugboard_error: Option<String>,
    caller: AuditActor,
    created_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct ApiCallEdge {
    pub cursor: String,
    pub node: ApiCall,
}

#[derive(SimpleObject)]
pub struct ApiCallList {
    pub edges: Vec<ApiCallEdge>,
    pub page_info: super::PageInfo,
}

impl From<domain::ApiCall> for ApiCall {
    fn from(call: domain::ApiCall) -> Self {
        ApiCall {
            id: ID(call.id.to_string()),
            flow_id: call.flow_id.map(|id| ID(id.to_string())),
            module_key: call.module_key,
            method: call.method,
            path: call.path,
            status: i32::from(call.status),
            duration_ms: i32::try_from(call.duration_ms).unwrap_or(i32::MAX),
            plugboard_error: call.plugboard_error,
            caller: AuditActor::from(call.actor),
            created_at: call.created_at,
        }
    }
}
