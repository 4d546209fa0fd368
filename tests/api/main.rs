//! Integration tests: the real app on a random port, real HTTP, a fresh database per test.

mod helpers;

mod access;
mod audit;
mod catalog;
mod cli;
mod connections;
mod contracts;
mod cors;
mod fake_oauth;
mod flows;
mod grants;
mod graphiql;
mod health;
mod hostile;
mod incidents;
mod limits;
mod listing;
mod oauth;
mod observability;
mod oidc;
mod process;
mod provider_trust;
mod proxy;
mod revocation;
mod rotation;
mod scheduler;
mod schema;
mod shutdown;
mod storage;
mod subscriptions;
mod teams;
mod token_lifecycle;
mod verification;
mod webhooks;
mod ws;
