//! How a connection authenticates to its app. The catalog declares it per app; a connection
//! inherits it from its app when created.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthType {
    #[serde(rename = "OAUTH2")]
    #[strum(serialize = "OAUTH2")]
    OAuth2,
    #[serde(rename = "OAUTH2_CLIENT_CREDENTIALS")]
    #[strum(serialize = "OAUTH2_CLIENT_CREDENTIALS")]
    OAuth2ClientCredentials,
    ApiKey,
    Basic,
    Custom,
}

impl AuthType {
    /// The name used in storage, configuration and the API.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// Whether a person must grant consent in a browser before the connection works.
    pub fn needs_consent(self) -> bool {
        self == AuthType::OAuth2
    }
}
