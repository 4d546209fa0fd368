//! Integration tests: the real app on a random port, real HTTP, a fresh database per test.

mod helpers;

mod access;
mod audit;
mod catalog;
mod cli;
mod connections;
mod fake_oauth;
mod flows;
mod health;
mod limits;
mod listing;
mod oauth;
mod observability;
mod process;
mod proxy;
mod scheduler;
mod schema;
mod shutdown;
mod storage;
mod subscriptions;
mod verification;
mod webhooks;
mod ws;
