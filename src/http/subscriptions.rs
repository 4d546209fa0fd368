//! GraphQL subscriptions over WebSocket, at `/graphql/ws` and by upgrade on `/graphql`. The
//! caller authenticates in `connection_init` with `{"Authorization": "Bearer <token>"}`; a token
//! that is given but invalid closes the connection. An instance holds a bounded number of
//! sockets, in all and per caller (`socket_slots`): past the first, an upgrade is answered
//! `503 UNAVAILABLE`; past the second, the `connection_init` is refused `RATE_LIMITED`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::{Data, Request};
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use super::socket::{self, Operations};
use super::socket_slots::{HolderSlot, OpenSlot, SocketHolder, SocketSlots};
use crate::access;
use crate::error::AppError;
use crate::graphql::{AppSchema, Caller, refused_connection};
use crate::state::AppState;

pub async fn websocket(
    request: HttpRequest,
    payload: web::Payload,
    schema: web::Data<AppSchema>,
    state: web::Data<AppState>,
    sockets: web::Data<SocketSlots>,
) -> actix_web::Result<HttpResponse> {
    if !super::cors::websocket_allowed(&request, &state.config) {
        return Ok(HttpResponse::Forbidden()
            .body("this origin may not open subscriptions; list it in PLUGBOARD_CORS_ORIGINS"));
    }
    let Some(open) = sockets.take_open() else {
        return Ok(no_socket_free(sockets.max_open()));
    };
    let service = Service {
        schema: schema.get_ref().clone(),
        state: state.get_ref().clone(),
        sockets: sockets.get_ref().clone(),
        peer: request.peer_addr().map(|address| address.ip()),
        _open: open,
        holder: Arc::default(),
    };
    socket::start(&request, payload, service)
}

/// How long a client refused for want of a free socket is asked to wait.
const NO_SOCKET_RETRY: Duration = Duration::from_secs(5);

/// `503 UNAVAILABLE`, as a client that cannot open a socket reads it.
fn no_socket_free(max_open: usize) -> HttpResponse {
    refused(Limit::Instance, max_open);
    let error = AppError::Unavailable {
        message: format!(
            "this instance has {max_open} subscription sockets open already; retry shortly, or on another instance"
        ),
        retry_after: NO_SOCKET_RETRY,
    };
    super::graphql::refusal(StatusCode::SERVICE_UNAVAILABLE, error)
}

/// The service's schema behind a socket, with the caller from `connection_init`.
struct Service {
    schema: AppSchema,
    state: AppState,
    sockets: SocketSlots,
    /// Whom an anonymous socket counts against.
    peer: Option<IpAddr>,
    /// The socket's place among the instance's, given back when the socket closes.
    _open: OpenSlot,
    /// Its place among its caller's, from an accepted `connection_init` until it closes.
    holder: Arc<OnceLock<HolderSlot>>,
}

impl Operations for Service {
    fn init(&self, payload: serde_json::Value) -> BoxFuture<'static, Result<Data, String>> {
        let state = self.state.clone();
        let (sockets, peer, held) = (self.sockets.clone(), self.peer, self.holder.clone());
        async move {
            let caller = match bearer_from_init(&payload) {
                None => Caller::Anonymous,
                Some(token) => match access::identify(&state, &token).await {
                    Ok(principal) => Caller::Authenticated(principal),
                    Err(AppError::Unauthenticated) => {
                        let message = "the token in connection_init is not valid";
                        return Err(refused_connection(&AppError::Unauthenticated, Some(message)));
                    }
                    Err(other) => return Err(refused_connection(&other, None)),
                },
            };
            let principal = match &caller {
                Caller::Authenticated(principal) => Some(principal),
                Caller::Anonymous => None,
            };
            let holder = SocketHolder::of(principal, peer);
            let Some(slot) = sockets.take_for(holder) else {
                refused(Limit::Caller, sockets.max_per_holder());
                return Err(too_many_sockets(sockets.max_per_holder(), principal.is_some()));
            };
            // Only one `connection_init` per socket is ever checked.
            let _ = held.set(slot);
            let mut data = Data::default();
            data.insert(caller);
            Ok(data)
        }
        .boxed()
    }

    fn answers(&self, request: Request, session: Arc<Data>) -> BoxStream<'static, Bytes> {
        self.schema.execute_socket(request, session)
    }
}

/// Which socket limit refused a client.
#[derive(Clone, Copy)]
enum Limit {
    Instance,
    Caller,
}

/// When refusals were last logged, and how many came since: a client retrying in a loop, or a
/// flood, would otherwise write a line per attempt.
static REFUSALS: Mutex<Refusals> = Mutex::new(Refusals { logged_at: None, unlogged: 0 });

struct Refusals {
    logged_at: Option<Instant>,
    unlogged: u64,
}

/// How often refusals are logged at most; each is counted in `/metrics` all the same.
const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(60);

/// Counts a refusal (`plugboard_sockets_refused_total`) and logs it, with those since the last
/// line, at most once every `REFUSALS_LOGGED_EVERY`.
fn refused(limit: Limit, max: usize) {
    let (label, setting) = match limit {
        Limit::Instance => ("instance", "PLUGBOARD_MAX_SOCKETS"),
        Limit::Caller => ("caller", "PLUGBOARD_MAX_SOCKETS_PER_CALLER"),
    };
    crate::metrics::socket_refused(label);
    let mut refusals = REFUSALS.lock().unwrap_or_else(PoisonError::into_inner);
    refusals.unlogged += 1;
    if refusals.logged_at.is_some_and(|at| at.elapsed() < REFUSALS_LOGGED_EVERY) {
        return;
    }
    let count = std::mem::take(&mut refusals.unlogged);
    refusals.logged_at = Some(Instant::now());
    drop(refusals);
    tracing::warn!(
        limit = setting,
        max,
        refused = count,
        "WebSocket clients were refused for a socket limit (this line comes at most once a minute; \
         plugboard_sockets_refused_total counts them all); raise the limit if they are legitimate"
    );
}

/// The refusal of a `connection_init` whose caller holds its most sockets already; short
/// enough for a close frame's reason (123 bytes), which would cut it.
fn too_many_sockets(max: usize, with_token: bool) -> String {
    let whose = if with_token { "this token" } else { "this address" };
    let message =
        format!("{whose} has {max} sockets open (PLUGBOARD_MAX_SOCKETS_PER_CALLER); close one or share one");
    let error = AppError::RateLimited { message, retry_after: NO_SOCKET_RETRY };
    refused_connection(&error, None)
}

/// The token from `{"Authorization": "Bearer ..."}` (any case of the key), or a bare
/// `{"token": "..."}` as some clients send it.
fn bearer_from_init(init: &serde_json::Value) -> Option<String> {
    let object = init.as_object()?;
    let value = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization") || key.eq_ignore_ascii_case("token"))
        .and_then(|(_, value)| value.as_str())?;
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => value,
    };
    Some(token.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{bearer_from_init, too_many_sockets};

    #[test]
    fn tokens_come_from_the_authorization_entry() {
        assert_eq!(bearer_from_init(&json!({ "Authorization": "Bearer pbu_x" })).as_deref(), Some("pbu_x"));
        assert_eq!(bearer_from_init(&json!({ "authorization": "bearer  pbu_y " })).as_deref(), Some("pbu_y"));
        assert_eq!(bearer_from_init(&json!({ "token": "pbu_z" })).as_deref(), Some("pbu_z"));
        assert_eq!(bearer_from_init(&json!({})), None);
        assert_eq!(bearer_from_init(&json!(null)), None);
    }

    #[test]
    fn a_refusal_for_too_many_sockets_fits_a_close_frame_whole() {
        for with_token in [true, false] {
            let refusal = too_many_sockets(1_000_000, with_token);
            assert!(refusal.starts_with("RATE_LIMITED: "), "{refusal}");
            assert!(refusal.ends_with("share one"), "{refusal}");
            assert!(refusal.len() <= 123, "{} bytes: {refusal}", refusal.len());
        }
    }
}
