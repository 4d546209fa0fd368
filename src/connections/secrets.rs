//! A connection's secrets as one sealed blob: a JSON object of field name to value, sealed and
//! bound to the connection's team and id, so a blob copied onto another row does not open.

use std::collections::BTreeMap;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{Binding, Sealer};
use crate::domain::{ConnectionId, TeamId};
use crate::store::connections::SealedSecrets;

const PURPOSE: &str = "connection";

/// Names under which tokens sit in a connection's blob, beside the form's secret fields.
/// The catalog reserves them, so no form field can take them.
const ACCESS_TOKEN: &str = "access_token";
const REFRESH_TOKEN: &str = "refresh_token";

/// Everything secret about a connection: its form's secret fields and its OAuth tokens.
#[derive(Clone, Default)]
pub struct StoredSecrets {
    pub form: BTreeMap<String, SecretString>,
    pub access_token: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
}

impl std::fmt::Debug for StoredSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecrets")
            .field("form", &self.form.keys().collect::<Vec<_>>())
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl StoredSecrets {
    fn split(mut all: BTreeMap<String, SecretString>) -> Self {
        let access_token = all.remove(ACCESS_TOKEN);
        let refresh_token = all.remove(REFRESH_TOKEN);
        StoredSecrets { form: all, access_token, refresh_token }
    }

    fn merged(&self) -> BTreeMap<String, SecretString> {
        let mut all = self.form.clone();
        if let Some(token) = &self.access_token {
            all.insert(ACCESS_TOKEN.to_owned(), token.clone());
        }
        if let Some(token) = &self.refresh_token {
            all.insert(REFRESH_TOKEN.to_owned(), token.clone());
        }
        all
    }

    pub fn seal(
        &self,
        sealer: &Sealer,
        team_id: TeamId,
        connection_id: ConnectionId,
    ) -> anyhow::Result<Option<SealedSecrets>> {
        seal(sealer, team_id, connection_id, &self.merged())
    }

    /// Opens a connection's blob, if it has one.
    pub fn open(
        sealer: &Sealer,
        team_id: TeamId,
        connection_id: ConnectionId,
        blob: Option<&[u8]>,
    ) -> anyhow::Result<Self> {
        match blob {
            Some(blob) => Ok(Self::split(open(sealer, team_id, connection_id, blob)?)),
            None => Ok(Self::default()),
        }
    }
}

pub(super) fn binding(team_id: TeamId, connection_id: ConnectionId) -> Binding {
    Binding::new(PURPOSE, team_id.as_uuid(), connection_id.as_uuid())
}

/// Seals `secrets`; `None` when there are none, so no empty envelope is stored.
pub fn seal(
    sealer: &Sealer,
    team_id: TeamId,
    connection_id: ConnectionId,
    secrets: &BTreeMap<String, SecretString>,
) -> anyhow::Result<Option<SealedSecrets>> {
    if secrets.is_empty() {
        return Ok(None);
    }
    let exposed: BTreeMap<&str, &str> =
        secrets.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
    let plaintext = secrecy::SecretBox::new(Box::new(
        serde_json::to_vec(&exposed).context("could not encode a connection's secrets")?,
    ));
    let blob = sealer
        .seal(plaintext.expose_secret(), &binding(team_id, connection_id))
        .context("could not seal a connection's secrets")?;
    Ok(Some(SealedSecrets { blob, key_id: sealer.active_key_id().to_string() }))
}

/// Opens a blob sealed by `seal` for the same team and connection.
pub fn open(
    sealer: &Sealer,
    team_id: TeamId,
    connection_id: ConnectionId,
    blob: &[u8],
) -> anyhow::Result<BTreeMap<String, SecretString>> {
    let plaintext = sealer
        .open(blob, &binding(team_id, connection_id))
        .with_context(|| format!("could not open the secrets of connection {connection_id}"))?;
    let values: BTreeMap<String, String> = serde_json::from_slice(plaintext.expose_secret())
        .with_context(|| format!("the secrets of connection {connection_id} are not a JSON object"))?;
    Ok(values.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_open_only_on_their_own_row() {
        let sealer = Sealer::for_testing();
        let (team, conn) = (TeamId::new(), ConnectionId::new());
        let secrets = BTreeMap::from([("api_key".to_owned(), SecretString::from("sk-123"))]);
        let sealed = seal(&sealer, team, conn, &secrets).unwrap().unwrap();
        let opened = open(&sealer, team, conn, &sealed.blob).unwrap();
        assert_eq!(opened["api_key"].expose_secret(), "sk-123");
        assert!(open(&sealer, team, ConnectionId::new(), &sealed.blob).is_err());
        assert!(open(&sealer, TeamId::new(), conn, &sealed.blob).is_err());
        assert!(seal(&sealer, team, conn, &BTreeMap::new()).unwrap().is_none());
    }
}
