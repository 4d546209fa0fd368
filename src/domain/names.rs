//! The names of domain enums are stored in the database and shown in the API: renaming a
//! variant must not change them. This test pins every name.

use strum::IntoEnumIterator;

use crate::domain::{
    ActorKind, AuditAction, AuthType, ConnectionStatus, ConsentPurpose, DeliveryStatus, FlowStatus, TeamRole,
    VerificationOutcome,
};

/// Every variant's name round-trips, and the names are exactly `expected`, in order.
fn pinned<E>(expected: &[&str], as_str: fn(E) -> &'static str, parse: fn(&str) -> Option<E>)
where
    E: IntoEnumIterator + PartialEq + std::fmt::Debug + Copy,
{
    let names: Vec<&str> = E::iter().map(as_str).collect();
    assert_eq!(names, expected);
    for variant in E::iter() {
        assert_eq!(parse(as_str(variant)), Some(variant));
    }
}

#[test]
fn stored_names_never_change() {
    pinned::<ConnectionStatus>(
        &["PENDING_AUTHORIZATION", "UNVERIFIED", "ACTIVE", "INVALID", "NEEDS_REAUTHORIZATION"],
        ConnectionStatus::as_str,
        ConnectionStatus::parse,
    );
    pinned::<VerificationOutcome>(
        &[
            "OK",
            "INVALID_CREDENTIALS",
            "INSUFFICIENT_SCOPES",
            "PROVIDER_UNAVAILABLE",
            "NEEDS_REAUTHORIZATION",
        ],
        VerificationOutcome::as_str,
        VerificationOutcome::parse,
    );
    pinned::<AuthType>(
        &["OAUTH2", "OAUTH2_CLIENT_CREDENTIALS", "API_KEY", "BASIC", "CUSTOM"],
        AuthType::as_str,
        AuthType::parse,
    );
    pinned::<TeamRole>(&["ADMIN", "MEMBER", "MONITORING"], TeamRole::as_str, TeamRole::parse);
    pinned::<AuditAction>(
        &[
            "CONNECTION_CREATED",
            "CONNECTION_AUTHORIZED",
            "CONNECTION_EDITED",
            "CONNECTION_DELETED",
            "CONNECTION_VERIFIED",
            "CONNECTION_REAUTHORIZED",
            "CREDENTIALS_READ",
            "FLOW_CREATED",
            "FLOW_UPDATED",
            "FLOW_DELETED",
            "DYNAMIC_CONNECTION_CREATED",
            "DYNAMIC_CONNECTION_CHANGED",
            "DYNAMIC_CONNECTION_DELETED",
            "WEBHOOK_CREATED",
            "WEBHOOK_DELETED",
            "TEAM_CREATED",
            "MEMBER_ADDED",
            "MEMBER_ROLE_CHANGED",
            "MEMBER_REMOVED",
            "SERVICE_TOKEN_CREATED",
            "SERVICE_TOKEN_REVOKED",
        ],
        AuditAction::as_str,
        AuditAction::parse,
    );
    pinned::<ActorKind>(&["USER", "SERVICE", "SYSTEM"], ActorKind::as_str, ActorKind::parse);
    pinned::<FlowStatus>(&["ACTIVE", "SCHEDULED", "INACTIVE"], FlowStatus::as_str, FlowStatus::parse);
    pinned::<ConsentPurpose>(
        &["CREATE", "REAUTHORIZE", "EDIT"],
        ConsentPurpose::as_str,
        ConsentPurpose::parse,
    );
    pinned::<DeliveryStatus>(
        &["PENDING", "DELIVERED", "FAILED"],
        DeliveryStatus::as_str,
        DeliveryStatus::parse,
    );
}
