//! HTTP routes: `/graphql` (POST for queries, GET for GraphiQL), `/healthz`, `/readyz`.
//! Handlers translate HTTP to calls into `graphql` and answer; no business rules here.

mod graphql;
mod health;

use actix_web::web;

pub use graphql::GraphqlLimits;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/graphql")
            .route(web::post().to(graphql::execute))
            .route(web::get().to(graphql::graphiql)),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz));
}
