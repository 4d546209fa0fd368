//! A connection's credentials rendered as the app file says requests carry them: the API base
//! URL, the headers (HTTP Basic folded into `Authorization`) and the query parameters. For the
//! proxy, and for runners that call the app themselves. The values are secrets.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;

use super::template::MissingValue;
use super::types::App;

/// What every request to the app carries. Holds secrets: `Debug` names the parts only.
pub struct Attachment {
    /// `api_base_url` filled in; not a secret (the catalog keeps secrets out of URLs).
    pub base_url: String,
    pub headers: Vec<(String, SecretString)>,
    pub query: Vec<(String, SecretString)>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("base_url", &self.base_url)
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("query", &self.query.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .finish()
    }
}

impl App {
    /// The credentials of a connection whose values (form fields, and `access_token` for OAuth
    /// apps) `lookup` gives.
    pub fn attachment<'v>(
        &self,
        lookup: impl Fn(&str) -> Option<&'v str>,
    ) -> Result<Attachment, MissingValue> {
        let rules = self.credentials();
        let base_url = self.api_base_url().render(&lookup)?;
        let mut headers = Vec::new();
        for param in rules.headers().iter().filter(|p| p.applies(&lookup)) {
            let name = param.name().render(&lookup)?;
            headers.push((name, SecretString::from(param.value().render(&lookup)?)));
        }
        if let Some(basic) = rules.basic() {
            let pair = format!("{}:{}", basic.username().render(&lookup)?, basic.password().render(&lookup)?);
            headers.push((
                "Authorization".to_owned(),
                SecretString::from(format!("Basic {}", STANDARD.encode(pair))),
            ));
        }
        let mut query = Vec::new();
        for param in rules.query().iter().filter(|p| p.applies(&lookup)) {
            let name = param.name().render(&lookup)?;
            query.push((name, SecretString::from(param.value().render(&lookup)?)));
        }
        Ok(Attachment { base_url, headers, query })
    }
}
