//! What a member may do in a team.

/// A member's role in a team. `Admin` and `Member` manage connections; `Monitoring` only reads.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum TeamRole {
    Admin,
    Member,
    Monitoring,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// Whether this role may create, edit, verify and delete the team's connections.
    pub fn can_manage(self) -> bool {
        matches!(self, TeamRole::Admin | TeamRole::Member)
    }
}
