//! Why a person is sent to a provider for consent. Stored with the consent's state, it decides
//! what completing the consent does and how the audit trail names it.

use super::AuditAction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsentPurpose {
    /// A new connection's first consent.
    Create,
    /// A new consent for a connection whose grant ended or should be renewed.
    Reauthorize,
    /// An edit of an OAuth connection, which takes effect once the consent completes.
    Edit,
}

impl ConsentPurpose {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// What the trail calls a completed consent of this purpose.
    pub fn audit_action(self) -> AuditAction {
        match self {
            ConsentPurpose::Create => AuditAction::ConnectionAuthorized,
            ConsentPurpose::Reauthorize => AuditAction::ConnectionReauthorized,
            ConsentPurpose::Edit => AuditAction::ConnectionEdited,
        }
    }
}
