//! Plain types and rules of Plugboard's domain. Nothing here knows about the database, HTTP or
//! GraphQL: the store converts rows into these values, and the API is built from them.

mod api_call;
mod app_health;
mod audit;
mod auth_type;
mod connection;
mod connection_parts;
mod consent;
mod flow;
mod health;
mod ids;
mod role;
mod status;
mod team;
mod webhook;

pub use api_call::{ApiCall, audit_path};
pub use app_health::{
    AppHealth, AppHealthStatus, AppTally, DEGRADED_MIN_FAILURES, DEGRADED_PROBES, DEGRADED_RECHECK_MINUTES,
};
pub use audit::{Actor, ActorKind, AuditAction, AuditEvent};
pub use auth_type::AuthType;
pub use connection::{Connection, ConnectionFilter, ConnectionName, GrantStatus, Verification};
pub use connection_parts::{ConnectionPart, ConnectionParts};
pub use consent::ConsentPurpose;
pub use flow::{
    DynamicConnection, DynamicMember, Flow, FlowModule, FlowStatus, ModuleTarget, missing_scopes,
};
pub use health::{GRANT_WARNINGS, Health, SchedulePolicy, grant_warning_due, next_grant_attention};
pub use ids::{AuditEventId, ConnectionId, DynamicConnectionId, FlowId, TeamId, TokenId, UserId};
pub use role::TeamRole;
pub use status::{ConnectionStatus, VerificationOutcome};
pub use team::{Email, Member, Principal, Team, TeamAccess, TeamName, User};
pub use webhook::{DeliveryStatus, Webhook, WebhookDelivery};

#[cfg(test)]
mod names;
