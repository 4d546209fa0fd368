//! Sends a resolved call to the provider: fresh token, credentials attached, module rules and
//! rate limits kept, and one refresh-and-retry on a refusal of the token (a 401, or a 2xx body
//! saying so, as Slack's) when the request can be repeated. The answer streams back under the
//! size limit; nothing is buffered but the start of a refusal, or of a 2xx JSON answer of an
//! app that fails with 2xx statuses, which is read to classify it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use super::error::ProxyError;
use super::failure;
use super::headers;
use super::target::{Secrets, Target, form_values};
use super::url::{Destination, destination};
use super::{Answer, AnswerBody, Call, ProxyRuntime, RequestBody};
use crate::catalog::{App, Attachment, FormValues};
use crate::config::ProxySettings;
use crate::connections;
use crate::domain::{Connection, Principal, VerificationOutcome};
use crate::error::AppError;
use crate::oauth::TokenProblem;
use crate::outbound::InternalResolution;
use crate::state::AppState;
use crate::verify::host_is_templated;

pub(super) async fn send(
    state: &AppState,
    runtime: &ProxyRuntime,
    principal: &Principal,
    target: &Target,
    call: Call<'_>,
) -> Result<Answer, ProxyError> {
    let connection: &Connection = &target.connection;
    let app = state
        .catalog
        .get(&connection.app_key)
        .ok_or_else(|| ProxyError::from(AppError::NotFound("connection")))?;
    if matches!(call.method, Method::CONNECT | Method::TRACE) {
        return Err(ProxyError::bad_request(format!("{} requests are not passed on", call.method)));
    }
    let settings = &state.config.proxy;
    let form = match &target.secrets {
        Secrets::Opened(form) => form.clone(),
        Secrets::Sealed(blob) => Arc::new(form_values(state, connection, blob.as_deref())?),
    };
    let (path, query) = (call.path, call.query);
    // Where the call goes and whether it may go there, before any token is fetched for it.
    let base = app.api_base_url().render(app.template_values(&form)).map_err(|missing| {
        ProxyError::bad_request(format!(
            "the connection has no value for `{}`; edit the connection",
            missing.name
        ))
    })?;
    let planned = destination(&base, path, query, &[])?;
    if let Some(module) = &target.module {
        let allowed = app
            .module(&module.app_module)
            .is_some_and(|m| m.allows(call.method.as_str(), &planned.relative_path));
        if !allowed {
            return Err(ProxyError::forbidden(format!(
                "module {} ({}) does not make {} requests to {}; only what the app file declares for it",
                module.key, module.app_module, call.method, planned.relative_path
            )));
        }
    }
    let client = state
        .outbound
        .client_for(&planned.url, host_is_templated(app.api_base_url()))
        .map_err(|err| ProxyError::forbidden(err.to_string()))?
        .clone();
    let oauth = app.oauth().is_some();
    let token = match oauth {
        true => Some(access_token(state, runtime, connection, false).await.map_err(token_refusal)?),
        false => None,
    };
    let (mut attachment, to) = prepare(app, &form, token.as_ref(), path, query)?;
    let forwarded = headers::toward_provider(&call.headers);
    let repeatable = call.body.is_repeatable();
    let (mut body, overflowed) = match call.body {
        RequestBody::Kept(bytes) => (Some(Sendable::Kept(bytes)), None),
        RequestBody::Streamed { body, length, overflowed } => {
            (Some(Sendable::Streamed(body, length)), Some(overflowed))
        }
    };
    let too_large = || overflowed.as_ref().is_some_and(|flag| flag.load(Ordering::SeqCst));
    wait_for_slot(state, runtime, app, connection).await?;
    let first = attempt(&client, &call.method, &to, &forwarded, &attachment, body.as_mut(), settings)
        .await
        .map_err(|err| sending_error(app, &to, err, too_large(), settings))?;
    let first = Received::read(app, connection, first).await;
    if !first.refuses_credentials() {
        return finish(state, principal, connection, app, &call.method, first, settings, false).await;
    }
    // What follows records a check or renews the token: the next call reads the connection again.
    runtime.opened.forget(connection.id);
    if !oauth {
        // Nothing to renew: the provider refused the credentials themselves.
        return finish(state, principal, connection, app, &call.method, first, settings, true).await;
    }
    // The provider refused a token we thought valid: renew it once, and repeat if we can. The
    // connection as read before the call tells the refresh which token was refused: when
    // another call renewed it meanwhile, that one is used rather than renewing again.
    let renewed = match access_token(state, runtime, connection, true).await {
        Ok(token) => token,
        Err(problem) => {
            let mut answer =
                finish(state, principal, connection, app, &call.method, first, settings, false).await?;
            answer.annotation = Some(refresh_annotation(state, principal, connection, &problem).await);
            return Ok(answer);
        }
    };
    if !repeatable {
        let mut answer =
            finish(state, principal, connection, app, &call.method, first, settings, false).await?;
        answer.token_refreshed = true;
        return Ok(answer);
    }
    drop(first);
    (attachment, _) = prepare(app, &form, Some(&renewed), path, query)?;
    wait_for_slot(state, runtime, app, connection).await?;
    let second = attempt(&client, &call.method, &to, &forwarded, &attachment, body.as_mut(), settings)
        .await
        .map_err(|err| sending_error(app, &to, err, too_large(), settings))?;
    let second = Received::read(app, connection, second).await;
    let mut answer = finish(state, principal, connection, app, &call.method, second, settings, true).await?;
    answer.token_refreshed = true;
    Ok(answer)
}

/// The connection's access token (renewed first when `force`). A renewal on SQLite never runs
/// while the call audit is being written (see `record::WriteTurn`); reading a token that is
/// good for a while yet waits for nothing.
async fn access_token(
    state: &AppState,
    runtime: &ProxyRuntime,
    connection: &Connection,
    force: bool,
) -> Result<SecretString, TokenProblem> {
    let skew = chrono::Duration::from_std(state.config.token_refresh_skew).unwrap_or_default();
    let may_renew = force || connection.expires_at.is_none_or(|at| at <= chrono::Utc::now() + skew);
    let on_sqlite = state.db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite;
    let _turn = match may_renew && on_sqlite {
        true => Some(runtime.write_turn.read().await),
        false => None,
    };
    connections::fresh_access_token(state, connection, force).await
}

/// The body of one attempt: a kept body can be sent again, a streamed one once.
enum Sendable {
    Kept(Bytes),
    Streamed(reqwest::Body, Option<u64>),
}

fn prepare(
    app: &App,
    form: &FormValues,
    token: Option<&SecretString>,
    path: &str,
    query: Option<&str>,
) -> Result<(Attachment, Destination), ProxyError> {
    let values = app.template_values(form);
    let attachment = app
        .attachment(|key| match (key, token) {
            ("access_token", Some(token)) => Some(token.expose_secret()),
            _ => values(key),
        })
        .map_err(|missing| {
            ProxyError::bad_request(format!(
                "the connection has no value for `{}`; edit the connection",
                missing.name
            ))
        })?;
    let to = destination(&attachment.base_url, path, query, &attachment.query)?;
    Ok((attachment, to))
}

async fn wait_for_slot(
    state: &AppState,
    runtime: &ProxyRuntime,
    app: &App,
    connection: &Connection,
) -> Result<(), ProxyError> {
    runtime
        .limiter
        .acquire(app.rate_limits(), app.key(), connection.id, state.config.proxy.queue)
        .await
        .map_err(|wait| ProxyError::rate_limited(app.name(), wait))
}

async fn attempt(
    client: &reqwest::Client,
    method: &Method,
    to: &Destination,
    forwarded: &HeaderMap,
    attachment: &Attachment,
    body: Option<&mut Sendable>,
    settings: &ProxySettings,
) -> Result<reqwest::Response, Attempt> {
    let mut headers = forwarded.clone();
    for (name, value) in &attachment.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Attempt::BadCredentialHeader)?;
        let mut value =
            HeaderValue::from_str(value.expose_secret()).map_err(|_| Attempt::BadCredentialHeader)?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let mut builder =
        client.request(method.clone(), to.url.clone()).headers(headers).timeout(settings.timeout);
    match body {
        Some(Sendable::Kept(bytes))
            if !bytes.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) =>
        {
            builder = builder.body(bytes.clone());
        }
        Some(streamed @ Sendable::Streamed(..)) => {
            if let Sendable::Streamed(stream, length) =
                std::mem::replace(streamed, Sendable::Kept(Bytes::new()))
            {
                if let Some(length) = length {
                    builder = builder.header(reqwest::header::CONTENT_LENGTH, length);
                }
                builder = builder.body(stream);
            }
        }
        _ => {}
    }
    builder.send().await.map_err(Attempt::Failed)
}

enum Attempt {
    BadCredentialHeader,
    Failed(reqwest::Error),
}

fn sending_error(
    app: &App,
    to: &Destination,
    err: Attempt,
    too_large: bool,
    settings: &ProxySettings,
) -> ProxyError {
    let err = match err {
        Attempt::BadCredentialHeader => {
            return ProxyError::bad_request(
                "the connection's credentials cannot be sent as an HTTP header; edit the connection",
            );
        }
        // The URL may carry credentials in its query: it never reaches a log or a message.
        Attempt::Failed(err) => err.without_url(),
    };
    if too_large {
        return ProxyError::payload_too_large(settings.max_request_bytes);
    }
    let host = to.url.host_str().unwrap_or_default();
    if let Some(refusal) = find_source::<InternalResolution>(&err) {
        return ProxyError::forbidden(refusal.to_string());
    }
    if err.is_timeout() {
        return ProxyError::timeout(format!(
            "{} did not answer within {} s (PLUGBOARD_PROXY_TIMEOUT_SECS)",
            app.name(),
            settings.timeout.as_secs()
        ));
    }
    tracing::warn!(app = app.key(), host, error = %err, "a proxied call could not reach the provider");
    ProxyError::unavailable(format!("{} could not be reached at {host}", app.name()))
}

/// A provider's answer as the proxy holds it: its length as announced before any of its body
/// was read (what is left shrinks as it is read), and, for an app that may fail with a 2xx
/// status, the start of a 2xx JSON body with what it says.
struct Received {
    response: reqwest::Response,
    length: Option<u64>,
    judged: Option<(Bytes, Option<failure::Finding>)>,
}

impl Received {
    /// Reads the start of a 401 (to tell a refused token from a missing scope, which Dropbox
    /// answers with 401 too) and of a 2xx JSON answer of an app that fails with 2xx statuses.
    async fn read(app: &App, connection: &Connection, response: reqwest::Response) -> Received {
        let length = response.content_length();
        let status = response.status();
        let refused = status == StatusCode::UNAUTHORIZED;
        let judged = refused || (status.is_success() && failure::fails_with_success(app, response.headers()));
        if !judged {
            return Received { response, length, judged: None };
        }
        let headers = response.headers().clone();
        let (prefix, response) = read_prefix(response).await;
        let finding = match refused {
            true => failure::classify(app, status, &headers, &prefix, &connection.scopes),
            false => failure::classify_success(app, &headers, &prefix, &connection.scopes),
        };
        Received { response, length, judged: Some((prefix, finding)) }
    }

    /// Whether the provider refused the credentials: a 401 that names no missing scope (a new
    /// token would be refused the same), or a 2xx body saying so.
    fn refuses_credentials(&self) -> bool {
        match &self.judged {
            Some((_, Some(finding))) => finding.outcome == VerificationOutcome::InvalidCredentials,
            Some((_, None)) | None => self.response.status() == StatusCode::UNAUTHORIZED,
        }
    }
}

/// The answer as the caller gets it. With `judge_refusal`, a refusal of the credentials (a 401,
/// or a 2xx body saying so) is the provider's verdict and is recorded as a check; a scope
/// refusal is always named.
#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    principal: &Principal,
    connection: &Connection,
    app: &App,
    method: &Method,
    received: Received,
    settings: &ProxySettings,
    judge_refusal: bool,
) -> Result<Answer, ProxyError> {
    let Received { response, length, judged } = received;
    let status = response.status();
    let limit = settings.max_response_bytes;
    if length.is_some_and(|length| length > limit) {
        return Err(ProxyError::response_too_large(app.name(), limit));
    }
    let kept = headers::toward_caller(response.headers());
    // A refusal not read yet (`Received::read` judged 401s already).
    let refusal = judged.is_none()
        && (status == StatusCode::FORBIDDEN || (status == StatusCode::UNAUTHORIZED && judge_refusal));
    // Kept past the body's reading only where they are read again, not for every answer.
    let provider_headers = match refusal || *method == Method::HEAD {
        true => response.headers().clone(),
        false => HeaderMap::new(),
    };
    let mut answer = Answer {
        status: status.as_u16(),
        headers: kept,
        body: AnswerBody::Empty,
        annotation: None,
        missing_scopes: Vec::new(),
        token_refreshed: false,
    };
    let (prefix, response, finding) = match judged {
        Some((prefix, finding)) => {
            let judged = finding.filter(|finding| {
                judge_refusal || finding.outcome == VerificationOutcome::InsufficientScopes
            });
            (prefix, response, judged)
        }
        None if refusal => {
            let (prefix, response) = read_prefix(response).await;
            let finding = failure::classify(app, status, &provider_headers, &prefix, &connection.scopes);
            (prefix, response, finding)
        }
        None => (Bytes::new(), response, None),
    };
    if let Some(finding) = finding {
        match finding.outcome {
            VerificationOutcome::InsufficientScopes => {
                answer.annotation = Some("ACCOUNT_VALIDATION_ERROR");
                answer.missing_scopes = finding.missing_scopes;
            }
            outcome => {
                failure::record(state, principal, connection, outcome, finding.message).await;
                answer.annotation = Some(outcome.as_str());
            }
        }
    }
    if *method == Method::HEAD {
        // No body, but the length the provider announced for a GET, as HEAD promises.
        let announced = provider_headers
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        answer.body = AnswerBody::Stream { length: announced, stream: futures_util::stream::empty().boxed() };
    } else if !matches!(status.as_u16(), 204 | 304) {
        answer.body = AnswerBody::Stream { length, stream: stream_body(prefix, response, limit) };
    }
    Ok(answer)
}

/// The start of a body (up to what classification needs), and the response to read on from.
async fn read_prefix(mut response: reqwest::Response) -> (Bytes, reqwest::Response) {
    let mut prefix = Vec::new();
    while prefix.len() < failure::CLASSIFY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => prefix.extend_from_slice(&chunk),
            _ => break,
        }
    }
    (Bytes::from(prefix), response)
}

/// The body as it arrives, after `prefix`; cut with an error past `limit` bytes.
fn stream_body(
    prefix: Bytes,
    response: reqwest::Response,
    limit: u64,
) -> futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>> {
    let seen = prefix.len() as u64;
    let first = futures_util::stream::iter((!prefix.is_empty()).then_some(Ok(prefix)));
    let rest = futures_util::stream::unfold(Some((response, seen)), move |state| async move {
        let (mut response, seen) = state?;
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let seen = seen + chunk.len() as u64;
                if seen > limit {
                    let error = std::io::Error::other(format!(
                        "the answer passed the proxy's limit of {limit} bytes"
                    ));
                    return Some((Err(error), None));
                }
                Some((Ok(chunk), Some((response, seen))))
            }
            Ok(None) => None,
            Err(err) => Some((Err(std::io::Error::other(err)), None)),
        }
    });
    first.chain(rest).boxed()
}

/// What a failed renewal after a 401 tells the caller. A dead grant was flagged by the refresh
/// itself; a refused renewal is recorded as verification would.
async fn refresh_annotation(
    state: &AppState,
    principal: &Principal,
    connection: &Connection,
    problem: &TokenProblem,
) -> &'static str {
    match problem {
        TokenProblem::NeedsReauthorization(_) => VerificationOutcome::NeedsReauthorization.as_str(),
        TokenProblem::Rejected(message) => {
            let outcome = VerificationOutcome::InvalidCredentials;
            failure::record(state, principal, connection, outcome, message.clone()).await;
            outcome.as_str()
        }
        TokenProblem::Unavailable(_) => "PROVIDER_UNAVAILABLE",
        TokenProblem::Gone => "NOT_FOUND",
        TokenProblem::Internal => "INTERNAL",
    }
}

fn token_refusal(problem: TokenProblem) -> ProxyError {
    AppError::from(problem).into()
}

fn find_source<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}
