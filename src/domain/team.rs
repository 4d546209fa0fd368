//! Teams, their members and the callers acting on them.

use chrono::{DateTime, Utc};

use super::{Actor, ActorKind, TeamId, TeamRole, TokenId, UserId};

#[derive(Debug, Clone)]
pub struct Team {
    pub id: TeamId,
    pub name: TeamName,
    pub created_at: DateTime<Utc>,
}

/// A team's name: trimmed, 1 to 100 characters, unique across the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamName(String);

impl TeamName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err("a team name has 1 to 100 characters and no control characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, lower-cased. Only its shape is checked: it identifies a user, nothing is
/// sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(email.split_once('@'), Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
                    && !domain.ends_with('.') && !domain.contains('@'));
        if !valid {
            return Err(format!("{raw:?} is not an e-mail address"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub created_at: DateTime<Utc>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A person's token, or the identity provider's JWT (no `token_id`): acts as that user in
    /// every team the user belongs to.
    User { user_id: UserId, email: Email, token_id: Option<TokenId>, expires_at: Option<DateTime<Utc>> },
    /// A runner's token: bound to one team; reads, and may fetch credentials.
    Service { team_id: TeamId, token_id: TokenId, token_prefix: String, expires_at: Option<DateTime<Utc>> },
}

impl Principal {
    pub fn actor(&self) -> Actor {
        match self {
            Principal::User { user_id, email, .. } => {
                Actor { kind: ActorKind::User, id: Some(user_id.as_uuid()), label: email.as_str().to_owned() }
            }
            Principal::Service { token_id, token_prefix, .. } => Actor {
                kind: ActorKind::Service,
                id: Some(token_id.as_uuid()),
                label: format!("service token {token_prefix}"),
            },
        }
    }

    /// When the credential the caller presented stops being valid, if it does.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Principal::User { expires_at, .. } | Principal::Service { expires_at, .. } => *expires_at,
        }
    }

    /// The stored API token the caller presented, if it presented one.
    pub fn token_id(&self) -> Option<TokenId> {
        match self {
            Principal::User { token_id, .. } => *token_id,
            Principal::Service { token_id, .. } => Some(*token_id),
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Principal::User { user_id, .. } => Some(*user_id),
            Principal::Service { .. } => None,
        }
    }
}

/// A member of a team as the team's admins see it.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: User,
    pub role: TeamRole,
    pub since: DateTime<Utc>,
}

/// What a caller may do in one team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamAccess {
    Member(TeamRole),
    Service,
}

impl TeamAccess {
    pub fn can_manage(self) -> bool {
        matches!(self, TeamAccess::Member(role) if role.can_manage())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_shape_checked() {
        assert_eq!(Email::parse(" Ana@Example.COM ").unwrap().as_str(), "ana@example.com");
        for bad in ["", "ana", "ana@", "@example.com", "ana@example", "a b@example.com", "a@b@c.d"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn monitoring_members_and_services_cannot_manage() {
        assert!(TeamAccess::Member(TeamRole::Admin).can_manage());
        assert!(TeamAccess::Member(TeamRole::Member).can_manage());
        assert!(!TeamAccess::Member(TeamRole::Monitoring).can_manage());
        assert!(!TeamAccess::Service.can_manage());
    }
}
