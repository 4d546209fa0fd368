//! The state of a connection and the outcome of checking it.

/// Where a connection stands. Only a definite rejection by the provider moves a connection to
/// `Invalid` or `NeedsReauthorization`; a provider outage never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    PendingAuthorization,
    Unverified,
    Active,
    Invalid,
    NeedsReauthorization,
}

impl ConnectionStatus {
    pub const ALL: [ConnectionStatus; 5] = [
        ConnectionStatus::PendingAuthorization,
        ConnectionStatus::Unverified,
        ConnectionStatus::Active,
        ConnectionStatus::Invalid,
        ConnectionStatus::NeedsReauthorization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::PendingAuthorization => "PENDING_AUTHORIZATION",
            ConnectionStatus::Unverified => "UNVERIFIED",
            ConnectionStatus::Active => "ACTIVE",
            ConnectionStatus::Invalid => "INVALID",
            ConnectionStatus::NeedsReauthorization => "NEEDS_REAUTHORIZATION",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What the last check of a connection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerificationOutcome {
    Ok,
    InvalidCredentials,
    InsufficientScopes,
    /// 5xx, 429, timeouts, DNS: transient, never changes the connection's status.
    ProviderUnavailable,
    NeedsReauthorization,
}

impl VerificationOutcome {
    pub const ALL: [VerificationOutcome; 5] = [
        VerificationOutcome::Ok,
        VerificationOutcome::InvalidCredentials,
        VerificationOutcome::InsufficientScopes,
        VerificationOutcome::ProviderUnavailable,
        VerificationOutcome::NeedsReauthorization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VerificationOutcome::Ok => "OK",
            VerificationOutcome::InvalidCredentials => "INVALID_CREDENTIALS",
            VerificationOutcome::InsufficientScopes => "INSUFFICIENT_SCOPES",
            VerificationOutcome::ProviderUnavailable => "PROVIDER_UNAVAILABLE",
            VerificationOutcome::NeedsReauthorization => "NEEDS_REAUTHORIZATION",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}
