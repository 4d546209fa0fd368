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

    /// The status a connection takes after a check with this outcome. A transient outcome keeps
    /// the current status: a provider outage is never the connection's fault.
    pub fn next_status(self, current: ConnectionStatus) -> ConnectionStatus {
        match self {
            VerificationOutcome::Ok => ConnectionStatus::Active,
            VerificationOutcome::InvalidCredentials | VerificationOutcome::InsufficientScopes => {
                ConnectionStatus::Invalid
            }
            VerificationOutcome::NeedsReauthorization => ConnectionStatus::NeedsReauthorization,
            VerificationOutcome::ProviderUnavailable => current,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_definite_outcomes_change_the_status() {
        use ConnectionStatus::*;
        assert_eq!(VerificationOutcome::Ok.next_status(Invalid), Active);
        assert_eq!(VerificationOutcome::InvalidCredentials.next_status(Active), Invalid);
        assert_eq!(VerificationOutcome::InsufficientScopes.next_status(Active), Invalid);
        assert_eq!(VerificationOutcome::NeedsReauthorization.next_status(Active), NeedsReauthorization);
        for status in ConnectionStatus::ALL {
            assert_eq!(VerificationOutcome::ProviderUnavailable.next_status(status), status);
        }
    }
}
