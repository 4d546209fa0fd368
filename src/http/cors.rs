//! Which browser origins may use the API: `PLUGBOARD_CORS_ORIGINS`, exactly. Listed origins get
//! CORS answers (preflight included) on every route; other origins get no CORS headers, so their
//! pages cannot read answers, and their WebSocket upgrades are refused (browsers do not apply
//! CORS to WebSockets, so that check is ours). No credentials mode: callers send bearer tokens.

use actix_cors::Cors;
use actix_web::HttpRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;

use crate::config::Config;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE_SECS: usize = 600;

/// The CORS middleware for the whole app, so `/graphql`, `/proxy` and any later route share one
/// policy.
pub fn middleware(config: &Config) -> Cors {
    let origins = config.cors_origins.clone();
    Cors::default()
        .allowed_origin_fn(move |origin, _| origin.to_str().is_ok_and(|origin| origins.contains(origin)))
        // The proxy forwards any method and the provider's headers; the origin check above is
        // what keeps strangers out.
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ])
        .allow_any_header()
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("plugboard-error"),
            header::RETRY_AFTER,
        ])
        .max_age(PREFLIGHT_MAX_AGE_SECS)
}

/// Whether a WebSocket upgrade may proceed: clients that are not browsers send no `Origin`;
/// browsers must come from a listed origin or from the service itself.
pub fn websocket_allowed(request: &HttpRequest, config: &Config) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    config.cors_origins.contains(origin) || is_own_origin(origin, request, config)
}

/// The service's own pages (GraphiQL): the public URL's origin, or the host the request reached.
pub fn is_own_origin(origin: &str, request: &HttpRequest, config: &Config) -> bool {
    if origin == config.public_url.origin().ascii_serialization() {
        return true;
    }
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin.split_once("://").map(|(_, authority)| authority);
    matches!((host, authority), (Some(host), Some(authority)) if host.eq_ignore_ascii_case(authority))
}

/// actix-cors adds some headers (exposed headers) whatever the origin; an origin that is not
/// listed gets none at all, so nothing suggests it may read answers.
pub async fn strip_for_unlisted(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let cors: Vec<header::HeaderName> =
            headers.keys().filter(|name| name.as_str().starts_with("access-control-")).cloned().collect();
        for name in cors {
            headers.remove(name);
        }
    }
    Ok(response)
}
