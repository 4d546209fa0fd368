//! Which parts of a connection a read fills: a page that shows a few fields reads only their
//! columns (the Connections page shows a third of them), and the rest hold their empty value.
//!
//! Only a reader that answers from the parts it asked for may ask for fewer than `ALL`: the
//! connection page answering an all-plain selection (`graphql/types/listed_page.rs`).

/// A part of a connection that a read may leave out. Its identity (id, team, app, name, auth
/// type, status, version) is always read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionPart {
    PublicFields,
    SecretFieldNames,
    Scopes,
    ExpiresAt,
    /// When the grant ends, its details, and which write of tokens the connection holds.
    Grant,
    AccountLabel,
    LastVerification,
    /// The next check, consecutive failures, last success and failure.
    Health,
    /// Who created and last updated it.
    Authors,
    /// When it was created and last updated.
    Times,
}

impl ConnectionPart {
    const EVERY: [ConnectionPart; 10] = [
        ConnectionPart::PublicFields,
        ConnectionPart::SecretFieldNames,
        ConnectionPart::Scopes,
        ConnectionPart::ExpiresAt,
        ConnectionPart::Grant,
        ConnectionPart::AccountLabel,
        ConnectionPart::LastVerification,
        ConnectionPart::Health,
        ConnectionPart::Authors,
        ConnectionPart::Times,
    ];

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of `ConnectionPart`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionParts(u16);

impl ConnectionParts {
    /// The identity alone.
    pub const IDENTITY: ConnectionParts = ConnectionParts(0);
    /// The whole connection: what every reader gets unless it says otherwise.
    pub const ALL: ConnectionParts = {
        let mut bits = 0;
        let mut index = 0;
        while index < ConnectionPart::EVERY.len() {
            bits |= ConnectionPart::EVERY[index].bit();
            index += 1;
        }
        ConnectionParts(bits)
    };

    #[must_use]
    pub const fn with(self, part: ConnectionPart) -> Self {
        ConnectionParts(self.0 | part.bit())
    }

    pub const fn has(self, part: ConnectionPart) -> bool {
        self.0 & part.bit() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_holds_every_part_and_identity_none() {
        for part in ConnectionPart::EVERY {
            assert!(ConnectionParts::ALL.has(part));
            assert!(!ConnectionParts::IDENTITY.has(part));
            assert!(ConnectionParts::IDENTITY.with(part).has(part));
        }
        let grant = ConnectionParts::IDENTITY.with(ConnectionPart::Grant);
        assert!(!grant.has(ConnectionPart::Scopes));
        assert_ne!(grant, ConnectionParts::ALL);
    }
}
