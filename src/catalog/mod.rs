//! The app catalog: the `providers/*.toml` files embedded at build time, parsed and validated
//! once at start so that a broken provider file stops the start instead of a connection. It
//! describes apps and checks connection forms; it never stores, sends or logs a secret value.

mod attach;
pub mod contract;
mod error;
mod form;
mod load;
mod proxy_rules;
mod raw;
mod request;
mod scopes;
mod search;
mod template;
mod types;
mod validate;

#[cfg(test)]
mod tests;

pub use attach::Attachment;
pub use error::{CatalogError, Problem};
pub use form::{FieldError, FormMode, FormValues};
pub use proxy_rules::{
    GENERIC_MODULE_KEY, GENERIC_MODULE_NAME, PathPattern, RateLimit, RateLimits, RequestRule,
};
pub use request::{
    BasicCredentials, BodyRule, Condition, CredentialParam, CredentialRules, FailureOutcome, FailureRule,
    VerifyMethod, VerifyRequest,
};
pub use template::{MissingValue, Template, TemplateError};
pub use types::{App, AppField, AppModule, ClientAuth, OAuthSettings};

/// The provider files as `build.rs` embedded them: `EMBEDDED`, (file name, contents) pairs.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/providers.rs"));
}

/// Every app Plugboard knows, sorted by name. Built once at start and shared read-only.
#[derive(Debug, Clone)]
pub struct Catalog {
    apps: Vec<App>,
}

impl Catalog {
    /// The catalog built into the binary from `providers/*.toml`.
    pub fn embedded() -> Result<Self, CatalogError> {
        let catalog = Self::from_sources(embedded::EMBEDDED.iter().copied())?;
        tracing::debug!(apps = catalog.apps.len(), "app catalog loaded");
        Ok(catalog)
    }

    /// The embedded catalog with the operator's own `*.toml` files from `dir` added
    /// (`PLUGBOARD_PROVIDERS_DIR`): private apps, or an embedded app pointed elsewhere. A file
    /// named like an embedded one replaces it.
    pub fn embedded_with_dir(dir: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let mut sources: std::collections::BTreeMap<String, String> =
            embedded::EMBEDDED.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned())).collect();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("could not read PLUGBOARD_PROVIDERS_DIR {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).filter(|n| n.ends_with(".toml"))
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("could not read {}", path.display()))?;
            sources.insert(name.to_owned(), text);
        }
        Ok(Self::from_sources(sources)?)
    }

    /// A catalog from (file name, contents) pairs, e.g. `("slack.toml", "key = ...")`; errors
    /// name each file as `providers/<file name>`.
    pub fn from_sources<N, C>(sources: impl IntoIterator<Item = (N, C)>) -> Result<Self, CatalogError>
    where
        N: AsRef<str>,
        C: AsRef<str>,
    {
        Ok(Self { apps: load::load(sources)? })
    }

    /// The app with this key. A linear scan: the catalog holds tens of apps.
    pub fn get(&self, key: &str) -> Option<&App> {
        self.apps.iter().find(|app| app.key == key)
    }

    /// Every app, sorted by name.
    pub fn apps(&self) -> &[App] {
        &self.apps
    }
}
