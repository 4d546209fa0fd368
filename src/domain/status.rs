//! The state of a connection and the outcome of checking it.

/// Where a connection stands. Only a definite rejection by the provider moves a connection to
/// `Invalid` or `NeedsReauthorization`; a provider outage never does.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

impl ConnectionStatus {
    /// The status of credentials just stored (created, edited, or granted by consent): what
    /// their check found; without a check (the app declares none), `Active` when the provider's
    /// completed consent vouches for them, else `Unverified`.
    pub fn of_new_credentials(check: Option<VerificationOutcome>, consented: bool) -> Self {
        match (check, consented) {
            (Some(outcome), _) => outcome.next_status(ConnectionStatus::Unverified),
            (None, true) => ConnectionStatus::Active,
            (None, false) => ConnectionStatus::Unverified,
        }
    }
}

/// What the last check of a connection found.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

    #[test]
    fn new_credentials_take_their_check_or_the_consent_as_their_word() {
        use ConnectionStatus::*;
        assert_eq!(ConnectionStatus::of_new_credentials(Some(VerificationOutcome::Ok), false), Active);
        assert_eq!(
            ConnectionStatus::of_new_credentials(Some(VerificationOutcome::InvalidCredentials), true),
            Invalid
        );
        // A provider outage during the first check leaves new credentials unverified.
        assert_eq!(
            ConnectionStatus::of_new_credentials(Some(VerificationOutcome::ProviderUnavailable), true),
            Unverified
        );
        assert_eq!(ConnectionStatus::of_new_credentials(None, true), Active);
        assert_eq!(ConnectionStatus::of_new_credentials(None, false), Unverified);
    }
}
