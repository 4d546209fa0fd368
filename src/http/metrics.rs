//! `GET /metrics`: Prometheus text format.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match crate::metrics::render(&state).await {
        Ok(text) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text),
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "could not measure metrics");
            HttpResponse::ServiceUnavailable().body("metrics are unavailable; see the server log")
        }
    }
}
