//! A team's stored connection to an app, as the rest of the service sees it. Secrets are not
//! part of it: they stay sealed in the store and are opened only where they are sent out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{AuthType, ConnectionId, ConnectionStatus, Health, TeamId, UserId, VerificationOutcome};

#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnectionId,
    pub team_id: TeamId,
    pub app_key: String,
    pub name: ConnectionName,
    pub auth_type: AuthType,
    pub status: ConnectionStatus,
    /// Non-secret form values, returned to the frontend to prefill the edit form.
    pub public_fields: BTreeMap<String, String>,
    /// Which secret form fields are set; their values live only in the sealed blob.
    pub secret_fields: Vec<String>,
    pub scopes: Vec<String>,
    /// When the access token expires; `None` when the provider gave it no expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the grant itself (the refresh token) ends, when the provider says so.
    pub grant_expires_at: Option<DateTime<Utc>>,
    /// Non-secret facts of the grant the app keeps (Salesforce's `instance_url`).
    pub token_details: BTreeMap<String, String>,
    /// Which write of tokens the connection holds; bumped by each one.
    pub token_generation: i32,
    pub account_label: Option<String>,
    pub last_verification: Option<Verification>,
    /// How its checks have been going, and when the scheduler checks it next.
    pub health: Health,
    pub version: i32,
    pub created_by: Option<UserId>,
    pub updated_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Connection {
    /// The connection as it stands once `check` is recorded with the status and health it led
    /// to: what the store writes, without reading it back.
    pub fn after_check(mut self, check: &Verification, status: ConnectionStatus, health: Health) -> Self {
        if let Some(label) = &check.account_label {
            self.account_label = Some(label.clone());
        }
        self.last_verification = Some(Verification {
            // The account is shown beside a passing check only.
            account_label: self.account_label.clone().filter(|_| check.outcome == VerificationOutcome::Ok),
            ..check.clone()
        });
        self.status = status;
        self.health = health;
        self
    }
}

/// Which of a team's connections a list shows; every part that is set must match.
#[derive(Debug, Default, Clone)]
pub struct ConnectionFilter {
    pub app: Option<String>,
    pub status: Option<ConnectionStatus>,
    /// Matches the name, case-insensitively, anywhere in it.
    pub search: Option<String>,
    /// Where the grant stands now.
    pub grant: Option<GrantStatus>,
}

/// Where a connection's grant (its refresh token) stands, as its provider told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantStatus {
    /// The provider said nothing about the grant ending.
    NoExpiry,
    /// It ends, but not within the first warning (a week).
    Ok,
    /// It ends within a week: a person should reauthorize before it does.
    Expiring,
    Expired,
}

impl GrantStatus {
    pub fn of(grant_expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match grant_expires_at {
            None => GrantStatus::NoExpiry,
            Some(ends) if ends <= now => GrantStatus::Expired,
            Some(ends) if ends - super::GRANT_WARNINGS[0] <= now => GrantStatus::Expiring,
            Some(_) => GrantStatus::Ok,
        }
    }
}

/// The result of one check of a connection against its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub outcome: VerificationOutcome,
    /// Written for a person; never contains a secret.
    pub message: Option<String>,
    /// The account the provider named when the check passed (e.g. an e-mail).
    pub account_label: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl Verification {
    /// A finding made at once rather than by a request to the provider (a refused consent, a
    /// dead grant, a 401 the proxy saw), with the message that explains it.
    pub fn noted(outcome: VerificationOutcome, message: impl Into<String>) -> Self {
        let now = Utc::now();
        Verification {
            outcome,
            message: Some(message.into()),
            account_label: None,
            started_at: now,
            finished_at: now,
        }
    }
}

/// A connection's display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionName(String);

impl ConnectionName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("a connection needs a name".into());
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(format!("a connection name has at most {} characters", Self::MAX_CHARS));
        }
        if name.chars().any(char::is_control) {
            return Err("a connection name cannot contain control characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionName;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ConnectionName::parse("  Sales Jira ").unwrap().as_str(), "Sales Jira");
        assert!(ConnectionName::parse("   ").is_err());
        assert!(ConnectionName::parse(&"x".repeat(101)).is_err());
        assert!(ConnectionName::parse("a\u{7}b").is_err());
        assert!(ConnectionName::parse(&"é".repeat(100)).is_ok());
    }
}
