//! How a connection authenticates to its app. The catalog declares it per app; a connection
//! inherits it from its app when created.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthType {
    #[serde(rename = "OAUTH2")]
    OAuth2,
    #[serde(rename = "OAUTH2_CLIENT_CREDENTIALS")]
    OAuth2ClientCredentials,
    ApiKey,
    Basic,
    Custom,
}

impl AuthType {
    pub const ALL: [AuthType; 5] = [
        AuthType::OAuth2,
        AuthType::OAuth2ClientCredentials,
        AuthType::ApiKey,
        AuthType::Basic,
        AuthType::Custom,
    ];

    /// The name used in storage, configuration and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::OAuth2 => "OAUTH2",
            AuthType::OAuth2ClientCredentials => "OAUTH2_CLIENT_CREDENTIALS",
            AuthType::ApiKey => "API_KEY",
            AuthType::Basic => "BASIC",
            AuthType::Custom => "CUSTOM",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether a person must grant consent in a browser before the connection works.
    pub fn needs_consent(self) -> bool {
        self == AuthType::OAuth2
    }
}
