//! Plugboard keeps a team's connections to third-party apps and hands working credentials to
//! the automation flows that use them. `main.rs` parses the command line and calls in here.

pub mod access;
pub mod access_cache;
pub mod bootstrap;
pub mod catalog;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod events;
pub mod flows;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod outbound;
pub mod proxy;
mod rfc3339;
pub mod scheduler;
pub mod startup;
pub mod state;
pub mod store;
pub mod teams;
pub mod telemetry;
pub mod verify;
pub mod webhooks;
