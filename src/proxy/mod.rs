//! "Make an API call": the authenticated proxy for runners (`/proxy/{path}`). A call names a
//! connection (or a flow's module), goes to the app's API base with the connection's
//! credentials attached as the app file says, and streams back what the provider answered. The
//! runner never sees a secret. Tokens are refreshed ahead of expiry and once more on a 401;
//! modules keep to the requests they declare; the providers' published rate limits are kept;
//! every call is audited compactly and counted. This module never logs a body, a header value
//! or a query value.

mod error;
mod failure;
mod headers;
mod in_flight;
mod opened;
mod rate;
mod record;
mod target;
mod upstream;
mod url;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use reqwest::Method;
use reqwest::header::HeaderMap;
use sea_orm::DatabaseConnection;

pub use error::ProxyError;
pub use rate::{RateLimiter, retry_after_secs};
pub use record::{Recorder, WriteTurn, calls, purge};
pub use target::{Naming, Via};

use crate::config::ProxySettings;
use crate::domain::{ApiCall, audit_path};
use crate::events::EventBus;
use crate::state::AppState;

/// The proxy's shared parts: rate limits in force, the calls in flight, the audit writer, and
/// the connections opened lately.
pub struct ProxyRuntime {
    pub limiter: RateLimiter,
    calls: in_flight::CallSlots,
    pub recorder: Recorder,
    opened: Arc<opened::OpenedConnections>,
    /// The audit writer's turn to write, which token renewals share (see `record::WriteTurn`).
    write_turn: record::WriteTurn,
}

impl ProxyRuntime {
    /// Starts the audit writer and the cache's eviction on the current runtime, with room for
    /// `max_in_flight` calls at once. The HTTP server owns the result: only `/proxy` uses it.
    pub fn start(
        db: DatabaseConnection,
        settings: &ProxySettings,
        events: &EventBus,
        max_in_flight: usize,
    ) -> Arc<Self> {
        let write_turn = record::WriteTurn::default();
        let recorder = Recorder::start(db, settings.retention, write_turn.clone());
        let opened = opened::OpenedConnections::start(events);
        let calls = in_flight::CallSlots::new(max_in_flight);
        Arc::new(ProxyRuntime { limiter: RateLimiter::default(), calls, recorder, opened, write_turn })
    }
}

/// A request to pass on, as the HTTP layer read it.
pub struct Call<'a> {
    /// The caller's Plugboard token (`Authorization: Bearer`).
    pub bearer: Option<&'a str>,
    pub naming: Naming<'a>,
    pub method: Method,
    /// Under `/proxy`, as sent (percent-encoded), starting with `/`.
    pub path: &'a str,
    /// As sent, without `?`.
    pub query: Option<&'a str>,
    pub headers: HeaderMap,
    pub body: RequestBody,
}

/// The body to send on.
pub enum RequestBody {
    /// Read whole (small, or none): it can be sent again after a refresh.
    Kept(Bytes),
    /// Passed on as it arrives: sent once. `overflowed` is set when the caller sent more than
    /// the limit and the stream was cut.
    Streamed {
        body: reqwest::Body,
        /// The length the caller declared, passed on so the provider knows it too.
        length: Option<u64>,
        overflowed: Arc<std::sync::atomic::AtomicBool>,
    },
}

impl RequestBody {
    fn is_repeatable(&self) -> bool {
        matches!(self, RequestBody::Kept(_))
    }
}

/// What goes back to the caller: the provider's answer, perhaps annotated by Plugboard.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: AnswerBody,
    /// `Plugboard-Error` on a provider's answer: what Plugboard concluded from it.
    pub annotation: Option<&'static str>,
    /// With `ACCOUNT_VALIDATION_ERROR`: the scopes the provider named that were not granted.
    pub missing_scopes: Vec<String>,
    /// The access token was renewed after this answer; a call that could not be repeated may
    /// be sent again.
    pub token_refreshed: bool,
}

impl Answer {
    /// Keeps `value` until the answer's body has been sent or dropped.
    fn holding<T: Send + 'static>(mut self, value: T) -> Answer {
        use futures_util::StreamExt;
        if let AnswerBody::Stream { stream, .. } = &mut self.body {
            let body = std::mem::replace(stream, futures_util::stream::empty().boxed());
            *stream = body
                .map(move |chunk| {
                    let _held = &value;
                    chunk
                })
                .boxed();
        }
        self
    }
}

pub enum AnswerBody {
    Empty,
    /// The provider's body as it streams, with its length when known. Errors cut the answer.
    Stream {
        length: Option<u64>,
        stream: BoxStream<'static, Result<Bytes, std::io::Error>>,
    },
}

/// Passes `call` on and answers what the caller gets; Plugboard's own refusals are errors.
/// Every call whose connection was found is recorded, refusals included.
pub async fn forward(state: &AppState, runtime: &ProxyRuntime, call: Call<'_>) -> Result<Answer, ProxyError> {
    let started = Instant::now();
    let (result, app_key) = forward_inner(state, runtime, call, started).await;
    let status = match &result {
        Ok(answer) => answer.status,
        Err(error) => error.status,
    };
    crate::metrics::proxy_call(app_key.as_deref().unwrap_or("none"), status, started.elapsed());
    result
}

async fn forward_inner(
    state: &AppState,
    runtime: &ProxyRuntime,
    call: Call<'_>,
    started: Instant,
) -> (Result<Answer, ProxyError>, Option<String>) {
    let bearer = call.bearer;
    let principal = match bearer {
        Some(token) => match crate::access::identify(state, token).await {
            Ok(principal) => principal,
            Err(err) => return (Err(err.into()), None),
        },
        None => return (Err(crate::error::AppError::Unauthenticated.into()), None),
    };
    let via = match call.naming.parse() {
        Ok(via) => via,
        Err(err) => return (Err(err), None),
    };
    let target = match target::resolve(state, &runtime.opened, &principal, via).await {
        Ok(target) => target,
        Err(err) => return (Err(err), None),
    };
    let app_key = target.connection.app_key.clone();
    let path = audit_path(call.path, call.query);
    let method = call.method.as_str().to_owned();
    let result = match runtime.calls.enter(state.config.proxy.queue).await {
        // The place is held until the answer has streamed back: so is the provider's connection.
        Ok(slot) => {
            upstream::send(state, runtime, &principal, &target, call).await.map(|answer| answer.holding(slot))
        }
        Err(busy) => Err(busy),
    };
    let (status, code) = match &result {
        Ok(answer) => (answer.status, answer.annotation),
        Err(error) => (error.status, Some(error.code)),
    };
    let record = ApiCall {
        id: uuid::Uuid::now_v7(),
        team_id: target.connection.team_id,
        connection_id: target.connection.id,
        flow_id: target.module.as_ref().map(|m| m.flow_id),
        module_key: target.module.as_ref().map(|m| m.key.clone()),
        method,
        path,
        status,
        duration_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
        plugboard_error: code.map(str::to_owned),
        actor: principal.actor(),
        created_at: chrono::Utc::now(),
    };
    runtime.recorder.record(record).await;
    (result, Some(app_key))
}
