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

/// mimalloc for every binary built on the library (the service, its tests and benchmarks): a
/// sweep or a list page allocates many small short-lived values across worker threads, and
/// glibc's allocator spent about a fifth of the service's CPU on them (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
