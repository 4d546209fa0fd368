//! The state of a connection and the outcome of checking it.

/// Where a connection stands. Only a definite rejection by the provider moves a connection to
/// `Invalid` or `NeedsReauthorization`; a provider outage never does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionStatus {
    PendingAuthorization,
    Unverified,
    Active,
    Invalid,
    NeedsReauthorization,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// What the last check of a connection found.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationOutcome {
    Ok,
    InvalidCredentials,
    InsufficientScopes,
    /// 5xx, 429, timeouts, DNS: transient, never changes the connection's status.
    ProviderUnavailable,
    NeedsReauthorization,
}

impl VerificationOutcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
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
        for status in <ConnectionStatus as strum::IntoEnumIterator>::iter() {
            assert_eq!(VerificationOutcome::ProviderUnavailable.next_status(status), status);
        }
    }
}
