//! Integration tests: the real app on a random port, real HTTP, a fresh database per test.

mod helpers;

mod access;
mod audit;
mod catalog;
mod cli;
mod connections;
mod cors;
mod fake_oauth;
mod flows;
mod graphiql;
mod health;
mod hostile;
mod limits;
mod listing;
mod oauth;
mod observability;
mod oidc;
mod process;
mod revocation;
mod scheduler;
mod schema;
mod shutdown;
mod storage;
mod subscriptions;
mod teams;
mod verification;
mod webhooks;
mod ws;
