//! Proof of a team check: a team, and what the caller may do there. Only `access` builds one,
//! once it has checked; use cases that read a team's data take it instead of a bare team id, so
//! a resolver cannot hand them a team its caller was never checked against. The compiler keeps
//! it so: the fields are private to this module and the one constructor to `access`.

use crate::domain::{TeamAccess, TeamId, TeamRole};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeamScope {
    team: TeamId,
    access: TeamAccess,
}

impl TeamScope {
    /// For `access` alone, right after it found `access` to be what the caller has in `team`.
    pub(super) fn checked(team: TeamId, access: TeamAccess) -> Self {
        TeamScope { team, access }
    }

    pub fn team(&self) -> TeamId {
        self.team
    }

    pub fn access(&self) -> TeamAccess {
        self.access
    }

    /// Refuses anyone but the team's `ADMIN`s: they alone manage members and service tokens.
    pub fn require_admin(&self) -> AppResult<()> {
        match self.access {
            TeamAccess::Member(TeamRole::Admin) => Ok(()),
            TeamAccess::Member(role) => Err(AppError::Forbidden(format!(
                "your role in this team is {}; only an ADMIN manages members and service tokens",
                role.as_str()
            ))),
            TeamAccess::Service => Err(AppError::Forbidden(
                "service tokens cannot manage members or tokens; use an ADMIN's token".into(),
            )),
        }
    }
}
