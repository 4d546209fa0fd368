//! `GET /metrics`: Prometheus text format. With `PLUGBOARD_METRICS_TOKEN` set, only a scraper
//! that sends it as a bearer token is answered.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::state::AppState;

pub async fn metrics(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(expected) = &state.config.metrics_token
        && !presents(&request, expected.expose_secret())
    {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
            .body("send the metrics token (PLUGBOARD_METRICS_TOKEN) as `Authorization: Bearer <token>`");
    }
    match crate::metrics::render(&state).await {
        Ok(text) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text),
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "could not measure metrics");
            HttpResponse::ServiceUnavailable().body("metrics are unavailable; see the server log")
        }
    }
}

/// Compares digests, so the time taken says nothing about how much of the token matched.
fn presents(request: &HttpRequest, expected: &str) -> bool {
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}
