//! The GraphQL endpoint over HTTP: reads the body within a size and a time limit, establishes
//! the caller from the bearer token, executes, and answers JSON. GraphiQL (on GET) is in
//! `graphiql`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;

use crate::access;
use crate::error::AppError;
use crate::error::INTERNAL_MESSAGE;
use crate::graphql::{AppSchema, Caller};
use crate::state::AppState;

/// Request-level limits; query depth and complexity are enforced by the schema itself.
#[derive(Debug, Clone, Copy)]
pub struct GraphqlLimits {
    pub max_body_bytes: usize,
    /// The whole body must have arrived by then.
    pub body_timeout: std::time::Duration,
}

pub async fn execute(
    request: HttpRequest,
    mut payload: web::Payload,
    schema: web::Data<AppSchema>,
    state: web::Data<AppState>,
    limits: web::Data<GraphqlLimits>,
) -> HttpResponse {
    if let Some(encoding) = compressed(&request) {
        let message = format!(
            "request bodies are read as they are sent; this one is {encoding}-encoded: send the JSON without \
             Content-Encoding"
        );
        return refusal(StatusCode::UNSUPPORTED_MEDIA_TYPE, AppError::bad_body(message));
    }
    let body = match tokio::time::timeout(limits.body_timeout, read_body(&mut payload, limits.max_body_bytes))
        .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(refused)) => return refused,
        Err(_) => {
            let message = format!(
                "the request body did not arrive within {} s (PLUGBOARD_REQUEST_BODY_TIMEOUT_SECS)",
                limits.body_timeout.as_secs()
            );
            return refusal(StatusCode::REQUEST_TIMEOUT, AppError::bad_body(message));
        }
    };
    let batch = match batch_of(&body) {
        Ok(batch) => batch,
        Err(err) => {
            let message = format!("the body is not a GraphQL request (JSON with a `query`): {err}");
            return refusal(StatusCode::BAD_REQUEST, AppError::bad_body(message));
        }
    };
    let operations = match &batch {
        async_graphql::BatchRequest::Single(_) => 1,
        async_graphql::BatchRequest::Batch(requests) => requests.len(),
    };
    let max_batch = schema.limits().max_batch;
    if operations == 0 || operations > max_batch {
        let message = format!(
            "a batch carries 1 to {max_batch} operations (PLUGBOARD_MAX_BATCH); this one has {operations}"
        );
        return refusal(StatusCode::BAD_REQUEST, AppError::bad_body(message));
    }
    let caller = match caller_from_headers(&state, request.headers()).await {
        Ok(caller) => caller,
        Err(err) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, err),
    };
    let response = schema.execute_http(batch, caller).await;
    HttpResponse::Ok().json(response)
}

/// The request's `Content-Encoding`, unless it is none or `identity`.
fn compressed(request: &HttpRequest) -> Option<String> {
    let encoding = request.headers().get(actix_web::http::header::CONTENT_ENCODING)?;
    let encoding = String::from_utf8_lossy(encoding.as_bytes()).trim().to_ascii_lowercase();
    let shown: String = encoding.chars().filter(|c| c.is_ascii_graphic()).take(32).collect();
    (!encoding.is_empty() && encoding != "identity").then_some(shown)
}

/// A JSON array as a batch and anything else as one request. Asked to read either, serde takes
/// an array for a request's fields in order (`["{ a }"]`, even `[]`), so a batch of none would
/// run as a request without a query.
fn batch_of(body: &[u8]) -> serde_json::Result<async_graphql::BatchRequest> {
    use async_graphql::{BatchRequest, Request};
    if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice::<Vec<Request>>(body).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice::<Request>(body).map(BatchRequest::Single)
    }
}

/// The request body, or the answer refusing it: unreadable, or larger than `max_bytes`.
async fn read_body(payload: &mut web::Payload, max_bytes: usize) -> Result<web::BytesMut, HttpResponse> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                AppError::bad_body("the request body could not be read"),
            ));
        };
        if body.len() + chunk.len() > max_bytes {
            let message =
                format!("the request body is larger than {max_bytes} bytes (PLUGBOARD_MAX_BODY_BYTES)");
            return Err(refusal(StatusCode::PAYLOAD_TOO_LARGE, AppError::bad_body(message)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A present but invalid token leaves the caller anonymous, so every field that needs a caller
/// answers `UNAUTHENTICATED`; only a failure on our side is an error here.
async fn caller_from_headers(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    let Some(token) = bearer_token(headers) else {
        return Ok(Caller::Anonymous);
    };
    match access::identify(state, token).await {
        Ok(principal) => Ok(Caller::Authenticated(principal)),
        Err(AppError::Unauthenticated) => Ok(Caller::Anonymous),
        Err(other) => Err(other),
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A request refused before execution, answered like any GraphQL error: the message and the
/// code of `err` (an internal one is logged here and shown only as `INTERNAL`), and for an
/// error worth retrying, when (`Retry-After`, and `retryAfter` as a GraphQL answer has it).
pub(super) fn refusal(status: StatusCode, err: AppError) -> HttpResponse {
    let message = match &err {
        AppError::Internal(detail) => {
            tracing::error!(error = format!("{detail:#}"), "could not answer a GraphQL request");
            INTERNAL_MESSAGE.to_owned()
        }
        other => other.to_string(),
    };
    let mut extensions = json!({ "code": err.code() });
    let mut response = HttpResponse::build(status);
    if let AppError::RateLimited { retry_after, .. } | AppError::Unavailable { retry_after, .. } = &err {
        let seconds = crate::graphql::retry_after_seconds(*retry_after);
        extensions["retryAfter"] = seconds.into();
        response.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    response.json(json!({ "errors": [{ "message": message, "extensions": extensions }] }))
}
