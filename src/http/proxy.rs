//! `/proxy/{path}`, any method: reads the caller's request for `proxy::forward` and writes back
//! what it answers. Small bodies are read whole (so a call can be repeated after a token
//! refresh); larger ones stream through as they arrive. Plugboard's own refusals are JSON with
//! a `code`, and carry `Plugboard-Error: <code>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::body::SizedStream;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::json;

use crate::proxy::{self, Answer, AnswerBody, Call, Naming, ProxyError, ProxyRuntime, RequestBody};
use crate::state::AppState;

/// Bodies up to this size are read whole and can be sent twice.
const KEEP_BYTES: u64 = 256 * 1024;

pub async fn proxy(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    runtime: web::Data<ProxyRuntime>,
) -> HttpResponse {
    let max = state.config.proxy.max_request_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > max) {
        return refusal(ProxyError::payload_too_large(max));
    }
    let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
    let body = if !chunked && declared.unwrap_or(0) <= KEEP_BYTES {
        match read_whole(payload, max.min(KEEP_BYTES)).await {
            Ok(bytes) => RequestBody::Kept(bytes),
            Err(error) => return refusal(error),
        }
    } else {
        stream_through(payload, declared, max)
    };
    let Ok(method) = reqwest::Method::from_bytes(request.method().as_str().as_bytes()) else {
        return refusal(ProxyError::bad_request("unknown method"));
    };
    let text = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let bearer =
        text("authorization").and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let path = match request.path().strip_prefix("/proxy") {
        Some("") | None => "/",
        Some(path) => path,
    };
    let call = Call {
        bearer: bearer.map(str::trim),
        naming: Naming {
            connection: text("plugboard-connection"),
            flow: text("plugboard-flow"),
            module: text("plugboard-module"),
            select: text("plugboard-select"),
        },
        method,
        path,
        query: Some(request.query_string()).filter(|q| !q.is_empty()),
        headers: to_reqwest(request.headers()),
        body,
    };
    match proxy::forward(&state, &runtime, call).await {
        Ok(answer) => answered(answer),
        Err(error) => refusal(error),
    }
}

async fn read_whole(mut payload: web::Payload, limit: u64) -> Result<Bytes, ProxyError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|err| ProxyError::bad_request(format!("the request body could not be read: {err}")))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(ProxyError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Passes the body on as it arrives. The payload lives on this worker's thread, so a local task
/// feeds it into a channel the outbound request reads from; past `max` bytes the stream is cut.
fn stream_through(mut payload: web::Payload, declared: Option<u64>, max: u64) -> RequestBody {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let overflowed = Arc::new(AtomicBool::new(false));
    let flag = overflowed.clone();
    actix_web::rt::spawn(async move {
        let mut seen = 0u64;
        while let Some(chunk) = payload.next().await {
            let item = match chunk {
                Ok(chunk) => {
                    seen += chunk.len() as u64;
                    if seen > max {
                        flag.store(true, Ordering::SeqCst);
                        let _ =
                            sender.send(Err(std::io::Error::other("the request body is too large"))).await;
                        return;
                    }
                    Ok(chunk)
                }
                Err(err) => Err(std::io::Error::other(err.to_string())),
            };
            let failed = item.is_err();
            if sender.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    RequestBody::Streamed { body: reqwest::Body::wrap_stream(stream), length: declared, overflowed }
}

fn to_reqwest(headers: &header::HeaderMap) -> reqwest::header::HeaderMap {
    let mut converted = reqwest::header::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            converted.append(name, value);
        }
    }
    converted
}

fn answered(answer: Answer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = HttpResponse::build(status);
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
        {
            response.append_header((name, value));
        }
    }
    if let Some(code) = answer.annotation {
        response.insert_header(("plugboard-error", code));
    }
    if !answer.missing_scopes.is_empty() {
        response.insert_header(("plugboard-missing-scopes", answer.missing_scopes.join(" ")));
    }
    if answer.token_refreshed {
        response.insert_header(("plugboard-token-refreshed", "true"));
    }
    match answer.body {
        AnswerBody::Empty => response.finish(),
        AnswerBody::Stream { length: Some(length), stream } => {
            response.body(SizedStream::new(length, stream))
        }
        AnswerBody::Stream { length: None, stream } => response.streaming(stream),
    }
}

/// Plugboard's own refusal: JSON with the code, and the code in `Plugboard-Error`.
fn refusal(error: ProxyError) -> HttpResponse {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response.insert_header(("plugboard-error", error.code));
    let mut body = json!({ "code": error.code, "message": error.message });
    if let Some(wait) = error.retry_after {
        let secs = proxy::retry_after_secs(wait);
        response.insert_header((header::RETRY_AFTER, secs.to_string()));
        body["retryAfter"] = json!(secs);
    }
    if !error.missing_scopes.is_empty() {
        body["missingScopes"] = json!(error.missing_scopes);
    }
    if error.status == 401 {
        response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    response.json(body)
}
