//! Table definitions, one module per table. Only `store` sees these; everything else gets
//! domain values.

pub mod api_call;
pub mod api_token;
pub mod app_health;
pub mod audit_event;
pub mod check_lease;
pub mod connection;
pub mod connection_count;
pub mod dynamic_connection;
pub mod dynamic_connection_member;
pub mod event_outbox;
pub mod flow;
pub mod flow_module;
pub mod membership;
pub mod oauth_state;
pub mod team;
pub mod user;
pub mod verification;
pub mod webhook;
pub mod webhook_delivery;
