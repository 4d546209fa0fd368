//! What a member may do in a team.

/// A member's role in a team. `Admin` and `Member` manage connections; `Monitoring` only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TeamRole {
    Admin,
    Member,
    Monitoring,
}

impl TeamRole {
    pub const ALL: [TeamRole; 3] = [TeamRole::Admin, TeamRole::Member, TeamRole::Monitoring];

    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Admin => "ADMIN",
            TeamRole::Member => "MEMBER",
            TeamRole::Monitoring => "MONITORING",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether this role may create, edit, verify and delete the team's connections.
    pub fn can_manage(self) -> bool {
        matches!(self, TeamRole::Admin | TeamRole::Member)
    }
}
