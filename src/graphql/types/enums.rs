//! GraphQL mirrors of the domain's enums; names are part of the public contract.

use async_graphql::Enum;

use crate::domain;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::AuthType")]
pub enum AuthType {
    #[graphql(name = "OAUTH2")]
    OAuth2,
    #[graphql(name = "OAUTH2_CLIENT_CREDENTIALS")]
    OAuth2ClientCredentials,
    ApiKey,
    Basic,
    Custom,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::ConnectionStatus")]
pub enum ConnectionStatus {
    PendingAuthorization,
    Unverified,
    Active,
    Invalid,
    NeedsReauthorization,
}

/// Where a connection's grant stands: `EXPIRING` within a week of the end the provider named.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::GrantStatus")]
pub enum GrantStatus {
    NoExpiry,
    Ok,
    Expiring,
    Expired,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::VerificationOutcome")]
pub enum VerificationOutcome {
    Ok,
    InvalidCredentials,
    InsufficientScopes,
    ProviderUnavailable,
    NeedsReauthorization,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::AuditAction")]
pub enum AuditAction {
    ConnectionCreated,
    ConnectionAuthorized,
    ConnectionEdited,
    ConnectionDeleted,
    ConnectionVerified,
    ConnectionReauthorized,
    CredentialsRead,
    FlowCreated,
    FlowUpdated,
    FlowDeleted,
    DynamicConnectionCreated,
    DynamicConnectionChanged,
    DynamicConnectionDeleted,
    WebhookCreated,
    WebhookDeleted,
    TeamCreated,
    MemberAdded,
    MemberRoleChanged,
    MemberRemoved,
    ServiceTokenCreated,
    ServiceTokenRevoked,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::ActorKind")]
pub enum ActorKind {
    User,
    Service,
    System,
}

/// The caller's standing in a team. `SERVICE` is a team-bound service token.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TeamRole {
    Admin,
    Member,
    Monitoring,
    Service,
}

impl From<domain::TeamAccess> for TeamRole {
    fn from(access: domain::TeamAccess) -> Self {
        match access {
            domain::TeamAccess::Member(domain::TeamRole::Admin) => TeamRole::Admin,
            domain::TeamAccess::Member(domain::TeamRole::Member) => TeamRole::Member,
            domain::TeamAccess::Member(domain::TeamRole::Monitoring) => TeamRole::Monitoring,
            domain::TeamAccess::Service => TeamRole::Service,
        }
    }
}

/// How an app's provider is doing across all connections.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::AppHealthStatus")]
pub enum AppHealthStatus {
    Healthy,
    Degraded,
}
