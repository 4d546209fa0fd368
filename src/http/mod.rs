//! HTTP routes: `/graphql` (POST for queries, GET for GraphiQL or a WebSocket upgrade),
//! `/graphql/ws` (subscriptions), `/oauth/callback` (consent), `/proxy/{path}` (API calls for runners), `/metrics`, `/healthz`, `/readyz`.
//! Handlers translate HTTP to calls into `graphql` and answer; no business rules here.

mod cors;
mod graphiql;
mod graphql;
mod health;
mod metrics;
mod oauth_callback;
mod open_files;
mod proxy;
mod socket;
mod socket_slots;
mod stalled_clients;
mod subscriptions;
mod telemetry;

use actix_web::{guard, web};

pub use cors::{middleware as cors_middleware, strip_for_unlisted as cors_strip_for_unlisted};
pub use graphql::GraphqlLimits;
pub use open_files::{ClientLimits, Wanted as WantedByClients, raise_limit as raise_open_files_limit};
pub use socket_slots::SocketSlots;
pub use stalled_clients::cut_after as cut_stalled_clients_after;
pub use telemetry::request_telemetry;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/graphql")
            .route(web::post().to(graphql::execute))
            .route(web::get().guard(guard::Header("upgrade", "websocket")).to(subscriptions::websocket))
            .route(web::get().to(graphiql::page)),
    )
    .route(graphiql::SCRIPT_PATH, web::get().to(graphiql::script))
    .route(graphiql::STYLESHEET_PATH, web::get().to(graphiql::stylesheet))
    .route(graphiql::LICENSES_PATH, web::get().to(graphiql::licenses))
    .route("/graphql/ws", web::get().to(subscriptions::websocket))
    .route("/oauth/callback", web::get().to(oauth_callback::callback))
    .service(web::resource("/proxy/{path:.*}").to(proxy::proxy))
    .route("/metrics", web::get().to(metrics::metrics))
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz));
}
