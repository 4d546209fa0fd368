//! Liveness and readiness for orchestrators and operators.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;
use crate::store;

/// The process is up and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The service can do its work: the database answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if store::ping(&state.db).await {
        HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" }))
    } else {
        tracing::warn!("readiness check failed: the database does not answer");
        HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable", "database": "unreachable" }))
    }
}
