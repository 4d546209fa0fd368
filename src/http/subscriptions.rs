//! GraphQL subscriptions over WebSocket, at `/graphql/ws` and by upgrade on `/graphql`. The
//! caller authenticates in `connection_init` with `{"Authorization": "Bearer <token>"}`; a token
//! that is given but invalid closes the connection.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::{Data, Request};
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use super::socket::{self, Operations};
use crate::access;
use crate::error::AppError;
use crate::graphql::{AppSchema, Caller, refused_connection};
use crate::state::AppState;

pub async fn websocket(
    request: HttpRequest,
    payload: web::Payload,
    schema: web::Data<AppSchema>,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    if !super::cors::websocket_allowed(&request, &state.config) {
        return Ok(HttpResponse::Forbidden()
            .body("this origin may not open subscriptions; list it in PLUGBOARD_CORS_ORIGINS"));
    }
    let service = Service { schema: schema.get_ref().clone(), state: state.get_ref().clone() };
    socket::start(&request, payload, service)
}

/// The service's schema behind a socket, with the caller from `connection_init`.
struct Service {
    schema: AppSchema,
    state: AppState,
}

impl Operations for Service {
    fn init(&self, payload: serde_json::Value) -> BoxFuture<'static, Result<Data, String>> {
        let state = self.state.clone();
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

    use super::bearer_from_init;

    #[test]
    fn tokens_come_from_the_authorization_entry() {
        assert_eq!(bearer_from_init(&json!({ "Authorization": "Bearer pbu_x" })).as_deref(), Some("pbu_x"));
        assert_eq!(bearer_from_init(&json!({ "authorization": "bearer  pbu_y " })).as_deref(), Some("pbu_y"));
        assert_eq!(bearer_from_init(&json!({ "token": "pbu_z" })).as_deref(), Some("pbu_z"));
        assert_eq!(bearer_from_init(&json!({})), None);
        assert_eq!(bearer_from_init(&json!(null)), None);
    }
}
